"""The one audio loader: decode (soundfile), mono downmix, resample (julius), fixed length.

Every step that needs waveforms goes through :func:`load_clip` (directly, or through the
decoded-audio cache of :mod:`asdflow.io.cache`). No torchaudio: its wheels do not import with
the CPU torch build, and julius' sinc resampler runs on CPU and CUDA alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf

__all__ = ["AudioError", "AudioSpec", "load_audio", "fix_length", "load_clip", "resample"]


class AudioError(Exception):
    """An audio file cannot be used; ``str()`` names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class AudioSpec:
    """How clips are turned into fixed-length waveforms.

    length_policy: ``tile`` repeats a short clip until it fills ``clip_seconds`` (what the
    reference implementation does), ``pad`` appends zeros. Longer clips are cut, keeping the
    ``start`` or the ``center`` of the clip.
    """

    sample_rate: int = 16000
    clip_seconds: float = 18.0
    length_policy: str = "tile"
    crop: str = "start"

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        if self.clip_seconds <= 0:
            raise ValueError(f"clip_seconds must be positive, got {self.clip_seconds}")
        if self.length_policy not in ("tile", "pad"):
            raise ValueError(f"length_policy must be 'tile' or 'pad', got {self.length_policy!r}")
        if self.crop not in ("start", "center"):
            raise ValueError(f"crop must be 'start' or 'center', got {self.crop!r}")

    @property
    def n_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))

    def to_dict(self) -> dict:
        return asdict(self)


def resample(wave: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """Band-limited sinc resampling (julius) of a mono float32 waveform."""
    if orig_sr == new_sr:
        return wave
    import julius
    import torch  # here, not at module level: table-only steps import this module too

    g = gcd(int(orig_sr), int(new_sr))
    out = julius.resample_frac(torch.from_numpy(np.ascontiguousarray(wave)), orig_sr // g, new_sr // g)
    return out.numpy().astype(np.float32, copy=False)


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode ``path`` to a float32 mono waveform at ``sample_rate``.

    Multichannel files are averaged to mono; other rates are resampled. Raises
    :class:`AudioError` for unreadable, empty or non-finite audio.
    """
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as exc:
        raise AudioError(path, f"cannot decode audio ({exc})") from None
    if data.shape[0] == 0:
        raise AudioError(path, "file holds no audio frames")
    wave = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(wave).all():
        raise AudioError(path, "audio contains NaN or infinite samples")
    return resample(np.ascontiguousarray(wave, dtype=np.float32), int(sr), int(sample_rate))


def fix_length(wave: np.ndarray, spec: AudioSpec) -> np.ndarray:
    """Apply the spec's length policy: tile or zero-pad short clips, crop long ones."""
    n = spec.n_samples
    if len(wave) == 0:
        raise ValueError("cannot fix the length of an empty waveform")
    if len(wave) > n:
        start = 0 if spec.crop == "start" else (len(wave) - n) // 2
        return wave[start : start + n]
    if len(wave) < n:
        if spec.length_policy == "tile":
            reps = -(-n // len(wave))
            return np.tile(wave, reps)[:n]
        return np.pad(wave, (0, n - len(wave)))
    return wave


def load_clip(path: str | Path, spec: AudioSpec) -> np.ndarray:
    """:func:`load_audio` + :func:`fix_length`: a float32 waveform of ``spec.n_samples``."""
    return fix_length(load_audio(path, spec.sample_rate), spec)
