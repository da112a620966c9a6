"""Self-supervised exchanges of seed 002 (Wilkinghoff, "Self-supervised learning for anomalous
sound detection"): StatEx (§3.2), FeatEx (§3.3) and their loss (§3.4).

Seed 002 prints its equations without numbers; they are cited here by their order of
appearance: (1)-(2) mixup (§3.1); (3) StatEx x_new = (x₁ − μ₁)/σ₁·σ₂ + μ₂, (4) the label of an
exchanged sample y_new = (0, 0.5·y₁, 0.5·y₂) ∈ [0, 1]^{3N}, (5) the label of an unchanged sample
(y₁, 0, 0) (§3.2); (6) FeatEx e_new = (e₁¹, e₂²), (7) its label (0, 0.5·y₁, 0.5·y₂) (§3.3);
(8) L_total(x, y) = L(x, y) + L(x_new, y_new) (§3.4).

* **StatEx** (eq. 3-5), temporal variant only: on the spectrogram *before* temporal mean
  normalisation, each frame's mean and standard deviation over frequency are replaced by those
  of the same frame of the partner sample (:func:`temporal_statex`). Applied per sample with
  probability 0.5 (:func:`draw_exchange`); labels are tripled (:func:`triple_labels`).
* **FeatEx** (eq. 6-7): the concatenated embedding keeps the first branch of the sample and
  takes the second branch of the partner (:func:`featex`); with probability 0.5 per sample;
  labels tripled again — after StatEx this gives 3·3 = 9 N classes, as §3.4 says.
* **Loss** (eq. 8): the regular loss with fixed centres on the un-exchanged sample plus one
  sub-cluster AdaCos head with *trainable* centres over the 3^k·N SSL classes on x_new,
  equally weighted (:class:`SSLHead`; the regular loss lives in the training loop).

Partners are the batch in reversed order and the SSL labels are built from the mixup labels,
as in the public code (``wilkinghoff/ssl4asd``, ``statex_aug_layer_classwise.py`` and
``openl3_idea_aug_layer_classwise.py``); the paper says "two random training samples", which a
shuffled batch read backwards is. In an odd batch the middle sample is its own partner (it
keeps its features but takes an exchanged label), as in the code.

``variant="code"`` reproduces ``main_statex+featex.py`` (docs/reference.md §7): the regular
loss sees the StatEx-exchanged spectrogram (with the un-exchanged mixup labels), and a StatEx
head exists only with loss weight 0 — so with StatEx alone the SSL term vanishes and StatEx is
an input augmentation; with FeatEx the StatEx labels still enter the 9 N FeatEx labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from asdflow.losses.scac import SubClusterAdaCos
from asdflow.nets.frontends import Spectrogram

__all__ = ["SSLBatch", "SSLHead", "draw_exchange", "featex", "partner_index", "ssl_forward", "statex_branches",
           "temporal_statex", "triple_labels"]

VARIANTS = ("paper", "code")


def partner_index(n: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The partner of every sample of a batch of ``n``: the batch in reversed order (code)."""
    return torch.arange(n - 1, -1, -1, device=device)


def draw_exchange(n: int, prob: float, generator: torch.Generator | None = None,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """Bool ``[n]``: which samples are exchanged, each independently with probability ``prob``.

    One uniform draw per sample from ``generator`` (on its own device), moved to ``device``.
    """
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"exchange probability must be in [0, 1], got {prob}")
    dev = generator.device if generator is not None else (device or "cpu")
    return (torch.rand(n, generator=generator, device=dev) < prob).to(device or dev)


def temporal_statex(spec: torch.Tensor, partner: torch.Tensor | None = None, eps: float = 1e-16) -> torch.Tensor:
    """Temporal StatEx of seed 002 eq. 3 on every sample of ``spec [B, F, T]``.

    x_new[f, t] = (x₁[f, t] − μ₁[t]) / σ₁[t] · σ₂[t] + μ₂[t], where μ[t], σ[t] are the mean and
    (population) standard deviation of frame t over the frequency axis, ₁ the sample and ₂ its
    ``partner`` (default: the reversed batch). ``eps`` is added to σ₁ as in the code (a constant
    frame becomes the partner's mean). Every row is exchanged; choose rows with ``torch.where``.
    """
    if spec.dim() != 3:
        raise ValueError(f"expected a spectrogram batch [B, F, T], got shape {tuple(spec.shape)}")
    if partner is None:
        partner = partner_index(len(spec), spec.device)
    mu = spec.mean(dim=1, keepdim=True)
    sd = spec.std(dim=1, keepdim=True, unbiased=False)
    return (spec - mu) / (sd + eps) * sd[partner] + mu[partner]


def triple_labels(target: torch.Tensor, exchanged: torch.Tensor, partner: torch.Tensor | None = None) -> torch.Tensor:
    """Seed 002 eq. 4-5 (and 7): ``[B, C]`` targets → ``[B, 3C]`` SSL targets.

    Unchanged samples get (y, 0, 0); exchanged ones (0, 0.5·y, 0.5·y_partner). Rows of soft
    (mixup) targets stay distributions; applied twice (StatEx, then FeatEx) the width is 9C.
    """
    if partner is None:
        partner = partner_index(len(target), target.device)
    zero = torch.zeros_like(target)
    kept = torch.cat([target, zero, zero], dim=1)
    swapped = torch.cat([zero, 0.5 * target, 0.5 * target[partner]], dim=1)
    return torch.where(exchanged.view(-1, 1), swapped, kept)


def featex(branches: list[torch.Tensor], exchanged: torch.Tensor,
           partner: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Seed 002 eq. 6: e_new = (e₁¹, e₂²) for the exchanged samples, e₁ otherwise.

    ``branches``: the two branch embeddings ``[z¹ [B, D₁], z² [B, D₂]]`` in concatenation order;
    the first is kept, the second taken from the partner (the code swaps the spectrogram branch,
    the second in Wilkinghoff's [spectrum, spectrogram] order).
    """
    if len(branches) != 2:
        raise ValueError(f"FeatEx exchanges one of two branch embeddings (seed 002 §3.3); got {len(branches)} "
                         "branches — use the two-branch Wilkinghoff network")
    first, second = branches
    if partner is None:
        partner = partner_index(len(second), second.device)
    return [first, torch.where(exchanged.view(-1, 1), second[partner], second)]


def statex_branches(net: nn.Module, wave: torch.Tensor, exchanged: torch.Tensor,
                    keep_original: bool = True) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Branch embeddings of a :class:`~asdflow.nets.MultiBranchNet` with StatEx on its spectrograms.

    Returns ``(regular, statex)``: the embeddings of the unchanged batch (for L(x, y)) and of the
    batch whose ``exchanged`` rows had temporal StatEx (eq. 3) applied to every spectrogram
    front-end before its temporal mean normalisation (other branches are unchanged). With
    ``keep_original`` (paper) a spectrogram encoder runs once on the original spectrograms plus
    the exchanged copies (batch norm sees both); without it (code) it only sees the exchanged
    batch and ``regular`` is the StatEx batch.
    """
    if not any(isinstance(net.frontends[k], Spectrogram) for k in net.order):
        raise ValueError("StatEx needs a network with a spectrogram branch")
    partner = partner_index(len(wave), wave.device)
    rows = torch.nonzero(exchanged).flatten()
    regular: list[torch.Tensor] = []
    swapped: list[torch.Tensor] = []
    for key in net.order:
        fe, enc = net.frontends[key], net.encoders[key]
        if not isinstance(fe, Spectrogram):
            z = enc(fe(wave))
            regular.append(z)
            swapped.append(z)
            continue
        spec = fe.features(wave)
        spec_ex = torch.where(exchanged.view(-1, 1, 1), temporal_statex(spec, partner), spec)
        if keep_original:
            z = enc(fe.normalise(torch.cat([spec, spec_ex[rows]])))
            z_reg = z[: len(wave)]
            regular.append(z_reg)
            swapped.append(z_reg.index_copy(0, rows, z[len(wave):]))
        else:
            z = enc(fe.normalise(spec_ex))
            regular.append(z)
            swapped.append(z)
    return regular, swapped


@dataclass
class SSLBatch:
    """One training batch after the SSL exchanges.

    ``regular``: ``{"cat", "branches"}`` embeddings for the regular loss L(x, y) (mixup targets);
    ``z_new`` / ``y_new``: embedding and 3^k·C targets of x_new for L(x_new, y_new), or None when
    the variant has no SSL loss term (code, StatEx alone); ``statex`` / ``featex``: which samples
    were exchanged (None when that exchange is off).
    """

    regular: dict[str, torch.Tensor | list[torch.Tensor]]
    z_new: torch.Tensor | None
    y_new: torch.Tensor | None
    statex: torch.Tensor | None
    featex: torch.Tensor | None


def ssl_forward(net: nn.Module, wave: torch.Tensor, target: torch.Tensor, *, use_statex: bool, use_featex: bool,
                prob: float = 0.5, variant: str = "paper", generator: torch.Generator | None = None) -> SSLBatch:
    """Forward a (mixed-up) batch with StatEx and/or FeatEx (seed 002 §3.2-3.4).

    Draws the StatEx mask, then the FeatEx mask (one uniform per sample each, from
    ``generator``); x_new applies StatEx then FeatEx ("sequentially applying all the SSL
    approaches", §3.4), y_new triples the targets once per exchange (eq. 4-5, 7).
    """
    if variant not in VARIANTS:
        raise ValueError(f"SSL variant must be one of {VARIANTS}, got {variant!r}")
    n = len(wave)
    s_mask = draw_exchange(n, prob, generator, wave.device) if use_statex else None
    f_mask = draw_exchange(n, prob, generator, wave.device) if use_featex else None
    if s_mask is not None:
        regular, new = statex_branches(net, wave, s_mask, keep_original=variant == "paper")
        y_new = triple_labels(target, s_mask)
    else:
        regular = new = net(wave)["branches"]
        y_new = target
    if f_mask is not None:
        new = featex(list(new), f_mask)
        y_new = triple_labels(y_new, f_mask)
    reg = {"cat": torch.cat(regular, dim=1), "branches": list(regular)}
    if variant == "code" and f_mask is None:  # the code's StatEx head has loss weight 0
        return SSLBatch(reg, None, None, s_mask, f_mask)
    return SSLBatch(reg, torch.cat(new, dim=1), y_new, s_mask, f_mask)


class SSLHead(nn.Module):
    """L(x_new, y_new) of seed 002 eq. 8: sub-cluster AdaCos over the 3^k·N SSL classes with
    trainable centres (§3.2-3.4: "trainable cluster centers for the newly introduced classes")."""

    def __init__(self, emb_dim: int, n_classes: int, n_exchanges: int, n_sub: int = 16,
                 adaptive_scale: bool = False) -> None:
        super().__init__()
        if n_exchanges < 1:
            raise ValueError("an SSL head needs at least one exchange (StatEx or FeatEx)")
        self.n_classes = n_classes * 3**n_exchanges
        self.head = SubClusterAdaCos(emb_dim, self.n_classes, n_sub, trainable=True, adaptive_scale=adaptive_scale)

    def forward(self, z_new: torch.Tensor, y_new: torch.Tensor) -> torch.Tensor:
        return self.head(z_new, y_new)
