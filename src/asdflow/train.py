"""One training loop for every embedding system (labels come from the trainset table).

Loss per step (seed 000 eq. 12): L_mlt = L_trp + L_ss, where L_ss is the subspace loss on a
mixup batch (mixup probability 0.5 with the triplet loss, 1.0 without) and L_trp the triplet loss
on un-mixed anchors, positives (anchor + another machine type's clip at SNR α) and negatives
(anchor pitch-shifted by β semitones). Without a triplet term the loop is the plain Ba /
Wilkinghoff baseline. ``ssl`` adds seed 002's self-supervised term (StatEx and/or FeatEx,
:mod:`asdflow.losses.ssl`): L_total = L(x, y) + L(x_new, y_new) (seed 002 eq. 8), the regular
loss above plus a sub-cluster AdaCos head with trainable centres over the tripled SSL classes.

Determinism and resumability: every random draw of epoch e comes from generators seeded with
(seed, e), and a checkpoint (model, optimiser, epoch) is written atomically after every epoch, so
a killed run resumed from its checkpoint ends with the same weights as an uninterrupted run
(on the same device and torch build).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from asdflow.data import CachedWaves, LabelEncoder
from asdflow.losses import (SSLHead, SubspaceLoss, choose_partners, mixup, pitch_shift, sample_semitones, snr_mix,
                            ssl_forward, triplet_loss)
from asdflow.nets import build_net
from asdflow.runtime import select_device, use_job_cpus

__all__ = ["SSLConfig", "TrainConfig", "TripletConfig", "epoch_order", "train_model", "load_model", "pick_device"]

log = logging.getLogger(__name__)


@dataclass
class TripletConfig:
    """Triplet loss of seed 000 §4.2.1 (eq. 8-11); paper defaults."""

    enabled: bool = True
    tau: float = 0.2
    gamma: float = 0.5
    snr_db: tuple[float, float] = (-5.0, 20.0)
    semitones: tuple[float, float] = (6.0, 12.0)
    variant: str = "paper"  # paper | code (reference implementation's loss form)
    snr_variant: str = "paper"  # paper (eq. 8) | code (realised SNR α/2)
    partner: str = "other_type"  # other_type (paper) | same_type (reference code)
    semitone_per: str = "sample"  # sample (paper) | batch (reference code: one shift per step)
    reduction: str = "mean"  # mean | sum (reference code)
    weight: float = 1.0
    anchors: int | None = None  # None = every clip of the batch is an anchor (paper); k = the first k only

    def __post_init__(self) -> None:
        if self.anchors is not None and int(self.anchors) < 1:
            raise ValueError(f"triplet anchors must be >= 1 or null (all), got {self.anchors}")


@dataclass
class SSLConfig:
    """Seed 002's self-supervised exchanges (§3.2-3.4); off by default.

    ``statex``: temporal statistics exchange on the spectrogram before temporal mean
    normalisation (eq. 3-5); ``featex``: exchange of the second branch's embedding with the
    partner's (eq. 6-7; needs a two-branch network, i.e. Wilkinghoff); ``prob``: probability of
    each exchange per sample (paper and code: 0.5); ``weight``: weight of L(x_new, y_new) (eq. 8:
    equally weighted, 1). ``variant``: ``paper`` (the regular loss on the un-exchanged input, an
    SSL head over 3^k·N classes) or ``code`` (``wilkinghoff/ssl4asd``: the regular loss on the
    StatEx input and no StatEx loss term — StatEx alone is then only an augmentation).
    """

    statex: bool = False
    featex: bool = False
    variant: str = "paper"  # paper | code (docs/reference.md §7)
    prob: float = 0.5
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.variant not in ("paper", "code"):
            raise ValueError(f"ssl variant must be 'paper' or 'code', got {self.variant!r}")
        if not 0.0 <= float(self.prob) <= 1.0:
            raise ValueError(f"ssl prob must be in [0, 1], got {self.prob}")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "SSLConfig":
        d = dict(d or {})
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown ssl options: {sorted(unknown)} (known: {sorted(cls.__dataclass_fields__)})")
        return cls(**d)

    @property
    def enabled(self) -> bool:
        return self.statex or self.featex

    @property
    def n_exchanges(self) -> int:
        """How often the labels are tripled (StatEx, FeatEx): the SSL head has 3^k·N classes."""
        return int(self.statex) + int(self.featex)

    @property
    def has_loss_term(self) -> bool:
        """False for the code variant with StatEx alone (its StatEx head has loss weight 0)."""
        return self.enabled and not (self.variant == "code" and not self.featex)


@dataclass
class TrainConfig:
    network: str = "Ba"
    net: dict[str, Any] = field(default_factory=dict)  # extra network options (widths, f_min, ...)
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01  # AdamW's PyTorch default, as the reference code uses
    n_subclusters: int = 16
    # sub-clusters of a class: all n_subclusters (none: both papers) or at most its number of
    # training clips (clips: small classes such as few-clip machine_mid classes keep no empty centres;
    # the regular loss's heads only, a StatEx/FeatEx head keeps n_subclusters for its exchanged classes)
    n_subclusters_cap: str = "none"
    adaptive_scale: bool = False  # seed-000 code keeps the SCAC scale fixed
    # the concatenated embedding's SCAC centres: fixed (False: seed 000/002 and their codes) or
    # trained like the branch heads' (True: seed 003, "16 trainable sub-cluster centers")
    trainable_centres: bool = False
    mixup_prob: float | None = None  # None = 0.5 with the triplet loss, 1.0 without (paper)
    triplet: TripletConfig = field(default_factory=TripletConfig)
    ssl: SSLConfig = field(default_factory=SSLConfig)
    random_shift: bool = True
    sampler: str = "shuffle"  # shuffle (uniform batches) | domain (reference code: target share per batch)
    target_share: float = 0.2  # sampler=domain: target-domain clips per batch (drawn with replacement)
    seed: int = 0
    device: str = "auto"
    num_workers: int = 0

    def __post_init__(self) -> None:
        if self.ssl.featex and self.network != "Wilkinghoff":
            raise ValueError(f"ssl.featex exchanges one of two branch embeddings (seed 002 §3.3) and needs the "
                             f"two-branch Wilkinghoff network, not {self.network!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        d = dict(d)
        ssl = SSLConfig.from_dict(d.pop("ssl", None))
        trip = d.pop("triplet", {}) or {}
        if isinstance(trip, bool):
            trip = {"enabled": trip}
        trip = {k: tuple(v) if isinstance(v, list) else v for k, v in trip.items()}
        unknown = set(d) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ValueError(f"unknown training options: {sorted(unknown)}")
        if d.get("n_subclusters_cap", "none") not in ("none", "clips"):
            raise ValueError(f"train n_subclusters_cap must be 'none' or 'clips', got {d['n_subclusters_cap']!r}")
        if d.get("sampler", "shuffle") not in ("shuffle", "domain"):
            raise ValueError(f"train sampler must be 'shuffle' or 'domain', got {d['sampler']!r}")
        return cls(triplet=TripletConfig(**trip), ssl=ssl, **d)

    @property
    def effective_mixup_prob(self) -> float:
        if self.mixup_prob is not None:
            return self.mixup_prob
        return 0.5 if self.triplet.enabled or self.ssl.enabled else 1.0  # seed 000 §4.2.1; seed 002 §3.1


def pick_device(device: str = "auto") -> torch.device:
    """``auto``: CUDA when the job was given a visible device, else CPU (see asdflow.runtime)."""
    return select_device(device)


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def _epoch_generators(seed: int, epoch: int, device: torch.device) -> tuple[torch.Generator, np.random.Generator]:
    g = torch.Generator(device="cpu")
    g.manual_seed(seed * 100_003 + epoch)
    return g, np.random.default_rng((seed, epoch, 7))


def epoch_order(is_target: torch.Tensor, batch_size: int, generator: torch.Generator, *, sampler: str = "shuffle",
                target_share: float = 0.2) -> tuple[torch.Tensor, int]:
    """The clip order of one epoch and its number of steps (batches of ``batch_size``).

    ``shuffle``: a random permutation of all clips, ``len // batch_size`` full batches (one
    batch when there are fewer clips). ``domain`` (the reference code's DomainBatchSampler):
    every batch is ``batch_size - t`` source clips, each source clip once per epoch, and
    ``t = round(batch_size · target_share)`` target-domain clips drawn with replacement; the
    number of steps is set by the source clips. Without target clips it falls back to shuffle.
    """
    n = len(is_target)
    n_tgt = int(round(batch_size * target_share)) if sampler == "domain" and bool(is_target.any()) else 0
    if n_tgt and batch_size - n_tgt >= 1:
        src = torch.nonzero(~is_target).flatten()
        tgt = torch.nonzero(is_target).flatten()
        k = batch_size - n_tgt
        steps = max(1, len(src) // k)
        src = src[torch.randperm(len(src), generator=generator)]
        picks = tgt[torch.randint(len(tgt), (steps, n_tgt), generator=generator)]
        return torch.cat([torch.cat([src[i * k:(i + 1) * k], picks[i]]) for i in range(steps)]), steps
    steps = max(1, n // batch_size) if n >= batch_size else 1
    return torch.randperm(n, generator=generator), steps


def _build(cfg: TrainConfig, n_samples: int, n_classes: int, device: torch.device,
           class_sizes: Sequence[int] | None = None) -> tuple[torch.nn.Module, SubspaceLoss, SSLHead | None]:
    """Network, regular loss and (with ``cfg.ssl``) the SSL head, initialised from ``cfg.seed``.
    ``class_sizes`` (training clips per class) caps the sub-clusters per class when
    ``cfg.n_subclusters_cap == "clips"``.

    The SSL head is built last, so the network and regular loss draw the same initial weights
    with and without SSL.
    """
    torch.manual_seed(cfg.seed)
    model = build_net(cfg.network, n_samples=n_samples, **cfg.net).to(device)
    loss_fn = SubspaceLoss(
        cat_dim=model.emb_dim,
        branch_dims=list(model.branch_dims),
        n_classes=n_classes,
        n_sub=cfg.n_subclusters,
        adaptive_scale=cfg.adaptive_scale,
        cat_trainable=cfg.trainable_centres,
        sub_counts=subcluster_counts(cfg, class_sizes, n_classes),
    ).to(device)
    ssl_head = None
    if cfg.ssl.has_loss_term:
        ssl_head = SSLHead(model.emb_dim, n_classes, cfg.ssl.n_exchanges, n_sub=cfg.n_subclusters,
                           adaptive_scale=cfg.adaptive_scale).to(device)
    return model, loss_fn, ssl_head


def subcluster_counts(cfg: TrainConfig, class_sizes: Sequence[int] | None, n_classes: int) -> list[int] | None:
    """Sub-clusters per class: None (all ``cfg.n_subclusters``) unless ``n_subclusters_cap`` is
    ``clips``, then min(n_subclusters, training clips of the class) (at least 1)."""
    if cfg.n_subclusters_cap == "none":
        return None
    if class_sizes is None or len(class_sizes) != n_classes:
        raise ValueError(f"n_subclusters_cap: clips needs the training clips of each of the {n_classes} classes")
    return [max(1, min(cfg.n_subclusters, int(c))) for c in class_sizes]


def _ssl_step(model: torch.nn.Module, ssl_head: SSLHead | None, xm: torch.Tensor, tm: torch.Tensor,
              cfg: SSLConfig, generator: torch.Generator) -> tuple[dict[str, Any], torch.Tensor]:
    """Forward of a mixup batch with StatEx/FeatEx: (embeddings for the regular loss, weighted
    L(x_new, y_new) — zero when the variant has no SSL term)."""
    batch = ssl_forward(model, xm, tm, use_statex=cfg.statex, use_featex=cfg.featex, prob=cfg.prob,
                        variant=cfg.variant, generator=generator)
    if ssl_head is None or batch.z_new is None:
        return batch.regular, torch.zeros((), device=xm.device)
    return batch.regular, cfg.weight * ssl_head(batch.z_new, batch.y_new)


def train_model(
    trainset: pd.DataFrame,
    cfg: TrainConfig,
    out_path: str | Path,
    *,
    n_samples: int,
    sample_rate: int = 16000,
    checkpoint_path: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train an embedding net on ``trainset`` (needs label, machine, cache_path, cache_row).

    Writes the final model to ``out_path`` (atomically) and returns a training report (loss per
    epoch, seconds per epoch, classes). ``checkpoint_path`` (default ``<out_path>.ckpt``) holds
    the state after each epoch; an existing checkpoint is resumed from.
    """
    out_path = Path(out_path)
    ckpt_path = Path(checkpoint_path) if checkpoint_path else out_path.with_name(out_path.name + ".ckpt")
    device = pick_device(cfg.device)
    cpu_threads = use_job_cpus()
    if len(trainset) == 0:
        raise ValueError("the training set is empty")
    encoder = LabelEncoder.fit(trainset["label"])
    y = torch.from_numpy(encoder.encode(trainset["label"]))
    machines = LabelEncoder.fit(trainset["machine"])
    machine_ids = torch.from_numpy(machines.encode(trainset["machine"]))
    class_sizes = np.bincount(y.numpy(), minlength=len(encoder)).tolist()
    model, loss_fn, ssl_head = _build(cfg, n_samples, len(encoder), device, class_sizes)
    # a frozen pre-trained front-end (BEATs) is saved as built: no epoch runs
    frozen = bool(getattr(model, "frozen", False))
    if frozen:
        log.info("%s is a frozen pre-trained network: saved without training", cfg.network)
    params = list(model.parameters()) + [p for p in loss_fn.parameters() if p.requires_grad]
    if ssl_head is not None:
        params += list(ssl_head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    history: list[dict[str, float]] = []
    start_epoch = 0
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        if state.get("classes") != list(encoder.classes) or state.get("config") != asdict(cfg):
            log.warning("%s: checkpoint is for other classes or settings; starting from scratch", ckpt_path)
        else:
            model.load_state_dict(state["model"])
            loss_fn.load_state_dict(state["loss"])
            if ssl_head is not None:
                ssl_head.load_state_dict(state["ssl_head"])
            opt.load_state_dict(state["optimizer"])
            start_epoch = int(state["epoch"])
            history = list(state["history"])
            log.info("resuming from %s after epoch %d", ckpt_path, start_epoch)
    resumed_from_epoch = start_epoch

    waves = CachedWaves(trainset["cache_path"].tolist(), trainset["cache_row"].tolist(),
                        random_shift=cfg.random_shift, seed=cfg.seed)
    trip = cfg.triplet
    p_mix = cfg.effective_mixup_prob
    n = len(trainset)
    is_target = torch.from_numpy((trainset["domain"].astype(str) == "target").to_numpy()) \
        if "domain" in trainset.columns else torch.zeros(n, dtype=torch.bool)
    for epoch in range(start_epoch, 0 if frozen else cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        loss_fn.train()
        if ssl_head is not None:
            ssl_head.train()
        g, rng = _epoch_generators(cfg.seed, epoch, device)
        waves.set_epoch(epoch)
        torch.manual_seed(cfg.seed * 100_003 + epoch)  # dropout-free nets: covers mixup/partner draws
        order, steps = epoch_order(is_target, cfg.batch_size, g, sampler=cfg.sampler,
                                   target_share=cfg.target_share)
        loader = DataLoader(
            torch.utils.data.Subset(waves, order.tolist()),
            batch_size=cfg.batch_size,
            drop_last=len(order) >= cfg.batch_size,
            num_workers=cfg.num_workers,
            shuffle=False,
        )
        idx_batches = [order[i * cfg.batch_size : (i + 1) * cfg.batch_size] for i in range(steps)]
        sums = {"loss": 0.0, "ss": 0.0, "trp": 0.0} | ({"ssl": 0.0} if cfg.ssl.enabled else {})
        bar = tqdm(zip(loader, idx_batches), total=steps, disable=not progress, mininterval=2.0,
                   desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False)
        for x, idx in bar:
            x = x.to(device, non_blocking=True)
            yb = y[idx].to(device)
            target = torch.nn.functional.one_hot(yb, len(encoder)).float()
            xm, tm = mixup(x, target, prob=p_mix, generator=g)
            if cfg.ssl.enabled:  # SSL off: no extra random draws, the loop is unchanged
                out, l_ssl = _ssl_step(model, ssl_head, xm, tm, cfg.ssl, g)
            else:
                out = model(xm)
            l_ss, _ = loss_fn(out["cat"], out["branches"], tm)
            loss = l_ss
            if cfg.ssl.enabled:
                loss = loss + l_ssl
                sums["ssl"] += l_ssl.item()
            l_trp = torch.zeros((), device=device)
            if trip.enabled:
                mids = machine_ids[idx]
                partner, keep = choose_partners(mids, generator=g, mode=trip.partner, return_mask=True)
                partner, keep = partner.to(device), keep.to(device)
                # anchors: the first k clips of the (already shuffled) batch; partners come from the whole batch
                k = len(x) if trip.anchors is None else min(int(trip.anchors), len(x))
                partner, keep, x_anc = partner[:k], keep[:k], x[:k]
                alpha = torch.empty(k).uniform_(*trip.snr_db, generator=g).to(device)
                x_pos = snr_mix(x_anc, x[partner], alpha, variant=trip.snr_variant)
                shifts = sample_semitones(k, generator=g, low=trip.semitones[0], high=trip.semitones[1],
                                          per=trip.semitone_per)
                x_neg = pitch_shift(x_anc, shifts.to(device), sample_rate=sample_rate)
                z = model(torch.cat([x_anc, x_pos, x_neg]))["cat"]
                z_a, z_p, z_n = z.split(k)
                # same_type (code): anchors without a same-type partner leave the loss, as in the code
                mask = keep if trip.partner == "same_type" else None
                l_trp = triplet_loss(z_a, z_p, z_n, tau=trip.tau, gamma=trip.gamma, variant=trip.variant,
                                     reduction=trip.reduction, mask=mask)
                loss = loss + trip.weight * l_trp
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at epoch {epoch + 1}; lower the learning rate")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums["loss"] += loss.item()
            sums["ss"] += l_ss.item()
            sums["trp"] += l_trp.item()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        rec = {k: v / steps for k, v in sums.items()}
        rec.update(epoch=epoch + 1, seconds=time.perf_counter() - t0)
        history.append(rec)
        log.info("epoch %d/%d: loss %.4f (ss %.4f, trp %.4f%s), %.1f s", epoch + 1, cfg.epochs, rec["loss"],
                 rec["ss"], rec["trp"], f", ssl {rec['ssl']:.4f}" if "ssl" in rec else "", rec["seconds"])
        _atomic_save(
            {"model": model.state_dict(), "loss": loss_fn.state_dict(), "optimizer": opt.state_dict(),
             "epoch": epoch + 1, "history": history, "classes": list(encoder.classes), "config": asdict(cfg),
             **_ssl_state(ssl_head)},
            ckpt_path,
        )
    _atomic_save(
        {"model": model.state_dict(), "loss": loss_fn.state_dict(), "classes": list(encoder.classes),
         "config": asdict(cfg), "n_samples": n_samples, "sample_rate": sample_rate, "history": history,
         **_ssl_state(ssl_head)},
        out_path,
    )
    ckpt_path.unlink(missing_ok=True)
    secs = [h["seconds"] for h in history]
    return {
        "n_clips": n,
        "n_classes": len(encoder),
        "epochs": 0 if frozen else cfg.epochs,
        "history": history,
        "seconds_per_epoch": float(np.mean(secs)) if secs else math.nan,
        "device": str(device),
        "cpu_threads": cpu_threads,
        "resumed_from_epoch": resumed_from_epoch,
        "frozen": frozen,
    }


def _ssl_state(ssl_head: SSLHead | None) -> dict[str, Any]:
    """``{"ssl_head": state}`` for checkpoints of SSL runs; nothing otherwise (files unchanged)."""
    return {} if ssl_head is None else {"ssl_head": ssl_head.state_dict()}


def load_model(path: str | Path, device: str = "auto") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Load a trained model (eval mode) and its metadata from ``path``."""
    dev = pick_device(device)
    try:
        state = torch.load(Path(path), map_location=dev, weights_only=False)
    except (OSError, RuntimeError) as exc:
        raise RuntimeError(f"{path}: cannot load model checkpoint: {exc}") from exc
    cfg = TrainConfig.from_dict(state["config"])
    model = build_net(cfg.network, n_samples=state["n_samples"], **cfg.net).to(dev)
    model.load_state_dict(state["model"])
    model.eval()
    return model, state
