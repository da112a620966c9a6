"""System recipes from the config (light module: imported by the Snakefile at parse time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["BACKENDS", "SystemRecipe"]

#: ``embedding``: a net trained on the trainset's label column, scored by −max cosine to
#: representatives (the seed method and its ablations); the others are frame baselines
#: (:mod:`asdflow.baselines`): fitted on the training clips, scoring every clip directly.
BACKENDS = ("embedding", "gmm", "autoencoder")


@dataclass(frozen=True)
class SystemRecipe:
    name: str
    backend: str
    network: str = "Ba"
    labels: str = "machine"
    triplet: bool = False
    external: str = "none"  # none | score (paper §4.1.1) | random (Table 4 ablation), stages >= 2
    pseudo_labels: bool = False  # k-means pseudo-labels from the previous stage (§4.2.2)
    n_max: int = 1000
    stages: int = 1
    train: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)  # frame baselines: overrides of their config block

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"system {self.name}: backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.backend != "embedding" and (self.stages != 1 or self.uses_external or self.pseudo_labels):
            raise ValueError(f"system {self.name}: the {self.backend} backend has one stage, no external data "
                             "and no pseudo-labels")
        if self.external not in ("none", "score", "random"):
            raise ValueError(f"system {self.name}: external must be none, score or random, got {self.external!r}")
        if self.stages < 1:
            raise ValueError(f"system {self.name}: stages must be >= 1")
        if self.stages > 1 and self.external == "none" and not self.pseudo_labels:
            raise ValueError(f"system {self.name}: stages > 1 need external data or pseudo-labels")

    @property
    def uses_external(self) -> bool:
        return self.external != "none"

    @classmethod
    def from_config(cls, name: str, definitions: Mapping[str, Mapping[str, Any]]) -> "SystemRecipe":
        if name not in definitions:
            raise KeyError(f"system {name!r} is not defined in system_definitions (known: {sorted(definitions)})")
        return cls(name=name, **definitions[name])

    def baseline_options(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Options of a frame baseline: the config block named after the backend + overrides."""
        return {**(config.get(self.backend) or {}), **self.options}

    def train_options(self, base: Mapping[str, Any], seed: int) -> dict[str, Any]:
        """The TrainConfig dict for this system: the global train block + overrides + seed."""
        opts = {**base, **self.train}
        trip = dict(opts.pop("triplet_options", {}) or {})
        trip["enabled"] = self.triplet
        return {**opts, "network": self.network, "triplet": trip, "seed": seed}
