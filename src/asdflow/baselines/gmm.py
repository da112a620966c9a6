"""Log-mel + Gaussian-mixture baseline: a classical, label-free reference point.

Features follow the official DCASE autoencoder baseline (``nttcslab/dcase2023_task2_baseline_ae``,
notes ``reference-implementation.md`` §10): log-mel with n_fft 1024, hop 512, 128 mels,
power 2, fmin 0, fmax = Nyquist, ``20/power·log10(max(mel, eps))`` (as the baseline;
10·log10 for power 2), optionally ``context`` consecutive frames stacked (the baseline stacks 5 →
640-d). The mel filterbank is the Slaney-style one of librosa's defaults (Slaney mel scale,
area-normalised triangles), written in numpy here. Framing is centred (``n_fft // 2`` padding
on both sides, zero padding = librosa ≥ 0.10 default; ``pad_mode="reflect"`` is an option) with a
periodic Hann window.

Model: one ``sklearn.mixture.GaussianMixture`` (diagonal covariances by default) per machine
type, fitted on a random subsample of the training frames (both domains pooled). Clip score =
− mean log-likelihood of the clip's frame vectors (higher = more anomalous).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
from sklearn.mixture import GaussianMixture

__all__ = [
    "GMMBaseline",
    "context_frames",
    "fit_gmm_baseline",
    "logmel",
    "mel_filterbank",
    "score_gmm_baseline",
]

log = logging.getLogger(__name__)


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep,
                    f / f_sp)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(sr: int, n_fft: int, n_mels: int = 128, fmin: float = 0.0,
                   fmax: float | None = None) -> np.ndarray:
    """``[n_mels, n_fft // 2 + 1]`` Slaney-normalised triangular filters (librosa's default)."""
    fmax = sr / 2 if fmax is None else fmax
    fft_freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]  # equal area per filter
    return weights.astype(np.float32)


def logmel(wave: np.ndarray, sr: int = 16000, n_fft: int = 1024, hop_length: int = 512,
           n_mels: int = 128, power: float = 2.0, fmin: float = 0.0, fmax: float | None = None,
           pad_mode: str = "constant", batch: int = 16) -> np.ndarray:
    """Log-mel spectrogram in dB: ``[n_mels, frames]`` for a 1-D wave, ``[N, n_mels, frames]``
    for ``[N, T]`` waves. ``frames = 1 + T // hop_length`` (centred framing)."""
    x = np.asarray(wave, dtype=np.float32)
    single = x.ndim == 1
    x = x[None] if single else x
    if x.ndim != 2:
        raise ValueError(f"wave must be [T] or [N, T], got shape {x.shape}")
    pad = n_fft // 2
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)  # periodic Hann
    fb = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
    outs = []
    for i in range(0, len(x), batch):
        xb = np.pad(x[i:i + batch], ((0, 0), (pad, pad)), mode=pad_mode)
        frames = np.lib.stride_tricks.sliding_window_view(xb, n_fft, axis=1)[:, ::hop_length]
        spec = np.abs(np.fft.rfft(frames * window, axis=-1)) ** power  # [B, F, bins]
        mel = spec.astype(np.float32) @ fb.T  # [B, F, n_mels]
        outs.append(20.0 / power * np.log10(np.maximum(mel, sys.float_info.epsilon)))
    out = np.concatenate(outs).transpose(0, 2, 1).astype(np.float32)
    return out[0] if single else out


def context_frames(lm: np.ndarray, context: int = 1) -> np.ndarray:
    """Frame vectors ``[F - context + 1, context·n_mels]`` from one ``[n_mels, F]`` log-mel,
    consecutive frames concatenated in time order (the DCASE baseline's stacking)."""
    n_mels, n_frames = lm.shape
    n_vec = n_frames - context + 1
    if n_vec < 1:
        raise ValueError(f"{n_frames} frames is fewer than context {context}")
    return np.concatenate([lm[:, t:t + n_vec].T for t in range(context)], axis=1)


@dataclass
class GMMBaseline:
    """Fitted per-machine mixtures plus the feature settings they were fitted with."""

    models: dict[str, GaussianMixture]
    sr: int = 16000
    context: int = 1
    feature_kw: dict = field(default_factory=dict)

    def features(self, waves: np.ndarray) -> list[np.ndarray]:
        lms = logmel(np.atleast_2d(waves), self.sr, **self.feature_kw)
        return [context_frames(lm, self.context) for lm in lms]


def fit_gmm_baseline(
    train_waves_by_machine: Mapping[str, np.ndarray],
    sr: int = 16000,
    *,
    n_components: int = 8,
    covariance_type: str = "diag",
    context: int = 1,
    max_frames: int = 20000,
    reg_covar: float = 1e-3,
    max_iter: int = 100,
    seed: int = 0,
    feature_kw: Mapping | None = None,
) -> GMMBaseline:
    """Fit one GaussianMixture per machine type on (subsampled) training frame vectors.

    ``train_waves_by_machine``: machine → ``[N, T]`` float32 waves (16 kHz, normal clips of
    both domains). At most ``max_frames`` frame vectors per machine are drawn uniformly at
    random (``seed``). ``feature_kw`` goes to :func:`logmel` (n_fft, hop_length, n_mels, ...).
    """
    rng = np.random.default_rng(seed)
    base = GMMBaseline({}, sr=sr, context=context, feature_kw=dict(feature_kw or {}))
    for machine, waves in train_waves_by_machine.items():
        feats = np.concatenate(base.features(waves))
        if len(feats) > max_frames:
            feats = feats[rng.choice(len(feats), max_frames, replace=False)]
        k = min(n_components, len(feats))
        gmm = GaussianMixture(n_components=k, covariance_type=covariance_type, reg_covar=reg_covar,
                              max_iter=max_iter, random_state=seed)
        gmm.fit(feats)
        if not gmm.converged_:
            log.warning("fit_gmm_baseline: GMM of %s did not converge in %d iterations", machine, max_iter)
        base.models[str(machine)] = gmm
    return base


def score_gmm_baseline(model: GMMBaseline, waves_by_machine: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Clip scores per machine: ``−mean`` log-likelihood of each clip's frame vectors under that
    machine's mixture (higher = more anomalous). Returns machine → ``[N]`` float64."""
    out: dict[str, np.ndarray] = {}
    for machine, waves in waves_by_machine.items():
        if str(machine) not in model.models:
            raise KeyError(f"no GMM fitted for machine type {machine!r}")
        gmm = model.models[str(machine)]
        out[str(machine)] = np.array([-gmm.score(f) for f in model.features(waves)], dtype=np.float64)
    return out
