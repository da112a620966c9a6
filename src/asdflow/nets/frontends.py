"""Front-ends: magnitude STFT spectrograms and the full-clip magnitude spectrum (torch only).

Both front-ends run in float32 with autocast disabled (FFTs in half precision are restricted
on CUDA and lose accuracy), create nothing on a fixed device, and have no parameters.

Reference behaviour (``ibkuroyagi/unlabeled-asd stft.py``; docs/reference.md §3.2):
``torchaudio.transforms.Spectrogram(n_fft, hop_length=n_fft // 2, power=1, normalized=True,
center=True, pad_mode="reflect")`` with a periodic Hann window, then the bins from the first one
≥ 200 Hz up to 8000 Hz inclusive; no log, no temporal mean normalisation. Wilkinghoff's
spectrogram (``wilkinghoff/ssl4asd``) is ``tf.signal.stft(frame_length=1024, frame_step=512,
pad_end=False)`` (no centring, no normalisation, all bins) with temporal mean normalisation.
The papers only give window lengths and the 50 % hop, so where they are silent the code's
choices are the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["SpectrogramConfig", "Spectrogram", "FullSpectrum", "NORMALIZATIONS", "magnitude"]

#: STFT scaling modes. ``window``: divide by √(Σ w²) — torchaudio's ``normalized=True`` (seed-000
#: code). ``frame_length``: divide by √n_fft — ``torch.stft(normalized=True)``. ``none``: raw.
NORMALIZATIONS = ("none", "window", "frame_length")


def magnitude(spec: torch.Tensor) -> torch.Tensor:
    """``|spec|`` of a complex tensor as a real one.

    Without autograd this is ``sqrt(re² + im²)``, about twice as fast on a CPU as
    ``Tensor.abs()`` (which computes an overflow-safe ``hypot``; the values differ only by
    rounding for any audio spectrum). When ``spec`` needs a gradient, ``abs()`` is used: its
    gradient at 0 is 0, where the square root's is undefined.
    """
    if spec.requires_grad:
        return spec.abs()
    parts = torch.view_as_real(spec)
    re, im = parts[..., 0], parts[..., 1]
    return torch.addcmul(re * re, im, im).sqrt_()


@dataclass(frozen=True)
class SpectrogramConfig:
    """Magnitude STFT settings. Defaults are the seed-000 256-ms branch at 16 kHz.

    n_fft / hop: window and hop in samples (``hop=None`` = 50 % of ``n_fft``, as both papers).
    center / pad_mode: centred frames with reflect padding (torchaudio/seed-000 code); Wilkinghoff's
        TensorFlow code uses ``center=False`` (frames start at sample 0, no padding).
    normalized: one of :data:`NORMALIZATIONS` (booleans accepted: ``True`` = ``"window"``, the
        torchaudio meaning, ``False`` = ``"none"``).
    f_min / f_max: keep bins from the first bin ≥ f_min up to the last bin ≤ f_max (the seed-000
        code cuts 200-8000 Hz; ``None`` keeps everything — Wilkinghoff's code stores the
        arguments but never applies them).
    log: 20·log10(max(|X|, log_eps)) (the code's ``use_log`` with power 1); off in both codes.
    temporal_norm: subtract each bin's mean over time (Wilkinghoff's temporal mean
        normalisation); applied after the optional log.
    """

    n_fft: int = 4096
    hop: int | None = None
    sample_rate: int = 16000
    center: bool = True
    pad_mode: str = "reflect"
    normalized: str | bool = "window"
    f_min: float | None = 200.0
    f_max: float | None = 8000.0
    log: bool = False
    log_eps: float = 2.220446049250313e-16  # sys.float_info.epsilon, as the reference code
    temporal_norm: bool = False

    def __post_init__(self) -> None:
        if self.n_fft < 2:
            raise ValueError(f"n_fft must be >= 2, got {self.n_fft}")
        if self.hop is not None and self.hop < 1:
            raise ValueError(f"hop must be >= 1, got {self.hop}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalized must be one of {NORMALIZATIONS} or a bool, got {self.normalized!r}")
        self.bin_range()  # validates the frequency cut

    @property
    def hop_length(self) -> int:
        return self.hop or self.n_fft // 2

    @property
    def normalization(self) -> str:
        if isinstance(self.normalized, bool):
            return "window" if self.normalized else "none"
        return str(self.normalized)

    def frequencies(self) -> torch.Tensor:
        return torch.fft.rfftfreq(self.n_fft, d=1.0 / self.sample_rate, dtype=torch.float64)

    def bin_range(self) -> tuple[int, int]:
        """``(lo, hi)``: the kept bins are ``lo .. hi-1``."""
        freqs = self.frequencies()
        lo = 0 if self.f_min is None else int(torch.searchsorted(freqs, torch.tensor(float(self.f_min),
                                                                                   dtype=torch.float64)))
        hi = len(freqs) if self.f_max is None else int(
            torch.searchsorted(freqs, torch.tensor(float(self.f_max), dtype=torch.float64), right=True))
        if hi <= lo:
            raise ValueError(f"empty frequency range {self.f_min}-{self.f_max} Hz for n_fft {self.n_fft}")
        return lo, hi

    @property
    def n_bins(self) -> int:
        lo, hi = self.bin_range()
        return hi - lo

    def n_frames(self, n_samples: int) -> int:
        if self.center:
            return n_samples // self.hop_length + 1
        if n_samples < self.n_fft:
            raise ValueError(f"{n_samples} samples are shorter than one {self.n_fft}-sample frame (center=False)")
        return (n_samples - self.n_fft) // self.hop_length + 1


class Spectrogram(nn.Module):
    """``[B, T]`` waveform → ``[B, F, frames]`` magnitude spectrogram (periodic Hann window)."""

    def __init__(self, cfg: SpectrogramConfig | None = None, **overrides) -> None:
        super().__init__()
        if cfg is None:
            cfg = SpectrogramConfig(**overrides)
        elif overrides:
            raise TypeError("pass either a SpectrogramConfig or keyword settings, not both")
        self.cfg = cfg
        window = torch.hann_window(cfg.n_fft, periodic=True)
        self.register_buffer("window", window, persistent=False)
        mode = cfg.normalization
        self.scale = {"none": 1.0, "window": float(window.pow(2).sum().rsqrt()), "frame_length": cfg.n_fft**-0.5}[mode]
        self.lo, self.hi = cfg.bin_range()

    @property
    def n_bins(self) -> int:
        return self.hi - self.lo

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """The spectrogram before temporal mean normalisation (magnitude, scaled, optional log).

        This is where seed 002's StatEx exchanges statistics (:mod:`asdflow.losses.ssl`);
        ``forward(wave) == normalise(features(wave))``.
        """
        c = self.cfg
        with torch.autocast(device_type=wave.device.type, enabled=False):
            spec = torch.stft(wave.float(), n_fft=c.n_fft, hop_length=c.hop_length, window=self.window.float(),
                              center=c.center, pad_mode=c.pad_mode, normalized=False, onesided=True,
                              return_complex=True)
            spec = magnitude(spec[:, self.lo : self.hi])  # only the kept bins
            if self.scale != 1.0:
                spec = spec * self.scale
            if c.log:
                spec = 20.0 * torch.log10(spec.clamp_min(c.log_eps))
        return spec

    def normalise(self, spec: torch.Tensor) -> torch.Tensor:
        """Temporal mean normalisation of ``[B, F, frames]`` when ``cfg.temporal_norm`` (else as is)."""
        if not self.cfg.temporal_norm:
            return spec
        with torch.autocast(device_type=spec.device.type, enabled=False):
            return spec - spec.mean(dim=-1, keepdim=True)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.normalise(self.features(wave))


class FullSpectrum(nn.Module):
    """``[B, T]`` waveform → ``[B, 1, n_bins]`` magnitude DFT of the whole clip (``torch.fft.rfft``).

    ``n_bins=None`` keeps all T//2 + 1 bins (seed-000 code); Wilkinghoff's code keeps the first
    T//2. No log and no normalisation in either code.
    """

    def __init__(self, n_bins: int | None = None) -> None:
        super().__init__()
        self.n_bins = n_bins

    def output_length(self, n_samples: int) -> int:
        full = n_samples // 2 + 1
        return full if self.n_bins is None else min(self.n_bins, full)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=wave.device.type, enabled=False):
            spec = torch.fft.rfft(wave.float())
            if self.n_bins is not None:
                spec = spec[:, : self.n_bins]
            spec = magnitude(spec)
        return spec.unsqueeze(1)
