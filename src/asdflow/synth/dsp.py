"""Signal primitives shared by the synthesizers (all vectorized numpy, float64).

Every random choice goes through the ``numpy.random.Generator`` passed in, so a clip is a pure
function of its generator's seed (see :func:`clip_rng`).
"""

from __future__ import annotations

import hashlib
from typing import Callable

import numpy as np
from scipy.signal import fftconvolve, firwin, lfilter

__all__ = [
    "clip_rng",
    "rms",
    "normalize",
    "spectral_noise",
    "colored_noise",
    "band_noise",
    "log_band",
    "smooth_random",
    "harmonic_series",
    "phase_of",
    "periodic_times",
    "poisson_times",
    "impulse_train",
    "pulse_train",
    "resonant_kernel",
    "noise_kernel",
    "convolve",
    "equalize",
    "resonator",
    "gate",
    "anti_alias",
    "to_pcm16",
]

_EPS = 1e-12


def clip_rng(seed: int, *key: str) -> np.random.Generator:
    """A generator seeded from ``seed`` and a string key (order-independent, stable across runs)."""
    digest = hashlib.sha256("\x1f".join(key).encode()).digest()
    words = np.frombuffer(digest[:16], dtype="<u4").tolist()
    return np.random.default_rng(np.random.SeedSequence([int(seed), *words]))


def rms(x: np.ndarray) -> float:
    """Root mean square."""
    return float(np.sqrt(np.mean(np.square(x)) + _EPS))


def normalize(x: np.ndarray) -> np.ndarray:
    """Scale to unit RMS."""
    return x / rms(x)


def spectral_noise(rng: np.random.Generator, n: int, sr: int, gain: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Gaussian noise of length ``n`` whose amplitude spectrum follows ``gain(freqs_hz)``; unit RMS."""
    m = n // 2 + 1
    spec = rng.standard_normal(m) + 1j * rng.standard_normal(m)
    f = np.fft.rfftfreq(n, 1.0 / sr)
    spec *= gain(f)
    spec[0] = 0.0
    return normalize(np.fft.irfft(spec, n))


def colored_noise(rng: np.random.Generator, n: int, sr: int, exponent: float, f_min: float = 20.0) -> np.ndarray:
    """Power spectrum ∝ 1/f**exponent above ``f_min`` (1 = pink, 2 = brown); unit RMS."""
    return spectral_noise(rng, n, sr, lambda f: np.maximum(f, f_min) ** (-exponent / 2.0))


def log_band(f: np.ndarray, center: float, octaves: float) -> np.ndarray:
    """Gaussian bump on a log-frequency axis: 1 at ``center``, std ``octaves`` octaves."""
    return np.exp(-0.5 * (np.log2(np.maximum(f, 1.0) / center) / octaves) ** 2)


def band_noise(rng: np.random.Generator, n: int, sr: int, center: float, octaves: float) -> np.ndarray:
    """Noise concentrated around ``center`` Hz (log-Gaussian band of ``octaves`` std); unit RMS."""
    return spectral_noise(rng, n, sr, lambda f: log_band(f, center, octaves))


def smooth_random(rng: np.random.Generator, n: int, sr: int, rate_hz: float) -> np.ndarray:
    """A slowly varying random curve (about unit std) with knots every ``1/rate_hz`` s."""
    n_knots = int(np.ceil(n / sr * rate_hz)) + 2
    knots = rng.standard_normal(n_knots)
    pos = np.arange(n) / sr * rate_hz + rng.random()
    return np.interp(pos, np.arange(n_knots), knots)


def phase_of(f_inst: np.ndarray, sr: int) -> np.ndarray:
    """Running phase (radians) of an instantaneous-frequency track."""
    return 2.0 * np.pi * np.cumsum(f_inst) / sr


def harmonic_series(
    rng: np.random.Generator, f_inst: np.ndarray, ratios: np.ndarray, amps: np.ndarray, sr: int
) -> np.ndarray:
    """Σ amps[k]·sin(ratios[k]·φ(t) + random phase), φ the phase of ``f_inst``; partials above
    Nyquist are dropped."""
    phase = phase_of(f_inst, sr)
    keep = ratios * float(np.max(f_inst)) < 0.45 * sr
    offsets = rng.uniform(0, 2 * np.pi, size=len(ratios))
    ratios, amps, offsets = ratios[keep], amps[keep], offsets[keep]
    if len(ratios) and np.all(ratios == np.round(ratios)) and np.all(ratios >= 1):
        # integer partials: powers of exp(iφ) are much cheaper than one sin per partial
        # (float64 throughout, so last-bit differences between CPUs practically never reach 16 bits)
        weights = dict(zip(ratios.astype(int).tolist(), amps * np.exp(1j * offsets)))
        z = np.exp(1j * phase)
        zk = z.copy()
        acc = np.zeros_like(z)
        for k in range(1, max(weights) + 1):
            if k > 1:
                zk *= z
            if k in weights:
                acc += weights[k] * zk
        return acc.imag.copy()
    out = np.zeros_like(phase)
    for r, a, o in zip(ratios, amps, offsets):
        out += a * np.sin(r * phase + o)
    return out


def periodic_times(rng: np.random.Generator, rate_hz: float, duration: float, jitter: float = 0.0) -> np.ndarray:
    """Event times at ``rate_hz`` with a random start and relative timing ``jitter``."""
    period = 1.0 / rate_hz
    k = np.arange(int(duration * rate_hz) + 2)
    t = (k + rng.random()) * period + rng.normal(0.0, jitter * period, size=len(k))
    return np.sort(t[(t >= 0) & (t < duration)])


def poisson_times(rng: np.random.Generator, rate_hz: float, duration: float) -> np.ndarray:
    """Event times of a Poisson process."""
    count = rng.poisson(rate_hz * duration)
    return np.sort(rng.uniform(0.0, duration, size=count))


def impulse_train(n: int, sr: int, times: np.ndarray, amps: np.ndarray | float = 1.0) -> np.ndarray:
    """Unit impulses (scaled by ``amps``) at ``times`` seconds."""
    x = np.zeros(n)
    idx = np.clip((np.asarray(times) * sr).astype(int), 0, n - 1)
    np.add.at(x, idx, np.broadcast_to(amps, idx.shape))
    return x


def pulse_train(rng: np.random.Generator, f_inst: np.ndarray, sr: int) -> np.ndarray:
    """Unit impulses once per cycle of an instantaneous-frequency track (random start phase)."""
    cycles = np.floor(np.cumsum(f_inst) / sr + rng.random())
    x = np.zeros(len(f_inst))
    x[1:][np.diff(cycles) > 0] = 1.0
    return x


def resonant_kernel(sr: int, freq: float, decay_s: float, length_s: float | None = None) -> np.ndarray:
    """Exponentially decaying sinusoid (a struck resonance)."""
    length = length_s if length_s is not None else 6.0 * decay_s
    t = np.arange(max(2, int(length * sr))) / sr
    return np.exp(-t / decay_s) * np.sin(2 * np.pi * freq * t)


def noise_kernel(rng: np.random.Generator, sr: int, center: float, octaves: float, decay_s: float) -> np.ndarray:
    """A short decaying burst of band noise (impact, rattle grain)."""
    n = max(8, int(6.0 * decay_s * sr))
    t = np.arange(n) / sr
    return band_noise(rng, n, sr, center, octaves) * np.exp(-t / decay_s)


def convolve(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Causal convolution truncated to ``len(x)`` (sparse event trains: kernel copies added directly)."""
    events = np.flatnonzero(x)
    if len(events) * len(kernel) > 4 * len(x):
        return fftconvolve(x, kernel)[: len(x)]
    out = np.zeros(len(x) + len(kernel))
    for i in events:
        out[i : i + len(kernel)] += x[i] * kernel
    return out[: len(x)]


def equalize(x: np.ndarray, sr: int, gain: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Zero-phase filtering by an amplitude response ``gain(freqs_hz)`` (FFT domain)."""
    f = np.fft.rfftfreq(len(x), 1.0 / sr)
    return np.fft.irfft(np.fft.rfft(x) * gain(f), len(x))


def resonator(x: np.ndarray, sr: int, freq: float, bandwidth: float) -> np.ndarray:
    """Two-pole resonator (formant filter) with unit gain at ``freq``."""
    r = np.exp(-np.pi * bandwidth / sr)
    theta = 2 * np.pi * freq / sr
    a = [1.0, -2 * r * np.cos(theta), r * r]
    return lfilter([1.0 - r], a, x)


def gate(n: int, sr: int, starts: np.ndarray, ends: np.ndarray, ramp_s: float = 0.005) -> np.ndarray:
    """0/1 envelope that is 1 on [start, end) intervals, with linear ramps of ``ramp_s``."""
    t = np.arange(n) / sr
    env = np.zeros(n)
    for s, e in zip(starts, ends):
        up = np.clip((t - s) / ramp_s, 0.0, 1.0)
        down = np.clip((e - t) / ramp_s, 0.0, 1.0)
        env = np.maximum(env, np.minimum(up, down))
    return env


def to_pcm16(x: np.ndarray, rms_dbfs: float, peak: float = 0.99) -> np.ndarray:
    """Scale to ``rms_dbfs`` (lowered if the peak would exceed ``peak``) and quantize to int16."""
    y = x / rms(x) * 10.0 ** (rms_dbfs / 20.0)
    top = float(np.max(np.abs(y)))
    if top > peak:
        y *= peak / top
    return np.round(y * 32767.0).astype(np.int16)


def anti_alias(x: np.ndarray, rolloff: float = 0.945, zeros: int = 24) -> np.ndarray:
    """Band-limit ``x`` as an ADC's anti-alias filter (or a resampler) would.

    A Hann-windowed sinc low-pass at ``rolloff`` times the Nyquist frequency with ``zeros`` zero
    crossings per side: the same cut-off and length as the sinc resampler the audio loader uses
    (julius' defaults, 0.945 and 24), so a clip written at the project's rate and a clip written
    at another rate and resampled on loading end at the same frequency.  Real recordings are
    band-limited like this; without it the synthetic DCASE clips would carry noise up to the
    Nyquist frequency that no resampled pool clip has, an artificial cue that sets every pool clip
    apart from the machines.
    """
    half = int(np.ceil(zeros / rolloff))
    kernel = firwin(2 * half + 1, rolloff, window="hann")
    return fftconvolve(x, kernel, mode="same")
