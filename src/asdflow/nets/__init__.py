"""Embedding networks and their front-ends.

Every network maps a waveform batch ``[B, T]`` (T = ``n_samples`` given at construction) to
``{"cat": [B, D], "branches": [z_1, ..., z_M]}`` and exposes ``emb_dim`` (D) and
``branch_dims``.
"""

from __future__ import annotations

from torch import nn

from asdflow.nets.ba import Ba, MultiBranchNet, Spec, SpectrogramEncoder, SpectrumEncoder
from asdflow.nets.beats import BEATsFrontend
from asdflow.nets.frontends import FullSpectrum, Spectrogram, SpectrogramConfig
from asdflow.nets.wilkinghoff import Wilkinghoff

__all__ = [
    "NETWORKS",
    "Ba",
    "BEATsFrontend",
    "FullSpectrum",
    "MultiBranchNet",
    "Spectrogram",
    "SpectrogramConfig",
    "SpectrogramEncoder",
    "Spec",
    "SpectrumEncoder",
    "Wilkinghoff",
    "build_net",
]

#: ``Spec`` is seed 003's front-end (Ba's blocks with 256/1024/4096-sample spectrograms);
#: ``BEATs`` a frozen pre-trained BEATs loaded from a checkpoint file (option ``checkpoint``).
NETWORKS: dict[str, type[nn.Module]] = {"Ba": Ba, "Wilkinghoff": Wilkinghoff, "Spec": Spec, "BEATs": BEATsFrontend}


def build_net(name: str, **cfg) -> nn.Module:
    """Build a network by name (``"Ba"``, ``"Wilkinghoff"``, ``"Spec"`` or ``"BEATs"``).

    ``cfg`` must contain ``n_samples`` (clip length the network is built for) and may hold any
    keyword of the class (widths, front-end options, ``bn_shift``, ``order``, ``stft_windows``,
    the BEATs ``checkpoint``, ...). A network with ``frozen = True`` (BEATs) is not trained.
    """
    try:
        cls = NETWORKS[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; known: {sorted(NETWORKS)}") from None
    if "n_samples" not in cfg:
        raise TypeError("build_net needs n_samples (the clip length in samples)")
    for key in ("order", "stft_windows"):
        if cfg.get(key) is not None:
            cfg[key] = tuple(cfg[key])
    net: nn.Module = cls(**cfg)
    return net
