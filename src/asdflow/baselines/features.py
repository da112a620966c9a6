"""Log-mel frame features of the official DCASE autoencoder baseline, shared by the frame baselines.

As ``nttcslab/dcase2023_task2_baseline_ae`` (docs/reference.md §5): log-mel
with n_fft 1024, hop 512, 128 mels, power 2, fmin 0, fmax = Nyquist,
``20/power·log10(max(mel, eps))``, ``context`` consecutive frames stacked (5 → 640-d). The mel
filterbank is librosa's default (Slaney mel scale, area-normalised triangles), in numpy. Framing
is centred (``n_fft // 2`` zero padding on both sides; ``pad_mode="reflect"`` is an option) with
a periodic Hann window.
"""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["context_frames", "logmel", "mel_filterbank"]

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
