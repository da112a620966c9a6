"""Sub-cluster AdaCos (Wilkinghoff) and the subspace loss (seed 000 eq. 1)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["SubClusterAdaCos", "SubspaceLoss"]


class SubClusterAdaCos(nn.Module):
    """Cosine-softmax over ``n_classes × n_sub`` centres, probabilities summed per class.

    Centres are class-major columns (column ``c·n_sub + k``), Xavier-uniform initialised.
    ``trainable=False`` stores them as a buffer: never updated, still saved in the state dict.
    Scale: fixed at s0 = √2·ln(n_classes·n_sub − 1) (seed-000 code, toolkit, seed 003), or, with
    ``adaptive_scale=True``, updated every training step as in Wilkinghoff's code.
    Targets are class probabilities ``[B, n_classes]`` (one-hot or mixup-soft).
    """

    def __init__(self, emb_dim: int, n_classes: int, n_sub: int = 16, trainable: bool = True,
                 adaptive_scale: bool = False) -> None:
        super().__init__()
        self.n_classes, self.n_sub = n_classes, n_sub
        self.adaptive_scale = adaptive_scale
        w = torch.empty(emb_dim, n_classes * n_sub)
        nn.init.xavier_uniform_(w)
        if trainable:
            self.centres = nn.Parameter(w)
        else:
            self.register_buffer("centres", w)
        s0 = math.sqrt(2.0) * math.log(max(n_classes * n_sub - 1, 2))
        self.register_buffer("scale", torch.tensor(s0))

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        return F.normalize(z, dim=1) @ F.normalize(self.centres, dim=0)

    @torch.no_grad()
    def _update_scale(self, cos: torch.Tensor, target: torch.Tensor) -> None:
        s = self.scale
        logits = s * cos
        max_l = logits.max()
        b_avg = torch.exp(logits - max_l).sum(dim=1).mean()
        y_rep = target.repeat_interleave(self.n_sub, dim=1)
        theta = torch.acos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
        n_nonzero = (target > 0).sum(dim=1).clamp(min=1).float()
        theta_med = torch.median((y_rep * theta).sum(dim=1) * n_nonzero)
        new = (max_l + torch.log(b_avg)) / torch.cos(torch.clamp(theta_med, max=math.pi / 4)) + 1e-7
        if torch.isfinite(new):
            self.scale.copy_(new)

    def forward(self, z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        cos = self.logits(z)
        if self.adaptive_scale and self.training:
            self._update_scale(cos.detach(), target)
        prob = torch.softmax(self.scale * cos, dim=1).view(len(z), self.n_classes, self.n_sub).sum(-1)
        return -(target * torch.log(prob.clamp_min(1e-12))).sum(dim=1).mean()


class SubspaceLoss(nn.Module):
    """L_ss = w_cat·SCAC(z_cat, fixed centres) + Σ_m w_m·SCAC(z_m, trainable centres)."""

    def __init__(self, cat_dim: int, branch_dims: list[int], n_classes: int, n_sub: int = 16,
                 adaptive_scale: bool = False, cat_weight: float = 1.0, branch_weight: float = 1.0) -> None:
        super().__init__()
        self.cat = SubClusterAdaCos(cat_dim, n_classes, n_sub, trainable=False, adaptive_scale=adaptive_scale)
        self.branches = nn.ModuleList(
            SubClusterAdaCos(d, n_classes, n_sub, trainable=True, adaptive_scale=adaptive_scale) for d in branch_dims
        )
        self.cat_weight, self.branch_weight = cat_weight, branch_weight

    def forward(self, z_cat: torch.Tensor, branches: list[torch.Tensor], target: torch.Tensor):
        parts = {"cat": self.cat(z_cat, target)}
        for i, (head, z) in enumerate(zip(self.branches, branches)):
            parts[f"branch{i}"] = head(z, target)
        total = self.cat_weight * parts["cat"] + self.branch_weight * sum(
            v for k, v in parts.items() if k != "cat")
        return total, parts
