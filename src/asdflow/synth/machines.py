"""Machine types: attributes (file-name tails), physical parameters and per-type synthesis.

Each machine type maps its attribute values (``rpm_1500_mic_1``) to physical parameters and
renders a clip from them. The first attribute is the domain-shift parameter: its target-domain
values are never seen in the source domain. Every clip draws its own small parameter jitter.

Two anomaly kinds change the synthesis itself (:data:`INTERNAL_FAULTS`): ``detune`` (partials
stretched apart and a drifting speed) and ``missing_harmonic`` (one strong partial almost
gone). The additive/modulating kinds live in :mod:`asdflow.synth.noise`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from asdflow.synth import dsp

__all__ = [
    "AttrSpec",
    "MachineSound",
    "MachineType",
    "MACHINE_TYPES",
    "INTERNAL_FAULTS",
    "max_attributes",
]

INTERNAL_FAULTS = frozenset({"detune", "missing_harmonic"})


@dataclass(frozen=True)
class AttrSpec:
    """One attribute: its key and the values used in the source and target domains."""

    key: str
    source: tuple[str, ...]
    target: tuple[str, ...]


@dataclass(frozen=True)
class MachineSound:
    """A rendered machine signal (unit RMS) plus what fault models need to know about it."""

    signal: np.ndarray
    shaft_hz: float  # rotation (or cycle) rate: drives imbalance and bearing-fault rates
    resonance_hz: float  # structural resonance excited by impacts (bearing faults)


Params = dict[str, float]
SynthFn = Callable[[np.random.Generator, Params, int, int, "str | None", float], MachineSound]


@dataclass(frozen=True)
class MachineType:
    """A machine type: attributes, anomaly kinds, parameter mappings and the synthesizer.

    ``physical`` maps attribute values to parameters; ``pool_physical`` draws parameters over a
    wider range for machine-like clips of the external pool.
    """

    name: str
    attributes: tuple[AttrSpec, ...]
    anomalies: tuple[str, ...]
    physical: Callable[[dict[str, str]], Params]
    pool_physical: Callable[[np.random.Generator], Params]
    synth: SynthFn


# --------------------------------------------------------------------------- shared pieces


def _partials(
    rng: np.random.Generator, count: int, slope: float, fault: str | None, severity: float
) -> tuple[np.ndarray, np.ndarray]:
    """Partial ratios and amplitudes of a harmonic machine tone (amplitude ∝ k**-slope, jittered)."""
    k = np.arange(1, count + 1, dtype=float)
    amps = k**-slope * np.exp(0.15 * rng.standard_normal(count))
    ratios = k.copy()
    if fault == "detune":
        ratios = k * (1.0 + severity * rng.uniform(0.004, 0.008) * (k - 1.0))
    elif fault == "missing_harmonic":
        j = int(rng.integers(1, min(4, count)))
        amps[j] *= max(0.0, 1.0 - 0.9 * severity)
    return ratios, amps


def _speed_track(
    rng: np.random.Generator,
    n: int,
    sr: int,
    f0: float,
    wobble: float,
    rate_hz: float,
    fault: str | None,
    severity: float,
) -> np.ndarray:
    """Instantaneous frequency around ``f0`` with small random wobble; ``detune`` adds a drift."""
    f = f0 * (1.0 + wobble * dsp.smooth_random(rng, n, sr, rate_hz))
    if fault == "detune":
        depth = severity * rng.uniform(0.025, 0.05) * rng.choice([-1.0, 1.0])
        f *= 1.0 + depth * (0.6 + 0.4 * dsp.smooth_random(rng, n, sr, 1.5))
    return f


def _mic(x: np.ndarray, sr: int, position: float) -> np.ndarray:
    """Microphone position: 1 = near (flat); larger = farther (high-frequency loss + reflection)."""
    far = position - 1.0
    if far <= 0.0:
        return x
    y = dsp.equalize(x, sr, lambda f: 1.0 / np.sqrt(1.0 + (f / (4000.0 / (1.0 + far))) ** 2))
    delay = int(0.004 * sr * far)
    y[delay:] += 0.35 * y[: len(y) - delay]
    return y * 10.0 ** (-3.0 * far / 20.0)


# --------------------------------------------------------------------------- fan


_FAN_BLADES = 5


def _fan(rng: np.random.Generator, p: Params, n: int, sr: int, fault: str | None, sev: float) -> MachineSound:
    """Blade-pass harmonics (rpm × blades) + broadband aerodynamic noise modulated by the blades."""
    shaft = p["rpm"] / 60.0 * (1.0 + 0.01 * rng.standard_normal())
    bpf_track = _speed_track(rng, n, sr, shaft * _FAN_BLADES, 0.003, 1.0, fault, sev)
    ratios, amps = _partials(rng, 8, 1.1, fault, sev)
    tonal = dsp.harmonic_series(rng, bpf_track, ratios, amps, sr)
    tonal += 0.08 * np.sin(dsp.phase_of(bpf_track / _FAN_BLADES, sr))  # 1× shaft component
    speed = p["rpm"] / 1500.0
    noise = dsp.band_noise(rng, n, sr, 900.0 * speed, 1.6) + 0.3 * dsp.colored_noise(rng, n, sr, 1.0)
    noise = dsp.normalize(noise) * (1.0 + 0.25 * np.sin(dsp.phase_of(bpf_track, sr)))
    x = dsp.normalize(tonal) + 0.9 * speed**1.5 * noise
    x = _mic(x, sr, p["mic"])
    return MachineSound(dsp.normalize(x), shaft, 2800.0 * (1.0 + 0.03 * rng.standard_normal()))


def _fan_pool(rng: np.random.Generator) -> Params:
    return {"rpm": float(rng.uniform(700.0, 3200.0)), "mic": float(rng.choice([1.0, 2.0]))}


# --------------------------------------------------------------------------- pump

# load → (speed factor from motor slip, flow-noise level, pulsation depth)
_PUMP_LOAD = {"A": (1.00, 0.35, 0.25), "B": (0.97, 0.50, 0.35), "C": (0.94, 0.70, 0.45), "D": (0.90, 0.95, 0.6)}
_PUMP_VANES = 6


def _pump(rng: np.random.Generator, p: Params, n: int, sr: int, fault: str | None, sev: float) -> MachineSound:
    """Mains-locked motor hum + vane-pass harmonics + flow noise pulsating once per revolution."""
    shaft = 24.5 * p["speed"] * (1.0 + 0.005 * rng.standard_normal())
    vpf_track = _speed_track(rng, n, sr, shaft * _PUMP_VANES, 0.002, 1.0, fault, sev)
    ratios, amps = _partials(rng, 5, 1.3, fault, sev)
    tonal = dsp.harmonic_series(rng, vpf_track, ratios, amps, sr)
    hum_track = np.full(n, 100.0 * (1.0 + 0.001 * rng.standard_normal()))
    hum = dsp.harmonic_series(rng, hum_track, np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.4, 0.2]), sr)
    pulse = (0.5 + 0.5 * np.cos(dsp.phase_of(vpf_track / _PUMP_VANES, sr))) ** 4
    flow = dsp.band_noise(rng, n, sr, 600.0, 1.3) * (1.0 + p["pulsation"] * (pulse - 0.3))
    x = dsp.normalize(tonal) + 0.5 * dsp.normalize(hum) + p["flow"] * flow
    return MachineSound(dsp.normalize(x), shaft, 2500.0 * (1.0 + 0.03 * rng.standard_normal()))


def _pump_physical(a: dict[str, str]) -> Params:
    speed, flow, pulsation = _PUMP_LOAD[a["load"]]
    return {"speed": speed, "flow": flow, "pulsation": pulsation}


def _pump_pool(rng: np.random.Generator) -> Params:
    return {
        "speed": float(rng.uniform(0.6, 1.5)),
        "flow": float(rng.uniform(0.2, 1.2)),
        "pulsation": float(rng.uniform(0.1, 0.8)),
    }


# --------------------------------------------------------------------------- gearbox

_GEAR_TEETH = (21, 34)


def _gearbox(rng: np.random.Generator, p: Params, n: int, sr: int, fault: str | None, sev: float) -> MachineSound:
    """Gear-mesh harmonics with shaft-rate sidebands (load deepens them) + churning noise."""
    shaft = 12.0 * p["volt"] * (1.0 - 0.0003 * p["wt"]) * (1.0 + 0.005 * rng.standard_normal())
    mesh_track = _speed_track(rng, n, sr, shaft * _GEAR_TEETH[0], 0.002, 1.0, fault, sev)
    ratios, amps = _partials(rng, 4, 1.0, fault, sev)
    tonal = dsp.harmonic_series(rng, mesh_track, ratios, amps, sr)
    shaft_phase = dsp.phase_of(mesh_track / _GEAR_TEETH[0], sr)
    depth = 0.12 + p["wt"] / 1500.0
    tonal *= 1.0 + depth * np.cos(shaft_phase) + 0.08 * np.cos(shaft_phase * _GEAR_TEETH[0] / _GEAR_TEETH[1])
    churn = dsp.colored_noise(rng, n, sr, 1.5) + 0.4 * dsp.band_noise(rng, n, sr, 2000.0, 1.0)
    x = dsp.normalize(tonal) + 0.35 * dsp.normalize(churn)
    return MachineSound(dsp.normalize(x), shaft, 3500.0 * (1.0 + 0.03 * rng.standard_normal()))


def _gearbox_pool(rng: np.random.Generator) -> Params:
    return {"volt": float(rng.uniform(0.7, 3.5)), "wt": float(rng.uniform(0.0, 300.0))}


# --------------------------------------------------------------------------- ToyCar


def _toycar(rng: np.random.Generator, p: Params, n: int, sr: int, fault: str | None, sev: float) -> MachineSound:
    """DC-motor whine (pitch ∝ speed, unsteady) + commutator buzz + wheel rattle + rolling noise."""
    spd = p["spd"]
    f0 = (300.0 + 90.0 * spd) * (1.0 + 0.01 * rng.standard_normal())
    track = _speed_track(rng, n, sr, f0, 0.008, 3.0, fault, sev)
    ratios, amps = _partials(rng, 6, 0.9, fault, sev)
    whine = dsp.harmonic_series(rng, track, ratios, amps, sr)
    buzz = dsp.band_noise(rng, n, sr, 3000.0, 1.0) * (1.0 + np.sin(dsp.phase_of(track, sr)))
    wheel_hz = 5.0 * spd * (1.0 + 0.02 * rng.standard_normal())
    duration = n / sr
    times = dsp.periodic_times(rng, wheel_hz, duration, jitter=0.08)
    hits = dsp.impulse_train(n, sr, times, rng.uniform(0.5, 1.0, size=len(times)))
    rattle = dsp.convolve(hits, dsp.noise_kernel(rng, sr, 2800.0, 0.8, 0.004))
    rolling = dsp.band_noise(rng, n, sr, 300.0 * (1.0 + 0.3 * spd), 1.2)
    x = dsp.normalize(whine) + 0.2 * dsp.normalize(buzz) + 0.35 * dsp.normalize(rattle) + 0.3 * np.sqrt(spd) * rolling
    x = _mic(x, sr, p["mic"])
    return MachineSound(dsp.normalize(x), wheel_hz, 5000.0 * (1.0 + 0.03 * rng.standard_normal()))


def _toycar_pool(rng: np.random.Generator) -> Params:
    return {"spd": float(rng.uniform(0.5, 6.0)), "mic": float(rng.choice([1.0, 2.0]))}


# --------------------------------------------------------------------------- valve

# pattern → (cycle period s, open time s, double actuation)
_VALVE_PATTERNS = {
    "00": (0.50, 0.20, 0.0),
    "01": (0.35, 0.10, 0.0),
    "02": (0.60, 0.12, 1.0),
    "03": (0.45, 0.30, 0.0),
}


def _valve(rng: np.random.Generator, p: Params, n: int, sr: int, fault: str | None, sev: float) -> MachineSound:
    """Solenoid valve: opening/closing clicks exciting a seat resonance + flow hiss while open."""
    duration = n / sr
    period = p["period"] * (1.0 + 0.03 * rng.standard_normal())
    f_seat = 2600.0 * (1.0 + 0.03 * rng.standard_normal())
    decay = 0.004
    if fault == "detune":  # worn seat: shifted, more damped resonance
        f_seat *= 1.0 + sev * rng.uniform(0.06, 0.12) * rng.choice([-1.0, 1.0])
        decay *= max(0.4, 1.0 - 0.4 * sev)
    cycles = np.arange(-1, int(duration / period) + 2) * period + rng.uniform(0.0, period)
    opens = [cycles]
    closes = [cycles + p["open"]]
    if p["double"] > 0.5:
        opens.append(cycles + p["open"] + 0.08)
        closes.append(cycles + 2 * p["open"] + 0.08)
    op = np.concatenate(opens) + rng.normal(0.0, 0.004, size=sum(len(o) for o in opens))
    cl = np.concatenate(closes) + rng.normal(0.0, 0.004, size=sum(len(c) for c in closes))
    click = 0.5 * dsp.resonant_kernel(sr, 350.0, 0.010)
    seat = dsp.resonant_kernel(sr, f_seat, decay)
    click[: len(seat)] += seat
    events = np.concatenate([op, cl])
    amps = np.concatenate([np.full(len(op), 0.6), np.ones(len(cl))]) * rng.uniform(0.85, 1.15, size=len(events))
    inside = (events >= 0) & (events < duration)
    clicks = dsp.convolve(dsp.impulse_train(n, sr, events[inside], amps[inside]), click)
    hiss = dsp.band_noise(rng, n, sr, 5000.0, 0.8) * dsp.gate(n, sr, op, cl)
    line = dsp.harmonic_series(rng, np.full(n, 120.0), np.array([1.0, 2.0]), np.array([1.0, 0.5]), sr)
    x = dsp.normalize(clicks) + 0.25 * hiss + 0.05 * line
    return MachineSound(dsp.normalize(x), 1.0 / period, f_seat)


def _valve_physical(a: dict[str, str]) -> Params:
    period, open_s, double = _VALVE_PATTERNS[a["pat"]]
    return {"period": period, "open": open_s, "double": double}


def _valve_pool(rng: np.random.Generator) -> Params:
    period = float(rng.uniform(0.25, 0.8))
    return {"period": period, "open": period * float(rng.uniform(0.2, 0.6)), "double": float(rng.random() < 0.3)}


# --------------------------------------------------------------------------- slider

_SLIDER_STROKE_MM = 100.0
_SLIDER_LEAD_MM = 10.0


def _slider(rng: np.random.Generator, p: Params, n: int, sr: int, fault: str | None, sev: float) -> MachineSound:
    """Slide rail: back-and-forth strokes of friction noise + screw-motor tone + end-stop knocks."""
    duration = n / sr
    vel = p["vel"] * (1.0 + 0.02 * rng.standard_normal())
    stroke = _SLIDER_STROKE_MM / vel
    cycle = stroke + 0.05
    starts = np.arange(-1, int(duration / cycle) + 2) * cycle + rng.uniform(0.0, cycle)
    moving = dsp.gate(n, sr, starts, starts + stroke, ramp_s=0.02)
    screw_hz = vel / _SLIDER_LEAD_MM
    track = _speed_track(rng, n, sr, screw_hz * 24.0, 0.004, 2.0, fault, sev)
    ratios, amps = _partials(rng, 4, 1.2, fault, sev)
    motor = dsp.harmonic_series(rng, track, ratios, amps, sr) * moving
    level = np.sqrt(vel / 200.0)
    friction = dsp.band_noise(rng, n, sr, 1500.0 * (vel / 200.0) ** 0.3, 1.5) * moving * level
    ends = starts + stroke
    knocks = dsp.convolve(
        dsp.impulse_train(n, sr, ends[(ends >= 0) & (ends < duration)]), dsp.resonant_kernel(sr, 3200.0, 0.003)
    )
    x = dsp.normalize(motor) + 0.8 * friction + 0.6 * dsp.normalize(knocks) + 0.02 * dsp.colored_noise(rng, n, sr, 1.0)
    return MachineSound(dsp.normalize(x), screw_hz, 3200.0 * (1.0 + 0.03 * rng.standard_normal()))


def _slider_pool(rng: np.random.Generator) -> Params:
    return {"vel": float(rng.uniform(60.0, 600.0))}


# --------------------------------------------------------------------------- registry


def _numeric(*keys: str) -> Callable[[dict[str, str]], Params]:
    """Attribute values that are already the physical numbers."""
    return lambda a: {k: float(a[k]) for k in keys}


MACHINE_TYPES: dict[str, MachineType] = {
    m.name: m
    for m in (
        MachineType(
            "fan",
            (AttrSpec("rpm", ("1200", "1500", "1800"), ("2100",)), AttrSpec("mic", ("1", "2"), ("1", "2"))),
            ("bearing", "imbalance", "missing_harmonic", "rattle"),
            _numeric("rpm", "mic"),
            _fan_pool,
            _fan,
        ),
        MachineType(
            "pump",
            (AttrSpec("load", ("A", "B", "C"), ("D",)),),
            ("bearing", "imbalance", "detune", "rattle"),
            _pump_physical,
            _pump_pool,
            _pump,
        ),
        MachineType(
            "gearbox",
            (AttrSpec("volt", ("1.0", "1.5", "2.0"), ("2.5",)), AttrSpec("wt", ("100", "200"), ("100", "200"))),
            ("bearing", "imbalance", "detune", "missing_harmonic"),
            _numeric("volt", "wt"),
            _gearbox_pool,
            _gearbox,
        ),
        MachineType(
            "ToyCar",
            (AttrSpec("spd", ("1", "2", "3"), ("4",)), AttrSpec("mic", ("1", "2"), ("1", "2"))),
            ("rattle", "detune", "bearing", "missing_harmonic"),
            _numeric("spd", "mic"),
            _toycar_pool,
            _toycar,
        ),
        MachineType(
            "valve",
            (AttrSpec("pat", ("00", "01", "02"), ("03",)),),
            ("rattle", "detune", "leak"),
            _valve_physical,
            _valve_pool,
            _valve,
        ),
        MachineType(
            "slider",
            (AttrSpec("vel", ("100", "200", "300"), ("400",)),),
            ("rattle", "bearing", "detune"),
            _numeric("vel"),
            _slider_pool,
            _slider,
        ),
    )
}


def max_attributes() -> int:
    """Largest number of attributes of any machine type (= pair columns of attributes_00.csv)."""
    return max(len(m.attributes) for m in MACHINE_TYPES.values())
