"""Frame-feature baselines judged by the same evaluator as the seed method.

A baseline is a backend of a system recipe (``backend: gmm`` or ``backend: autoencoder`` in
``system_definitions``): it fits one model per machine type on the training clips' waveforms and
scores any clip. The workflow treats them all alike (rules ``fit_baseline`` and
``score_baseline``); :func:`get_baseline` is the registry. Options come from the config block
named after the backend (``gmm:``, ``autoencoder:``), overridden per system by ``options:``.
"""

from __future__ import annotations

import inspect
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from asdflow.baselines.autoencoder import AutoencoderBaseline, fit_autoencoder_baseline, score_autoencoder_baseline
from asdflow.baselines.features import context_frames, logmel, mel_filterbank
from asdflow.baselines.gmm import GMMBaseline, fit_gmm_baseline, score_gmm_baseline

__all__ = [
    "BASELINES",
    "AutoencoderBaseline",
    "Baseline",
    "GMMBaseline",
    "context_frames",
    "fit_autoencoder_baseline",
    "fit_gmm_baseline",
    "get_baseline",
    "load_baseline_model",
    "logmel",
    "mel_filterbank",
    "save_baseline_model",
    "score_autoencoder_baseline",
    "score_gmm_baseline",
]


@dataclass(frozen=True)
class Baseline:
    """How a backend fits and scores: ``fit(waves_by_machine, sr, **options, seed=)``,
    ``score(model, waves_by_machine) -> {machine: scores}``."""

    name: str
    fit_fn: Callable[..., Any]
    score_fn: Callable[[Any, Mapping[str, np.ndarray]], dict[str, np.ndarray]]

    @property
    def options(self) -> tuple[str, ...]:
        """Option names the fit function accepts (its keyword-only parameters but ``seed``)."""
        params = inspect.signature(self.fit_fn).parameters.values()
        return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name != "seed")

    def fit(self, waves_by_machine: Mapping[str, np.ndarray], sr: int, options: Mapping[str, Any], seed: int):
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ValueError(f"{self.name} baseline: unknown options {unknown} (known: {list(self.options)})")
        return self.fit_fn(waves_by_machine, sr, **options, seed=seed)

    def score(self, model, waves_by_machine: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.score_fn(model, waves_by_machine)

    @staticmethod
    def machines(model) -> set[str]:
        return set(getattr(model, "models", None) or getattr(model, "states", {}))


BASELINES: Mapping[str, Baseline] = {
    "gmm": Baseline("gmm", fit_gmm_baseline, score_gmm_baseline),
    "autoencoder": Baseline("autoencoder", fit_autoencoder_baseline, score_autoencoder_baseline),
}


def get_baseline(name: str) -> Baseline:
    try:
        return BASELINES[name]
    except KeyError:
        raise KeyError(f"unknown baseline backend {name!r}; known: {sorted(BASELINES)}") from None


def save_baseline_model(model: Any, path: str | Path, backend: str) -> Path:
    """Pickle a fitted baseline atomically (with its backend name, checked on load)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        pickle.dump({"backend": backend, "model": model}, f)
    tmp.replace(path)
    return path


def load_baseline_model(path: str | Path, backend: str) -> Any:
    with open(path, "rb") as f:
        blob = pickle.load(f)
    if not isinstance(blob, dict) or blob.get("backend") != backend:
        got = blob.get("backend") if isinstance(blob, dict) else type(blob).__name__
        raise ValueError(f"{path}: holds a {got!r} baseline model, expected {backend!r}")
    return blob["model"]
