"""CAE + DANN + Deep SVDD: seed paper 004 (Anon & Emon, "Joint domain-adversarial and contrastive
latent optimization for unsupervised audio anomaly detection", DCASE 2025 technical report).

The paper as implemented here (section and equation numbers are the paper's):

* **Input** (§2): a log-mel spectrogram ``X ∈ R^{1×H×W}`` (H = ``n_mels`` = 128, W = frames),
  from the project's log-mel (:func:`asdflow.baselines.features.logmel`: n_fft 1024, hop 512,
  dB). The decoder ends in a Sigmoid (Eq. 4), so X must lie in [0, 1]: *asdflow choice* (the
  paper is silent) — min–max scaling with the 0.1 % / 99.9 % quantiles of the training normals'
  log-mel values (``norm_quantiles``), not clipped (values of anomalous clips outside the range
  cannot be reconstructed by the Sigmoid, which only raises their error).
* **CAE** (§2.1, Eqs. 1–4): encoder = 4 × [Conv2d, BN, ReLU] with channels 1→16→32→64→128,
  Flatten, Linear → ``z ∈ R^d`` (d = ``latent_dim`` = 128, §3.2); decoder = Linear → Reshape,
  4 transposed-conv blocks 128→64→32→16→1, the last one with a Sigmoid instead of BN+ReLU.
  Kernel, stride and padding are not given; *asdflow choice* kernel 3, stride 2, padding 1
  (output_padding 1 on the way up): with the paper's 128 × 1024 input (§4.3) the CAE has
  17 037 761 parameters and 0.61 GMACs, matching the reported "17.04 M parameters, approximately
  0.61 GMACs" of the inference model (tested).
* **Deep SVDD** (§2.2, Eq. 5): ``L_SVDD = mean_{i∈I_n} ||z_i − c||² + mean_{i∈I_a}
  max(0, ν − ||z_i − c||²)``, ν = 3.0 (§3.2), the margin on the *squared* distance as Eq. 5
  writes it. The centre c is the mean latent of the normal training samples in an initial
  forward pass (§2.2, Algorithm 1 line 2) and stays fixed. *asdflow choice*: that pass runs in
  training mode (batch statistics, as the SVDD term sees z during training; Ruff et al.'s
  Deep SVDD code does the same) without changing the BN running statistics. An empty I_n or I_a
  in a batch contributes 0.
* **Domain classifier behind a GRL** (§2.3, Eqs. 6–7): ``D(z) = W2 ReLU(BN(W1 GRL_λ(z) + b1)) +
  b2`` with 64 hidden units and 50 % dropout (§3.2; placed after the ReLU, *asdflow choice*),
  2 classes (source 0 / target 1), cross-entropy. :class:`GradReverse`: forward identity,
  backward ``−λ ×`` gradient (Eq. 7). λ = 0.1 (§3.2); the paper gives no schedule, so λ is
  constant (``grl_schedule="constant"``); ``"dann"`` is the option of Ganin & Lempitsky's
  ramp ``λ_p = λ (2 / (1 + exp(−10 p)) − 1)``, p = training progress in [0, 1].
* **Two-step update per batch** (§2.4, Algorithm 1): step 1 — z from the CAE without gradient
  (``z.detach()``), ``L_D = CE(D(z), d)``, update only θ_D; step 2 — D frozen, forward with
  gradients, ``L_total = α_recon L_recon + L_SVDD + L_adv`` (Eq. 8) with ``L_recon`` = MSE over
  the *normal* samples of the batch only, ``L_adv = CE(D(GRL_λ(z)), d)``, update only θ_CAE.
  α_recon = 0.5 (§3.2). AdamW for both (lr 1e-4, weight decay 1e-5), 20 epochs, batch 256
  (§3.2). Both steps use training mode (BN batch statistics, dropout in D).
* **Synthetic anomalies** (§3.1, pseudo Outlier Exposure): a random subset of the normal clips
  of both domains (``anomaly_fraction`` of each machine × domain cell, at least one clip;
  *asdflow choice* 0.5, the paper says "a subset"), each corrupted by one transformation drawn
  from ``anomaly_kinds``: ``"noise_burst"`` (white Gaussian noise added over a random
  contiguous ``burst_fraction`` of the clip at ``burst_db`` dB relative to the clip's RMS) or
  ``"freq_shift"`` (the whole spectrum moved by ±``shift_hz`` Hz, an FFT-bin shift). The paper
  names "random noise bursts and frequency shifts" without parameters: the ranges are
  *asdflow choices*. They are labelled anomalous (y = 1) and keep their source clip's domain.
* **Stratified oversampling** (§3.1): the training samples are resampled with replacement so
  that every (class, domain) cell — per machine type, *asdflow choice* — has as many samples as
  the largest cell (the existing samples are all kept). Drawn once, before training.
* **Validation and best model** (Algorithm 1 line 17, §3.2 scheduler): the paper selects the
  best epoch by validation AUC and halves the learning rate after 5 epochs without improvement,
  on a validation set it does not describe. *asdflow choice*: ``validation_split`` of each
  machine type's normal clips (default 0.1; 0 = last epoch, no scheduler) is held out, gets its
  own synthetic anomalies, and the validation AUC is the mean over machine types of the AUC of
  the Eq. 9 score, normal vs synthetic. ReduceLROnPlateau(factor 0.5, patience 5) on it, both
  optimizers.
* **Score** (§2.4, Eq. 9): ``score(X) = ||X − X̂||² / (C·H·W)``, the mean squared
  reconstruction error — the paper scores with reconstruction error *only*; the SVDD distance
  and the domain classifier are training regularisers (§2.4, §4.2, §4.3). A fusion of the two is
  only named as future work (§5: "a normalized weighted average"). Options: ``score="recon"``
  (paper, default), ``"svdd"`` (``||z − c||²``), ``"fusion"`` (*asdflow choice* of §5's
  suggestion: each score z-normalised by its mean/std over the machine type's training normals,
  then ``w · recon + (1 − w) · svdd`` with ``w = score_weight``).
* **One model for all machine types** (§1 contribution 1, §3.1): ``machine_generalized=True``
  (paper) trains a single CAE (one normalisation, one centre c) on every machine type;
  ``False`` trains one per machine type, like the project's other frame baselines. In both
  cases ``states`` has one entry per fitted machine type (the generalized model shares one
  state dict, pickled once).

Further *asdflow choices*:

* **Patches** (``patch_frames``): ``None`` (default, the paper) = the whole clip is one input,
  its width the median number of frames of the training clips rounded up to a multiple of 16
  (the four stride-2 layers need it); an int (multiple of 16) = clips cut into patches of that
  many frames every ``patch_hop`` frames (default ``patch_frames``: no overlap) plus one patch
  ending at the clip's end. A clip shorter than the width is padded by repeating its last frame.
  Every patch carries its clip's class and domain; a clip's score is the mean over its patches
  (= Eq. 9 over the clip when the patches tile it).
* **Domains**: ``domains_by_machine`` gives 0/1 (or "source"/"target") per training clip,
  aligned with ``waves_by_machine``; a machine type's entry may be ``None`` (domains unknown, e.g.
  DCASE 2020): its clips then count as source in a machine-generalized model that has domains
  from other machine types. When it is ``None``, when a model sees one domain only, or
  with ``domain_head=False`` (ablation: CAE + Deep SVDD without DANN) the domain head is
  disabled: no step 1, no ``L_adv``; oversampling then balances the classes only (or classes ×
  domains when domains are given and only the head is switched off).
* Batches of fewer than two samples are skipped (BatchNorm). Determinism: every random draw
  comes from ``seed`` (numpy Generator for data, torch generator / forked RNG for weights,
  dropout and shuffling); the global torch RNG is left untouched.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from asdflow.baselines.features import logmel

__all__ = [
    "CAE",
    "CAESVDDBaseline",
    "DomainClassifier",
    "GradReverse",
    "fit_cae_svdd_baseline",
    "frequency_shift",
    "grad_reverse",
    "grl_lambda_at",
    "noise_burst",
    "score_cae_svdd_baseline",
    "svdd_loss",
    "synthesize_anomalies",
]

log = logging.getLogger(__name__)

ANOMALY_KINDS = ("noise_burst", "freq_shift")
SCORES = ("recon", "svdd", "fusion")


# --------------------------------------------------------------------------------------------
# Gradient reversal (§2.3, Eq. 7)
# --------------------------------------------------------------------------------------------
class GradReverse(torch.autograd.Function):
    """Gradient reversal layer: forward identity, backward ``−λ ×`` the incoming gradient (Eq. 7)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lambd: float) -> torch.Tensor:
        ctx.lambd = float(lambd)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return -ctx.lambd * grad_output, None


def grad_reverse(x: torch.Tensor, lambd: float) -> torch.Tensor:
    """``GRL_λ(x)`` (Eqs. 6–7)."""
    return GradReverse.apply(x, lambd)


def grl_lambda_at(progress: float, lambd: float, schedule: str = "constant") -> float:
    """λ at training progress ``p ∈ [0, 1]``: ``constant`` (paper, §3.2: λ = 0.1 throughout) or
    ``dann`` (asdflow option, Ganin & Lempitsky: ``λ (2 / (1 + exp(−10 p)) − 1)``)."""
    if schedule == "constant":
        return float(lambd)
    if schedule == "dann":
        return float(lambd) * (2.0 / (1.0 + math.exp(-10.0 * float(progress))) - 1.0)
    raise ValueError(f"grl_schedule must be 'constant' or 'dann', got {schedule!r}")


# --------------------------------------------------------------------------------------------
# Networks (§2.1, §2.3)
# --------------------------------------------------------------------------------------------
class CAE(nn.Module):
    """Convolutional autoencoder of §2.1: ``[B, 1, H, W] → (z [B, d], X̂ [B, 1, H, W])``.

    Encoder: ``len(channels)`` × [Conv2d(k3, s2, p1), BN, ReLU] (Eq. 1), Flatten, Linear (Eq. 2);
    decoder: Linear, Reshape (Eq. 3), transposed-conv blocks mirroring the encoder, the last one
    Conv-transpose + Sigmoid (Eq. 4). H and W must be multiples of ``2 ** len(channels)``.
    """

    def __init__(self, n_mels: int = 128, frames: int = 1024, latent_dim: int = 128,
                 channels: Sequence[int] = (16, 32, 64, 128)) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        factor = 2 ** len(channels)
        if n_mels % factor or frames % factor:
            raise ValueError(f"CAE input {n_mels}×{frames} must be multiples of {factor} (stride-2 layers)")
        enc: list[nn.Module] = []
        prev = 1
        for c in channels:
            enc += [nn.Conv2d(prev, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU()]
            prev = c
        self.encoder = nn.Sequential(*enc)
        self.h4_shape = (channels[-1], n_mels // factor, frames // factor)
        flat = int(np.prod(self.h4_shape))
        self.fc_enc = nn.Linear(flat, latent_dim)
        self.fc_dec = nn.Linear(latent_dim, flat)
        dec: list[nn.Module] = []
        outs = channels[-2::-1] + [1]
        for i, c in enumerate(outs):
            dec.append(nn.ConvTranspose2d(prev, c, 3, stride=2, padding=1, output_padding=1))
            dec += [nn.BatchNorm2d(c), nn.ReLU()] if i < len(outs) - 1 else [nn.Sigmoid()]
            prev = c
        self.decoder = nn.Sequential(*dec)
        self.config = {"n_mels": n_mels, "frames": frames, "latent_dim": latent_dim, "channels": channels}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_enc(torch.flatten(self.encoder(x), 1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.fc_dec(z).view(-1, *self.h4_shape))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return z, self.decode(z)


class DomainClassifier(nn.Module):
    """``D(z) = W2 · ReLU(BN(W1 z + b1)) + b2`` (Eq. 6; the GRL is applied by the caller), 64 hidden
    units and 50 % dropout after the ReLU (§3.2), 2 logits (source, target)."""

    def __init__(self, latent_dim: int = 128, hidden: int = 64, dropout: float = 0.5, n_domains: int = 2) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                 nn.Dropout(dropout), nn.Linear(hidden, n_domains))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


# --------------------------------------------------------------------------------------------
# Deep SVDD term (§2.2, Eq. 5)
# --------------------------------------------------------------------------------------------
def svdd_loss(z: torch.Tensor, c: torch.Tensor, y: torch.Tensor, nu: float = 3.0
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. 5: ``(L_SVDD, pull, push)`` with ``pull = mean_{y=0} ||z − c||²`` and
    ``push = mean_{y=1} max(0, ν − ||z − c||²)``; an empty set contributes 0."""
    d2 = torch.sum((z - c) ** 2, dim=1)
    normal, anomal = y == 0, y == 1
    zero = d2.sum() * 0.0
    pull = d2[normal].mean() if bool(normal.any()) else zero
    push = torch.clamp(nu - d2[anomal], min=0.0).mean() if bool(anomal.any()) else zero
    return pull + push, pull, push


# --------------------------------------------------------------------------------------------
# Synthetic anomalies (§3.1)
# --------------------------------------------------------------------------------------------
def _pair(v: Any, name: str) -> tuple[float, float]:
    lo, hi = (float(v), float(v)) if np.isscalar(v) else (float(v[0]), float(v[1]))
    if hi < lo:
        raise ValueError(f"{name}: range ({lo}, {hi}) has hi < lo")
    return lo, hi


def noise_burst(wave: np.ndarray, sr: int, rng: np.random.Generator, *,
                burst_fraction: Sequence[float] = (0.05, 0.2), burst_db: Sequence[float] = (-5.0, 5.0)
                ) -> tuple[np.ndarray, tuple[int, int]]:
    """A random noise burst (§3.1): white Gaussian noise added over a random contiguous span of
    ``burst_fraction`` of the clip, its RMS ``burst_db`` dB relative to the clip's RMS (asdflow
    choice of ranges). Returns the corrupted copy and the span ``(start, stop)`` in samples."""
    w = np.asarray(wave, dtype=np.float32)
    n = len(w)
    f_lo, f_hi = _pair(burst_fraction, "burst_fraction")
    length = int(np.clip(round(rng.uniform(f_lo, f_hi) * n), 1, n))
    start = int(rng.integers(0, n - length + 1))
    rms = float(np.sqrt(np.mean(w.astype(np.float64) ** 2))) or 1e-3
    gain = rms * 10.0 ** (rng.uniform(*_pair(burst_db, "burst_db")) / 20.0)
    out = w.copy()
    out[start:start + length] += (gain * rng.standard_normal(length)).astype(np.float32)
    return out, (start, start + length)


def frequency_shift(wave: np.ndarray, sr: int, shift_hz: float) -> np.ndarray:
    """The whole spectrum moved by ``shift_hz`` Hz (§3.1 "frequency shifts"): the clip's rFFT
    bins moved by ``round(shift_hz · T / sr)`` (zeros fill in, bins pushed past 0 or Nyquist are
    dropped), back by the inverse rFFT — a single-sideband shift, not a pitch shift."""
    w = np.asarray(wave, dtype=np.float32)
    n = len(w)
    spec = np.fft.rfft(w.astype(np.float64))
    k = int(round(shift_hz * n / sr))
    out = np.zeros_like(spec)
    if k > 0:
        out[k:] = spec[:-k] if k < len(spec) else 0
    elif k < 0:
        out[:k] = spec[-k:]
    else:
        out = spec
    return np.fft.irfft(out, n=n).astype(np.float32)


def synthesize_anomalies(waves: np.ndarray, sr: int, rng: np.random.Generator, *,
                         kinds: Sequence[str] = ANOMALY_KINDS, burst_fraction: Sequence[float] = (0.05, 0.2),
                         burst_db: Sequence[float] = (-5.0, 5.0), shift_hz: Sequence[float] = (100.0, 500.0)
                         ) -> tuple[np.ndarray, list[str]]:
    """One synthetic anomaly per clip of ``waves [N, T]``: a transformation drawn uniformly from
    ``kinds`` (§3.1). ``freq_shift`` moves the spectrum by ``±U(shift_hz)`` Hz (random sign).
    Returns ``([N, T] corrupted copies, kinds used)``."""
    kinds = list(kinds)
    unknown = sorted(set(kinds) - set(ANOMALY_KINDS))
    if not kinds or unknown:
        raise ValueError(f"anomaly_kinds must be a non-empty subset of {ANOMALY_KINDS}, got {kinds}")
    s_lo, s_hi = _pair(shift_hz, "shift_hz")
    out, used = [], []
    for w in np.atleast_2d(waves):
        kind = kinds[int(rng.integers(len(kinds)))]
        if kind == "noise_burst":
            out.append(noise_burst(w, sr, rng, burst_fraction=burst_fraction, burst_db=burst_db)[0])
        else:
            sign = 1.0 if rng.random() < 0.5 else -1.0
            out.append(frequency_shift(w, sr, sign * rng.uniform(s_lo, s_hi)))
        used.append(kind)
    return np.stack(out).astype(np.float32) if out else np.zeros((0, np.shape(waves)[-1]), np.float32), used


# --------------------------------------------------------------------------------------------
# Features: log-mel → [0, 1] → patches
# --------------------------------------------------------------------------------------------
def _patches(lm: np.ndarray, width: int, hop: int) -> np.ndarray:
    """``[n_patches, n_mels, width]`` from one ``[n_mels, F]`` log-mel (module docstring)."""
    n_frames = lm.shape[1]
    if n_frames < width:
        lm = np.pad(lm, ((0, 0), (0, width - n_frames)), mode="edge")
        n_frames = width
    starts = list(range(0, n_frames - width + 1, hop))
    if starts[-1] != n_frames - width:
        starts.append(n_frames - width)
    return np.stack([lm[:, s:s + width] for s in starts])


@dataclass
class CAESVDDBaseline:
    """Fitted CAE(s) of paper 004, CPU state dicts, with everything scoring needs.

    ``states``: machine → CAE state dict (one shared dict when ``machine_generalized``);
    ``centers``: machine → SVDD centre c ``[d]``; ``norm``: machine → (lo, hi) dB of the [0, 1]
    scaling; ``score_stats``: machine → mean/std of the recon and svdd scores of its training
    normals (for ``score="fusion"``); ``config``: every fit option.
    """

    states: dict[str, dict[str, torch.Tensor]]
    centers: dict[str, np.ndarray]
    norm: dict[str, tuple[float, float]]
    net_config: dict[str, Any]
    sr: int = 16000
    n_mels: int = 128
    patch_frames: int = 64
    patch_hop: int = 64
    feature_kw: dict = field(default_factory=dict)
    score: str = "recon"
    score_weight: float = 0.5
    score_stats: dict[str, dict[str, float]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[dict[str, float]]] = field(default_factory=dict)

    def logmels(self, waves: np.ndarray) -> np.ndarray:
        return logmel(np.atleast_2d(np.asarray(waves, dtype=np.float32)), self.sr, n_mels=self.n_mels,
                      **self.feature_kw)

    def inputs(self, machine: str, waves: np.ndarray) -> list[np.ndarray]:
        """Per clip, its scaled patches ``[n_patches, 1, n_mels, patch_frames]`` float32."""
        lo, hi = self.norm[machine]
        return [((_patches(lm, self.patch_frames, self.patch_hop) - lo) / (hi - lo))[:, None].astype(np.float32)
                for lm in self.logmels(waves)]

    def net(self, machine: str) -> CAE:
        if machine not in self.states:
            raise KeyError(f"cae_svdd baseline has no model for machine type {machine!r} "
                           f"(fitted: {sorted(self.states)})")
        net = CAE(**self.net_config)
        net.load_state_dict(self.states[machine])
        return net.eval()


def _clip_scores(net: CAE, center: torch.Tensor, clips: list[np.ndarray], batch: int = 256
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per clip: Eq. 9 reconstruction MSE and mean ``||z − c||²`` over its patches (eval mode)."""
    if not clips:
        return np.zeros(0), np.zeros(0)
    counts = [len(c) for c in clips]
    x = torch.from_numpy(np.concatenate(clips))
    mse, dist = [], []
    net.eval()
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = x[i:i + batch]
            z, xh = net(xb)
            mse.append(torch.mean((xb - xh) ** 2, dim=(1, 2, 3)))
            dist.append(torch.sum((z - center) ** 2, dim=1))
    mse_p, dist_p = torch.cat(mse).double().numpy(), torch.cat(dist).double().numpy()
    bounds = np.cumsum([0] + counts)
    rec = np.array([mse_p[a:b].mean() for a, b in zip(bounds[:-1], bounds[1:])])
    svd = np.array([dist_p[a:b].mean() for a, b in zip(bounds[:-1], bounds[1:])])
    return rec, svd


def _combine(rec: np.ndarray, svd: np.ndarray, mode: str, weight: float, stats: Mapping[str, float]) -> np.ndarray:
    if mode == "recon":
        return rec
    if mode == "svdd":
        return svd
    zr = (rec - stats["recon_mean"]) / (stats["recon_std"] or 1.0)
    zs = (svd - stats["svdd_mean"]) / (stats["svdd_std"] or 1.0)
    return weight * zr + (1.0 - weight) * zs


def _auc(neg: np.ndarray, pos: np.ndarray) -> float:
    """Mann–Whitney AUC (ties count half); NaN when a class is empty."""
    if len(neg) == 0 or len(pos) == 0:
        return float("nan")
    diff = np.asarray(pos)[:, None] - np.asarray(neg)[None, :]
    return float(np.mean((diff > 0) + 0.5 * (diff == 0)))


def _domains(machine: str, domains_by_machine: Mapping[str, np.ndarray] | None, n: int) -> np.ndarray | None:
    if domains_by_machine is None:
        return None
    if machine not in domains_by_machine:
        raise KeyError(f"domains_by_machine has no entry for machine type {machine!r}")
    if domains_by_machine[machine] is None:
        return None
    raw = np.asarray(domains_by_machine[machine])
    if len(raw) != n:
        raise ValueError(f"domains_by_machine[{machine!r}]: {len(raw)} domains for {n} training clips")
    if raw.dtype.kind in "OUS":
        names = {"source": 0, "target": 1}
        try:
            return np.array([names[str(v).lower()] for v in raw], dtype=np.int64)
        except KeyError as e:
            raise ValueError(f"domains_by_machine[{machine!r}]: domain {e.args[0]!r} is not source/target") from None
    d = raw.astype(np.int64)
    if not np.isin(d, (0, 1)).all():
        raise ValueError(f"domains_by_machine[{machine!r}]: domains must be 0 (source) or 1 (target)")
    return d


@dataclass
class _Pool:
    """Training samples of one model: scaled patches and their labels."""

    x: list[np.ndarray] = field(default_factory=list)  # [n, 1, H, W] per machine
    y: list[np.ndarray] = field(default_factory=list)
    d: list[np.ndarray] = field(default_factory=list)
    m: list[np.ndarray] = field(default_factory=list)

    def cat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return tuple(np.concatenate(a) for a in (self.x, self.y, self.d, self.m))  # type: ignore[return-value]


def _oversample(y: np.ndarray, d: np.ndarray, m: np.ndarray, rng: np.random.Generator, use_domain: bool
                ) -> np.ndarray:
    """Indices balancing every (machine, class[, domain]) cell to the largest cell (§3.1)."""
    keys = np.stack([m, y, d if use_domain else np.zeros_like(d)], axis=1)
    cells = [np.flatnonzero((keys == k).all(axis=1)) for k in np.unique(keys, axis=0)]
    target = max(len(c) for c in cells)
    idx = [np.concatenate([c, rng.choice(c, target - len(c), replace=True)]) for c in cells]
    return np.sort(np.concatenate(idx))


def _train_model(machines: list[str], pool: _Pool, val: dict[str, tuple[list[np.ndarray], list[np.ndarray]]],
                 net: CAE, *, use_domain: bool, balance_domains: bool, opts: Mapping[str, Any],
                 gen: torch.Generator,
                 rng: np.random.Generator) -> tuple[torch.Tensor, list[dict[str, float]]]:
    """Algorithm 1 on one model's pool. Returns (centre c, history); ``net`` ends with the best
    (validation) or last epoch's weights."""
    x, y, d, m = pool.cat()
    idx = _oversample(y, d, m, rng, balance_domains) if opts["oversample"] else np.arange(len(y))
    xt, yt, dt = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(d)

    # Algorithm 1 line 2: c = mean latent of the normal training samples (initial forward pass)
    saved = copy.deepcopy(net.state_dict())
    normal = torch.from_numpy(np.flatnonzero(y == 0))
    net.train()
    with torch.no_grad():
        zs = [net.encode(xt[normal[i:i + opts["batch_size"]]]) for i in range(0, len(normal), opts["batch_size"])]
    net.load_state_dict(saved)
    center = torch.cat(zs).mean(dim=0) if zs else torch.zeros(net.config["latent_dim"])

    dom = DomainClassifier(net.config["latent_dim"], opts["domain_hidden"], opts["domain_dropout"])
    opt = torch.optim.AdamW(net.parameters(), lr=opts["lr"], weight_decay=opts["weight_decay"])
    opt_d = torch.optim.AdamW(dom.parameters(), lr=opts["lr"], weight_decay=opts["weight_decay"])
    has_val = any(len(v[0]) and len(v[1]) for v in val.values())
    scheds = ([torch.optim.lr_scheduler.ReduceLROnPlateau(o, mode="max", factor=opts["lr_factor"],
                                                          patience=opts["lr_patience"]) for o in (opt, opt_d)]
              if has_val else [])
    bs, epochs = opts["batch_size"], opts["epochs"]
    steps_per_epoch = max(1, math.ceil(len(idx) / bs))
    idx_t = torch.from_numpy(idx)
    history: list[dict[str, float]] = []
    best_auc, best_state = -math.inf, None
    step, lam = 0, grl_lambda_at(0.0, opts["grl_lambda"], opts["grl_schedule"])
    for epoch in range(epochs):
        net.train()
        dom.train()
        order = idx_t[torch.randperm(len(idx_t), generator=gen)]
        sums = {"loss": 0.0, "recon": 0.0, "svdd_pull": 0.0, "svdd_push": 0.0, "adv": 0.0, "domain_loss": 0.0,
                "domain_acc": 0.0}
        count = 0
        for i in range(0, len(order), bs):
            b = order[i:i + bs]
            step += 1
            if len(b) < 2:
                continue
            xb, yb, db = xt[b], yt[b], dt[b]
            lam = grl_lambda_at(min(1.0, (step - 1) / max(1, epochs * steps_per_epoch - 1)), opts["grl_lambda"],
                                opts["grl_schedule"])
            if use_domain:  # step 1: domain classifier on detached latents (Algorithm 1 lines 5-8)
                with torch.no_grad():
                    z_det = net.encode(xb)
                logits = dom(z_det)
                loss_d = F.cross_entropy(logits, db)
                opt_d.zero_grad()
                loss_d.backward()
                opt_d.step()
                sums["domain_loss"] += loss_d.item() * len(b)
                sums["domain_acc"] += float((logits.argmax(1) == db).float().mean()) * len(b)
            # step 2: CAE on Eq. 8 with D frozen (Algorithm 1 lines 9-15)
            z, xh = net(xb)
            normal_b = yb == 0
            recon = torch.mean((xb[normal_b] - xh[normal_b]) ** 2) if bool(normal_b.any()) else xh.sum() * 0.0
            l_svdd, pull, push = svdd_loss(z, center, yb, opts["nu"])
            total = opts["alpha_recon"] * recon + l_svdd
            adv = torch.zeros(())
            if use_domain:
                dom.requires_grad_(False)
                adv = F.cross_entropy(dom(grad_reverse(z, lam)), db)
                total = total + adv
            opt.zero_grad()
            total.backward()
            opt.step()
            if use_domain:
                dom.requires_grad_(True)
            for k, v in (("loss", total), ("recon", recon), ("svdd_pull", pull), ("svdd_push", push), ("adv", adv)):
                sums[k] += v.item() * len(b)
            count += len(b)
        entry = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"], "grl_lambda": lam}
        entry.update({k: v / max(count, 1) for k, v in sums.items()
                      if use_domain or k not in ("adv", "domain_loss", "domain_acc")})
        if has_val:
            aucs = []
            for mach in machines:
                neg, pos = val.get(mach, ([], []))
                if len(neg) and len(pos):
                    aucs.append(_auc(_clip_scores(net, center, neg)[0], _clip_scores(net, center, pos)[0]))
            entry["val_auc"] = float(np.mean(aucs))
            for s in scheds:
                s.step(entry["val_auc"])
            if entry["val_auc"] > best_auc:
                best_auc, best_state = entry["val_auc"], copy.deepcopy(net.state_dict())
        history.append(entry)
    if best_state is not None:
        net.load_state_dict(best_state)
    return center, history


def fit_cae_svdd_baseline(
    waves_by_machine: Mapping[str, np.ndarray],
    sr: int = 16000,
    *,
    epochs: int = 20,
    batch_size: int = 256,
    lr: float = 1e-4,
    weight_decay: float = 1e-5,
    n_mels: int = 128,
    patch_frames: int | None = None,
    patch_hop: int | None = None,
    latent_dim: int = 128,
    channels: Sequence[int] = (16, 32, 64, 128),
    domain_hidden: int = 64,
    domain_dropout: float = 0.5,
    alpha_recon: float = 0.5,
    nu: float = 3.0,
    grl_lambda: float = 0.1,
    grl_schedule: str = "constant",
    anomaly_fraction: float = 0.5,
    anomaly_kinds: Sequence[str] = ANOMALY_KINDS,
    burst_fraction: Sequence[float] = (0.05, 0.2),
    burst_db: Sequence[float] = (-5.0, 5.0),
    shift_hz: Sequence[float] = (100.0, 500.0),
    oversample: bool = True,
    domain_head: bool = True,
    machine_generalized: bool = True,
    validation_split: float = 0.1,
    lr_factor: float = 0.5,
    lr_patience: int = 5,
    norm_quantiles: Sequence[float] = (0.001, 0.999),
    score: str = "recon",
    score_weight: float = 0.5,
    feature_kw: Mapping[str, Any] | None = None,
    domains_by_machine: Mapping[str, np.ndarray] | None = None,
    seed: int = 0,
) -> CAESVDDBaseline:
    """Fit paper 004's CAE + DANN + Deep SVDD (module docstring) on normal training clips.

    ``waves_by_machine``: machine → ``[N, T]`` float32 waves (normal clips, both domains);
    ``domains_by_machine``: machine → ``[N]`` 0/1 (source/target; or the strings) aligned with
    them, ``None`` = domain head disabled. Defaults are the paper's (§3.2: d 128, D hidden 64 /
    dropout 0.5, AdamW lr 1e-4 wd 1e-5, α_recon 0.5, ν 3.0, λ 0.1, 20 epochs, batch 256;
    §4.3: 128 mels, whole clip; §1/§3.1: one machine-generalized model); the rest are asdflow
    choices, documented in the module docstring. Deterministic for a seed on CPU.
    """
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, got {score!r}")
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
    if not 0.0 < anomaly_fraction <= 1.0:
        raise ValueError(f"anomaly_fraction must be in (0, 1], got {anomaly_fraction}")
    feature_kw = dict(feature_kw or {})
    if "n_mels" in feature_kw:
        raise ValueError("give n_mels as its own option, not in feature_kw")
    machines = sorted(str(mach) for mach in waves_by_machine)
    if not machines:
        raise ValueError("cae_svdd baseline: no training clips")
    waves = {str(k): np.atleast_2d(np.asarray(v, dtype=np.float32)) for k, v in waves_by_machine.items()}
    domains = {mach: _domains(mach, domains_by_machine, len(waves[mach])) for mach in machines}
    opts = dict(epochs=int(epochs), batch_size=int(batch_size), lr=float(lr), weight_decay=float(weight_decay),
                domain_hidden=int(domain_hidden), domain_dropout=float(domain_dropout),
                alpha_recon=float(alpha_recon), nu=float(nu), grl_lambda=float(grl_lambda),
                grl_schedule=str(grl_schedule), oversample=bool(oversample), lr_factor=float(lr_factor),
                lr_patience=int(lr_patience))
    grl_lambda_at(0.0, grl_lambda, grl_schedule)  # validates the schedule name
    rng = np.random.default_rng(seed)
    factor = 2 ** len(channels)

    model = CAESVDDBaseline({}, {}, {}, {}, sr=sr, n_mels=int(n_mels), feature_kw=feature_kw, score=score,
                            score_weight=float(score_weight))
    # log-mels of the training clips; split off validation clips; synthesize anomalies (§3.1)
    split: dict[str, dict[str, Any]] = {}
    for mach in machines:
        w, dom = waves[mach], domains[mach]
        dom_arr = dom if dom is not None else np.zeros(len(w), dtype=np.int64)
        perm = rng.permutation(len(w))
        n_val = int(validation_split * len(w)) if len(w) > 1 else 0
        parts = {}
        for part, sel in (("val", np.sort(perm[:n_val])), ("train", np.sort(perm[n_val:]))):
            chosen = []
            for dv in np.unique(dom_arr[sel]):  # a subset of every domain's normal clips
                cell = sel[dom_arr[sel] == dv]
                k = max(1, int(round(anomaly_fraction * len(cell))))
                chosen.append(np.sort(rng.choice(cell, k, replace=False)))
            chosen = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
            synth, kinds = synthesize_anomalies(w[chosen], sr, rng, kinds=anomaly_kinds,
                                                burst_fraction=burst_fraction, burst_db=burst_db, shift_hz=shift_hz)
            parts[part] = {"normal": model.logmels(w[sel]) if len(sel) else None,
                           "anomal": model.logmels(synth) if len(chosen) else None,
                           "d_normal": dom_arr[sel], "d_anomal": dom_arr[chosen],
                           "kinds": kinds}
        split[mach] = parts

    # input width: whole clip (median training frames, rounded up to a multiple of 16) or patches
    all_frames = [split[mach]["train"]["normal"].shape[-1] for mach in machines]
    if patch_frames is None:
        width = int(math.ceil(np.median(all_frames) / factor) * factor)
        hop = width
    else:
        width = int(patch_frames)
        if width % factor:
            raise ValueError(f"patch_frames must be a multiple of {factor}, got {width}")
        hop = int(patch_hop or width)
    model.patch_frames, model.patch_hop = width, hop
    model.net_config = {"n_mels": int(n_mels), "frames": width, "latent_dim": int(latent_dim),
                        "channels": [int(c) for c in channels]}

    groups = [machines] if machine_generalized else [[mach] for mach in machines]
    q_lo, q_hi = _pair(norm_quantiles, "norm_quantiles")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        for group in groups:
            # [0, 1] scaling from the training normals (asdflow choice; strided subsample of ≤ 2M values)
            vals = np.concatenate([split[mach]["train"]["normal"].ravel() for mach in group])
            vals = vals[:: max(1, len(vals) // 2_000_000)]
            lo, hi = (float(v) for v in np.quantile(vals, [q_lo, q_hi]))
            hi = hi if hi > lo else lo + 1.0
            for mach in group:
                model.norm[mach] = (lo, hi)

            def scaled(lms: np.ndarray | None) -> list[np.ndarray]:
                if lms is None:
                    return []
                return [((_patches(lm, width, hop) - lo) / (hi - lo))[:, None].astype(np.float32) for lm in lms]

            pool, val = _Pool(), {}
            use_domain = False
            for j, mach in enumerate(group):
                tr = split[mach]["train"]
                for lab, key, dkey in ((0, "normal", "d_normal"), (1, "anomal", "d_anomal")):
                    clips = scaled(tr[key])
                    if not clips:
                        continue
                    pool.x.append(np.concatenate(clips))
                    n_per = [len(c) for c in clips]
                    pool.y.append(np.full(sum(n_per), lab, dtype=np.int64))
                    pool.d.append(np.repeat(tr[dkey], n_per).astype(np.int64))
                    pool.m.append(np.full(sum(n_per), j, dtype=np.int64))
                va = split[mach]["val"]
                val[mach] = (scaled(va["normal"]), scaled(va["anomal"]))
                use_domain |= domains[mach] is not None
            multi = len(np.unique(np.concatenate(pool.d))) > 1
            balance_domains = use_domain and multi
            use_domain = balance_domains and bool(domain_head)
            net = CAE(**model.net_config)
            center, hist = _train_model(group, pool, val, net, use_domain=use_domain,
                                        balance_domains=balance_domains, opts=opts, gen=gen, rng=rng)
            state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            for mach in group:
                model.states[mach] = state
                model.centers[mach] = center.detach().numpy().astype(np.float32).copy()
                rec, svd = _clip_scores(net, center, scaled(split[mach]["train"]["normal"]))
                model.score_stats[mach] = {"recon_mean": float(rec.mean()), "recon_std": float(rec.std()),
                                           "svdd_mean": float(svd.mean()), "svdd_std": float(svd.std())}
                model.history[mach] = hist
            last = hist[-1] if hist else {}
            log.info("cae_svdd %s: %d samples, domain head %s, %d epochs, loss %.4f, val AUC %s",
                     "+".join(group), len(np.concatenate(pool.y)), "on" if use_domain else "off", epochs,
                     last.get("loss", float("nan")), f"{last['val_auc']:.3f}" if "val_auc" in last else "-")
    model.config = {**opts, "n_mels": int(n_mels), "patch_frames": patch_frames, "patch_hop": patch_hop,
                    "latent_dim": int(latent_dim), "channels": [int(c) for c in channels],
                    "anomaly_fraction": float(anomaly_fraction), "anomaly_kinds": list(anomaly_kinds),
                    "burst_fraction": list(_pair(burst_fraction, "burst_fraction")),
                    "burst_db": list(_pair(burst_db, "burst_db")), "shift_hz": list(_pair(shift_hz, "shift_hz")),
                    "machine_generalized": bool(machine_generalized), "validation_split": float(validation_split),
                    "norm_quantiles": [q_lo, q_hi], "score": score, "score_weight": float(score_weight),
                    "feature_kw": feature_kw, "domains": domains_by_machine is not None,
                    "domain_head": bool(domain_head), "seed": int(seed)}
    return model


def score_cae_svdd_baseline(model: CAESVDDBaseline, waves_by_machine: Mapping[str, np.ndarray], *,
                            score: str | None = None) -> dict[str, np.ndarray]:
    """Per machine, one score per clip (higher = more anomalous): Eq. 9's mean squared
    reconstruction error by default (``model.score``; ``score`` overrides: recon | svdd | fusion).
    Returns machine → ``[N]`` float64."""
    mode = model.score if score is None else score
    if mode not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, got {mode!r}")
    out: dict[str, np.ndarray] = {}
    for machine, waves in waves_by_machine.items():
        mach = str(machine)
        net = model.net(mach)
        center = torch.from_numpy(np.asarray(model.centers[mach], dtype=np.float32))
        rec, svd = _clip_scores(net, center, model.inputs(mach, waves))
        out[mach] = np.asarray(_combine(rec, svd, mode, model.score_weight, model.score_stats.get(mach, {})),
                               dtype=np.float64)
    return out
