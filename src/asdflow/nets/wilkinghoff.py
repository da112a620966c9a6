"""Wilkinghoff's two-branch embedding network (seed 002 §2; seed 000 §5.2).

Paper: a magnitude spectrogram with the temporal mean subtracted ("to remove static frequency
information") and the full magnitude spectrum, each through a convolutional branch giving 128-d,
concatenated to 256-d; 64-ms window with 50 % hop (seed 000 §5.2); no bias terms in any layer.

Code (``wilkinghoff/ssl4asd main_statex+featex.py``, docs/reference.md §3.2), used where the papers
are silent: ``tf.signal.stft(1024, 512, pad_end=False)`` — no centring, no normalisation, all
513 bins (the 200-8000 Hz arguments are never applied); temporal mean normalisation, then BN per
bin; a ResNet with a "same"-padded stem, no BN before the first block, and 2×2 "same" max-pool
on the downsampling skips; the spectrum branch keeps the first T/2 DFT bins and uses "same"
padded convolutions with 4 dense layers before the output layer. The code's residual path of
stage 1 block 2 (ReLU before BN) is a quirk not reproduced; its final pooling over 18 frames is
a max over all frames here (identical for 18-s clips). Batch norms have no shift by default
(``bn_shift=False``, the paper's "no bias terms in any layer"; the Keras code keeps BN shifts:
``bn_shift=True``).

Branch keys ``fft`` and ``stft``; the code concatenates [spectrum, spectrogram].

Seed 002's self-supervised exchanges (StatEx on the spectrogram before its temporal mean
normalisation, FeatEx of the second branch's embedding) are training-time operations on this
net: :mod:`asdflow.losses.ssl`, switched on by ``train.ssl``.
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from asdflow.nets.ba import MultiBranchNet, SpectrogramEncoder, SpectrumEncoder
from asdflow.nets.frontends import FullSpectrum, Spectrogram, SpectrogramConfig

__all__ = ["Wilkinghoff"]


class Wilkinghoff(MultiBranchNet):
    """64-ms spectrogram (temporal mean normalised) + full spectrum → 2 × 128 = 256-d."""

    def __init__(
        self,
        n_samples: int,
        sample_rate: int = 16000,
        emb_dim: int = 128,
        base_channels: int = 16,
        spectrum_channels: int = 128,
        window_s: float = 0.064,
        hop_fraction: float = 0.5,
        f_min: float | None = None,
        f_max: float | None = None,
        normalized: str | bool = "none",
        center: bool = False,
        log: bool = False,
        temporal_norm: bool = True,
        bn_shift: bool = False,
        spectrum_padding: str = "same",
        order: Sequence[str] = ("fft", "stft"),
    ) -> None:
        n_fft = int(round(window_s * sample_rate))
        cfg = SpectrogramConfig(n_fft=n_fft, hop=max(1, int(round(n_fft * hop_fraction))), sample_rate=sample_rate,
                                center=center, normalized=normalized, f_min=f_min, f_max=f_max, log=log,
                                temporal_norm=temporal_norm)
        fe = FullSpectrum(n_bins=n_samples // 2)
        branches: dict[str, tuple[nn.Module, nn.Module]] = {
            "stft": (Spectrogram(cfg), SpectrogramEncoder(cfg.n_bins, emb_dim, base_channels, bn_shift=bn_shift,
                                                          style="wilkinghoff", probe_frames=cfg.n_frames(n_samples))),
            "fft": (fe, SpectrumEncoder(fe.output_length(n_samples), emb_dim, spectrum_channels,
                                        padding=spectrum_padding, n_dense=3, bn_shift=bn_shift)),
        }
        super().__init__(branches, order, n_samples, {k: emb_dim for k in branches})
