"""Embedding networks: Ba (3-branch multi-resolution, seed 000) and Wilkinghoff (2-branch).

Both map a waveform batch ``[B, T]`` to ``{"cat": [B, D], "branches": [z_1, ..., z_M]}`` where
``cat`` is the concatenation of the branch embeddings (the vector used for scoring) and each
``z_m`` feeds its own sub-space loss head.
"""

from __future__ import annotations

import torch
from torch import nn

from asdflow.nets.blocks import SpectrogramEncoder, SpectrumEncoder
from asdflow.nets.frontends import FullSpectrum, Spectrogram, SpectrogramConfig

__all__ = ["MultiBranchNet", "Ba", "Wilkinghoff", "build_net", "NETWORKS"]


class MultiBranchNet(nn.Module):
    """Branches of (front-end, encoder) whose embeddings are concatenated."""

    def __init__(self, branches: dict[str, tuple[nn.Module, nn.Module]], order: list[str]) -> None:
        super().__init__()
        missing = set(order) ^ set(branches)
        if missing:
            raise ValueError(f"branch order must name every branch exactly once: {sorted(missing)}")
        self.order = list(order)
        self.frontends = nn.ModuleDict({k: fe for k, (fe, _) in branches.items()})
        self.encoders = nn.ModuleDict({k: enc for k, (_, enc) in branches.items()})
        with torch.no_grad():
            dims = [self._probe_dim(k) for k in self.order]
        self.branch_dims = dims
        self.emb_dim = sum(dims)

    def _probe_dim(self, key: str) -> int:
        head = self.encoders[key]
        last = [m for m in head.modules() if isinstance(m, nn.Linear)][-1]
        return last.out_features

    def forward(self, wave: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        zs = [self.encoders[k](self.frontends[k](wave)) for k in self.order]
        return {"cat": torch.cat(zs, dim=1), "branches": zs}


def _frames(n_samples: int, hop: int) -> int:
    return n_samples // hop + 1  # centred STFT


def Ba(
    n_samples: int,
    sample_rate: int = 16000,
    emb_dim: int = 128,
    base_channels: int = 16,
    spectrum_channels: int = 128,
    long_window_s: float = 0.256,
    short_window_s: float = 0.008,
    f_min: float | None = 200.0,
    f_max: float | None = 8000.0,
    log: bool = False,
    temporal_norm: bool = False,
    order: tuple[str, ...] = ("fft", "stft_long", "stft_short"),
) -> MultiBranchNet:
    """Seed-000 baseline: STFT 256 ms + STFT 8 ms (50 % hops) + full-clip DFT → 3 × 128 = 384-d.

    Defaults follow the public code (linear magnitudes, 200-8000 Hz, order [FFT, 256 ms, 8 ms]),
    which the paper does not contradict; windows are set in seconds (n_fft = window × rate).
    """
    branches: dict[str, tuple[nn.Module, nn.Module]] = {}
    for key, win in (("stft_long", long_window_s), ("stft_short", short_window_s)):
        cfg = SpectrogramConfig(n_fft=int(round(win * sample_rate)), sample_rate=sample_rate, f_min=f_min,
                                f_max=f_max, log=log, temporal_norm=temporal_norm)
        branches[key] = (Spectrogram(cfg), SpectrogramEncoder(cfg.n_bins, _frames(n_samples, cfg.hop_length),
                                                              emb_dim, base_channels))
    branches["fft"] = (FullSpectrum(), SpectrumEncoder(n_samples // 2 + 1, emb_dim, spectrum_channels, "valid"))
    return MultiBranchNet(branches, list(order))


def Wilkinghoff(
    n_samples: int,
    sample_rate: int = 16000,
    emb_dim: int = 128,
    base_channels: int = 16,
    spectrum_channels: int = 128,
    window_s: float = 0.064,
    order: tuple[str, ...] = ("fft", "stft"),
) -> MultiBranchNet:
    """Wilkinghoff's two-branch net (seed 002 / seed 000 §5.2): 64-ms magnitude spectrogram with
    temporal mean normalisation (all bins) + full spectrum → 2 × 128 = 256-d."""
    cfg = SpectrogramConfig(n_fft=int(round(window_s * sample_rate)), sample_rate=sample_rate, f_min=None,
                            f_max=None, normalized=False, temporal_norm=True)
    branches = {
        "stft": (Spectrogram(cfg), SpectrogramEncoder(cfg.n_bins, _frames(n_samples, cfg.hop_length), emb_dim,
                                                      base_channels)),
        "fft": (FullSpectrum(n_samples // 2), SpectrumEncoder(n_samples // 2, emb_dim, spectrum_channels, "same")),
    }
    return MultiBranchNet(branches, list(order))


NETWORKS = {"Ba": Ba, "Wilkinghoff": Wilkinghoff}


def build_net(name: str, *, n_samples: int, **options) -> MultiBranchNet:
    """Build a network by name (``Ba`` or ``Wilkinghoff``) for clips of ``n_samples``."""
    try:
        factory = NETWORKS[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; known: {sorted(NETWORKS)}") from None
    if "order" in options:
        options["order"] = tuple(options["order"])
    return factory(n_samples, **options)
