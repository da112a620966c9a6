"""Front-ends: magnitude STFT spectrograms and the full-clip magnitude spectrum (torch only)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["SpectrogramConfig", "Spectrogram", "FullSpectrum"]


@dataclass(frozen=True)
class SpectrogramConfig:
    """Magnitude STFT settings. Defaults are the seed-000 code's 256-ms branch.

    f_min/f_max: keep bins from the first bin ≥ f_min up to f_max inclusive (the code cuts
    200-8000 Hz; ``None`` keeps all bins as Wilkinghoff's code effectively does).
    """

    n_fft: int = 4096
    hop: int | None = None  # None = 50 % of n_fft
    sample_rate: int = 16000
    f_min: float | None = 200.0
    f_max: float | None = 8000.0
    normalized: bool = True
    log: bool = False  # the reference code feeds linear magnitudes
    temporal_norm: bool = False  # subtract each bin's mean over time (Wilkinghoff)

    @property
    def hop_length(self) -> int:
        return self.hop or self.n_fft // 2

    def bin_range(self) -> tuple[int, int]:
        freqs = torch.fft.rfftfreq(self.n_fft, d=1.0 / self.sample_rate)
        lo = 0 if self.f_min is None else int(torch.searchsorted(freqs, torch.tensor(float(self.f_min))))
        hi = len(freqs) if self.f_max is None else int(torch.searchsorted(freqs, torch.tensor(float(self.f_max)), right=True))
        if hi <= lo:
            raise ValueError(f"empty frequency range {self.f_min}-{self.f_max} Hz for n_fft {self.n_fft}")
        return lo, hi

    @property
    def n_bins(self) -> int:
        lo, hi = self.bin_range()
        return hi - lo


class Spectrogram(nn.Module):
    """``[B, T]`` waveform → ``[B, F, frames]`` magnitude spectrogram (Hann window, centred)."""

    def __init__(self, cfg: SpectrogramConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)
        self.lo, self.hi = cfg.bin_range()

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        spec = torch.stft(wave.float(), n_fft=c.n_fft, hop_length=c.hop_length, window=self.window, center=True,
                          pad_mode="reflect", normalized=c.normalized, return_complex=True).abs()
        spec = spec[:, self.lo : self.hi]
        if c.log:
            spec = torch.log(spec + 1e-7)
        if c.temporal_norm:
            spec = spec - spec.mean(dim=-1, keepdim=True)
        return spec


class FullSpectrum(nn.Module):
    """``[B, T]`` waveform → ``[B, 1, T//2 + 1]`` magnitude DFT of the whole clip."""

    def __init__(self, n_bins: int | None = None) -> None:
        super().__init__()
        self.n_bins = n_bins  # keep only the first n_bins (Wilkinghoff: 144000 of 144001)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.fft.rfft(wave.float()).abs()
        if self.n_bins is not None:
            spec = spec[:, : self.n_bins]
        return spec.unsqueeze(1)
