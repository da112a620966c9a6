"""Serial-OE: seed paper 001 (Kuroyanagi, Hayashi, Takeda, Toda, "Serial-OE: Anomalous Sound
Detection Based on Serial Method with Outlier Exposure Capable of Using Small Amounts of
Anomalous Data for Training", APSIPA Trans. Signal Inf. Process. 14, e1, 2025).

A serial system: per machine type a DNN feature extractor f trained by outlier exposure, then
per machine type × section a GMM on the extractor's chunk embeddings. Section and equation
numbers below are the paper's; docs/reference.md §8 lists the deviations.

* **Data** (§3.1–3.2): for machine type m, normal = m's normal training clips (y = 1),
  pseudo-anomalous = the normal training clips of every *other* machine type (y = 0), and, when
  ``anomalies`` lists some, real anomalous clips of m, also y = 0. Amplitude normalisation: the
  waveform is standardised with the mean and standard deviation of m's normal training samples
  (§4.2), for every input of m's extractor (training, GMM fit and scoring). Training samples are
  random ``chunk_seconds`` crops of the clips (S = 2 s, §4.2), drawn anew every time a clip is used.
* **Front-end** (§4.2): a mel spectrogram of 224 bands, 128-ms window (n_fft 2048), 16-ms hop
  (256), 50–7800 Hz. The paper does not say "log"; the authors' code uses the linear magnitude
  mel (power 1, window-normalised STFT, HTK mel scale, no log): the default here (``power`` 1,
  ``log`` false; ``log: true`` = dB).
* **Extractor** (§4.2): EfficientNet-B0 (:class:`asdflow.nets.efficientnet.EfficientNetB0`,
  torchvision's layout; the mono mel spectrogram is repeated on the 3 input channels), its
  classifier Linear(1280 → D = ``emb_dim`` = 128) giving f(x). Random initialisation by default;
  ``pretrained: <file>`` loads a torchvision ``efficientnet_b0`` state dict (ImageNet weights as
  the paper, which cannot be downloaded here). ``extractor: Ba`` uses the seed-000 multi-branch
  net on the raw chunk instead (its own spectrogram front-ends; D = 3 × ``ba_net.emb_dim``).
* **L_type** (Eq. 1): BCE of ``g_type(||f(x)||²)``, g_type = affine map + sigmoid, normal vs
  pseudo-anomalous. The squared norm is divided by D before the affine map (as the authors'
  code; the same family of functions, better scaled at initialisation).
* **L_id** (Eqs. 2–3): BCE of ``g_id(f(x))`` (affine + sigmoid per class) against
  ``t' = y · onehot(t)``, summed over the batch and the C classes and divided by ``C · Σ y``.
  Classes (``id_labels``): ``section`` (the machine IDs of DCASE 2020 and the sections of 2021+,
  default) or ``attributes`` (section × visible attribute combination; the section where no
  attribute is visible). A machine type with a single class has no ID task: its L_id is dropped
  (the paper's "without machine ID" setting, §4.4.3, weight 0).
* **Total** (Eq. 4): ``L = L_type + α L_id``, α = 10.
* **Balanced batch sampler** (§3.4): every batch holds ``batch_size // 2`` normal samples and as
  many pseudo-anomalous ones, of which one is replaced by a real anomalous clip when there are
  any; one epoch = one pass over the (shuffled) normal clips, so the last batch holds the
  remaining normal clips and as many others. Pseudo-anomalous and anomalous clips are drawn by
  cycling through shuffled lists.
* **Mixup** (§3.4, Eqs. 5–7): per sample λ ~ Beta(β, β), β = ``mixup_alpha`` = 0.2, partner =
  a random permutation of the batch; ``x_mix = λ x_i + (1 − λ) x_j`` (waveforms),
  ``y_mix = λ y_i + (1 − λ) y_j``, ``t'_mix = λ y_i t_i + (1 − λ) y_j t_j``: a pseudo-anomalous
  partner contributes no ID mass. Applied to every batch (``mixup_alpha: 0`` = off).
* **Optimiser** (§4.2): AdamW, lr 1e-3 (weight decay 0, the authors' code), OneCycleLR peaking
  at lr over the whole run, 100 epochs, batch 128 (64 normal + 64 pseudo-anomalous).
* **Anomaly detector** (§3.5): per machine type × section, a GMM (2 components, full
  covariance, §4.2) on the embeddings of the normal training clips' chunks: chunks of S = 2 s
  with half overlap (hop 1 s), the last chunk ending at the clip's end; a clip shorter than S is
  tiled. Sections with no training clip fall back to the GMM of all the type's chunks.
* **Score** (§3.6, Eq. 8): chunk score = −log-likelihood under the section's GMM; clip score =
  the mean of the ⌈M/2⌉ highest of the M chunk scores (the chunks above the median).

Determinism: every random draw comes from ``seed`` (numpy Generator for sampling, crops and
mixup; a torch generator / forked RNG for weights, dropout and stochastic depth).
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from sklearn.mixture import GaussianMixture
from torch import nn
from torch.nn import functional as F

from asdflow.nets.frontends import Spectrogram, SpectrogramConfig

__all__ = [
    "BalancedBatchSampler",
    "MelFrontEnd",
    "SerialOEBaseline",
    "SerialOENet",
    "aggregate_upper_half",
    "chunk_starts",
    "chunk_waves",
    "fit_serial_oe_baseline",
    "htk_mel_filterbank",
    "id_loss",
    "mixup_batch",
    "read_anomaly_list",
    "score_serial_oe_baseline",
    "type_logits",
    "type_loss",
]

log = logging.getLogger(__name__)

EXTRACTORS = ("efficientnet_b0", "Ba")
ID_LABELS = ("section", "attributes")
AGGREGATIONS = ("upper_half", "mean", "max")


# --------------------------------------------------------------------------------------------
# Chunks (§3.5) and aggregation (§3.6, Eq. 8)
# --------------------------------------------------------------------------------------------
def chunk_starts(n_samples: int, chunk: int, hop: int) -> np.ndarray:
    """Start samples of the chunks of a clip: ``0, hop, 2·hop, …`` while a chunk fits, plus one
    chunk ending at the clip's end when the last one does not reach it; ``[0]`` for a clip not
    longer than one chunk."""
    if chunk < 1 or hop < 1:
        raise ValueError(f"chunk and hop must be >= 1 sample, got {chunk}, {hop}")
    if n_samples <= chunk:
        return np.zeros(1, dtype=np.int64)
    starts = list(range(0, n_samples - chunk + 1, hop))
    if starts[-1] + chunk < n_samples:
        starts.append(n_samples - chunk)
    return np.asarray(starts, dtype=np.int64)


def _tile(waves: np.ndarray, n: int) -> np.ndarray:
    if waves.shape[-1] >= n:
        return waves
    reps = -(-n // waves.shape[-1])
    return np.tile(waves, (1,) * (waves.ndim - 1) + (reps,))[..., :n]


def chunk_waves(waves: np.ndarray, chunk: int, hop: int) -> np.ndarray:
    """``[N, T]`` clips → ``[N, M, chunk]`` chunks (:func:`chunk_starts`; short clips tiled)."""
    waves = _tile(np.atleast_2d(np.asarray(waves, dtype=np.float32)), chunk)
    starts = chunk_starts(waves.shape[1], chunk, hop)
    return np.stack([waves[:, s:s + chunk] for s in starts], axis=1)


def aggregate_upper_half(scores: np.ndarray) -> np.ndarray:
    """Eq. 8 along the last axis: the mean of the ⌈M/2⌉ highest of M chunk scores."""
    s = np.sort(np.asarray(scores, dtype=np.float64), axis=-1)[..., ::-1]
    k = math.ceil(s.shape[-1] / 2)
    return s[..., :k].mean(axis=-1)


def _aggregate(scores: np.ndarray, how: str) -> np.ndarray:
    if how == "upper_half":
        return aggregate_upper_half(scores)
    if how == "mean":
        return np.asarray(scores, dtype=np.float64).mean(axis=-1)
    if how == "max":
        return np.asarray(scores, dtype=np.float64).max(axis=-1)
    raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {how!r}")


# --------------------------------------------------------------------------------------------
# Losses (Eqs. 1-4) and mixup (Eqs. 5-7)
# --------------------------------------------------------------------------------------------
def type_logits(head: nn.Linear, emb: torch.Tensor) -> torch.Tensor:
    """Logit of g_type (Eq. 1): the affine ``head`` applied to ``||f(x)||² / D``; ``[B]``."""
    return head((emb * emb).mean(dim=1, keepdim=True)).squeeze(1)


def type_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L_type (Eq. 1): mean BCE of the type logits against y (1 normal, 0 (pseudo-)anomalous;
    mixed samples carry y_mix)."""
    return F.binary_cross_entropy_with_logits(logits, y.float())


def id_loss(logits: torch.Tensor, t_prime: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L_id (Eq. 3): BCE of the ID logits ``[B, C]`` against ``t' = y · onehot(t)`` (mixed:
    Eq. 7), summed over samples and classes and divided by ``C · Σ y``; 0 when Σ y = 0."""
    denom = logits.shape[1] * y.float().sum()
    total = F.binary_cross_entropy_with_logits(logits, t_prime.float(), reduction="sum")
    return total / denom if float(denom) > 0 else total * 0.0


def mixup_batch(x: torch.Tensor, y: torch.Tensor, t_prime: torch.Tensor, lam: torch.Tensor, perm: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eqs. 5–7 with per-sample ``lam`` ``[B]`` and partner indices ``perm``: returns
    ``(x_mix, y_mix, t'_mix)``. ``t_prime`` must already be ``y · onehot(t)`` (Eq. 2), so the ID
    part of a pseudo-anomalous partner is zero."""
    lam = lam.to(x.dtype)
    lx = lam.view(-1, *([1] * (x.dim() - 1)))
    x_mix = lx * x + (1 - lx) * x[perm]
    y_mix = lam * y + (1 - lam) * y[perm]
    t_mix = lam[:, None] * t_prime + (1 - lam[:, None]) * t_prime[perm]
    return x_mix, y_mix, t_mix


# --------------------------------------------------------------------------------------------
# Balanced batch sampler (§3.4)
# --------------------------------------------------------------------------------------------
class BalancedBatchSampler:
    """Batches of ``batch_size // 2`` normal and as many pseudo-anomalous indices, one of them
    replaced by a real anomalous index when ``n_anomalous > 0`` (§3.4).

    Index space: ``0 … n_normal − 1`` normal, then ``n_pseudo`` pseudo-anomalous, then
    ``n_anomalous`` anomalous. One epoch (one iteration) = one pass over the shuffled normal
    indices; the last batch holds the remaining r normals and r others. Pseudo-anomalous and
    anomalous indices cycle through lists reshuffled whenever they are used up.
    """

    def __init__(self, n_normal: int, n_pseudo: int, n_anomalous: int = 0, batch_size: int = 128,
                 rng: np.random.Generator | None = None) -> None:
        if n_normal < 1 or n_pseudo < 1:
            raise ValueError(f"the sampler needs normal and pseudo-anomalous clips, got {n_normal}, {n_pseudo}")
        if batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {batch_size}")
        self.n_normal, self.n_pseudo, self.n_anomalous = int(n_normal), int(n_pseudo), int(n_anomalous)
        self.half = batch_size // 2
        self.rng = rng or np.random.default_rng(0)
        self._queues: dict[str, list[int]] = {"pseudo": [], "anomalous": []}

    def __len__(self) -> int:
        return math.ceil(self.n_normal / self.half)

    def _take(self, kind: str, k: int) -> list[int]:
        n, offset = ((self.n_pseudo, self.n_normal) if kind == "pseudo"
                     else (self.n_anomalous, self.n_normal + self.n_pseudo))
        out: list[int] = []
        q = self._queues[kind]
        while len(out) < k:
            if not q:
                q.extend(int(i) + offset for i in self.rng.permutation(n))
            out.append(q.pop())
        return out

    def __iter__(self) -> Iterator[np.ndarray]:
        normal = self.rng.permutation(self.n_normal)
        for i in range(0, self.n_normal, self.half):
            part = [int(j) for j in normal[i:i + self.half]]
            k = len(part)
            extra = self._take("anomalous", 1) if self.n_anomalous else []
            others = self._take("pseudo", k - len(extra)) + extra
            yield np.asarray(part + others, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------------
def htk_mel_filterbank(n_freqs: int, sample_rate: int, n_mels: int, f_min: float, f_max: float) -> torch.Tensor:
    """``[n_freqs, n_mels]`` triangular filters on the HTK mel scale without area normalisation
    (torchaudio's ``melscale_fbanks`` defaults, used by the authors' ``MelSpectrogram``)."""
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs, dtype=torch.float64)

    def mel(f: float) -> float:
        return 2595.0 * math.log10(1.0 + f / 700.0)

    m_pts = torch.linspace(mel(f_min), mel(f_max), n_mels + 2, dtype=torch.float64)
    f_pts = 700.0 * (10 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.minimum(down, up), min=0.0).float()


class MelFrontEnd(nn.Module):
    """``[B, T]`` wave → ``[B, n_mels, frames]`` mel spectrogram: magnitude STFT (periodic Hann,
    window-normalised, centred, reflect padding) raised to ``power``, HTK mel filters, optionally
    ``log`` (10·log10 for power 2, 20·log10 for power 1, floored at 1e-10)."""

    def __init__(self, sample_rate: int = 16000, n_fft: int = 2048, hop_length: int = 256, n_mels: int = 224,
                 f_min: float = 50.0, f_max: float = 7800.0, power: float = 1.0, log: bool = False) -> None:
        super().__init__()
        self.spec = Spectrogram(SpectrogramConfig(n_fft=n_fft, hop=hop_length, sample_rate=sample_rate, center=True,
                                                  normalized="window", f_min=None, f_max=None))
        self.register_buffer("fb", htk_mel_filterbank(n_fft // 2 + 1, sample_rate, n_mels, f_min, f_max),
                             persistent=False)
        self.power, self.log = float(power), bool(log)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        s = self.spec(wave)
        if self.power != 1.0:
            s = s ** self.power
        mel = torch.matmul(s.transpose(1, 2), self.fb).transpose(1, 2)
        if self.log:
            mel = (10.0 * self.power) * torch.log10(mel.clamp_min(1e-10))
        return mel


class _EfficientNetExtractor(nn.Module):
    def __init__(self, emb_dim: int, front: Mapping[str, Any], sample_rate: int) -> None:
        from asdflow.nets.efficientnet import EfficientNetB0

        super().__init__()
        self.front = MelFrontEnd(sample_rate, **front)
        self.backbone = EfficientNetB0(num_classes=emb_dim)
        self.emb_dim = emb_dim

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.front(wave).unsqueeze(1)
        return self.backbone(x.expand(-1, 3, -1, -1))


class _BaExtractor(nn.Module):
    def __init__(self, n_samples: int, sample_rate: int, cfg: Mapping[str, Any]) -> None:
        from asdflow.nets.ba import Ba

        super().__init__()
        self.net = Ba(n_samples=n_samples, sample_rate=sample_rate, **dict(cfg))
        self.emb_dim = self.net.emb_dim

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.net(wave)["cat"]


class SerialOENet(nn.Module):
    """Extractor f plus the two heads: ``forward(wave) → (f(x) [B, D], type logit [B], ID logits [B, C])``."""

    def __init__(self, extractor: str, n_ids: int, n_samples: int, sample_rate: int = 16000, emb_dim: int = 128,
                 front: Mapping[str, Any] | None = None, ba_net: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if extractor == "efficientnet_b0":
            self.extractor: nn.Module = _EfficientNetExtractor(emb_dim, front or {}, sample_rate)
        elif extractor == "Ba":
            self.extractor = _BaExtractor(n_samples, sample_rate, ba_net or {})
        else:
            raise ValueError(f"extractor must be one of {EXTRACTORS}, got {extractor!r}")
        d = self.extractor.emb_dim
        self.type_head = nn.Linear(1, 1)
        self.id_head = nn.Linear(d, max(1, n_ids))
        self.emb_dim = d

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        emb = self.extractor(wave)
        return emb, type_logits(self.type_head, emb), self.id_head(emb)


# --------------------------------------------------------------------------------------------
# Real anomalous training clips
# --------------------------------------------------------------------------------------------
def read_anomaly_list(path: str | Path) -> list[tuple[str, Path]]:
    """``(machine, audio path)`` rows of an anomaly list: a CSV with a header holding at least
    ``machine`` and ``path`` (other columns are ignored); relative paths are relative to the
    list's folder."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"serial_oe.anomalies: {path} does not exist")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"machine", "path"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: an anomaly list needs the columns machine,path (got {reader.fieldnames})")
        rows = []
        for row in reader:
            p = Path(row["path"])
            rows.append((str(row["machine"]), p if p.is_absolute() else path.parent / p))
    return rows


def _load_anomalies(path: str | Path | None, machines: Sequence[str], sr: int, n_samples: int
                    ) -> dict[str, np.ndarray]:
    if path is None:
        return {}
    from asdflow.io.audio import AudioSpec, load_clip

    spec = AudioSpec(sample_rate=sr, clip_seconds=n_samples / sr, length_policy="tile", crop="start")
    out: dict[str, list[np.ndarray]] = {}
    for machine, p in read_anomaly_list(path):
        if machine not in machines:
            log.warning("serial_oe: anomalous clip %s is of machine type %s, which has no training clips: ignored",
                        p, machine)
            continue
        out.setdefault(machine, []).append(load_clip(p, spec))
    return {m: np.stack(v).astype(np.float32) for m, v in out.items()}


# --------------------------------------------------------------------------------------------
# The fitted system
# --------------------------------------------------------------------------------------------
@dataclass
class SerialOEBaseline:
    """Per machine type: extractor state, amplitude statistics, ID classes and GMMs per section."""

    states: dict[str, dict[str, torch.Tensor]]
    net_config: dict[str, dict[str, Any]]
    amp: dict[str, tuple[float, float]]
    gmms: dict[str, dict[str, GaussianMixture]]
    sr: int = 16000
    chunk: int = 32000
    hop: int = 16000
    aggregation: str = "upper_half"
    batch_size: int = 128
    history: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_nets", None)
        return state

    def net(self, machine: str) -> SerialOENet:
        cache = self.__dict__.setdefault("_nets", {})
        if machine not in cache:
            if machine not in self.states:
                raise KeyError(f"no Serial-OE extractor fitted for machine type {machine!r}")
            net = SerialOENet(**self.net_config[machine])
            net.load_state_dict(self.states[machine])
            cache[machine] = net.eval()
        return cache[machine]

    def chunk_embeddings(self, machine: str, waves: np.ndarray) -> np.ndarray:
        """``[N, M, D]`` embeddings of the clips' chunks by the machine type's extractor."""
        return _embed_chunks(self.net(machine), chunk_waves(waves, self.chunk, self.hop), self.amp[machine],
                             self.batch_size)


def _embed_chunks(net: SerialOENet, chunks: np.ndarray, amp: tuple[float, float], batch_size: int) -> np.ndarray:
    n, m, t = chunks.shape
    flat = chunks.reshape(n * m, t)
    mu, sd = amp
    was = net.training
    net.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(flat), max(1, batch_size)):
            x = torch.from_numpy((flat[i:i + batch_size] - mu) / sd).float()
            out.append(net(x)[0].numpy())
    net.train(was)
    return np.concatenate(out).reshape(n, m, -1) if out else np.zeros((n, m, net.emb_dim), np.float32)


def _fit_gmm(x: np.ndarray, n_components: int, covariance_type: str, reg_covar: float, seed: int) -> GaussianMixture:
    x = np.asarray(x, dtype=np.float64)
    k = max(1, min(n_components, len(x)))
    for attempt in range(4):
        reg = reg_covar * (100.0 ** attempt)
        try:
            return GaussianMixture(k, covariance_type=covariance_type, reg_covar=reg, random_state=seed).fit(x)
        except ValueError as exc:  # ill-defined covariance (few chunks in many dimensions)
            log.warning("serial_oe GMM fit failed with reg_covar %.0e (%s); retrying larger", reg, exc)
    raise ValueError("serial_oe: GMM fit failed even with a large reg_covar")


def _id_classes(sections: np.ndarray, attributes: np.ndarray | None, mode: str) -> tuple[np.ndarray, list[str]]:
    if mode not in ID_LABELS:
        raise ValueError(f"id_labels must be one of {ID_LABELS}, got {mode!r}")
    keys = np.asarray(sections, dtype=object).astype(str)
    if mode == "attributes" and attributes is not None:
        attrs = np.asarray(attributes, dtype=object).astype(str)
        keys = np.array([f"{s}|{a}" if a else s for s, a in zip(keys, attrs)], dtype=object)
    names = sorted(set(keys.tolist()))
    return np.searchsorted(np.asarray(names, dtype=object), keys).astype(np.int64), names


def _per_machine(values: Mapping[str, Any] | None, machine: str, n: int, name: str, default: Any) -> np.ndarray:
    v = None if values is None else values.get(machine)
    if v is None:
        return np.full(n, default, dtype=object)
    v = np.asarray(v, dtype=object)
    if len(v) != n:
        raise ValueError(f"{name}[{machine!r}] has {len(v)} entries for {n} clips")
    return v


def _device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _train_extractor(net: SerialOENet, pool: np.ndarray, y: np.ndarray, t_prime: np.ndarray,
                     sampler: BalancedBatchSampler, opts: Mapping[str, Any], rng: np.random.Generator,
                     amp: tuple[float, float], device: torch.device) -> list[dict[str, float]]:
    chunk, epochs, alpha, beta = opts["chunk"], opts["epochs"], opts["alpha"], opts["mixup_alpha"]
    opt = torch.optim.AdamW(net.parameters(), lr=opts["lr"], weight_decay=opts["weight_decay"])
    total_steps = max(1, epochs * len(sampler))
    sched = (torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=opts["lr"], total_steps=total_steps)
             if opts["scheduler"] == "onecycle" else None)
    mu, sd = amp
    n_t = pool.shape[1]
    history = []
    net.to(device).train()
    for epoch in range(epochs):
        sums = {"loss": 0.0, "type": 0.0, "id": 0.0}
        count = 0
        for idx in sampler:
            if len(idx) < 2:  # batch norm needs two samples
                continue
            starts = rng.integers(0, max(1, n_t - chunk + 1), size=len(idx))  # random S-second crops
            xb = np.stack([pool[i, s:s + chunk] for i, s in zip(idx, starts)])
            x = torch.from_numpy((xb - mu) / sd).float()
            yb = torch.from_numpy(y[idx]).float()
            tb = torch.from_numpy(t_prime[idx]).float()
            if beta > 0:
                lam = torch.from_numpy(rng.beta(beta, beta, size=len(idx))).float()
                perm = torch.from_numpy(rng.permutation(len(idx)))
                x, yb, tb = mixup_batch(x, yb, tb, lam, perm)
            x, yb, tb = x.to(device), yb.to(device), tb.to(device)
            _, t_logit, id_logits = net(x)
            l_type = type_loss(t_logit, yb)
            l_id = id_loss(id_logits, tb, yb) if alpha > 0 else t_logit.sum() * 0.0
            loss = l_type + alpha * l_id
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched is not None and sched.last_epoch + 1 < total_steps:
                sched.step()
            for k, v in (("loss", loss), ("type", l_type), ("id", l_id)):
                sums[k] += float(v.detach()) * len(idx)
            count += len(idx)
        history.append({"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"],
                        **{k: v / max(count, 1) for k, v in sums.items()}})
    net.to("cpu").eval()
    return history


def fit_serial_oe_baseline(
    waves_by_machine: Mapping[str, np.ndarray],
    sr: int = 16000,
    *,
    extractor: str = "efficientnet_b0",
    pretrained: str | None = None,
    emb_dim: int = 128,
    ba_net: Mapping[str, Any] | None = None,
    n_mels: int = 224,
    n_fft: int = 2048,
    hop_length: int = 256,
    f_min: float = 50.0,
    f_max: float = 7800.0,
    power: float = 1.0,
    log_mel: bool = False,
    chunk_seconds: float = 2.0,
    hop_seconds: float = 1.0,
    epochs: int = 100,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    scheduler: str = "onecycle",
    alpha: float = 10.0,
    mixup_alpha: float = 0.2,
    id_labels: str = "section",
    anomalies: str | None = None,
    normalize_amplitude: bool = True,
    gmm_components: int = 2,
    gmm_covariance: str = "full",
    gmm_reg_covar: float = 1e-6,
    aggregation: str = "upper_half",
    device: str = "auto",
    sections_by_machine: Mapping[str, np.ndarray] | None = None,
    attributes_by_machine: Mapping[str, np.ndarray] | None = None,
    seed: int = 0,
) -> SerialOEBaseline:
    """Fit Serial-OE (module docstring) on the normal training clips of every machine type.

    ``waves_by_machine``: machine → ``[N, T]`` float32 waves (16 kHz, normal clips);
    ``sections_by_machine`` / ``attributes_by_machine``: machine → ``[N]`` section ids /
    attribute strings aligned with them (None: one section "00", no attributes);
    ``anomalies``: a CSV list of real anomalous training clips (:func:`read_anomaly_list`) or
    None. Defaults are the paper's (§4.2); the rest are documented in docs/reference.md §8.
    """
    if extractor not in EXTRACTORS:
        raise ValueError(f"extractor must be one of {EXTRACTORS}, got {extractor!r}")
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    if scheduler not in ("onecycle", "none"):
        raise ValueError(f"scheduler must be 'onecycle' or 'none', got {scheduler!r}")
    if pretrained is not None and extractor != "efficientnet_b0":
        raise ValueError("serial_oe.pretrained holds EfficientNet-B0 weights: it needs extractor efficientnet_b0")
    waves = {str(k): np.atleast_2d(np.asarray(v, dtype=np.float32)) for k, v in waves_by_machine.items()}
    machines = sorted(waves)
    if len(machines) < 2:
        raise ValueError("serial_oe needs at least two machine types: the other types' clips are the "
                         f"pseudo-anomalies (got {machines})")
    n_t = {w.shape[1] for w in waves.values()}
    if len(n_t) != 1:
        raise ValueError(f"serial_oe: training clips of different lengths {sorted(n_t)}")
    n_t = n_t.pop()
    chunk = int(round(chunk_seconds * sr))
    hop = int(round(hop_seconds * sr))
    if chunk < 1 or hop < 1:
        raise ValueError("chunk_seconds and hop_seconds must be > 0")
    train_len = max(n_t, chunk)
    anomal = _load_anomalies(anomalies, machines, sr, train_len)
    pool_all = np.concatenate([_tile(waves[m], train_len) for m in machines])
    offsets = np.cumsum([0] + [len(waves[m]) for m in machines])
    front = dict(n_mels=int(n_mels), n_fft=int(n_fft), hop_length=int(hop_length), f_min=float(f_min),
                 f_max=float(f_max), power=float(power), log=bool(log_mel))
    opts = dict(chunk=chunk, epochs=int(epochs), alpha=float(alpha), mixup_alpha=float(mixup_alpha), lr=float(lr),
                weight_decay=float(weight_decay), scheduler=scheduler)
    dev = _device(device)
    rng = np.random.default_rng(seed)
    model = SerialOEBaseline({}, {}, {}, {}, sr=sr, chunk=chunk, hop=hop, aggregation=aggregation,
                             batch_size=int(batch_size))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for j, mach in enumerate(machines):
            w = waves[mach]
            n = len(w)
            secs = _per_machine(sections_by_machine, mach, n, "sections_by_machine", "00").astype(str)
            attrs = _per_machine(attributes_by_machine, mach, n, "attributes_by_machine", "").astype(str)
            ids, names = _id_classes(secs, attrs, id_labels)
            use_id = len(names) > 1 and alpha > 0
            others = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in range(len(machines)) if i != j])
            an = anomal.get(mach, np.zeros((0, train_len), np.float32))
            pool = np.concatenate([_tile(w, train_len), pool_all[others], an])
            y = np.concatenate([np.ones(n), np.zeros(len(others) + len(an))]).astype(np.float32)
            t_prime = np.zeros((len(pool), max(1, len(names))), dtype=np.float32)
            t_prime[np.arange(n), ids] = 1.0  # Eq. 2: only normal clips carry an ID
            if normalize_amplitude:
                mu, sd = float(w.mean()), float(w.std()) or 1.0
            else:
                mu, sd = 0.0, 1.0
            cfg = dict(extractor=extractor, n_ids=len(names), n_samples=chunk, sample_rate=sr, emb_dim=int(emb_dim),
                       front=front, ba_net=dict(ba_net or {}))
            net = SerialOENet(**cfg)
            if pretrained is not None:
                from asdflow.nets.efficientnet import load_torchvision_weights

                skipped = load_torchvision_weights(net.extractor.backbone, pretrained)
                log.info("serial_oe %s: EfficientNet-B0 weights from %s (kept initialised: %s)", mach, pretrained,
                         skipped)
            sampler = BalancedBatchSampler(n, len(others), len(an), batch_size, rng)
            hist = _train_extractor(net, pool, y, t_prime, sampler,
                                    {**opts, "alpha": opts["alpha"] if use_id else 0.0}, rng, (mu, sd), dev)
            model.states[mach] = {k: v.detach().clone() for k, v in net.state_dict().items()}
            model.net_config[mach] = cfg
            model.amp[mach] = (mu, sd)
            model.history[mach] = hist
            # anomaly detectors: one GMM per section on the normal clips' chunk embeddings (§3.5)
            emb = _embed_chunks(net, chunk_waves(w, chunk, hop), (mu, sd), int(batch_size))
            if not np.isfinite(emb).all():
                raise ValueError(f"serial_oe {mach}: the extractor gives non-finite embeddings (training diverged? "
                                 "try a smaller lr)")
            gmms = {"*": _fit_gmm(emb.reshape(-1, emb.shape[-1]), gmm_components, gmm_covariance, gmm_reg_covar, seed)}
            for s in sorted(set(secs.tolist())):
                e = emb[secs == s]
                gmms[s] = _fit_gmm(e.reshape(-1, e.shape[-1]), gmm_components, gmm_covariance, gmm_reg_covar, seed)
            model.gmms[mach] = gmms
            last = hist[-1] if hist else {}
            log.info("serial_oe %s: %d normal, %d pseudo-anomalous, %d anomalous clips; %d ID classes%s; "
                     "%d epochs x %d batches, loss %.4f (type %.4f, id %.4f)", mach, n, len(others), len(an),
                     len(names), "" if use_id else " (L_id off)", epochs, len(sampler), last.get("loss", math.nan),
                     last.get("type", math.nan), last.get("id", math.nan))
    model.config = {"extractor": extractor, "pretrained": pretrained, "emb_dim": int(emb_dim), "front": front,
                    "ba_net": dict(ba_net or {}), "chunk_seconds": float(chunk_seconds),
                    "hop_seconds": float(hop_seconds), **{k: v for k, v in opts.items() if k != "chunk"},
                    "batch_size": int(batch_size), "id_labels": id_labels, "anomalies": anomalies,
                    "n_anomalous": {m: int(len(v)) for m, v in anomal.items()},
                    "normalize_amplitude": bool(normalize_amplitude), "gmm_components": int(gmm_components),
                    "gmm_covariance": gmm_covariance, "gmm_reg_covar": float(gmm_reg_covar),
                    "aggregation": aggregation, "seed": int(seed)}
    return model


def score_serial_oe_baseline(model: SerialOEBaseline, waves_by_machine: Mapping[str, np.ndarray],
                             sections_by_machine: Mapping[str, np.ndarray] | None = None, *,
                             aggregation: str | None = None) -> dict[str, np.ndarray]:
    """Clip scores per machine (higher = more anomalous): −log-likelihood of each chunk under
    the GMM of the clip's section (the type's pooled GMM for an unseen section), aggregated by
    Eq. 8 (``model.aggregation``; ``aggregation`` overrides). Returns machine → ``[N]`` float64."""
    how = model.aggregation if aggregation is None else aggregation
    out: dict[str, np.ndarray] = {}
    for machine, w in waves_by_machine.items():
        mach = str(machine)
        w = np.atleast_2d(np.asarray(w, dtype=np.float32))
        secs = _per_machine(sections_by_machine, mach, len(w), "sections_by_machine", "00").astype(str)
        emb = model.chunk_embeddings(mach, w)
        gmms = model.gmms[mach]
        chunk_scores = np.empty(emb.shape[:2], dtype=np.float64)
        for s in sorted(set(secs.tolist())):
            sel = secs == s
            gmm = gmms.get(s, gmms["*"])
            e = emb[sel]
            chunk_scores[sel] = -gmm.score_samples(e.reshape(-1, e.shape[-1]).astype(np.float64)).reshape(e.shape[:2])
        out[mach] = _aggregate(chunk_scores, how)
    return out
