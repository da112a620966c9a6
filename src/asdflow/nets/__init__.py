"""Embedding networks and their front-ends.

Every network maps a waveform batch ``[B, T]`` (T = ``n_samples`` given at construction) to
``{"cat": [B, D], "branches": [z_1, ..., z_M]}`` and exposes ``emb_dim`` (D) and
``branch_dims``.
"""

from __future__ import annotations

from torch import nn

from asdflow.nets.ba import Ba, MultiBranchNet, SpectrogramEncoder, SpectrumEncoder
from asdflow.nets.frontends import FullSpectrum, Spectrogram, SpectrogramConfig
from asdflow.nets.wilkinghoff import Wilkinghoff

__all__ = [
    "NETWORKS",
    "Ba",
    "FullSpectrum",
    "MultiBranchNet",
    "Spectrogram",
    "SpectrogramConfig",
    "SpectrogramEncoder",
    "SpectrumEncoder",
    "Wilkinghoff",
    "build_net",
]

NETWORKS: dict[str, type[MultiBranchNet]] = {"Ba": Ba, "Wilkinghoff": Wilkinghoff}


def build_net(name: str, **cfg) -> MultiBranchNet:
    """Build a network by name (``"Ba"`` or ``"Wilkinghoff"``).

    ``cfg`` must contain ``n_samples`` (clip length the network is built for) and may hold any
    keyword of the class (widths, front-end options, ``bn_shift``, ``order``, ...).
    """
    try:
        cls = NETWORKS[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; known: {sorted(NETWORKS)}") from None
    if "n_samples" not in cfg:
        raise TypeError("build_net needs n_samples (the clip length in samples)")
    if "order" in cfg and cfg["order"] is not None:
        cfg["order"] = tuple(cfg["order"])
    net: nn.Module = cls(**cfg)
    return net
