"""Triplet loss of seed 000 §4.2.1 (eq. 8-11) with its positives and negatives.

* Positive (eq. 8): ``snr_mix`` adds a scaled clip of a DIFFERENT machine type
  (``choose_partners``) to the anchor at an SNR α ~ U[−5, 20] dB (``sample_snr_db``).
* Negative (eq. 9): ``pitch_shift`` of the anchor by β ∈ ±[6, 12] semitones
  (``sample_semitones``), the torchaudio recipe the paper cites, in batched torch.
* Loss (eq. 10-11): ``triplet_loss``.

The public code (``ibkuroyagi/unlabeled-asd train_infer.py``; docs/reference.md §3.4) differs in
four places, each available as a named option: partners of the SAME type (``mode="same_type"``),
an SNR scale that realises α/2 dB (``variant="code"`` of ``snr_mix``), one β per step
(``per="batch"``), and the loss max(0, γ + (cos_an − cos_ap)/τ) summed over anchors
(``variant="code", reduction="sum"``).
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import torch
from torch.nn import functional as F

__all__ = [
    "snr_mix",
    "sample_snr_db",
    "choose_partners",
    "sample_semitones",
    "phase_vocoder",
    "pitch_shift",
    "triplet_loss",
]


# --------------------------------------------------------------------------- positives (eq. 8)
def snr_mix(anchor: torch.Tensor, other: torch.Tensor, alpha_db: torch.Tensor | float,
            variant: str = "paper") -> torch.Tensor:
    """``anchor + g·other`` for waveforms ``[B, T]``; ``alpha_db`` scalar or ``[B]``.

    ``paper`` (eq. 8): g = 10^(−α/20)·‖x_a‖/‖x_j‖, so 10·log10(P_a / P_noise) = α dB.
    ``code``: g = √(P_a / (P_j·10^(α/20))) (``mix_signals``), which realises α/2 dB.
    A silent ``other`` adds nothing (g = 0, as the code does).
    """
    alpha = torch.as_tensor(alpha_db, dtype=torch.float32, device=anchor.device).reshape(-1, 1)
    a, o = anchor.float(), other.float()
    pa, po = a.pow(2).sum(dim=1, keepdim=True), o.pow(2).sum(dim=1, keepdim=True)
    if variant == "paper":
        scale = 10 ** (-alpha / 20) * torch.sqrt(pa / po.clamp_min(1e-20))
    elif variant == "code":
        scale = torch.sqrt(pa / (po.clamp_min(1e-20) * 10 ** (alpha / 20)))
    else:
        raise ValueError(f"unknown snr variant {variant!r}; expected 'paper' or 'code'")
    scale = torch.where(po > 0, scale, torch.zeros_like(scale))
    return (a + scale * o).to(anchor.dtype)


def sample_snr_db(n: int, generator: torch.Generator | None = None, low: float = -5.0, high: float = 20.0,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """α ~ U[low, high] dB per sample (paper and code: [−5, 20])."""
    dev = generator.device if generator is not None else (device or "cpu")
    alpha = torch.rand(n, generator=generator, device=dev) * (high - low) + low
    return alpha.to(device) if device is not None else alpha


def choose_partners(machine_ids: torch.Tensor, generator: torch.Generator | None = None, mode: str = "other_type",
                    return_mask: bool = False):
    """Index of the clip mixed into each anchor of the batch.

    ``other_type`` (paper, "sound from a different machine type j ≠ i"): a uniformly random clip
    of another machine type in the batch. Fallback when the batch holds a single type (e.g. a
    one-machine training set): a random OTHER clip of that type (the anchor itself only for a
    batch of one); the mask is False there.
    ``same_type`` (code): a random permutation; a partner of another type is rejected — the
    index becomes the anchor itself and the mask False; the code excludes these anchors from the
    loss (pass the mask to :func:`triplet_loss`). A permutation fixed point is a valid
    same-type pair (mask True), as in the code.

    Returns ``idx [B]`` (long, on ``machine_ids``' device), plus ``mask [B]`` (bool, True where the
    mode's rule holds) with ``return_mask=True``.
    """
    out_dev = machine_ids.device
    dev = generator.device if generator is not None else out_dev
    ids = machine_ids.to(dev)
    n = len(ids)
    arange = torch.arange(n, device=dev)
    if mode == "same_type":
        perm = torch.randperm(n, generator=generator, device=dev)
        keep = ids[perm] == ids
        idx = torch.where(keep, perm, arange)
    elif mode == "other_type":
        different = ids[None, :] != ids[:, None]
        keep = different.any(dim=1)
        not_self = ~torch.eye(n, dtype=torch.bool, device=dev) if n > 1 else torch.ones(1, 1, dtype=torch.bool,
                                                                                        device=dev)
        allowed = torch.where(keep[:, None], different, not_self)
        scores = torch.rand(n, n, generator=generator, device=dev)
        idx = torch.where(allowed, scores, torch.full_like(scores, -1.0)).argmax(dim=1)
    else:
        raise ValueError(f"unknown partner mode {mode!r}; expected 'other_type' or 'same_type'")
    idx, keep = idx.to(out_dev), keep.to(out_dev)
    return (idx, keep) if return_mask else idx


# --------------------------------------------------------------------------- negatives (eq. 9)
def sample_semitones(n: int, generator: torch.Generator | None = None, low: int = 6, high: int = 12,
                     per: str = "sample", device: torch.device | str | None = None) -> torch.Tensor:
    """β uniformly from the integers in ±[low, high] (float tensor ``[n]``).

    ``per="sample"``: one β per clip (paper: "β ranging from ±6 to ±12"); ``per="batch"``: one β
    for the whole step (code: ``random.choice([-12..-6, 6..12])`` per step). Integers as in
    torchaudio's ``n_steps`` (and few distinct values keep the batched shift cheap).
    """
    if not 0 <= low <= high:
        raise ValueError(f"need 0 <= low <= high, got {low}, {high}")
    values = torch.tensor([v for v in range(-int(high), int(high) + 1) if int(low) <= abs(v) and v != 0]
                          or [0], dtype=torch.float32)
    dev = generator.device if generator is not None else "cpu"
    if per == "sample":
        pick = torch.randint(len(values), (n,), generator=generator, device=dev).cpu()
    elif per == "batch":
        pick = torch.randint(len(values), (1,), generator=generator, device=dev).cpu().expand(n)
    else:
        raise ValueError(f"unknown per {per!r}; expected 'sample' or 'batch'")
    out = values[pick].clone()
    return out.to(device) if device is not None else out


def phase_vocoder(spec: torch.Tensor, rate: float, hop: int) -> torch.Tensor:
    """Time-stretch a complex STFT ``[..., F, T]`` by ``rate`` (> 1 faster), keeping the pitch
    (same algorithm as ``torchaudio.functional.phase_vocoder``)."""
    n_freq = spec.shape[-2]
    real = spec.real.dtype
    phase_advance = torch.linspace(0, math.pi * hop, n_freq, device=spec.device, dtype=real)[:, None]
    steps = torch.arange(0, spec.shape[-1], rate, device=spec.device, dtype=real)
    alphas = steps % 1.0
    # angle and magnitude once per frame, then gathered (the same values as taking them of the
    # gathered frames, at a third of the cost)
    angle, mag = F.pad(spec.angle(), (0, 2)), F.pad(spec.abs(), (0, 2))
    phase_0 = angle[..., :1]
    idx = steps.long()
    dphase = angle[..., idx + 1] - angle[..., idx] - phase_advance
    dphase = dphase - 2 * math.pi * torch.round(dphase / (2 * math.pi)) + phase_advance
    phase = torch.cat([phase_0, dphase[..., :-1]], dim=-1).cumsum(dim=-1)
    mag = alphas * mag[..., idx + 1] + (1 - alphas) * mag[..., idx]
    return torch.polar(mag, phase)


@functools.lru_cache(maxsize=64)
def _resampler(old_sr: int, new_sr: int, device: str) -> torch.nn.Module:
    """julius' resampler from ``old_sr`` to ``new_sr`` on ``device``, built once: building its
    sinc kernels took a third of a pitch shift's time (there are at most 14 distinct shifts)."""
    import julius

    return julius.ResampleFrac(old_sr, new_sr).to(device)


def pitch_shift(wave: torch.Tensor, semitones: torch.Tensor | float, sample_rate: int = 16000, n_fft: int = 512,
                hop: int = 128, max_denominator: int = 64) -> torch.Tensor:
    """Shift the pitch of ``wave [B, T]`` by ``semitones`` (scalar or ``[B]``); output ``[B, T]``.

    torchaudio's ``PitchShift`` recipe (defaults n_fft 512, hop 128, Hann window): phase-vocoder
    time stretch by rate 2^(−n/12), inverse STFT to round(T / rate) samples, band-limited
    resampling by the factor ``rate`` (julius), then trim/zero-pad to T. torchaudio resamples
    from int(sr / rate) to sr; here the ratio 1/rate is approximated by a fraction with
    denominator ≤ ``max_denominator`` so the sinc kernels stay small (frequency error ≤ 0.12 %,
    ~2 cents, for integer shifts within ±12). Clips sharing a shift are processed together; runs
    on the input's device; a shift of 0 returns the clip unchanged.

    Like torchaudio's, the vocoder keeps no vertical phase coherence and starts its phases from
    the reflect-padded first frame, so stationary tones keep their (shifted) pitch but can lose
    level (a 1-kHz sine shifted +12 keeps about half its power); this is reproduced, not fixed.
    """
    if wave.dim() != 2:
        raise ValueError(f"expected [B, T], got shape {tuple(wave.shape)}")
    n, length = wave.shape
    shifts = torch.as_tensor(semitones, dtype=torch.float32).detach().cpu().reshape(-1)
    if shifts.numel() == 1:
        shifts = shifts.expand(n)
    elif shifts.numel() != n:
        raise ValueError(f"{shifts.numel()} shifts for a batch of {n}")
    window = torch.hann_window(n_fft, device=wave.device)
    out = torch.empty_like(wave)
    for value in torch.unique(shifts).tolist():
        sel = (shifts == value).nonzero().flatten().to(wave.device)
        x = wave.index_select(0, sel).float()
        if value == 0:
            out[sel] = x.to(out.dtype)
            continue
        rate = 2.0 ** (-value / 12.0)
        spec = torch.stft(x, n_fft, hop, window=window, center=True, pad_mode="reflect", return_complex=True)
        stretched = torch.istft(phase_vocoder(spec, rate, hop), n_fft, hop, window=window,
                                length=int(round(length / rate)))
        frac = Fraction(1 / rate).limit_denominator(max_denominator)  # stretched length / original length
        y = _resampler(frac.numerator, frac.denominator, str(stretched.device))(stretched)
        if y.shape[-1] < length:
            y = F.pad(y, (0, length - y.shape[-1]))
        out[sel] = y[:, :length].to(out.dtype)
    return out


# --------------------------------------------------------------------------- loss (eq. 10-11)
def triplet_loss(z_a: torch.Tensor, z_p: torch.Tensor, z_n: torch.Tensor, tau: float = 0.2, gamma: float = 0.5,
                 variant: str = "paper", reduction: str = "mean", mask: torch.Tensor | None = None) -> torch.Tensor:
    """Triplet loss on embeddings ``[B, D]``.

    ``paper`` (eq. 10-11): max(0, γ + 1 − s_τ(a, p) + s_τ(a, n)) with s_τ = cos/τ. Worked out:
    it is zero iff cos(a, p) − cos(a, n) ≥ τ(γ + 1) = 0.3 for τ = 0.2, γ = 0.5 (the "+1" adds τ to
    the cosine margin; it does not cancel), and for identical a, p, n it equals γ + 1 = 1.5.
    ``code``: max(0, γ + d(a, p) − d(a, n)) with d = (1 − cos)/τ, i.e. max(0, γ + (cos_an −
    cos_ap)/τ): zero iff cos(a, p) − cos(a, n) ≥ τγ = 0.1; identical triplets give γ = 0.5.

    ``reduction``: ``mean`` or ``sum`` (code) over the anchors kept by ``mask`` (bool ``[B]``,
    default all); with no anchor kept the result is a graph-connected 0.
    """
    cos_ap = F.cosine_similarity(z_a, z_p, dim=1)
    cos_an = F.cosine_similarity(z_a, z_n, dim=1)
    if variant == "paper":
        per = torch.relu(gamma + 1 - cos_ap / tau + cos_an / tau)
    elif variant == "code":
        per = torch.relu(gamma + (cos_an - cos_ap) / tau)
    else:
        raise ValueError(f"unknown triplet variant {variant!r}; expected 'paper' or 'code'")
    if mask is not None:
        per = per[mask.to(per.device, torch.bool)]
    if reduction == "sum":
        return per.sum()
    if reduction == "mean":
        return per.mean() if per.numel() else per.sum()
    raise ValueError(f"unknown reduction {reduction!r}; expected 'mean' or 'sum'")
