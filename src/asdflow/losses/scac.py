"""Sub-cluster AdaCos (Wilkinghoff, IJCNN 2021; seed 000 §3.2, seed 002 §2).

Every class owns ``n_sub`` centres; logits are scaled cosines between the L2-normalised
embedding and the L2-normalised centres; a softmax runs over all ``n_classes·n_sub`` columns and
the probabilities of a class's sub-clusters are summed; the loss is the cross-entropy of these
class probabilities against (possibly mixup-soft) targets. Centres are stored ``[emb_dim,
n_classes·n_sub]`` class-major (column ``c·n_sub + k``), Xavier-uniform initialised — as in both
public codes.

Scale. The papers cite AdaCos, i.e. an adaptive scale; both public PyTorch descendants keep it
fixed at s₀ = √2·ln(n_classes·n_sub − 1): the update is commented out in
``ibkuroyagi/unlabeled-asd subcluster_adacos.py`` and disabled (``dynamic: false``) in the
toolkit configs; seed 003 says "fixed scale". Fixed is therefore the default
(``adaptive_scale=False``). ``adaptive_scale=True`` is Wilkinghoff's Keras update
(``wilkinghoff/ssl4asd subcluster_adacos.py``), run under ``no_grad`` in training mode before
the logits are scaled: with the current s, B_avg = batch mean of Σ_columns exp(s·cos −
max(s·cos)); θ_med = median over the batch of Σ(y_rep·θ)·(number of non-zero target entries);
s ← (max(s·cos) + ln B_avg) / cos(min(π/4, θ_med)) + ε. (The author notes this scale can blow
up, ``ssl4asd`` issue #5; a non-finite update is skipped.)

Sub-clusters per class. Both papers give every class the same ``n_sub``. ``sub_counts`` (one
count ≤ ``n_sub`` per class) switches off the extra centres of some classes: their columns are
left out of the softmax (and of the adaptive-scale statistics) and s₀ counts only the active
columns. The trainer uses it for ``n_subclusters_cap: clips`` (a class gets no more
sub-clusters than it has training clips; README "Systems").
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["SubClusterAdaCos", "initial_scale"]


def initial_scale(n_classes: int, n_sub: int) -> float:
    """s₀ = √2·ln(n_classes·n_sub − 1) (guarded to ln 1 → use 2 columns minimum)."""
    return math.sqrt(2.0) * math.log(max(n_classes * n_sub - 1, 2))


class SubClusterAdaCos(nn.Module):
    """Sub-cluster AdaCos head: ``forward(z [B, D], target) -> scalar loss``.

    ``target``: class probabilities ``[B, n_classes]`` (one-hot or mixup-soft, rows summing to 1)
    or integer labels ``[B]``. ``trainable=False`` stores the centres as a buffer: they never
    receive gradients nor change under an optimiser step, but are saved in the state dict (the
    main head of the subspace loss; seed 002: "cluster centers ... not adapted during training").
    """

    def __init__(self, emb_dim: int, n_classes: int, n_sub: int = 16, trainable: bool = True,
                 adaptive_scale: bool = False, eps: float = 1e-7, sub_counts: Sequence[int] | None = None) -> None:
        super().__init__()
        if n_classes < 1 or n_sub < 1:
            raise ValueError(f"need n_classes >= 1 and n_sub >= 1, got {n_classes}, {n_sub}")
        self.emb_dim, self.n_classes, self.n_sub = emb_dim, n_classes, n_sub
        counts = [n_sub] * n_classes if sub_counts is None else [int(c) for c in sub_counts]
        if len(counts) != n_classes or min(counts) < 1 or max(counts) > n_sub:
            raise ValueError(f"sub_counts must give 1..{n_sub} sub-clusters for each of the {n_classes} classes, "
                             f"got {list(sub_counts or [])}")
        self.masked = sub_counts is not None and min(counts) < n_sub
        active = torch.arange(n_sub).unsqueeze(0) < torch.tensor(counts).unsqueeze(1)  # [n_classes, n_sub]
        self.register_buffer("active", active.flatten(), persistent=False)
        self.trainable = trainable
        self.adaptive_scale = adaptive_scale
        self.eps = eps
        w = torch.empty(emb_dim, n_classes * n_sub)
        nn.init.xavier_uniform_(w)
        if trainable:
            self.centres = nn.Parameter(w)
        else:
            self.register_buffer("centres", w)
        self.register_buffer("scale", torch.tensor(initial_scale(1, sum(counts))))

    def extra_repr(self) -> str:
        return (f"emb_dim={self.emb_dim}, n_classes={self.n_classes}, n_sub={self.n_sub}, "
                f"trainable={self.trainable}, adaptive_scale={self.adaptive_scale}")

    def cosine(self, z: torch.Tensor) -> torch.Tensor:
        """``[B, n_classes·n_sub]`` cosines between embeddings and centres."""
        return F.normalize(z, dim=1) @ F.normalize(self.centres, dim=0)

    def _logits(self, cos: torch.Tensor) -> torch.Tensor:
        """Scaled cosines; switched-off sub-clusters (``sub_counts``) get −inf."""
        logits = self.scale * cos
        return logits.masked_fill(~self.active, float("-inf")) if self.masked else logits

    def _targets(self, target: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if target.dim() == 1:
            return F.one_hot(target.long(), self.n_classes).to(z.dtype)
        if target.shape != (len(z), self.n_classes):
            raise ValueError(f"target must be [B] labels or [B, {self.n_classes}] probabilities, "
                             f"got {tuple(target.shape)}")
        return target.to(z.dtype)

    @torch.no_grad()
    def _update_scale(self, cos: torch.Tensor, target: torch.Tensor) -> None:
        logits = self._logits(cos)
        max_l = logits.max()
        b_avg = torch.exp(logits - max_l).sum(dim=1).mean()
        y_rep = target.repeat_interleave(self.n_sub, dim=1) * self.active  # class-major, like the centres
        theta = torch.acos(cos.clamp(-1 + self.eps, 1 - self.eps))
        n_nonzero = (target != 0).sum(dim=1).to(cos.dtype)
        theta_med = torch.median((y_rep * theta).sum(dim=1) * n_nonzero)
        new = (max_l + torch.log(b_avg)) / torch.cos(torch.clamp(theta_med, max=math.pi / 4)) + self.eps
        if torch.isfinite(new):
            self.scale.copy_(new)

    def log_class_probs(self, z: torch.Tensor) -> torch.Tensor:
        """``[B, n_classes]`` log of the summed sub-cluster probabilities (no scale update)."""
        logp = torch.log_softmax(self._logits(self.cosine(z)), dim=1)
        return torch.logsumexp(logp.view(len(z), self.n_classes, self.n_sub), dim=2)

    def forward(self, z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = self._targets(target, z)
        if self.adaptive_scale and self.training:
            self._update_scale(self.cosine(z).detach().float(), target.float())
        return -(target * self.log_class_probs(z)).sum(dim=1).mean()
