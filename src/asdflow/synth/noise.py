"""Factory backgrounds (different character per domain) and the additive/modulating faults.

Backgrounds: coloured noise + distant machinery + mains hum + random impacts. The source
domain uses pink noise, 50 Hz hum and a low-mid machinery rumble; the target domain uses brown
noise with ventilation hiss, 60 Hz hum, a higher compressor band and more, brighter impacts.
Optionally (``SynthConfig.nearby_machinery``, off in the presets) a share of the DCASE clips'
backgrounds carries one or two *other* machines running nearby (:func:`nearby_machinery`): a
harmonic series at an arbitrary speed, swelling and fading within the clip, as on a real factory
floor. It is the nuisance the seed-000 triplet loss teaches invariance to (its positive is the
anchor plus another machine's sound); a frame-level log-mel model has to reconstruct it.

Faults (:data:`ADDITIVE_FAULTS`) are mixed well below the machine sound (unit RMS):
``bearing`` (impulses at a fault rate exciting a resonance), ``imbalance`` (extra 1× shaft
modulation), ``rattle`` (loose-part grains), ``leak`` (steady hiss).
"""

from __future__ import annotations

import numpy as np

from asdflow.synth import dsp
from asdflow.synth.machines import MachineSound

__all__ = ["ADDITIVE_FAULTS", "factory_background", "nearby_machinery", "ambient_background", "add_fault"]

ADDITIVE_FAULTS = frozenset({"bearing", "imbalance", "rattle", "leak"})


def _db(rng: np.random.Generator, low: float, high: float) -> float:
    """A random level in dB, as a linear amplitude factor."""
    return float(10.0 ** (rng.uniform(low, high) / 20.0))


def factory_background(rng: np.random.Generator, n: int, sr: int, domain: str, nearby: float = 0.0) -> np.ndarray:
    """Factory background noise for ``domain`` (``source`` or ``target``); unit RMS. ``nearby``:
    probability that other machines run nearby (:func:`nearby_machinery`)."""
    duration = n / sr
    if domain == "source":
        floor = dsp.colored_noise(rng, n, sr, 1.0)
        hum_f0, rumble_center, impact_rate, impact_center = 50.0, 400.0, 0.6, 900.0
    else:
        floor = dsp.colored_noise(rng, n, sr, 2.0) + _db(rng, -14, -8) * dsp.band_noise(rng, n, sr, 6000.0, 1.2)
        hum_f0, rumble_center, impact_rate, impact_center = 60.0, 1400.0, 1.8, 2500.0
    hum_track = np.full(n, hum_f0 * (1.0 + 0.002 * rng.standard_normal()))
    hum = dsp.harmonic_series(rng, hum_track, np.arange(1.0, 5.0), np.array([1.0, 0.6, 0.4, 0.2]), sr)
    rumble = dsp.band_noise(rng, n, sr, rumble_center, 0.7) * (1.0 + 0.5 * dsp.smooth_random(rng, n, sr, 1.5))
    times = dsp.poisson_times(rng, impact_rate, duration)
    impacts = dsp.convolve(
        dsp.impulse_train(n, sr, times, rng.uniform(0.3, 1.0, size=len(times))),
        dsp.noise_kernel(rng, sr, impact_center, 1.0, 0.02),
    )
    x = (
        dsp.normalize(floor)
        + _db(rng, -12, -6) * dsp.normalize(hum)
        + _db(rng, -9, -3) * dsp.normalize(rumble)
        + (_db(rng, -6, 0) * impacts / max(dsp.rms(impacts), 1e-3) if len(times) else 0.0)
    )
    if nearby <= 0.0:
        return dsp.normalize(x)
    return dsp.normalize(dsp.normalize(x) + nearby_machinery(rng, n, sr, nearby))


def nearby_machinery(rng: np.random.Generator, n: int, sr: int, probability: float) -> np.ndarray:
    """Other machines running nearby (added to a unit-RMS background; zeros when none): with
    ``probability`` one machine, and then with probability 0.3 a second. Each is a harmonic
    series (6 partials, amplitude ∝ k**-s, s in [0.5, 1.5]) at a log-uniform fundamental of
    50-800 Hz with a little speed wobble and a slow swell (it may start or stop within the clip),
    at -6 to 0 dB relative to the rest of the background."""
    out = np.zeros(n)
    if rng.random() >= probability:
        return out
    for _ in range(1 + int(rng.random() < 0.3)):
        f0 = float(np.exp(rng.uniform(np.log(50.0), np.log(800.0))))
        track = f0 * (1.0 + 0.003 * dsp.smooth_random(rng, n, sr, 1.0))
        k = np.arange(1.0, 7.0)
        tone = dsp.harmonic_series(rng, track, k, k ** -rng.uniform(0.5, 1.5), sr)
        swell = np.clip(1.0 + 0.5 * dsp.smooth_random(rng, n, sr, 1.0), 0.0, None)
        out += _db(rng, -6, 0) * dsp.normalize(tone) * swell
    return out


def ambient_background(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Generic outdoor/indoor room tone for external clips: tilted noise with a slow swell; unit RMS."""
    x = dsp.colored_noise(rng, n, sr, rng.uniform(0.5, 2.0))
    return dsp.normalize(x * (1.0 + 0.3 * dsp.smooth_random(rng, n, sr, 0.7)))


def add_fault(rng: np.random.Generator, sound: MachineSound, kind: str, severity: float, sr: int) -> np.ndarray:
    """The machine signal with an additive/modulating fault of ``kind``; ``severity`` 1 = nominal."""
    x = sound.signal
    n = len(x)
    duration = n / sr
    if kind == "imbalance":
        depth = min(0.9, severity * rng.uniform(0.2, 0.35))
        phase = 2 * np.pi * sound.shaft_hz * np.arange(n) / sr + rng.uniform(0, 2 * np.pi)
        return x * (1.0 + depth * np.sin(phase))
    if kind == "bearing":
        fault_hz = sound.shaft_hz * rng.uniform(3.1, 5.4)
        times = dsp.periodic_times(rng, fault_hz, duration, jitter=0.01)
        load_zone = 1.0 + 0.5 * np.sin(2 * np.pi * sound.shaft_hz * times)
        kernel = dsp.resonant_kernel(sr, sound.resonance_hz * rng.uniform(0.9, 1.1), rng.uniform(0.001, 0.003))
        part = dsp.convolve(dsp.impulse_train(n, sr, times, load_zone), kernel)
        level_db = (-16.0, -8.0)
    elif kind == "rattle":  # a loose part knocking roughly once or twice per turn, ringing metallically
        times = dsp.periodic_times(rng, max(sound.shaft_hz, 6.0) * rng.uniform(1.0, 2.0), duration, jitter=0.15)
        times = times[rng.random(len(times)) < 0.7]
        kernel = dsp.resonant_kernel(sr, rng.uniform(2000.0, 6000.0), rng.uniform(0.003, 0.008))
        grit = dsp.noise_kernel(rng, sr, rng.uniform(1500.0, 5000.0), 0.7, 0.002)[: len(kernel)]
        kernel[: len(grit)] += 0.5 * grit
        part = dsp.convolve(dsp.impulse_train(n, sr, times, rng.uniform(0.4, 1.0, size=len(times))), kernel)
        level_db = (-16.0, -9.0)
    elif kind == "leak":
        part = dsp.band_noise(rng, n, sr, rng.uniform(4000.0, 6000.0), 0.6)
        level_db = (-22.0, -14.0)
    else:
        raise ValueError(f"unknown additive fault {kind!r}; known: {sorted(ADDITIVE_FAULTS)}")
    if dsp.rms(part) < 1e-6:  # no event fell inside a very short clip
        return x
    return x + severity * _db(rng, *level_db) * dsp.normalize(part)
