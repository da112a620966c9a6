"""Frame-feature baselines judged by the same evaluator as the seed method.

A baseline is a backend of a system recipe (``backend: gmm``, ``autoencoder``, ``cae_svdd`` or
``serial_oe`` in ``system_definitions``): it fits on the training clips' waveforms per machine
type (``cae_svdd``: one shared model, also given the clips' domains; ``serial_oe``: also given
the clips' sections and visible attributes) and scores any clip. The workflow treats them all
alike (rules ``fit_baseline`` and ``score_baseline``); :func:`get_baseline` is the registry.
Options come from the config block named after the backend (``gmm:``, ``autoencoder:``, ...),
overridden per system by ``options:``. Per-clip data other than the waves (domains, sections,
attributes) reach a backend only when its fit / score function has the matching keyword
(:data:`_DATA_ARGS`), so no backend needs a special case in the workflow.
"""

from __future__ import annotations

import inspect
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from asdflow.baselines.autoencoder import AutoencoderBaseline, fit_autoencoder_baseline, score_autoencoder_baseline
from asdflow.baselines.cae_svdd import CAESVDDBaseline, fit_cae_svdd_baseline, score_cae_svdd_baseline
from asdflow.baselines.features import context_frames, logmel, mel_filterbank
from asdflow.baselines.gmm import GMMBaseline, fit_gmm_baseline, score_gmm_baseline
from asdflow.baselines.serial_oe import SerialOEBaseline, fit_serial_oe_baseline, score_serial_oe_baseline

__all__ = [
    "BASELINES",
    "AutoencoderBaseline",
    "Baseline",
    "CAESVDDBaseline",
    "GMMBaseline",
    "context_frames",
    "fit_autoencoder_baseline",
    "fit_cae_svdd_baseline",
    "fit_gmm_baseline",
    "get_baseline",
    "load_baseline_model",
    "logmel",
    "mel_filterbank",
    "SerialOEBaseline",
    "fit_serial_oe_baseline",
    "save_baseline_model",
    "score_autoencoder_baseline",
    "score_cae_svdd_baseline",
    "score_gmm_baseline",
    "score_serial_oe_baseline",
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
        return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in _DATA_ARGS)

    @property
    def uses_domains(self) -> bool:
        """Whether the fit function takes the training clips' domains (``domains_by_machine``)."""
        return "domains_by_machine" in inspect.signature(self.fit_fn).parameters

    @property
    def fit_data(self) -> tuple[str, ...]:
        """The per-clip data keywords (:data:`_DATA_ARGS` but ``seed``) the fit function takes."""
        params = inspect.signature(self.fit_fn).parameters
        return tuple(a for a in _DATA_ARGS if a != "seed" and a in params)

    @property
    def score_data(self) -> tuple[str, ...]:
        """The per-clip data keywords the score function takes (``sections_by_machine``)."""
        params = inspect.signature(self.score_fn).parameters
        return tuple(a for a in _DATA_ARGS if a != "seed" and a in params)

    def fit(self, waves_by_machine: Mapping[str, np.ndarray], sr: int, options: Mapping[str, Any], seed: int,
            domains_by_machine: Mapping[str, np.ndarray | None] | None = None, **clip_data):
        """Fit on normal training clips; ``domains_by_machine`` (0 source / 1 target per clip,
        aligned with the waves) and the other per-clip data of ``clip_data``
        (``sections_by_machine``, ``attributes_by_machine``) reach only backends whose fit
        function takes them (``cae_svdd``: domains; ``serial_oe``: sections, attributes)."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ValueError(f"{self.name} baseline: unknown options {unknown} (known: {list(self.options)})")
        bad = sorted(set(clip_data) - set(_DATA_ARGS))
        if bad:
            raise TypeError(f"unknown per-clip data {bad} (known: {list(_DATA_ARGS)})")
        data = {"domains_by_machine": domains_by_machine, **clip_data}
        extra = {k: data.get(k) for k in self.fit_data}
        return self.fit_fn(waves_by_machine, sr, **options, **extra, seed=seed)

    def score(self, model, waves_by_machine: Mapping[str, np.ndarray], **clip_data) -> dict[str, np.ndarray]:
        """Scores per machine; per-clip data (``sections_by_machine``) reach a score function
        that takes them."""
        extra = {k: clip_data.get(k) for k in self.score_data}
        return self.score_fn(model, waves_by_machine, **extra)

    @staticmethod
    def machines(model) -> set[str]:
        return set(getattr(model, "models", None) or getattr(model, "states", {}))


#: Keyword arguments of a fit (score) function that carry data, not options.
_DATA_ARGS = ("seed", "domains_by_machine", "sections_by_machine", "attributes_by_machine")

BASELINES: Mapping[str, Baseline] = {
    "gmm": Baseline("gmm", fit_gmm_baseline, score_gmm_baseline),
    "autoencoder": Baseline("autoencoder", fit_autoencoder_baseline, score_autoencoder_baseline),
    "cae_svdd": Baseline("cae_svdd", fit_cae_svdd_baseline, score_cae_svdd_baseline),
    "serial_oe": Baseline("serial_oe", fit_serial_oe_baseline, score_serial_oe_baseline),
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
