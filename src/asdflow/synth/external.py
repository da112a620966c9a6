"""The external pool: AudioSet-style segments (real mids and names) and their synthetic audio.

About ``external_machine_fraction`` of the clips are machine-like: the DCASE machine
synthesizers run with parameters drawn over wider ranges (some close to the DCASE machines,
labelled Mechanical fan / Pump (liquid) / Gears / ...), plus engines and mains hum. The rest is
unrelated: speech-like (formant-filtered glottal pulses with a syllable rhythm), music-like
(notes and chords with harmonics, drums), birdsong, rain, streams and wind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from asdflow.synth import dsp
from asdflow.synth.config import SynthConfig
from asdflow.synth.machines import MACHINE_TYPES
from asdflow.synth.noise import ambient_background, factory_background

__all__ = [
    "AUDIOSET_CLASSES",
    "POOL_CATEGORIES",
    "SEGMENT_LISTS",
    "PoolClip",
    "PoolCategory",
    "plan_pool",
    "render_pool_clip",
]

# (mid, display_name) in the order of the official class_labels_indices.csv (a subset of it).
AUDIOSET_CLASSES: tuple[tuple[str, str], ...] = (
    ("/m/09x0r", "Speech"),
    ("/m/05zppz", "Male speech, man speaking"),
    ("/m/02zsn", "Female speech, woman speaking"),
    ("/m/0jbk", "Animal"),
    ("/m/015p6", "Bird"),
    ("/m/020bb7", "Bird vocalization, bird call, bird song"),
    ("/m/07pggtn", "Chirp, tweet"),
    ("/m/04rlf", "Music"),
    ("/m/04szw", "Musical instrument"),
    ("/m/05r5c", "Piano"),
    ("/m/059j3w", "Natural sounds"),
    ("/m/03m9d0z", "Wind"),
    ("/m/0838f", "Water"),
    ("/m/06mb1", "Rain"),
    ("/m/07r10fb", "Raindrop"),
    ("/m/0j6m2", "Stream"),
    ("/m/07yv9", "Vehicle"),
    ("/m/0k4j", "Car"),
    ("/m/02mk9", "Engine"),
    ("/t/dd00066", "Medium engine (mid frequency)"),
    ("/m/07pb8fc", "Idling"),
    ("/t/dd00077", "Mechanisms"),
    ("/m/0l7xg", "Gears"),
    ("/m/02x984l", "Mechanical fan"),
    ("/m/025wky1", "Air conditioning"),
    ("/m/07ptzwd", "Pump (liquid)"),
    ("/m/07s34ls", "Whir"),
    ("/m/07rcgpl", "Hum"),
    ("/m/06xkwv", "Mains hum"),
)

SEGMENT_LISTS = ("balanced_train_segments", "eval_segments")
_BALANCED_SHARE = 0.6
_YTID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

Render = Callable[[np.random.Generator, int, int], np.ndarray]


@dataclass(frozen=True)
class PoolCategory:
    """A family of external clips: the label sets it may carry and its synthesizer (unit RMS)."""

    name: str
    machine_like: bool
    labels: tuple[tuple[str, ...], ...]
    render: Render


@dataclass(frozen=True)
class PoolClip:
    """One listed segment; ``has_audio`` False = listed but its file is missing (as in real copies)."""

    ytid: str
    segments: str
    start: float
    labels: tuple[str, ...]
    category: str
    has_audio: bool

    @property
    def file_name(self) -> str:
        """``Y<YTID>.wav`` (the ``Y`` guards ids starting with ``-``)."""
        return f"Y{self.ytid}.wav"


# --------------------------------------------------------------------------- machine-like


def _machine_family(machine: str) -> Render:
    """A DCASE machine type with pool parameters (another unit, another speed), mostly recorded
    in a factory (80 %, either domain's background) at 5-20 dB SNR, else in an ambient one."""
    mtype = MACHINE_TYPES[machine]

    def render(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
        x = mtype.synth(rng, mtype.pool_physical(rng), n, sr, None, 1.0).signal
        if rng.random() < 0.8:
            bg = factory_background(rng, n, sr, "source" if rng.random() < 0.5 else "target")
        else:
            bg = ambient_background(rng, n, sr)
        return x + bg * 10.0 ** (-rng.uniform(5.0, 20.0) / 20.0)

    return render


def _engine(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Four-stroke engine: firing pulses (uneven per cylinder) through body/exhaust resonances."""
    rpm = rng.uniform(650.0, 3500.0)
    firing = rpm / 60.0 * 2.0  # 4 cylinders, 4 strokes
    track = firing * (1.0 + 0.01 * dsp.smooth_random(rng, n, sr, 1.0))
    pulses = dsp.pulse_train(rng, track, sr)
    idx = np.nonzero(pulses)[0]
    pulses[idx] *= np.tile(rng.uniform(0.6, 1.0, size=4), len(idx) // 4 + 1)[: len(idx)]
    kernel = dsp.resonant_kernel(sr, rng.uniform(80.0, 200.0), 0.015)
    click = dsp.resonant_kernel(sr, rng.uniform(600.0, 1200.0), 0.004)
    kernel[: len(click)] += 0.4 * click
    body = dsp.convolve(pulses, kernel)
    intake = dsp.band_noise(rng, n, sr, 1500.0, 1.0) * (1.0 + 0.5 * np.sin(dsp.phase_of(track, sr)))
    return dsp.normalize(dsp.normalize(body) + 0.3 * intake)


def _hum(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Mains hum/buzz: 50 or 60 Hz with strong odd harmonics."""
    f0 = 50.0 if rng.random() < 0.5 else 60.0
    k = np.arange(1.0, 21.0)
    amps = np.where(k % 2 == 1, 1.0, 0.3) * k ** -rng.uniform(0.8, 1.6)
    x = dsp.harmonic_series(rng, np.full(n, f0 * (1.0 + 0.001 * rng.standard_normal())), k, amps, sr)
    return dsp.normalize(dsp.normalize(x) + 0.1 * dsp.colored_noise(rng, n, sr, 1.0))


# --------------------------------------------------------------------------- unrelated

_VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410))


def _speech(rng: np.random.Generator, n: int, sr: int, f0: float) -> np.ndarray:
    """Speech-like: glottal pulses through vowel formants, syllable envelopes, fricative bursts."""
    duration = n / sr
    track = f0 * (1.0 + 0.1 * dsp.smooth_random(rng, n, sr, 2.5))
    glottal = dsp.convolve(dsp.pulse_train(rng, track, sr), np.hanning(max(4, int(0.003 * sr))))
    glottal = np.diff(glottal, prepend=0.0)
    scale = 1.15 if f0 > 160 else 1.0
    out = np.zeros(n)
    t = rng.uniform(0.0, 0.2)
    while t < duration:
        length = rng.uniform(0.12, 0.3)
        i0, i1 = int(t * sr), min(n, int((t + length) * sr))
        formants = np.array(_VOWELS[int(rng.integers(len(_VOWELS)))]) * scale * rng.uniform(0.92, 1.08)
        seg = glottal[i0:i1]
        voiced = sum(w * dsp.resonator(seg, sr, f, bw) for f, w, bw in zip(formants, (1.0, 0.6, 0.3), (80, 100, 150)))
        out[i0:i1] += voiced * np.sin(np.linspace(0.0, np.pi, i1 - i0)) ** 0.5
        if rng.random() < 0.5:  # consonant onset
            m = min(n - i0, int(0.04 * sr))
            out[i0 : i0 + m] += 0.5 * dsp.rms(voiced) * dsp.noise_kernel(rng, sr, 4500.0, 0.6, 0.01)[:m]
        t += length + (rng.uniform(0.2, 0.5) if rng.random() < 0.2 else rng.uniform(0.01, 0.06))
    return dsp.normalize(out)


def _male_speech(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    return _speech(rng, n, sr, rng.uniform(90.0, 140.0))


def _female_speech(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    return _speech(rng, n, sr, rng.uniform(170.0, 250.0))


_SCALES = ((0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10))


def _music(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Music-like: scale notes and chords with harmonic partials, piano- or organ-like envelopes, drums."""
    duration = n / sr
    beat = 60.0 / rng.uniform(80.0, 150.0)
    step = beat / 2 if rng.random() < 0.5 else beat
    root = int(rng.integers(45, 61))
    scale = _SCALES[int(rng.integers(2))]
    piano = rng.random() < 0.5
    slope = 1.2 if piano else 2.0  # bright struck strings vs. mellow organ-like tones
    k = np.arange(1.0, 9.0)
    out = np.zeros(n)
    for j, t in enumerate(np.arange(0.0, duration, step)):
        degree = int(rng.integers(0, 14))
        chord = [degree, degree + 2, degree + 4] if j % 4 == 0 else [degree]
        i0 = int(t * sr)
        length = min(n - i0, int(step * rng.uniform(0.8, 1.8) * sr))
        tt = np.arange(length) / sr
        env = np.exp(-tt / rng.uniform(0.3, 0.8)) if piano else np.minimum(tt / 0.03, 1.0) * np.exp(-tt / 2.0)
        env *= 1.0 - np.exp(-tt / 0.003)
        for d in chord:
            freq = 440.0 * 2.0 ** ((root + 12 * (d // 7) + scale[d % 7] - 69) / 12.0)
            tone = dsp.harmonic_series(rng, np.full(length, freq), k, k**-slope, sr)
            out[i0 : i0 + length] += env * tone
    if rng.random() < 0.6:
        kick_t = np.arange(int(0.15 * sr)) / sr
        kick = np.sin(2 * np.pi * np.cumsum(45.0 + 75.0 * np.exp(-kick_t / 0.03)) / sr) * np.exp(-kick_t / 0.08)
        hat = dsp.noise_kernel(rng, sr, 8000.0, 0.5, 0.01)
        drums = dsp.convolve(dsp.impulse_train(n, sr, np.arange(0.0, duration, beat)), kick)
        drums += 0.5 * dsp.convolve(dsp.impulse_train(n, sr, np.arange(beat / 2, duration, beat)), hat)
        out = dsp.normalize(out) + 0.5 * dsp.normalize(drums)
    return dsp.normalize(out)


def _speech_music(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    voice = _male_speech(rng, n, sr) if rng.random() < 0.5 else _female_speech(rng, n, sr)
    return dsp.normalize(voice + 10.0 ** (-rng.uniform(3.0, 12.0) / 20.0) * _music(rng, n, sr))


def _birds(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Birdsong: phrases of FM chirps (2-7 kHz), some trilled."""
    duration = n / sr
    out = np.zeros(n)
    for start in dsp.poisson_times(rng, rng.uniform(0.8, 2.0), duration):
        t = start
        for _ in range(int(rng.integers(3, 9))):
            length = rng.uniform(0.04, 0.15)
            i0 = int(t * sr)
            m = min(n - i0, int(length * sr))
            if m <= 8:
                break
            u = np.linspace(0.0, 1.0, m)
            f = np.interp(u, [0.0, 1.0], rng.uniform(2000.0, 7000.0, size=2))
            f *= 1.0 + (0.05 * np.sin(2 * np.pi * rng.uniform(30.0, 80.0) * u * length) if rng.random() < 0.4 else 0.0)
            phase = 2 * np.pi * np.cumsum(f) / sr
            out[i0 : i0 + m] += np.hanning(m) * (np.sin(phase) + 0.2 * np.sin(2 * phase))
            t += length + rng.uniform(0.02, 0.08)
    if not np.any(out):
        return _wind(rng, n, sr)
    return dsp.normalize(dsp.normalize(out) + 0.1 * ambient_background(rng, n, sr))


def _rain(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Rain: dense droplet impacts at several pitches + a bright noise bed."""
    duration = n / sr
    drops = np.zeros(n)
    for _ in range(4):
        times = dsp.poisson_times(rng, rng.uniform(40.0, 150.0), duration)
        hits = dsp.impulse_train(n, sr, times, rng.uniform(0.2, 1.0, size=len(times)))
        drops += dsp.convolve(hits, dsp.resonant_kernel(sr, rng.uniform(1000.0, 5000.0), rng.uniform(0.001, 0.004)))
    bed = dsp.spectral_noise(rng, n, sr, lambda f: dsp.log_band(f, rng.uniform(3000.0, 8000.0), 1.5))
    return dsp.normalize(dsp.normalize(drops) + rng.uniform(0.3, 1.0) * bed)


def _stream(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Running water: modulated band noise + rising bubble chirps."""
    duration = n / sr
    flow = dsp.band_noise(rng, n, sr, rng.uniform(600.0, 1500.0), 1.5)
    flow *= 1.0 + 0.3 * dsp.smooth_random(rng, n, sr, 4.0)
    bubbles = np.zeros(n)
    for t in dsp.poisson_times(rng, rng.uniform(5.0, 15.0), duration):
        m = min(n - int(t * sr), int(0.03 * sr))
        tt = np.arange(m) / sr
        f = rng.uniform(300.0, 1200.0) * (1.0 + tt / 0.015)
        bubbles[int(t * sr) : int(t * sr) + m] += np.exp(-tt / 0.008) * np.sin(2 * np.pi * np.cumsum(f) / sr)
    return dsp.normalize(flow + (0.5 * dsp.normalize(bubbles) if np.any(bubbles) else 0.0))


def _wind(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Wind: low rumbling noise with gusts, sometimes a whistle."""
    center = rng.uniform(200.0, 600.0)
    x = dsp.spectral_noise(rng, n, sr, lambda f: dsp.log_band(f, center, 1.5))
    gust = np.exp(0.6 * dsp.smooth_random(rng, n, sr, 0.5))
    if rng.random() < 0.3:
        x = x + 0.3 * dsp.band_noise(rng, n, sr, rng.uniform(600.0, 1500.0), 0.05)
    return dsp.normalize(x * gust)


def _labels(*options: str) -> tuple[tuple[str, ...], ...]:
    """Label sets from comma-joined strings."""
    return tuple(tuple(o.split(",")) for o in options)


POOL_CATEGORIES: dict[str, PoolCategory] = {
    c.name: c
    for c in (
        PoolCategory("fan-like", True, _labels("/m/02x984l", "/m/02x984l,/m/025wky1"), _machine_family("fan")),
        PoolCategory("pump-like", True, _labels("/m/07ptzwd", "/m/0838f,/m/07ptzwd"), _machine_family("pump")),
        PoolCategory("gears", True, _labels("/m/0l7xg", "/t/dd00077,/m/0l7xg"), _machine_family("gearbox")),
        PoolCategory("motor-whir", True, _labels("/m/07s34ls", "/t/dd00077,/m/07s34ls"), _machine_family("ToyCar")),
        PoolCategory("valve-like", True, _labels("/t/dd00077"), _machine_family("valve")),
        PoolCategory("slide-like", True, _labels("/t/dd00077", "/t/dd00077,/m/07s34ls"), _machine_family("slider")),
        PoolCategory(
            "engine", True, _labels("/m/02mk9,/m/07pb8fc", "/m/07yv9,/m/0k4j,/m/02mk9", "/m/02mk9,/t/dd00066"), _engine
        ),
        PoolCategory("hum", True, _labels("/m/07rcgpl", "/m/07rcgpl,/m/06xkwv"), _hum),
        PoolCategory("male-speech", False, _labels("/m/09x0r", "/m/09x0r,/m/05zppz"), _male_speech),
        PoolCategory("female-speech", False, _labels("/m/09x0r", "/m/09x0r,/m/02zsn"), _female_speech),
        PoolCategory("music", False, _labels("/m/04rlf", "/m/04rlf,/m/04szw", "/m/04rlf,/m/04szw,/m/05r5c"), _music),
        PoolCategory("speech-music", False, _labels("/m/09x0r,/m/04rlf"), _speech_music),
        PoolCategory("birds", False, _labels("/m/015p6,/m/020bb7", "/m/0jbk,/m/015p6,/m/07pggtn"), _birds),
        PoolCategory("rain", False, _labels("/m/059j3w,/m/0838f,/m/06mb1", "/m/06mb1,/m/07r10fb"), _rain),
        PoolCategory("stream", False, _labels("/m/0838f,/m/0j6m2", "/m/059j3w,/m/0838f"), _stream),
        PoolCategory("wind", False, _labels("/m/059j3w,/m/03m9d0z", "/m/03m9d0z"), _wind),
    )
}


def _ytids(rng: np.random.Generator, count: int) -> list[str]:
    """Unique 11-character YouTube-style ids; about one in eight starts with ``-``."""
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < count:
        chars = rng.integers(0, len(_YTID_CHARS), size=11)
        ytid = ("-" if rng.random() < 0.125 else _YTID_CHARS[chars[0]]) + "".join(_YTID_CHARS[c] for c in chars[1:])
        if ytid not in seen:
            seen.add(ytid)
            out.append(ytid)
    return out


def plan_pool(cfg: SynthConfig) -> list[PoolClip]:
    """Every listed external segment (sorted by list, then YTID); a few have no audio."""
    rng = dsp.clip_rng(cfg.seed, "plan", "audioset")
    total = cfg.n_external
    machine_cats = [c.name for c in POOL_CATEGORIES.values() if c.machine_like]
    other_cats = [c.name for c in POOL_CATEGORIES.values() if not c.machine_like]
    n_machine = int(round(total * cfg.external_machine_fraction))
    cats = [machine_cats[i % len(machine_cats)] for i in range(n_machine)]
    cats += [other_cats[i % len(other_cats)] for i in range(total - n_machine)]
    cats = [cats[i] for i in rng.permutation(total)]
    n_missing = max(1, int(round(total * cfg.external_missing_fraction))) if cfg.external_missing_fraction > 0 else 0
    missing = set(rng.choice(total, size=min(n_missing, total), replace=False).tolist()) if total else set()
    n_balanced = int(round(total * _BALANCED_SHARE))
    clips = []
    for i, (ytid, cat) in enumerate(zip(_ytids(rng, total), cats)):
        options = POOL_CATEGORIES[cat].labels
        clips.append(
            PoolClip(
                ytid=ytid,
                segments=SEGMENT_LISTS[0] if i < n_balanced else SEGMENT_LISTS[1],
                start=float(rng.integers(0, 300)),
                labels=options[int(rng.integers(len(options)))],
                category=cat,
                has_audio=i not in missing,
            )
        )
    return sorted(clips, key=lambda c: (SEGMENT_LISTS.index(c.segments), c.ytid))


def render_pool_clip(clip: PoolClip, cfg: SynthConfig) -> np.ndarray:
    """The clip's audio as int16 samples at ``cfg.external_sample_rate``."""
    rng = dsp.clip_rng(cfg.seed, "audioset", clip.ytid)
    sr = cfg.external_sample_rate
    n = int(round(cfg.external_seconds * sr))
    x = POOL_CATEGORIES[clip.category].render(rng, n, sr)
    if not POOL_CATEGORIES[clip.category].machine_like:
        x = x + ambient_background(rng, n, sr) * 10.0 ** (-rng.uniform(10.0, 30.0) / 20.0)
    return dsp.to_pcm16(x, rms_dbfs=float(rng.uniform(-30.0, -18.0)))
