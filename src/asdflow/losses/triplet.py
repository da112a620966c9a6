"""Triplet loss of seed 000 eq. 10-11 (and the reference code's variant)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["triplet_loss"]


def triplet_loss(z_a: torch.Tensor, z_p: torch.Tensor, z_n: torch.Tensor, tau: float = 0.2, gamma: float = 0.5,
                 variant: str = "paper", reduction: str = "mean") -> torch.Tensor:
    """``paper``: max(0, γ + 1 − s_τ(a, p) + s_τ(a, n)) with s_τ = cos/τ (eq. 10-11): zero once
    cos(a,p) − cos(a,n) ≥ τ(γ + 1). ``code``: max(0, γ + (cos(a,n) − cos(a,p))/τ), i.e. the
    distance (1 − cos)/τ form without the "+1" (margin τγ in cosine)."""
    cos_ap = F.cosine_similarity(z_a, z_p, dim=1)
    cos_an = F.cosine_similarity(z_a, z_n, dim=1)
    if variant == "paper":
        per = torch.relu(gamma + 1 - cos_ap / tau + cos_an / tau)
    elif variant == "code":
        per = torch.relu(gamma + (cos_an - cos_ap) / tau)
    else:
        raise ValueError(f"unknown triplet variant {variant!r}; expected 'paper' or 'code'")
    if reduction == "mean":
        return per.mean()
    if reduction == "sum":
        return per.sum()
    raise ValueError(f"unknown reduction {reduction!r}")
