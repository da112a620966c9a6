"""EfficientNet-B0 with torchvision's module layout (Tan & Le 2019; ``torchvision.models.efficientnet_b0``).

torchvision cannot be a dependency here (its wheels pull a CUDA build of torch), so the
architecture is re-implemented with the **same module names and parameter shapes**: a
``state_dict`` saved from ``torchvision.models.efficientnet_b0()`` loads into
:class:`EfficientNetB0` unchanged (``load_state_dict(sd)``, strict), and the other way round.
A user with ImageNet weights (``EfficientNet_B0_Weights.IMAGENET1K_V1``, downloaded elsewhere
with ``torch.save(efficientnet_b0(weights=...).state_dict(), "b0.pth")``) passes the file to
:func:`load_torchvision_weights` (``serial_oe.pretrained`` in the config).

Layout (keys ``features.0.0.weight`` … ``features.8.1.running_var``, ``classifier.1.weight``):

* ``features.0``: Conv3×3/2 (3→32) + BN + SiLU (``Conv2dNormActivation``: a Sequential of
  conv ``0``, batch norm ``1``, activation ``2``).
* ``features.1`` … ``features.7``: stages of MBConv blocks, ``features.<stage>.<block>.block``
  = [expand 1×1 conv-BN-SiLU (absent when the expand ratio is 1), depthwise k×k conv-BN-SiLU,
  squeeze-excitation (``fc1``/``fc2`` 1×1 convs with bias, SiLU, sigmoid; squeeze width =
  input channels // 4), project 1×1 conv-BN]; residual connection with stochastic depth when
  stride 1 and in = out channels. Stage settings (expand, kernel, stride, in, out, layers):
  (1,3,1,32,16,1) (6,3,2,16,24,2) (6,5,2,24,40,2) (6,3,2,40,80,3) (6,5,1,80,112,3)
  (6,5,2,112,192,4) (6,3,1,192,320,1).
* ``features.8``: 1×1 conv 320→1280 + BN + SiLU; ``avgpool``; ``classifier`` = Dropout(0.2),
  Linear(1280 → ``num_classes``).

Stochastic depth as torchvision's ``StochasticDepth(p, "row")``: block b of the 16 gets
``p = 0.2 · b / 16``; in training each sample's residual branch is dropped with probability p
and scaled by 1/(1 − p); identity in eval mode. Batch norms are PyTorch's defaults (eps 1e-5,
momentum 0.1), as torchvision's B0. Weight initialisation is torchvision's (Kaiming-normal
fan-out convs, unit/zero batch norms, uniform ±1/√out linear layers, zero biases).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

__all__ = ["B0_STAGES", "EfficientNetB0", "MBConv", "SqueezeExcitation", "StochasticDepth",
           "load_torchvision_weights", "stochastic_depth"]

#: (expand ratio, kernel, stride, in channels, out channels, layers) of the seven B0 stages.
B0_STAGES = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
             (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1))


def stochastic_depth(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """torchvision's ``stochastic_depth(x, p, "row")``: keep each sample with probability 1 − p
    and scale kept ones by 1/(1 − p) in training; identity otherwise."""
    if not training or p == 0.0:
        return x
    survival = 1.0 - p
    noise = torch.empty([x.shape[0]] + [1] * (x.dim() - 1), dtype=x.dtype, device=x.device).bernoulli_(survival)
    if survival > 0.0:
        noise.div_(survival)
    return x * noise


class StochasticDepth(nn.Module):
    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return stochastic_depth(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, mode=row"


class ConvNormActivation(nn.Sequential):
    """torchvision's ``Conv2dNormActivation``: conv (no bias, padding (k − 1) // 2), BN, activation."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1, groups: int = 1,
                 activation: bool = True) -> None:
        layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                                   nn.BatchNorm2d(c_out)]
        if activation:
            layers.append(nn.SiLU(inplace=True))
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """torchvision's ``SqueezeExcitation`` (``fc1``/``fc2`` are 1×1 convs with bias)."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.SiLU(inplace=True)
        self.scale_activation = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return s * x


class MBConv(nn.Module):
    """Mobile inverted bottleneck block of EfficientNet (torchvision's ``MBConv``)."""

    def __init__(self, expand: int, kernel: int, stride: int, c_in: int, c_out: int, sd_prob: float) -> None:
        super().__init__()
        self.use_res_connect = stride == 1 and c_in == c_out
        hidden = c_in * expand  # torchvision's _make_divisible(c_in * expand, 8) is exact for B0
        layers: list[nn.Module] = []
        if hidden != c_in:
            layers.append(ConvNormActivation(c_in, hidden, 1))
        layers.append(ConvNormActivation(hidden, hidden, kernel, stride, groups=hidden))
        layers.append(SqueezeExcitation(hidden, max(1, c_in // 4)))
        layers.append(ConvNormActivation(hidden, c_out, 1, activation=False))
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(sd_prob)
        self.out_channels = c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.use_res_connect:
            out = self.stochastic_depth(out) + x
        return out


class EfficientNetB0(nn.Module):
    """EfficientNet-B0 (``[B, 3, H, W]`` → ``[B, num_classes]``), module names as torchvision's.

    ``features(x)`` gives the 1280-channel map, ``embed(x)`` the pooled 1280-d vector; the
    classifier is ``Dropout(dropout) → Linear(1280, num_classes)``.
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2, stochastic_depth_prob: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvNormActivation(3, B0_STAGES[0][3], 3, stride=2)]
        total = sum(s[5] for s in B0_STAGES)
        block_id = 0
        for expand, kernel, stride, c_in, c_out, n in B0_STAGES:
            stage = []
            for i in range(n):
                sd = stochastic_depth_prob * float(block_id) / total
                stage.append(MBConv(expand, kernel, stride if i == 0 else 1, c_in if i == 0 else c_out, c_out, sd))
                block_id += 1
            layers.append(nn.Sequential(*stage))
        last_in = B0_STAGES[-1][4]
        self.num_features = 4 * last_in  # 1280
        layers.append(ConvNormActivation(last_in, self.num_features, 1))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True), nn.Linear(self.num_features, num_classes))
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                r = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -r, r)
                nn.init.zeros_(m.bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(self.features(x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


def _state_dict_from_file(path: str | Path) -> Mapping[str, torch.Tensor]:
    blob = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):  # common checkpoint wrappers
        if isinstance(blob, Mapping) and key in blob and isinstance(blob[key], Mapping):
            blob = blob[key]
    if not isinstance(blob, Mapping):
        raise ValueError(f"{path}: expected a state_dict (mapping of tensors), got {type(blob).__name__}")
    return blob


def load_torchvision_weights(model: EfficientNetB0, weights: str | Path | Mapping[str, torch.Tensor]) -> list[str]:
    """Load a torchvision ``efficientnet_b0`` state dict (a file path or a mapping) into ``model``.

    Every ``features.*`` tensor must be present with its shape (else ``ValueError`` naming the
    keys). The ``classifier.*`` tensors are loaded when their shapes match (an ImageNet head has
    1000 outputs: with another ``num_classes`` it is skipped and keeps its initialisation).
    Returns the skipped keys. A ``module.`` prefix (DataParallel) is removed.
    """
    sd = _state_dict_from_file(weights) if isinstance(weights, (str, Path)) else weights
    sd = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in sd.items()}
    own = model.state_dict()
    missing = [k for k in own if k.startswith("features.") and k not in sd]
    unexpected = [k for k in sd if k not in own]
    bad_shape = [k for k in own if k in sd and k.startswith("features.") and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or bad_shape:
        raise ValueError(f"not a torchvision efficientnet_b0 state dict: missing {missing[:5]}, unexpected "
                         f"{unexpected[:5]}, wrong shape {bad_shape[:5]}")
    skipped = [k for k in own
               if k.startswith("classifier.") and (k not in sd or tuple(sd[k].shape) != tuple(own[k].shape))]
    model.load_state_dict({**own, **{k: v for k, v in sd.items() if k not in skipped}}, strict=True)
    return skipped
