"""Encoder building blocks shared by Ba and Wilkinghoff (no bias terms in convs/linears)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SEBlock", "ResNetBlock", "SpectrogramEncoder", "SpectrumEncoder"]


class SEBlock(nn.Module):
    """Squeeze-and-excitation (ratio 16) over the channel axis of 1-D or 2-D feature maps."""

    def __init__(self, channels: int, ratio: int = 16) -> None:
        super().__init__()
        hidden = max(channels // ratio, 1)
        self.fc = nn.Sequential(nn.Linear(channels, hidden, bias=False), nn.ReLU(),
                                nn.Linear(hidden, channels, bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.fc(x.flatten(2).mean(-1))
        return x * w.view(*w.shape, *([1] * (x.dim() - 2)))


class ResNetBlock(nn.Module):
    """Pre-activation residual block with SE (reference §1a): BN(x) → [ReLU-Conv-BN-ReLU-Conv-SE]
    + skip, where the skip is BN(x) (stride 1) or MaxPool → Conv1×1 (stride 2)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.bn_in = nn.BatchNorm2d(c_in)
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            SEBlock(c_out),
        )
        if stride != 1 or c_in != c_out:
            pool = nn.MaxPool2d(3, stride=stride, padding=1) if stride != 1 else nn.Identity()
            self.skip = nn.Sequential(pool, nn.Conv2d(c_in, c_out, 1, bias=False))
        else:
            self.skip = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn_in(x)
        return self.skip(x) + self.body(x)


class SpectrogramEncoder(nn.Module):
    """2-D ResNet over a ``[B, F, T]`` spectrogram → ``[B, emb_dim]``.

    BN per frequency bin → Conv7×7/2 → BN → ReLU → MaxPool3/2 → 4 stages of 2 ResNet blocks
    (channels c, 2c, 4c, 8c; stride 2 from the second stage) → max over time → flatten
    (channels × frequency) → BN → Linear. Convolutions are zero-padded so that short clips
    (few frames) still give at least one frame; the reference code pads the first conv by 0.
    """

    def __init__(self, n_freq: int, n_frames: int, emb_dim: int = 128, base_channels: int = 16) -> None:
        super().__init__()
        c = base_channels
        self.freq_bn = nn.BatchNorm1d(n_freq)
        self.stem = nn.Sequential(nn.Conv2d(1, c, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                                  nn.MaxPool2d(3, stride=2, padding=1))
        stages, c_in = [], c
        for i, c_out in enumerate((c, 2 * c, 4 * c, 8 * c)):
            stages += [ResNetBlock(c_in, c_out, stride=1 if i == 0 else 2), ResNetBlock(c_out, c_out)]
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        with torch.no_grad():
            flat = self._features(torch.zeros(2, n_freq, max(n_frames, 1)), train_bn=False).shape[1]
        self.head = nn.Sequential(nn.BatchNorm1d(flat), nn.Linear(flat, emb_dim, bias=False))

    def _features(self, spec: torch.Tensor, train_bn: bool = True) -> torch.Tensor:
        if not train_bn:  # shape probe at construction: leave running statistics untouched
            was = self.training
            self.eval()
        x = self.freq_bn(spec).unsqueeze(1)
        x = self.stages(self.stem(x))
        x = x.amax(dim=-1).flatten(1)  # max over time, keep channels × frequency
        if not train_bn:
            self.train(was)
        return x

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return self.head(self._features(spec))


class SpectrumEncoder(nn.Module):
    """1-D conv encoder over the full-clip magnitude spectrum ``[B, 1, L]`` → ``[B, emb_dim]``.

    Conv1d(k256/s64) → ReLU → SE → Conv1d(k64/s32) → ReLU → SE → Conv1d(k16/s4) → ReLU → SE,
    flatten → Linear → BN → ReLU → 4 × [Linear → BN → ReLU] → Linear (reference §1a).
    ``padding="valid"`` is the seed-000 code; ``"same"`` (Wilkinghoff's Keras code) keeps every
    length at ceil(L/stride), so short clips work. With ``valid`` a spectrum shorter than the
    kernels need is zero-padded at the end (logged at construction through ``min_length``).
    """

    KERNELS = ((256, 64), (64, 32), (16, 4))

    def __init__(self, length: int, emb_dim: int = 128, channels: int = 128, padding: str = "valid",
                 n_dense: int = 4) -> None:
        super().__init__()
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
        self.padding = padding
        layers, c_in = [], 1
        for k, s in self.KERNELS:
            layers += [nn.Conv1d(c_in, channels, k, stride=s, bias=False), nn.ReLU(), SEBlock(channels)]
            c_in = channels
        self.convs = nn.Sequential(*layers)
        self.min_length = self._min_valid_length() if padding == "valid" else 1
        with torch.no_grad():
            flat = self._features(torch.zeros(1, 1, length)).shape[1]
        dense: list[nn.Module] = [nn.Linear(flat, emb_dim, bias=False), nn.BatchNorm1d(emb_dim), nn.ReLU()]
        for _ in range(n_dense):
            dense += [nn.Linear(emb_dim, emb_dim, bias=False), nn.BatchNorm1d(emb_dim), nn.ReLU()]
        dense.append(nn.Linear(emb_dim, emb_dim, bias=False))
        self.dense = nn.Sequential(*dense)

    def _min_valid_length(self) -> int:
        need = 1
        for k, s in reversed(self.KERNELS):
            need = (need - 1) * s + k
        return need

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == "same":
            for layer in self.convs:
                if isinstance(layer, nn.Conv1d):
                    k, s = layer.kernel_size[0], layer.stride[0]
                    out = -(-x.shape[-1] // s)
                    total = max((out - 1) * s + k - x.shape[-1], 0)
                    x = nn.functional.pad(x, (total // 2, total - total // 2))
                x = layer(x)
            return x.flatten(1)
        if x.shape[-1] < self.min_length:
            x = nn.functional.pad(x, (0, self.min_length - x.shape[-1]))
        return self.convs(x).flatten(1)

    def forward(self, spectrum: torch.Tensor) -> torch.Tensor:
        return self.dense(self._features(spectrum))
