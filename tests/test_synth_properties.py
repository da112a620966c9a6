"""Statistical properties of the built-in data that the seed-000 ladder rests on (issue 15),
checked cheaply on hand-made features of rendered clips, not on a trained net.

The demo data must reward what the paper relies on, as DCASE data does:

* a machine's units (attribute ``model``) differ in fine structure (the revolution pattern's
  sidebands and partial levels, resolved by a full-clip DFT), not in coarse level or spectral
  shape (no clip-average shortcut for attribute identity);
* faults disturb exactly that structure, so knowing a clip's unit helps to detect its fault
  (the labeled-vs-unlabeled gap);
* the target domain (another load and background) keeps each unit recognisable (a moderate shift);
* machine-like external clips resemble the machine types more than unrelated clips do;
* with ``nearby_machinery`` on (an option, not the demo's default), other machines running nearby
  cost a frame-level log-mel reconstruction model (the AE baseline's principle) accuracy: the
  nuisance the seed-000 triplet loss teaches invariance to.

The demo preset has no nearby machinery (``nearby_machinery=0``); the last check turns it on.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score

from asdflow.baselines.features import logmel

from asdflow.synth import SynthConfig
from asdflow.synth.dcase import DcaseClip, render_dcase_clip
from asdflow.synth.external import POOL_CATEGORIES, PoolClip, render_pool_clip
from asdflow.synth.machines import MACHINE_TYPES

CFG = SynthConfig.from_preset("demo")
MACHINES = ("fan", "pump", "gearbox", "ToyCar")
MODELS = ("M1", "M2", "M3")
PATTERN_FAULTS = ("damage", "missing_harmonic", "imbalance", "detune")
SNR_DB = 20.0
N = 8  # clips per unit and condition


def _render(machine: str, load: str, model: str, i: int, *, domain: str = "source", fault: str | None = None,
            snr_db: float = SNR_DB, cfg: SynthConfig = CFG) -> np.ndarray:
    clip = DcaseClip("dev_data", machine, "test" if fault else "train", domain, "anomaly" if fault else "normal", i,
                     (("load", load), ("model", model)), fault, snr_db)
    return render_dcase_clip(clip, cfg).astype(np.float64) / 32768.0


def _fine(x: np.ndarray, sr: int = 16000) -> np.ndarray:
    """Time-averaged 128-band log-mel profile up to 4 kHz: resolves the machines' partials."""
    return logmel(x.astype(np.float32), sr, n_mels=128, fmax=4000.0).mean(1)


class _Space:
    """Standardised fine features projected on their 8 leading principal components (fit on
    the normal source clips of one machine type)."""

    def __init__(self, feats: np.ndarray) -> None:
        self.mu, self.sd = feats.mean(0), feats.std(0) + 1e-9
        self.pca = PCA(8, random_state=0).fit((feats - self.mu) / self.sd)

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        return self.pca.transform((np.atleast_2d(feats) - self.mu) / self.sd)


def _coarse(x: np.ndarray, sr: int = 16000) -> np.ndarray:
    """Clip-average shape: level, log energy in 8 octave bands, spectral centroid."""
    power = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1.0 / sr)
    edges = 62.5 * 2.0 ** np.arange(9)
    bands = [np.log(power[(f >= lo) & (f < hi)].sum() + 1e-12) for lo, hi in zip(edges[:-1], edges[1:])]
    centroid = (f * power).sum() / power.sum()
    return np.array([np.log(np.mean(x**2)), *bands, centroid / 1000.0])


def _loo_nearest_centroid(x: np.ndarray, y: np.ndarray) -> float:
    """Leave-one-out accuracy of a nearest-centroid classifier on standardised features."""
    x = (x - x.mean(0)) / (x.std(0) + 1e-9)
    hits = 0
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        classes = np.unique(y[keep])
        cents = np.stack([x[keep & (y == c)].mean(0) for c in classes])
        hits += classes[((cents - x[i]) ** 2).sum(1).argmin()] == y[i]
    return hits / len(x)


@pytest.fixture(scope="module")
def units() -> dict[str, dict]:
    """Per machine: normal source clips of each unit (load L1), their fine and coarse features."""
    out = {}
    for machine in MACHINES:
        waves = [_render(machine, "L1", m, i) for m in MODELS for i in range(N)]
        fine = np.stack([_fine(w) for w in waves])
        space = _Space(fine)
        out[machine] = {"y": np.repeat(MODELS, N), "z": space(fine), "space": space, "fine": fine,
                        "coarse": np.stack([_coarse(w) for w in waves])}
    return out


def test_units_differ_in_fine_structure_not_in_coarse_shape(units: dict[str, dict]) -> None:
    for machine, u in units.items():
        fine = _loo_nearest_centroid(u["z"], u["y"])
        coarse = _loo_nearest_centroid(u["coarse"], u["y"])
        assert fine >= 0.8, (machine, fine)
        assert coarse <= 0.6, (machine, coarse)  # chance is 1/3


def test_faults_disturb_the_units_structure_and_the_unit_helps_to_find_them(units: dict[str, dict]) -> None:
    """Normalised deviation of the log-mel profile from the clip's own unit (mean and spread of
    that unit's normal clips: what a labelled model can learn) separates the structural faults
    from normal clips better than the deviation from the machine type as a whole (all units
    pooled: what a machine-type-only model sees)."""
    gains, own_aucs = [], []
    for machine, u in units.items():
        kinds = [k for k in MACHINE_TYPES[machine].anomalies if k in PATTERN_FAULTS]
        assert len(kinds) >= 2, machine
        f, y = u["fine"], u["y"]
        own = {m: (f[y == m].mean(0), f[y == m].std(0) + 0.5) for m in MODELS}
        pooled = (f.mean(0), f.std(0) + 0.5)
        dev = lambda x, ms: float(np.sqrt((((x - ms[0]) / ms[1]) ** 2).mean()))  # noqa: E731
        rows = []  # (own-unit deviation, pooled deviation, is anomaly)
        for j, m in enumerate(MODELS):
            for i in range(4):
                for fault in [None] + kinds:
                    x = _fine(_render(machine, "L1", m, 100 + 10 * j + i, fault=fault))
                    rows.append((dev(x, own[m]), dev(x, pooled), fault is not None))
        d_own, d_pool, is_anomaly = map(np.asarray, zip(*rows))
        own_aucs.append(roc_auc_score(is_anomaly, d_own))
        gains.append(own_aucs[-1] - roc_auc_score(is_anomaly, d_pool))
    assert min(own_aucs) > 0.6, own_aucs  # faults are measurable ...
    assert max(own_aucs) < 0.95, own_aucs  # ... but not blatant
    assert np.mean(gains) >= 0.03 and min(gains) > 0.0, gains  # knowing the unit helps


def test_target_domain_keeps_units_recognisable(units: dict[str, dict]) -> None:
    """Target clips (load L3, target background) are nearest to their own unit's source centroid
    more often than chance, but the shift is visible (coarse features tell the domains apart)."""
    rates = []
    for machine, u in units.items():
        cents = np.stack([u["z"][u["y"] == m].mean(0) for m in MODELS])
        hits = 0
        coarse_t = []
        for j, m in enumerate(MODELS):
            for i in range(4):
                w = _render(machine, "L3", m, 200 + i, domain="target", snr_db=10.0)
                f = u["space"](_fine(w))[0]
                hits += int(((cents - f) ** 2).sum(1).argmin() == j)
                coarse_t.append(_coarse(w))
        rates.append(hits / 12)
        c_src = units[machine]["coarse"]
        y = np.r_[np.zeros(len(c_src)), np.ones(len(coarse_t))]
        assert _loo_nearest_centroid(np.r_[c_src, np.stack(coarse_t)], y) >= 0.7, machine
    assert np.mean(rates) >= 0.5, rates  # chance: 1/3 (a 7 % faster target load moves the partials)


def test_machine_like_pool_clips_resemble_the_machines() -> None:
    """In coarse features, machine-like pool clips lie nearer to the DCASE machine types than
    unrelated (speech, music, nature) clips do."""
    machine_feats = np.stack([_coarse(_render(m, "L1", mm, i, snr_db=10.0)) for m in MACHINES for mm in MODELS
                              for i in range(3)])
    cfg = SynthConfig.from_preset("demo", external_sample_rate=16000)

    def pool_feats(machine_like: bool) -> np.ndarray:
        cats = [c for c in POOL_CATEGORIES.values() if c.machine_like == machine_like]
        return np.stack([_coarse(render_pool_clip(PoolClip(f"id{c.name}{i}", "eval_segments", 0.0, c.labels[0],
                                                           c.name, True), cfg).astype(float) / 32768.0)
                         for c in cats for i in range(3)])

    mu, sd = machine_feats.mean(0), machine_feats.std(0) + 1e-9
    ref = (machine_feats - mu) / sd

    def nearest(x: np.ndarray) -> np.ndarray:
        z = (x - mu) / sd
        return np.sqrt(((z[:, None] - ref[None]) ** 2).sum(-1)).min(1)

    like, other = nearest(pool_feats(True)), nearest(pool_feats(False))
    assert np.median(like) < np.median(other), (np.median(like), np.median(other))


def _band_db(x: np.ndarray, lo: float, hi: float, sr: int = 16000) -> float:
    power = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1.0 / sr)
    return float(10.0 * np.log10(power[(f >= lo) & (f < hi)].sum() / power.sum()))


def test_dcase_and_resampled_pool_clips_share_the_band_limit() -> None:
    """The pool is written at another rate (32 kHz) and resampled on loading; the DCASE clips are
    band-limited at the same cut-off when rendered (an ADC's anti-alias filter).  Without that,
    the band just below 8 kHz holds noise in every DCASE clip and in no pool clip: a cue that
    sets every pool clip apart from the machines (the selection then passes almost nothing)."""
    from asdflow.io.audio import resample

    assert CFG.external_sample_rate != CFG.sample_rate
    top = (7600.0, 8000.0)
    dcase = [_band_db(_render(m, "L1", "M1", i), *top) - _band_db(_render(m, "L1", "M1", i), 6000.0, 7000.0)
             for m in MACHINES for i in range(2)]
    pool = []
    for c in (c for c in POOL_CATEGORIES.values() if c.machine_like):
        x = render_pool_clip(PoolClip(f"id{c.name}", "eval_segments", 0.0, c.labels[0], c.name, True), CFG)
        y = resample(x.astype(np.float32) / 32768.0, CFG.external_sample_rate, CFG.sample_rate).astype(np.float64)
        pool.append(_band_db(y, *top) - _band_db(y, 6000.0, 7000.0))
    # both fall off by the same filter above the cut-off (0.945 x Nyquist = 7.56 kHz)
    assert max(dcase) < -10.0 and max(pool) < -10.0, (dcase, pool)
    assert abs(np.median(dcase) - np.median(pool)) < 6.0, (np.median(dcase), np.median(pool))


def test_nearby_machinery_costs_a_frame_level_reconstruction_model() -> None:
    """The same clips (same machine, fault and background draws) with and without other machines
    nearby: a frame-level log-mel model (PCA reconstruction of 5-frame, 128-band log-mel
    windows fit on normal training clips, the principle of the AE baseline) separates faulty
    from normal test clips clearly worse with the nuisance. The demo preset has it in 70 % of the
    backgrounds at 0-10 dB SNR (``synth.options`` of README "The built-in data"; the demo preset
    has no nearby machinery)."""
    demo = SynthConfig.from_preset("demo", nearby_machinery=0.7, snr_db=(0.0, 10.0))
    quiet = SynthConfig.from_preset("demo", snr_db=(0.0, 10.0))
    assert SynthConfig.from_preset("demo").nearby_machinery == 0.0
    snr = float(np.mean(demo.snr_db))

    def frames(x: np.ndarray) -> np.ndarray:
        spec = logmel(x.astype(np.float32), 16000, n_mels=128)
        return np.stack([spec[:, t:t + 5].T.ravel() for t in range(spec.shape[1] - 4)])

    aucs = {}
    for cfg, name in ((quiet, "quiet"), (demo, "nearby")):
        per_machine = []
        for machine in MACHINES:
            clip = lambda i, model, fault=None: frames(  # noqa: E731
                _render(machine, ("L1", "L2")[i % 2], model, i, fault=fault, snr_db=snr, cfg=cfg))
            train = np.concatenate([clip(i, MODELS[i % 3]) for i in range(20)])
            mu, sd = train.mean(0), train.std(0) + 1e-6
            pca = PCA(16, random_state=0).fit((train - mu) / sd)

            def error(f: np.ndarray) -> float:
                z = (f - mu) / sd
                return float(((pca.inverse_transform(pca.transform(z)) - z) ** 2).mean())

            normal = [error(clip(300 + i, MODELS[i % 3])) for i in range(8)]
            faulty = [error(clip(400 + i, MODELS[i % 3], kind)) for kind in MACHINE_TYPES[machine].anomalies
                      for i in range(2)]
            per_machine.append(roc_auc_score(np.r_[np.zeros(len(normal)), np.ones(len(faulty))], normal + faulty))
        aucs[name] = float(np.mean(per_machine))
    assert aucs["quiet"] - aucs["nearby"] >= 0.05, aucs
