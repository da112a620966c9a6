"""Configuration of the built-in synthetic data: :class:`SynthConfig` and its presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from asdflow.synth.machines import MACHINE_TYPES

__all__ = ["SynthConfig", "PRESETS"]


@dataclass(frozen=True)
class SynthConfig:
    """Everything that decides the synthetic data set; the same config gives identical bytes.

    DCASE part (per machine type, section 00): ``n_source_train`` + ``n_target_train`` normal
    train clips and ``n_test_per_cell`` test clips per (domain × condition) cell. ``eval``
    adds an ``eval_data`` set with hidden test names plus the official-style ground truth.
    External part: ``n_external`` AudioSet-style segments, of which ``external_missing_fraction``
    are listed without audio; ``external_machine_fraction`` of them are machine-like.
    ``nearby_machinery``: probability that a DCASE clip's factory background carries one or two
    other machines running nearby (tonal, at an arbitrary speed; :func:`asdflow.synth.noise.
    nearby_machinery`); 0 = none (the pool's machine-like clips never have them).
    ``anomaly_level_db`` shifts the strength of every anomaly (positive = more obvious).
    ``n_train_anomalies`` anomalous clips per machine type are written *outside* the DCASE tree
    (``train_anomalies/`` + the list ``train_anomalies.csv``): "a few real anomalies" for
    systems that can train on some (Serial-OE's ``anomalies`` option). They are rendered like the
    test anomalies (source domain, every anomaly kind of the type in turn) but are other clips,
    so training on them leaks no test label.
    """

    preset: str = "custom"
    seed: int = 0
    machines: tuple[str, ...] = ("ToyCar", "fan")
    sample_rate: int = 16000
    clip_seconds: float = 1.0
    n_source_train: int = 12
    n_target_train: int = 10
    n_test_per_cell: int = 2
    snr_db: tuple[float, float] = (-5.0, 10.0)
    anomaly_level_db: float = 0.0
    nearby_machinery: float = 0.0
    eval: bool = False
    n_external: int = 30
    external_seconds: float = 1.5
    external_sample_rate: int = 32000
    external_missing_fraction: float = 0.04
    external_machine_fraction: float = 0.4
    n_train_anomalies: int = 0

    def __post_init__(self) -> None:
        # YAML/JSON give lists; keep the dataclass hashable and comparable.
        object.__setattr__(self, "machines", tuple(self.machines))
        object.__setattr__(self, "snr_db", tuple(float(v) for v in self.snr_db))
        unknown = [m for m in self.machines if m not in MACHINE_TYPES]
        if unknown or not self.machines:
            raise ValueError(f"unknown or no machine types {unknown}; known: {sorted(MACHINE_TYPES)}")
        if len(set(self.machines)) != len(self.machines):
            raise ValueError(f"machine types listed twice: {self.machines}")
        for name in ("n_source_train", "n_target_train", "n_test_per_cell", "sample_rate", "external_sample_rate"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_train_anomalies < 0:
            raise ValueError(f"n_train_anomalies must be >= 0, got {self.n_train_anomalies}")
        if self.n_external < 0:
            raise ValueError(f"n_external must be >= 0, got {self.n_external}")
        if self.clip_seconds <= 0 or self.external_seconds <= 0:
            raise ValueError("clip_seconds and external_seconds must be > 0")
        if len(self.snr_db) != 2 or self.snr_db[0] > self.snr_db[1]:
            raise ValueError(f"snr_db must be (low, high) with low <= high, got {self.snr_db}")
        for name in ("external_missing_fraction", "external_machine_fraction", "nearby_machinery"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "SynthConfig":
        """The named preset (``tiny`` or ``demo``) with some fields replaced."""
        if name not in PRESETS:
            raise ValueError(f"unknown synth preset {name!r}; known presets: {sorted(PRESETS)}")
        fields = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(overrides) - fields)
        if bad:
            raise ValueError(f"unknown SynthConfig field(s) {bad}; fields: {sorted(fields)}")
        return cls(**{**PRESETS[name], "preset": name, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (lists instead of tuples) for JSON."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


PRESETS: dict[str, dict[str, Any]] = {
    # Tests: a couple of seconds on 2 cores.
    "tiny": {
        "machines": ("ToyCar", "fan"),
        "clip_seconds": 1.0,
        "n_source_train": 12,
        "n_target_train": 3,
        "n_test_per_cell": 2,
        "n_external": 30,
        "external_seconds": 1.5,
        "n_train_anomalies": 2,
    },
    # The main demo job on a 2-core CPU.
    "demo": {
        "machines": ("ToyCar", "fan", "gearbox", "pump"),
        "clip_seconds": 2.0,
        "n_source_train": 200,
        "n_target_train": 10,
        "n_test_per_cell": 25,
        "n_external": 600,
        "external_seconds": 3.0,
        "snr_db": (5.0, 15.0),
        "n_train_anomalies": 4,
    },
}
