"""Machine types: attributes (file-name tails), physical parameters and per-type synthesis.

Each machine type maps its attribute values (``load_L1_model_M2``) to physical parameters and
renders a clip from them. The first attribute is the domain-shift parameter: its target-domain
values are never seen in the source domain. Every clip draws its own small parameter jitter.

The rotating machines (fan, pump, gearbox, ToyCar) share one attribute scheme, built so that
attributes matter for fault detection as they do in DCASE data (issue 15):

* ``model`` (M1-M3, both domains) picks a unit *signature* (:func:`variant_signature`, the same
  for every data seed): a ±4 dB pattern of partial levels that keeps the power of every octave
  (energy moves between neighbouring partials only) and the unit's tonal pattern over one shaft
  revolution (depths and phases of its 1×..6× shaft-rate modulation, i.e. sidebands around
  every partial). Neither changes the clip's level, tilt or octave-band energies: attribute
  identity has no coarse clip-average spectral shortcut, only fine structure.
* ``load`` shifts the speed by a few percent: L1 / L2 (source, 3 % apart, about half a
  semitone) and L3 (target only, 7 % above L1). With the target background this is the domain
  shift: the same units at another operating point in another room.
* The faults disturb exactly that structure: ``damage`` (two neighbouring partials trade
  5-8 dB and one revolution harmonic changes), ``missing_harmonic``, ``imbalance`` (extra 1×
  modulation) and ``detune`` (stretched partials, drifting speed); one impulsive kind
  (``bearing`` or ``rattle``) per type keeps a fault that any model can hear.

valve and slider keep their rhythmic patterns as attributes. External-pool machines of the same
kinds use signatures no DCASE unit has and a wider speed range (:func:`_pool_unit`).

Three anomaly kinds change the synthesis itself (:data:`INTERNAL_FAULTS`): ``detune``,
``missing_harmonic`` and ``damage``. The additive/modulating kinds live in
:mod:`asdflow.synth.noise`.
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
    "variant_signature",
]

INTERNAL_FAULTS = frozenset({"detune", "missing_harmonic", "damage"})


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


_N_CYCLE = 6  # shaft-rate harmonics of a unit's revolution pattern
_CYCLE_DEPTH = 0.5  # total modulation depth of the pattern (sum of its harmonics' depths)
_LEVEL_DB = 4.0  # standard deviation of a unit's partial-level pattern
_POOL_VARIANT0 = 1000  # pool machines use signatures from this index on (never a DCASE unit)


def variant_signature(machine: str, variant: int, n_partials: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fixed signature of unit ``variant`` of a machine type (the same for every data seed):
    depths ``c_h`` and phases ``θ_h`` of its revolution pattern 1 + Σ c_h cos(h·φ_shaft + θ_h)
    (h = 1..6, Σ c_h = 0.5) and its partial-level pattern in dB (zero mean, 4 dB s.d.)."""
    rng = dsp.clip_rng(0, "unit-signature", machine, str(int(variant)))
    depth = rng.uniform(0.0, 1.0, size=_N_CYCLE) ** 2
    depth *= _CYCLE_DEPTH / depth.sum()
    phases = rng.uniform(0.0, 2.0 * np.pi, size=_N_CYCLE)
    levels = rng.standard_normal(n_partials)
    levels = (levels - levels.mean()) / max(levels.std(), 1e-9) * _LEVEL_DB
    return depth, phases, levels


def _signed(
    rng: np.random.Generator, machine: str, variant: float, amps: np.ndarray, fault: str | None = None,
    severity: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Partial amplitudes with the unit's level pattern, and its revolution pattern jittered
    per clip (depths ±10 %, phases ±0.15 rad). ``damage`` (a damaged blade/vane/tooth) disturbs
    the unit's signature: two neighbouring partials trade 5-8 dB of level (the octave's power
    kept) and one harmonic of the revolution pattern gains 0.12-0.2 depth and turns by 1-2 rad."""
    depth, phases, levels = variant_signature(machine, int(variant), len(amps))
    depth = depth * (1.0 + 0.1 * rng.standard_normal(len(depth)))
    phases = phases + 0.15 * rng.standard_normal(len(phases))
    if fault == "damage":
        h = int(rng.integers(0, len(depth)))
        depth[h] += severity * rng.uniform(0.12, 0.2)
        phases[h] += severity * rng.uniform(1.0, 2.0) * rng.choice([-1.0, 1.0])
        j = int(rng.integers(1, len(levels) - 1))
        delta = severity * rng.uniform(5.0, 8.0) * rng.choice([-1.0, 1.0])
        levels = levels.copy()
        levels[j] += delta
        levels[j + 1] -= delta
    return _octave_balanced(amps, 10.0 ** (levels / 20.0)), depth, phases


def _octave_balanced(amps: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """``amps · gains`` rescaled so that each octave group of partials (1 | 2-3 | 4-7 | 8-15)
    keeps its power: the level pattern moves energy between neighbouring partials only, so
    octave-band energies (a coarse clip-average spectrum) do not reveal the unit."""
    out = amps * gains
    group = np.floor(np.log2(np.arange(1, len(amps) + 1))).astype(int)
    for g in np.unique(group):
        sel = group == g
        out[sel] *= np.sqrt(np.sum(amps[sel] ** 2) / max(np.sum(out[sel] ** 2), 1e-24))
    return out


def _revolution(shaft_phase: np.ndarray, depth: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """1 + Σ c_h cos(h·φ + θ_h): the unit's tonal pattern over one revolution."""
    env = np.ones_like(shaft_phase)
    for h, (c, th) in enumerate(zip(depth, phases), start=1):
        env += c * np.cos(h * shaft_phase + th)
    return env


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


# --------------------------------------------------------------------------- fan


_FAN_BLADES = 5
_FAN_SHAFT_HZ = 25.0


def _fan(rng: np.random.Generator, p: Params, n: int, sr: int, fault: str | None, sev: float) -> MachineSound:
    """Blade-pass harmonics with the unit's revolution pattern + broadband aerodynamic noise
    modulated by the blades."""
    shaft = _FAN_SHAFT_HZ * p["speed"] * (1.0 + 0.004 * rng.standard_normal())
    bpf_track = _speed_track(rng, n, sr, shaft * _FAN_BLADES, 0.002, 1.0, fault, sev)
    ratios, amps = _partials(rng, 8, 1.1, fault, sev)
    amps, depth, phases = _signed(rng, "fan", p["variant"], amps, fault, sev)
    shaft_phase = dsp.phase_of(bpf_track / _FAN_BLADES, sr) + rng.uniform(0, 2 * np.pi)
    tonal = dsp.harmonic_series(rng, bpf_track, ratios, amps, sr) * _revolution(shaft_phase, depth, phases)
    noise = dsp.band_noise(rng, n, sr, 900.0, 1.6) + 0.3 * dsp.colored_noise(rng, n, sr, 1.0)
    noise = dsp.normalize(noise) * (1.0 + 0.25 * np.sin(dsp.phase_of(bpf_track, sr)))
    x = dsp.normalize(tonal) + 0.6 * noise
    return MachineSound(dsp.normalize(x), shaft, 2800.0 * (1.0 + 0.03 * rng.standard_normal()))


def _fan_pool(rng: np.random.Generator) -> Params:
    return _pool_unit(rng)


# --------------------------------------------------------------------------- pump

_PUMP_VANES = 6
_PUMP_SHAFT_HZ = 24.5


def _pump(rng: np.random.Generator, p: Params, n: int, sr: int, fault: str | None, sev: float) -> MachineSound:
    """Mains-locked motor hum + vane-pass harmonics with the unit's revolution pattern + flow
    noise pulsating once per revolution."""
    shaft = _PUMP_SHAFT_HZ * p["speed"] * (1.0 + 0.004 * rng.standard_normal())
    vpf_track = _speed_track(rng, n, sr, shaft * _PUMP_VANES, 0.002, 1.0, fault, sev)
    ratios, amps = _partials(rng, 6, 1.2, fault, sev)
    amps, depth, phases = _signed(rng, "pump", p["variant"], amps, fault, sev)
    shaft_phase = dsp.phase_of(vpf_track / _PUMP_VANES, sr) + rng.uniform(0, 2 * np.pi)
    tonal = dsp.harmonic_series(rng, vpf_track, ratios, amps, sr) * _revolution(shaft_phase, depth, phases)
    hum_track = np.full(n, 100.0 * (1.0 + 0.001 * rng.standard_normal()))
    hum = dsp.harmonic_series(rng, hum_track, np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.4, 0.2]), sr)
    pulse = (0.5 + 0.5 * np.cos(shaft_phase)) ** 4
    flow = dsp.band_noise(rng, n, sr, 600.0, 1.3) * (1.0 + 0.35 * (pulse - 0.3))
    x = dsp.normalize(tonal) + 0.4 * dsp.normalize(hum) + 0.5 * flow
    return MachineSound(dsp.normalize(x), shaft, 2500.0 * (1.0 + 0.03 * rng.standard_normal()))


def _pump_pool(rng: np.random.Generator) -> Params:
    return _pool_unit(rng)


# --------------------------------------------------------------------------- gearbox

_GEAR_TEETH = (21, 34)
_GEAR_SHAFT_HZ = 18.0


def _gearbox(rng: np.random.Generator, p: Params, n: int, sr: int, fault: str | None, sev: float) -> MachineSound:
    """Gear-mesh harmonics with the unit's revolution pattern (shaft-rate sidebands) and the
    second gear's once-per-turn modulation + churning noise."""
    shaft = _GEAR_SHAFT_HZ * p["speed"] * (1.0 + 0.004 * rng.standard_normal())
    mesh_track = _speed_track(rng, n, sr, shaft * _GEAR_TEETH[0], 0.002, 1.0, fault, sev)
    ratios, amps = _partials(rng, 5, 1.0, fault, sev)
    amps, depth, phases = _signed(rng, "gearbox", p["variant"], amps, fault, sev)
    tonal = dsp.harmonic_series(rng, mesh_track, ratios, amps, sr)
    shaft_phase = dsp.phase_of(mesh_track / _GEAR_TEETH[0], sr) + rng.uniform(0, 2 * np.pi)
    tonal *= _revolution(shaft_phase, depth, phases) + 0.08 * np.cos(shaft_phase * _GEAR_TEETH[0] / _GEAR_TEETH[1])
    churn = dsp.colored_noise(rng, n, sr, 1.5) + 0.4 * dsp.band_noise(rng, n, sr, 2000.0, 1.0)
    x = dsp.normalize(tonal) + 0.35 * dsp.normalize(churn)
    return MachineSound(dsp.normalize(x), shaft, 3500.0 * (1.0 + 0.03 * rng.standard_normal()))


def _gearbox_pool(rng: np.random.Generator) -> Params:
    return _pool_unit(rng)


# --------------------------------------------------------------------------- ToyCar


_TOYCAR_MOTOR_HZ = 480.0
_TOYCAR_POLES = 6  # commutator segments per motor revolution


def _toycar(rng: np.random.Generator, p: Params, n: int, sr: int, fault: str | None, sev: float) -> MachineSound:
    """DC-motor whine with the unit's revolution pattern (unsteady) + commutator buzz + wheel
    rattle + rolling noise."""
    f0 = _TOYCAR_MOTOR_HZ * p["speed"] * (1.0 + 0.004 * rng.standard_normal())
    track = _speed_track(rng, n, sr, f0, 0.004, 3.0, fault, sev)
    ratios, amps = _partials(rng, 6, 0.9, fault, sev)
    amps, depth, phases = _signed(rng, "ToyCar", p["variant"], amps, fault, sev)
    rev_phase = dsp.phase_of(track / _TOYCAR_POLES, sr) + rng.uniform(0, 2 * np.pi)
    whine = dsp.harmonic_series(rng, track, ratios, amps, sr) * _revolution(rev_phase, depth, phases)
    buzz = dsp.band_noise(rng, n, sr, 3000.0, 1.0) * (1.0 + np.sin(dsp.phase_of(track, sr)))
    wheel_hz = 12.0 * p["speed"] * (1.0 + 0.02 * rng.standard_normal())
    duration = n / sr
    times = dsp.periodic_times(rng, wheel_hz, duration, jitter=0.08)
    hits = dsp.impulse_train(n, sr, times, rng.uniform(0.5, 1.0, size=len(times)))
    rattle = dsp.convolve(hits, dsp.noise_kernel(rng, sr, 2800.0, 0.8, 0.004))
    rolling = dsp.band_noise(rng, n, sr, 500.0, 1.2)
    x = dsp.normalize(whine) + 0.2 * dsp.normalize(buzz) + 0.25 * dsp.normalize(rattle) + 0.3 * rolling
    return MachineSound(dsp.normalize(x), wheel_hz, 5000.0 * (1.0 + 0.03 * rng.standard_normal()))


def _toycar_pool(rng: np.random.Generator) -> Params:
    return _pool_unit(rng)


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


# load -> speed factor: a few percent between the source loads (about half a semitone); the
# target-domain load L3 runs the same units faster (the domain shift, with the background)
_LOAD_SPEED = {"L1": 1.0, "L2": 1.03, "L3": 1.07}
_LOADS = AttrSpec("load", ("L1", "L2"), ("L3",))
_MODELS = AttrSpec("model", ("M1", "M2", "M3"), ("M1", "M2", "M3"))


def _unit(a: dict[str, str]) -> Params:
    """``model`` M<k> -> signature k; ``load`` -> speed factor."""
    return {"variant": float(int(a["model"][1:])), "speed": _LOAD_SPEED[a["load"]]}


def _pool_unit(rng: np.random.Generator) -> Params:
    """A machine of the same kind in the external pool: another unit's signature, speeds from 8 %
    below L1 to 5 % above L3."""
    return {"variant": float(_POOL_VARIANT0 + int(rng.integers(0, 50))), "speed": float(rng.uniform(0.92, 1.12))}


MACHINE_TYPES: dict[str, MachineType] = {
    m.name: m
    for m in (
        MachineType("fan", (_LOADS, _MODELS), ("damage", "imbalance", "missing_harmonic", "bearing"), _unit,
                    _fan_pool, _fan),
        MachineType("pump", (_LOADS, _MODELS), ("damage", "imbalance", "detune", "rattle"), _unit, _pump_pool,
                    _pump),
        MachineType("gearbox", (_LOADS, _MODELS), ("damage", "detune", "missing_harmonic", "bearing"), _unit,
                    _gearbox_pool, _gearbox),
        MachineType("ToyCar", (_LOADS, _MODELS), ("damage", "detune", "missing_harmonic", "rattle"), _unit,
                    _toycar_pool, _toycar),
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
