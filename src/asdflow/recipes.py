"""System recipes from the config (light module: imported by the Snakefile at parse time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["SystemRecipe"]


@dataclass(frozen=True)
class SystemRecipe:
    name: str
    backend: str
    network: str = "Ba"
    labels: str = "machine"
    triplet: bool = False
    train: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, name: str, definitions: Mapping[str, Mapping[str, Any]]) -> "SystemRecipe":
        if name not in definitions:
            raise KeyError(f"system {name!r} is not defined in system_definitions (known: {sorted(definitions)})")
        return cls(name=name, **definitions[name])

    def train_options(self, base: Mapping[str, Any], seed: int) -> dict[str, Any]:
        """The TrainConfig dict for this system: the global train block + overrides + seed."""
        opts = {**base, **self.train}
        trip = dict(opts.pop("triplet_options", {}) or {})
        trip["enabled"] = self.triplet
        return {**opts, "network": self.network, "triplet": trip, "seed": seed}
