"""Batch augmentations on waveforms: mixup, SNR mixing (eq. 8), pitch shift (phase vocoder)."""

from __future__ import annotations

import math
from fractions import Fraction

import torch

__all__ = ["mixup", "snr_mix", "choose_partners", "pitch_shift", "sample_semitones", "phase_vocoder"]


def mixup(x: torch.Tensor, target: torch.Tensor, prob: float, generator: torch.Generator | None = None):
    """Waveform mixup with the reversed batch: λ ~ U(0, 1) per sample, each sample mixed with
    probability ``prob`` (seed-000/ssl4asd code); targets mixed with the same λ."""
    n = len(x)
    lam = torch.rand(n, generator=generator)
    apply = torch.rand(n, generator=generator) < prob
    lam = torch.where(apply, lam, torch.ones_like(lam)).to(x.device)
    rev = torch.arange(n - 1, -1, -1, device=x.device)
    xm = lam[:, None] * x + (1 - lam[:, None]) * x[rev]
    tm = lam[:, None] * target + (1 - lam[:, None]) * target[rev]
    return xm, tm


def snr_mix(anchor: torch.Tensor, other: torch.Tensor, alpha_db: torch.Tensor, variant: str = "paper") -> torch.Tensor:
    """Positive sample of the triplet loss: anchor + scaled other clip.

    ``paper`` (eq. 8): x_a + 10^(−α/20)·‖x_a‖/‖x_j‖·x_j, i.e. an SNR of α dB.
    ``code`` (reference implementation): scale √(P_a / (P_j·10^(α/20))), i.e. an SNR of α/2 dB.
    """
    alpha_db = alpha_db.to(anchor.device, anchor.dtype).reshape(-1, 1)
    na = anchor.norm(dim=1, keepdim=True)
    nj = other.norm(dim=1, keepdim=True).clamp_min(1e-8)
    if variant == "paper":
        scale = 10 ** (-alpha_db / 20) * na / nj
    elif variant == "code":
        scale = torch.sqrt(na**2 / (nj**2 * 10 ** (alpha_db / 20)))
    else:
        raise ValueError(f"unknown snr variant {variant!r}; expected 'paper' or 'code'")
    return anchor + scale * other


def choose_partners(machine_ids: torch.Tensor, generator: torch.Generator | None = None,
                    mode: str = "other_type") -> torch.Tensor:
    """Index of the clip mixed into each anchor.

    ``other_type`` (paper): a random clip of a different machine type in the batch; when the
    batch holds a single type, any other clip (logged by the caller as a degenerate batch).
    ``same_type`` (reference code): a random permutation partner kept only if it has the same
    type; otherwise the anchor itself.
    """
    n = len(machine_ids)
    if mode == "same_type":
        perm = torch.randperm(n, generator=generator)
        return torch.where(machine_ids[perm] == machine_ids, perm, torch.arange(n))
    if mode != "other_type":
        raise ValueError(f"unknown partner mode {mode!r}; expected 'other_type' or 'same_type'")
    scores = torch.rand(n, n, generator=generator)
    different = machine_ids[None, :] != machine_ids[:, None]
    has_other = different.any(dim=1)
    fallback = ~torch.eye(n, dtype=torch.bool) if n > 1 else torch.ones(1, 1, dtype=torch.bool)
    allowed = torch.where(has_other[:, None], different, fallback)
    return torch.where(allowed, scores, torch.full_like(scores, -1.0)).argmax(dim=1)


def sample_semitones(n: int, generator: torch.Generator | None = None, low: float = 6, high: float = 12,
                     per: str = "sample") -> torch.Tensor:
    """β drawn from the integers in ±[low, high] (per sample: paper; per batch: code)."""
    values = torch.tensor([v for v in range(int(-high), int(high) + 1) if low <= abs(v) <= high], dtype=torch.float32)
    if per == "sample":
        return values[torch.randint(len(values), (n,), generator=generator)]
    if per == "batch":
        return values[torch.randint(len(values), (1,), generator=generator)].expand(n).clone()
    raise ValueError(f"unknown per {per!r}; expected 'sample' or 'batch'")


def phase_vocoder(spec: torch.Tensor, rate: float, hop: int) -> torch.Tensor:
    """Time-stretch a complex STFT ``[B, F, T]`` by ``rate`` (>1 faster) keeping the pitch."""
    n_freq = spec.shape[-2]
    phase_advance = torch.linspace(0, math.pi * hop, n_freq, device=spec.device, dtype=torch.float32)[:, None]
    steps = torch.arange(0, spec.shape[-1], rate, device=spec.device, dtype=torch.float32)
    alphas = steps % 1.0
    phase_0 = spec[..., :1].angle()
    spec = torch.nn.functional.pad(spec, (0, 2))
    idx = steps.long()
    s0, s1 = spec[..., idx], spec[..., idx + 1]
    dphase = s1.angle() - s0.angle() - phase_advance
    dphase = dphase - 2 * math.pi * torch.round(dphase / (2 * math.pi)) + phase_advance
    phase = torch.cat([phase_0, dphase[..., :-1]], dim=-1).cumsum(dim=-1)
    mag = alphas * s1.abs() + (1 - alphas) * s0.abs()
    return torch.polar(mag, phase)


def _resample(x: torch.Tensor, old: int, new: int) -> torch.Tensor:
    import julius

    return julius.resample_frac(x, old, new)


def pitch_shift(wave: torch.Tensor, semitones: torch.Tensor | float, sample_rate: int = 16000, n_fft: int = 512,
                hop: int = 128) -> torch.Tensor:
    """Shift the pitch of ``wave [B, T]`` by ``semitones`` (scalar or ``[B]``), keeping the length.

    Phase-vocoder time stretch by 2^(n/12) followed by band-limited resampling back to the
    original duration (the torchaudio recipe the paper cites). The resampling ratio is
    approximated by a fraction with a small denominator (pitch error < 0.1 %), so julius' sinc
    kernels stay small. Samples that share a shift are processed together; runs on CUDA.
    """
    n, length = wave.shape
    shifts = torch.as_tensor(semitones, dtype=torch.float32).reshape(-1).expand(n) if torch.as_tensor(
        semitones).numel() == 1 else torch.as_tensor(semitones, dtype=torch.float32).reshape(-1)
    window = torch.hann_window(n_fft, device=wave.device)
    out = torch.empty_like(wave)
    for value in torch.unique(shifts.cpu()).tolist():
        sel = (shifts.cpu() == value).nonzero().flatten().to(wave.device)
        x = wave[sel].float()
        if value == 0:
            out[sel] = x.to(out.dtype)
            continue
        rate = 2.0 ** (-value / 12.0)
        spec = torch.stft(x, n_fft, hop, window=window, return_complex=True)
        stretched = torch.istft(phase_vocoder(spec, rate, hop), n_fft, hop, window=window,
                                length=int(round(length / rate)))
        frac = Fraction(1 / rate).limit_denominator(64)  # stretched length / original length
        y = _resample(stretched, frac.numerator, frac.denominator)
        if y.shape[-1] < length:
            y = torch.nn.functional.pad(y, (0, length - y.shape[-1]))
        out[sel] = y[:, :length].to(out.dtype)
    return out
