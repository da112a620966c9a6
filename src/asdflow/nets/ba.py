"""Seed-000 baseline "Ba": multi-resolution three-branch embedding network, and its blocks.

Paper (seed 000 §3.1, §5.2): a 256-ms STFT magnitude spectrogram, an 8-ms STFT magnitude
spectrogram (50 % hops) and the magnitude DFT of the whole clip, each fed to its own CNN branch
giving a 128-d embedding; the three are concatenated to 384-d. Following Wilkinghoff (seed 002
§2) no layer has a bias term.

Layers follow the public code (``ibkuroyagi/unlabeled-asd multi_resolution_net.py``,
docs/reference.md §3.2), which the paper does not contradict:

* 2-D encoder (both spectrograms): BN per frequency bin → Conv7×7/2 (no padding) → BN → ReLU →
  MaxPool3/2 → 4 stages × 2 pre-activation ResNet blocks with SE (channels c, 2c, 4c, 8c; the
  first block of stages 2-4 has stride 2) → max over time → flatten (channels × frequency) →
  BN → Linear.
* 1-D encoder (full spectrum): Conv1d k256/s64 → ReLU → SE → Conv1d k64/s32 → ReLU → SE →
  Conv1d k16/s4 → ReLU → SE (no padding) → flatten → Linear → BN → ReLU → 4 × [Linear → BN →
  ReLU] → Linear.

Bias terms. "No bias terms in any layer" is read literally (paper default, ``bn_shift=False``):
batch norms keep their scale γ but have no shift β, so no layer adds a learned constant. The
public codes only drop the biases of convolutions and dense layers and keep the BN shifts
(PyTorch/Keras defaults): ``bn_shift=True`` reproduces that.

Short clips. The paper's clips are 18 s. For any other length the flatten sizes come from a dry
forward at construction (``n_samples``). Where an axis is too short for the code's unpadded
stem (fewer than 11 bins/frames, e.g. the 256-ms STFT of a 1-s clip has 8 frames), that axis of
the stem convolution gets "same" padding and, if still needed, the max-pool is padded — decided
per forward pass, so full-size inputs take exactly the code's path. Where the full spectrum is
too short for the unpadded 1-D convolutions (clips < 4.4 s at 16 kHz), the 1-D encoder uses
Wilkinghoff's "same" padding. (The code's own fallback, a 1-D encoder when a spectrogram side is
< 36, fails on such inputs, so it is not reproduced.)
"""

from __future__ import annotations

import logging
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from asdflow.nets.frontends import FullSpectrum, Spectrogram, SpectrogramConfig

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "SEBlock",
    "ResNetBlock",
    "SpectrogramEncoder",
    "SpectrumEncoder",
    "MultiBranchNet",
    "Ba",
    "Spec",
]

log = logging.getLogger(__name__)


class _NoShiftMixin:
    """Batch norm whose affine shift β can be removed (``shift=False``: ``bias`` is ``None``)."""

    def _drop_shift(self, shift: bool) -> None:
        if not shift:
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:  # base class would zero a None bias
        self.reset_running_stats()
        if self.weight is not None:
            nn.init.ones_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)


class BatchNorm1d(_NoShiftMixin, nn.BatchNorm1d):
    def __init__(self, num_features: int, shift: bool = False, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        self._drop_shift(shift)


class BatchNorm2d(_NoShiftMixin, nn.BatchNorm2d):
    def __init__(self, num_features: int, shift: bool = False, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        self._drop_shift(shift)


class SEBlock(nn.Module):
    """Squeeze-and-excitation over channels of ``[B, C, ...]``: global average → Linear(C→C/r) →
    ReLU → Linear(C/r→C) → sigmoid → channel scaling (no biases; at least one hidden unit)."""

    def __init__(self, channels: int, ratio: int = 16) -> None:
        super().__init__()
        hidden = max(channels // ratio, 1)
        self.fc = nn.Sequential(nn.Linear(channels, hidden, bias=False), nn.ReLU(),
                                nn.Linear(hidden, channels, bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.fc(x.flatten(2).mean(-1))
        return x * w.view(*w.shape, *([1] * (x.dim() - 2)))


class _SamePool2x2(nn.Module):
    """Keras ``MaxPooling2D((2, 2), padding="same")``: output ceil(n/2) per axis."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ph, pw = x.shape[-2] % 2, x.shape[-1] % 2
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), value=float("-inf"))
        return F.max_pool2d(x, 2, 2)


class ResNetBlock(nn.Module):
    """Pre-activation residual block with SE (reference §1a).

    ``x ← BN(x)``; residual: ReLU → Conv3×3(stride) → BN → ReLU → Conv3×3 → SE; skip: ``x``
    (stride 1, same width) or pool → Conv1×1; output = skip + residual (no activation).
    ``skip_pool="3x3"``: MaxPool(3, 2, pad 1) (seed-000 code); ``"2x2"``: MaxPool(2, 2, "same")
    (Wilkinghoff). ``input_bn=False`` drops the leading BN (Wilkinghoff's first block).
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1, *, bn_shift: bool = False, input_bn: bool = True,
                 skip_pool: str = "3x3", se_ratio: int = 16) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        self.bn_in = BatchNorm2d(c_in, shift=bn_shift) if input_bn else nn.Identity()
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            BatchNorm2d(c_out, shift=bn_shift),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            SEBlock(c_out, se_ratio),
        )
        if stride == 1 and c_in == c_out:
            self.skip: nn.Module = nn.Identity()
        else:
            if stride == 1:
                pool: nn.Module = nn.Identity()
            elif skip_pool == "3x3":
                pool = nn.MaxPool2d(3, stride=2, padding=1)
            elif skip_pool == "2x2":
                pool = _SamePool2x2()
            else:
                raise ValueError(f"skip_pool must be '3x3' or '2x2', got {skip_pool!r}")
            self.skip = nn.Sequential(pool, nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn_in(x)
        return self.skip(x) + self.body(x)


class _Stem(nn.Module):
    """Conv7×7/2 → BN → ReLU → MaxPool3/2 with per-axis padding chosen from the input size.

    ``padding="valid"`` (seed-000 code) pads nothing unless an axis is shorter than 11, in
    which case that axis gets "same" padding (and the pool is padded when the conv output is
    still shorter than 3). ``padding="same"`` (Wilkinghoff) always pads the conv like Keras.
    """

    KERNEL, STRIDE, POOL = 7, 2, 3
    _fold_pairs = (("conv", "bn"),)  # forward applies bn(conv(x)): foldable (asdflow.nets.inference)
    # Training on CPU: convolve a map taller than wide (the 256-ms branch: ~2000 bins x 16 frames)
    # in its transposed layout. The same sums; oneDNN computes this 1-channel conv's input
    # gradient (needed for the frequency BN's scale) several times faster that way
    # (benchmarks/train_step.py; README "Systems"). Class-level so the benchmark can compare.
    cpu_transpose_tall: bool = True

    def __init__(self, channels: int, *, bn_shift: bool, padding: str = "valid") -> None:
        super().__init__()
        if padding not in ("valid", "same"):
            raise ValueError(f"stem padding must be 'valid' or 'same', got {padding!r}")
        self.padding = padding
        self.conv = nn.Conv2d(1, channels, self.KERNEL, stride=self.STRIDE, bias=False)
        self.bn = BatchNorm2d(channels, shift=bn_shift)
        self._warned: set[tuple[int, int]] = set()

    def _axis_pad(self, n: int) -> tuple[int, int, int]:
        """(conv pad before, conv pad after, pool pad) for an axis of length n."""
        k, s = self.KERNEL, self.STRIDE
        if self.padding == "valid" and n >= k + s * (self.POOL - 1):  # n >= 11
            return 0, 0, 0
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        pool_pad = 0 if out >= self.POOL else 1
        return total // 2, total - total // 2, pool_pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fb, fa, fp = self._axis_pad(x.shape[-2])
        tb, ta, tp = self._axis_pad(x.shape[-1])
        if self.padding == "valid" and (fb or fa or tb or ta) and x.shape[-2:] not in self._warned:
            self._warned.add(tuple(x.shape[-2:]))
            log.info("spectrogram %s is smaller than the 11x11 the unpadded stem needs: padding that axis",
                     tuple(x.shape[-2:]))
        if fb or fa or tb or ta:
            x = F.pad(x, (tb, ta, fb, fa))
        # max-pool before ReLU: the same values (ReLU is monotone, so it commutes with max) on a
        # tensor 4x smaller; the stem's activation is the largest of the network
        x = F.max_pool2d(self.bn(self._conv(x)), self.POOL, self.STRIDE, padding=(fp, tp))
        return F.relu(x)

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        if (self.cpu_transpose_tall and self.training and torch.is_grad_enabled() and x.device.type == "cpu"
                and x.shape[-2] > x.shape[-1]):
            w = self.conv.weight.transpose(-1, -2)
            y = F.conv2d(x.transpose(-1, -2), w, self.conv.bias, stride=self.STRIDE)
            return y.transpose(-1, -2).contiguous()
        return self.conv(x)


class SpectrogramEncoder(nn.Module):
    """2-D ResNet over a ``[B, F, T]`` spectrogram → ``[B, emb_dim]``.

    ``style="seed000"``: the seed-000 code (unpadded stem, every block starts with BN, 3×3
    max-pool on downsampling skips). ``style="wilkinghoff"``: Wilkinghoff's Keras net ("same"
    stem, no BN before the first block, 2×2 "same" max-pool on downsampling skips). The final
    pooling is a max over all frames in both (Wilkinghoff pools 18 frames, i.e. all of them for
    18-s clips); the flatten size depends only on F, so any clip length works.
    """

    def __init__(self, n_freq: int, emb_dim: int = 128, base_channels: int = 16, *, bn_shift: bool = False,
                 style: str = "seed000", probe_frames: int = 16) -> None:
        super().__init__()
        if style not in ("seed000", "wilkinghoff"):
            raise ValueError(f"style must be 'seed000' or 'wilkinghoff', got {style!r}")
        self.style = style
        c = base_channels
        wil = style == "wilkinghoff"
        self.freq_bn = BatchNorm1d(n_freq, shift=bn_shift)
        self.stem = _Stem(c, bn_shift=bn_shift, padding="same" if wil else "valid")
        blocks, c_in = [], c
        for i, c_out in enumerate((c, 2 * c, 4 * c, 8 * c)):
            kw = dict(bn_shift=bn_shift, skip_pool="2x2" if wil else "3x3")
            blocks.append(ResNetBlock(c_in, c_out, stride=1 if i == 0 else 2, input_bn=not (wil and i == 0), **kw))
            blocks.append(ResNetBlock(c_out, c_out, **kw))
            c_in = c_out
        self.stages = nn.Sequential(*blocks)
        flat = self._probe(n_freq, probe_frames)
        self.head = nn.Sequential(BatchNorm1d(flat, shift=bn_shift), nn.Linear(flat, emb_dim, bias=False))

    @torch.no_grad()
    def _probe(self, n_freq: int, n_frames: int) -> int:
        was = self.training
        self.eval()  # leave running statistics untouched
        try:
            return self._features(torch.zeros(1, n_freq, n_frames)).shape[1]
        finally:
            self.train(was)

    def _features(self, spec: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(self.freq_bn(spec).unsqueeze(1)))
        return x.amax(dim=-1).flatten(1)  # max over time, keep channels × frequency

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return self.head(self._features(spec))


class SpectrumEncoder(nn.Module):
    """1-D conv encoder over the full-clip magnitude spectrum ``[B, 1, L]`` → ``[B, emb_dim]``.

    Three Conv1d (k256/s64, k64/s32, k16/s4) each → ReLU → SE; flatten → Linear → BN → ReLU →
    ``n_dense`` × [Linear → BN → ReLU] → Linear. Seed-000 code: ``padding="valid"``,
    ``n_dense=4``; Wilkinghoff: ``padding="same"`` (Keras, length ceil(L/stride)), ``n_dense=3``.
    ``padding="auto"`` is "valid" when L is long enough (≥ 35 008 bins, clips ≥ 4.4 s at 16 kHz)
    and "same" otherwise. The flatten size is fixed by ``length`` at construction.
    """

    KERNELS = ((256, 64), (64, 32), (16, 4))

    def __init__(self, length: int, emb_dim: int = 128, channels: int = 128, *, padding: str = "auto",
                 n_dense: int = 4, bn_shift: bool = False) -> None:
        super().__init__()
        if padding not in ("valid", "same", "auto"):
            raise ValueError(f"padding must be 'valid', 'same' or 'auto', got {padding!r}")
        self.min_valid_length = self._min_valid_length()
        if padding == "auto":
            padding = "valid" if length >= self.min_valid_length else "same"
            if padding == "same":
                log.info("full spectrum of %d bins is shorter than the %d the unpadded convolutions need: "
                         "using 'same' padding", length, self.min_valid_length)
        elif padding == "valid" and length < self.min_valid_length:
            raise ValueError(f"padding='valid' needs a spectrum of >= {self.min_valid_length} bins, got {length}")
        self.padding = padding
        self.length = length
        convs, c_in = [], 1
        for k, s in self.KERNELS:
            convs.append(nn.ModuleList([nn.Conv1d(c_in, channels, k, stride=s, bias=False), SEBlock(channels)]))
            c_in = channels
        self.convs = nn.ModuleList(convs)
        flat = channels * self._out_length(length)
        dense: list[nn.Module] = [nn.Linear(flat, emb_dim, bias=False), BatchNorm1d(emb_dim, shift=bn_shift), nn.ReLU()]
        for _ in range(n_dense):
            dense += [nn.Linear(emb_dim, emb_dim, bias=False), BatchNorm1d(emb_dim, shift=bn_shift), nn.ReLU()]
        dense.append(nn.Linear(emb_dim, emb_dim, bias=False))
        self.dense = nn.Sequential(*dense)

    @classmethod
    def _min_valid_length(cls) -> int:
        need = 1
        for k, s in reversed(cls.KERNELS):
            need = (need - 1) * s + k
        return need

    def _out_length(self, n: int) -> int:
        for k, s in self.KERNELS:
            n = -(-n // s) if self.padding == "same" else (n - k) // s + 1
        return n

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        for conv, se in self.convs:
            if self.padding == "same":
                k, s = conv.kernel_size[0], conv.stride[0]
                out = -(-x.shape[-1] // s)
                total = max((out - 1) * s + k - x.shape[-1], 0)
                x = F.pad(x, (total // 2, total - total // 2))
            x = se(F.relu(conv(x)))
        return x.flatten(1)

    def forward(self, spectrum: torch.Tensor) -> torch.Tensor:
        if spectrum.shape[-1] != self.length:
            raise ValueError(f"spectrum has {spectrum.shape[-1]} bins, the encoder was built for {self.length}")
        return self.dense(self._features(spectrum))


class MultiBranchNet(nn.Module):
    """Branches of (front-end, encoder) whose embeddings are concatenated.

    ``forward(wave [B, T])`` returns ``{"cat": [B, Σ d_m], "branches": [z_1, ..., z_M]}`` with
    the branches in ``order``; ``cat`` is the scoring embedding, each ``z_m`` feeds its own
    sub-space loss head. ``emb_dim`` and ``branch_dims`` give the sizes.
    """

    def __init__(self, branches: dict[str, tuple[nn.Module, nn.Module]], order: Sequence[str], n_samples: int,
                 emb_dims: dict[str, int]) -> None:
        super().__init__()
        order = list(order)
        if sorted(order) != sorted(branches):
            raise ValueError(f"order must name every branch exactly once: got {order}, branches {sorted(branches)}")
        self.order = order
        self.n_samples = n_samples
        self.frontends = nn.ModuleDict({k: fe for k, (fe, _) in branches.items()})
        self.encoders = nn.ModuleDict({k: enc for k, (_, enc) in branches.items()})
        self.branch_dims = [emb_dims[k] for k in order]
        self.emb_dim = sum(self.branch_dims)

    def forward(self, wave: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        if wave.dim() != 2:
            raise ValueError(f"expected a waveform batch [B, T], got shape {tuple(wave.shape)}")
        zs = [self.encoders[k](self.frontends[k](wave)) for k in self.order]
        return {"cat": torch.cat(zs, dim=1), "branches": zs}


class Ba(MultiBranchNet):
    """Seed-000 baseline: full-clip DFT + STFT 256 ms + STFT 8 ms (50 % hops) → 3 × 128 = 384-d.

    Branch keys: ``fft``, ``stft_long``, ``stft_short``; ``order`` defaults to the code's
    concatenation order [FFT, 256 ms, 8 ms] (the paper lists the spectrograms first; the order
    only permutes the embedding). Windows are given in seconds (n_fft = window × rate: 4096 and
    128 at 16 kHz). Front-end defaults are the code's (linear magnitude, torchaudio window
    normalisation, 200-8000 Hz, centred reflect-padded frames), which the paper leaves open.

    Widths: ``emb_dim`` per branch (128), ``base_channels`` of the 2-D encoders (16 → 16/32/64/
    128 channels), ``spectrum_channels`` of the 1-D encoder (128). ``bn_shift`` see module doc.

    ``stft_windows``: DFT sizes in samples of the spectrogram branches, replacing the two
    windows above (``None``, the default, keeps them). Each size gives a branch ``stft<n>``
    (hop = ``hop_fraction`` × n) with its own 2-D encoder, next to the full-spectrum branch:
    ``[256, 1024, 4096]`` is the Spec front-end of seed 003 (§3: 3 spectrograms + the amplitude
    spectrum, 4 × 128 = 512-d; network ``Spec``). ``order`` defaults to ``fft`` first, then the
    spectrograms in the listed order.
    """

    def __init__(
        self,
        n_samples: int,
        sample_rate: int = 16000,
        emb_dim: int = 128,
        base_channels: int = 16,
        spectrum_channels: int = 128,
        long_window_s: float = 0.256,
        short_window_s: float = 0.008,
        hop_fraction: float = 0.5,
        f_min: float | None = 200.0,
        f_max: float | None = 8000.0,
        normalized: str | bool = "window",
        center: bool = True,
        log: bool = False,
        temporal_norm: bool = False,
        bn_shift: bool = False,
        spectrum_padding: str = "auto",
        order: Sequence[str] | None = None,
        stft_windows: Sequence[int] | None = None,
    ) -> None:
        if stft_windows is None:
            windows = [("stft_long", int(round(long_window_s * sample_rate))),
                       ("stft_short", int(round(short_window_s * sample_rate)))]
        else:
            sizes = [int(n) for n in stft_windows]
            if not sizes or len(set(sizes)) != len(sizes) or min(sizes) < 2:
                raise ValueError(f"stft_windows must be distinct DFT sizes >= 2 (samples), got {list(stft_windows)}")
            windows = [(f"stft{n}", n) for n in sizes]
        if order is None:
            order = ["fft"] + [k for k, _ in windows]
        branches: dict[str, tuple[nn.Module, nn.Module]] = {}
        for key, n_fft in windows:
            cfg = SpectrogramConfig(n_fft=n_fft, hop=max(1, int(round(n_fft * hop_fraction))), sample_rate=sample_rate,
                                    center=center, normalized=normalized, f_min=f_min, f_max=f_max, log=log,
                                    temporal_norm=temporal_norm)
            enc = SpectrogramEncoder(cfg.n_bins, emb_dim, base_channels, bn_shift=bn_shift, style="seed000",
                                     probe_frames=cfg.n_frames(n_samples))
            branches[key] = (Spectrogram(cfg), enc)
        fe = FullSpectrum()
        branches["fft"] = (fe, SpectrumEncoder(fe.output_length(n_samples), emb_dim, spectrum_channels,
                                               padding=spectrum_padding, n_dense=4, bn_shift=bn_shift))
        super().__init__(branches, order, n_samples, {k: emb_dim for k in branches})


class Spec(Ba):
    """Seed 003's Spec front-end (§2.2.1, §3): the amplitude spectrum and three magnitude
    spectrograms with DFT sizes 256, 1024 and 4096 (hop = half the DFT size, 200-8000 Hz bins),
    one encoder per feature giving 128-d, concatenated to 4 × 128 = 512-d.

    It is :class:`Ba` with ``stft_windows=(256, 1024, 4096)``: the paper builds Spec on the
    multi-resolution network of Fujimura et al. (ICASSP 2025), whose public code is the one Ba
    follows, so the encoders, front-end defaults and bias-free layers are Ba's. Branch keys
    ``fft``, ``stft256``, ``stft1024``, ``stft4096`` (that concatenation order by default).
    """

    def __init__(self, n_samples: int, stft_windows: Sequence[int] = (256, 1024, 4096), **kwargs) -> None:
        super().__init__(n_samples, stft_windows=stft_windows, **kwargs)
