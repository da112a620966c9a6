"""The DCASE part: which clips exist (names, attributes, anomaly kinds, SNRs) and their audio.

:func:`plan_dcase` decides every clip up front from one generator per (dataset, machine);
:func:`render_dcase_clip` renders one clip from its own generator keyed by the clip's identity,
so the audio never depends on the order clips are rendered in.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from asdflow.synth import dsp
from asdflow.synth.config import SynthConfig
from asdflow.synth.machines import INTERNAL_FAULTS, MACHINE_TYPES, MachineType
from asdflow.synth.noise import ADDITIVE_FAULTS, add_fault, factory_background

__all__ = ["DcaseClip", "SECTION", "plan_dcase", "plan_train_anomalies", "render_dcase_clip"]

SECTION = "00"


@dataclass(frozen=True)
class DcaseClip:
    """One DCASE clip; ``hidden_index`` is set for eval test clips (published as ``section_00_NNNN``)."""

    dataset: str  # dev_data | eval_data
    machine: str
    split: str  # train | test
    domain: str  # source | target
    label: str  # normal | anomaly
    index: int
    attrs: tuple[tuple[str, str], ...]
    fault: str | None
    snr_db: float
    hidden_index: int | None = None

    @property
    def attr_tail(self) -> str:
        """``key_value[_key_value]``, as in the file name."""
        return "_".join(f"{k}_{v}" for k, v in self.attrs)

    @property
    def labelled_name(self) -> str:
        """The name with section, domain, split, condition, index and attributes."""
        return f"section_{SECTION}_{self.domain}_{self.split}_{self.label}_{self.index:04d}_{self.attr_tail}.wav"

    @property
    def file_name(self) -> str:
        """The published name (hidden for eval test clips)."""
        if self.hidden_index is not None:
            return f"section_{SECTION}_{self.hidden_index:04d}.wav"
        return self.labelled_name

    @property
    def rel_path(self) -> str:
        """``<machine>/<split>/<file>``: the ``file_name`` column of ``attributes_00.csv``."""
        return f"{self.machine}/{self.split}/{self.file_name}"


def _assign(rng: np.random.Generator, pool: list, count: int) -> list:
    """``count`` items cycling through ``pool`` (balanced), in random order."""
    items = [pool[i % len(pool)] for i in range(count)]
    return [items[i] for i in rng.permutation(count)]


def _combos(mtype: MachineType, domain: str) -> list[tuple[tuple[str, str], ...]]:
    """Every combination of attribute values used in ``domain``."""
    values = [a.source if domain == "source" else a.target for a in mtype.attributes]
    keys = [a.key for a in mtype.attributes]
    return [tuple(zip(keys, combo)) for combo in itertools.product(*values)]


def _plan_machine(cfg: SynthConfig, dataset: str, machine: str) -> list[DcaseClip]:
    rng = dsp.clip_rng(cfg.seed, "plan", dataset, machine)
    mtype = MACHINE_TYPES[machine]
    clips: list[DcaseClip] = []
    cells = [("train", "source", "normal", cfg.n_source_train), ("train", "target", "normal", cfg.n_target_train)]
    cells += [("test", d, lab, cfg.n_test_per_cell) for d in ("source", "target") for lab in ("normal", "anomaly")]
    # anomaly kinds cycle over both domains' anomaly cells, so small sets still get every kind
    kinds = _assign(rng, list(mtype.anomalies), 2 * cfg.n_test_per_cell)
    for split, domain, label, count in cells:
        attrs = _assign(rng, _combos(mtype, domain), count)
        faults = [kinds.pop() for _ in range(count)] if label == "anomaly" else [None] * count
        snrs = rng.uniform(*cfg.snr_db, size=count)
        clips += [
            DcaseClip(dataset, machine, split, domain, label, i, attrs[i], faults[i], round(float(snrs[i]), 2))
            for i in range(count)
        ]
    if dataset == "eval_data":  # hide labels and domains of the test clips
        test = [i for i, c in enumerate(clips) if c.split == "test"]
        for i, hidden in zip(test, rng.permutation(len(test))):
            clips[i] = replace(clips[i], hidden_index=int(hidden))
    return clips


def plan_dcase(cfg: SynthConfig) -> list[DcaseClip]:
    """Every DCASE clip of ``dev_data`` (and ``eval_data`` when ``cfg.eval``), in a fixed order."""
    datasets = ["dev_data"] + (["eval_data"] if cfg.eval else [])
    return [c for ds in datasets for m in cfg.machines for c in _plan_machine(cfg, ds, m)]


def plan_train_anomalies(cfg: SynthConfig) -> list[DcaseClip]:
    """``cfg.n_train_anomalies`` anomalous *training* clips per machine type of ``dev_data``
    (source domain, anomaly kinds cycling over the type's kinds), planned from their own
    generator so the DCASE clips do not change. Their audio seeds (split ``train``, label
    ``anomaly``) differ from every test clip's."""
    out: list[DcaseClip] = []
    for machine in cfg.machines:
        if cfg.n_train_anomalies == 0:
            break
        rng = dsp.clip_rng(cfg.seed, "plan-train-anomalies", machine)
        mtype = MACHINE_TYPES[machine]
        n = cfg.n_train_anomalies
        attrs = _assign(rng, _combos(mtype, "source"), n)
        kinds = _assign(rng, list(mtype.anomalies), n)
        snrs = rng.uniform(*cfg.snr_db, size=n)
        out += [DcaseClip("dev_data", machine, "train", "source", "anomaly", i, attrs[i], kinds[i],
                          round(float(snrs[i]), 2)) for i in range(n)]
    return out


def render_dcase_clip(clip: DcaseClip, cfg: SynthConfig) -> np.ndarray:
    """The clip's audio as int16 samples at ``cfg.sample_rate``."""
    rng = dsp.clip_rng(
        cfg.seed, "dcase", clip.dataset, clip.machine, clip.split, clip.domain, clip.label, str(clip.index)
    )
    sr = cfg.sample_rate
    n = int(round(cfg.clip_seconds * sr))
    severity = 10.0 ** (cfg.anomaly_level_db / 20.0)
    mtype = MACHINE_TYPES[clip.machine]
    internal = clip.fault if clip.fault in INTERNAL_FAULTS else None
    sound = mtype.synth(rng, mtype.physical(dict(clip.attrs)), n, sr, internal, severity)
    x = add_fault(rng, sound, clip.fault, severity, sr) if clip.fault in ADDITIVE_FAULTS else sound.signal
    y = x + factory_background(rng, n, sr, clip.domain, cfg.nearby_machinery) * 10.0 ** (-clip.snr_db / 20.0)
    # recorded at sr through an anti-alias filter, band-limited like the resampled pool clips
    y = dsp.anti_alias(y)
    return dsp.to_pcm16(y, rms_dbfs=float(rng.uniform(-29.0, -23.0)))
