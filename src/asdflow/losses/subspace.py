"""Subspace loss (seed 000 eq. 1; Fujimura et al., ICASSP 2025) and waveform mixup.

L_ss = w_cat·SCAC(z_cat, fixed centres) + Σ_m w_m·SCAC(z_m, trainable centres): all heads use
the same (mixup) targets and 16 sub-clusters; weights are 1 in the paper and in both codes
(``ibkuroyagi/unlabeled-asd train_infer.py``; toolkit ``subspace_loss_weight: 1.0``).

Mixup (seed 000 §3.2 "exactly as reported in [60, 54]"; seed 002 §3.1; code ``mixup_layer.py``
in both repositories): on the waveform, partner = the batch in reversed order, λ ~ U(0, 1) per
sample, each sample mixed with probability ``prob``; targets mixed with the same λ. Seed 002:
probability 1.0 for the plain baseline, 0.5 when combined with other objectives; seed 000 §4.2.1:
0.5 with the triplet loss. The codes ignore their ``alpha`` argument (uniform λ), as here.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from asdflow.losses.scac import SubClusterAdaCos

__all__ = ["SubspaceLoss", "mixup"]


class SubspaceLoss(nn.Module):
    """``forward(z_cat, branches, target) -> (total, parts)``; ``parts`` maps ``"cat"`` and
    ``"branch0"``, ``"branch1"``, ... to the unweighted head losses.

    ``cat_trainable=False`` / ``branch_trainable=True`` are the paper's and code's choice;
    ``branch_weight`` may be one float or one weight per branch; ``sub_counts``: sub-clusters
    per class when not all ``n_sub`` (every head the same; see :class:`SubClusterAdaCos`).
    """

    def __init__(self, cat_dim: int, branch_dims: Sequence[int], n_classes: int, n_sub: int = 16,
                 adaptive_scale: bool = False, cat_weight: float = 1.0,
                 branch_weight: float | Sequence[float] = 1.0, cat_trainable: bool = False,
                 branch_trainable: bool = True, sub_counts: Sequence[int] | None = None) -> None:
        super().__init__()
        self.cat = SubClusterAdaCos(cat_dim, n_classes, n_sub, trainable=cat_trainable, adaptive_scale=adaptive_scale,
                                    sub_counts=sub_counts)
        self.branches = nn.ModuleList(
            SubClusterAdaCos(d, n_classes, n_sub, trainable=branch_trainable, adaptive_scale=adaptive_scale,
                             sub_counts=sub_counts)
            for d in branch_dims
        )
        weights = [float(branch_weight)] * len(branch_dims) if isinstance(branch_weight, (int, float)) else [
            float(w) for w in branch_weight]
        if len(weights) != len(branch_dims):
            raise ValueError(f"{len(weights)} branch weights for {len(branch_dims)} branches")
        self.cat_weight, self.branch_weights = float(cat_weight), weights

    def forward(self, z_cat: torch.Tensor, branches: Sequence[torch.Tensor], target: torch.Tensor):
        if len(branches) != len(self.branches):
            raise ValueError(f"{len(branches)} branch embeddings for {len(self.branches)} heads")
        parts = {"cat": self.cat(z_cat, target)}
        total = self.cat_weight * parts["cat"]
        for i, (head, z, w) in enumerate(zip(self.branches, branches, self.branch_weights)):
            parts[f"branch{i}"] = head(z, target)
            total = total + w * parts[f"branch{i}"]
        return total, parts


def mixup(x: torch.Tensor, target: torch.Tensor, prob: float = 1.0, generator: torch.Generator | None = None,
          return_lambda: bool = False):
    """Mix ``x [B, ...]`` and ``target [B, C]`` with the reversed batch.

    λ ~ U(0, 1) per sample; a sample is mixed with probability ``prob`` (otherwise λ = 1).
    Random draws use ``generator`` (on its own device) and are moved to ``x``'s device.
    Returns ``(x_mixed, target_mixed)`` (plus ``λ [B]`` with ``return_lambda``).
    """
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob must be in [0, 1], got {prob}")
    n = len(x)
    dev = generator.device if generator is not None else x.device
    lam = torch.rand(n, generator=generator, device=dev)
    apply = torch.rand(n, generator=generator, device=dev) < prob
    lam = torch.where(apply, lam, torch.ones_like(lam)).to(x.device)
    lx = lam.to(x.dtype).view(n, *([1] * (x.dim() - 1)))
    lt = lam.to(target.dtype).view(n, *([1] * (target.dim() - 1)))
    xm = lx * x + (1 - lx) * x.flip(0)
    tm = lt * target + (1 - lt) * target.flip(0)
    return (xm, tm, lam) if return_lambda else (xm, tm)
