"""Log-mel + Gaussian-mixture baseline: a classical, label-free reference point.

Features: the DCASE autoencoder baseline's log-mel frames (:mod:`asdflow.baselines.features`).

Model: one ``sklearn.mixture.GaussianMixture`` (diagonal covariances by default) per machine
type, fitted on a random subsample of the training frames (both domains pooled). Clip score =
− mean log-likelihood of the clip's frame vectors (higher = more anomalous).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
from sklearn.mixture import GaussianMixture

from asdflow.baselines.features import _hz_to_mel, _mel_to_hz, context_frames, logmel, mel_filterbank  # noqa: F401

__all__ = [
    "GMMBaseline",
    "context_frames",
    "fit_gmm_baseline",
    "logmel",
    "mel_filterbank",
    "score_gmm_baseline",
]

log = logging.getLogger(__name__)


@dataclass
class GMMBaseline:
    """Fitted per-machine mixtures plus the feature settings they were fitted with."""

    models: dict[str, GaussianMixture]
    sr: int = 16000
    context: int = 1
    feature_kw: dict = field(default_factory=dict)

    def features(self, waves: np.ndarray) -> list[np.ndarray]:
        lms = logmel(np.atleast_2d(waves), self.sr, **self.feature_kw)
        return [context_frames(lm, self.context) for lm in lms]


def fit_gmm_baseline(
    train_waves_by_machine: Mapping[str, np.ndarray],
    sr: int = 16000,
    *,
    n_components: int = 8,
    covariance_type: str = "diag",
    context: int = 1,
    max_frames: int = 20000,
    reg_covar: float = 1e-3,
    max_iter: int = 100,
    seed: int = 0,
    feature_kw: Mapping | None = None,
) -> GMMBaseline:
    """Fit one GaussianMixture per machine type on (subsampled) training frame vectors.

    ``train_waves_by_machine``: machine → ``[N, T]`` float32 waves (16 kHz, normal clips of
    both domains). At most ``max_frames`` frame vectors per machine are drawn uniformly at
    random (``seed``). ``feature_kw`` goes to :func:`logmel` (n_fft, hop_length, n_mels, ...).
    """
    rng = np.random.default_rng(seed)
    base = GMMBaseline({}, sr=sr, context=context, feature_kw=dict(feature_kw or {}))
    for machine, waves in train_waves_by_machine.items():
        feats = np.concatenate(base.features(waves))
        if len(feats) > max_frames:
            feats = feats[rng.choice(len(feats), max_frames, replace=False)]
        k = min(n_components, len(feats))
        gmm = GaussianMixture(n_components=k, covariance_type=covariance_type, reg_covar=reg_covar,
                              max_iter=max_iter, random_state=seed)
        gmm.fit(feats)
        if not gmm.converged_:
            log.warning("fit_gmm_baseline: GMM of %s did not converge in %d iterations", machine, max_iter)
        base.models[str(machine)] = gmm
    return base


def score_gmm_baseline(model: GMMBaseline, waves_by_machine: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Clip scores per machine: ``−mean`` log-likelihood of each clip's frame vectors under that
    machine's mixture (higher = more anomalous). Returns machine → ``[N]`` float64."""
    out: dict[str, np.ndarray] = {}
    for machine, waves in waves_by_machine.items():
        if str(machine) not in model.models:
            raise KeyError(f"no GMM fitted for machine type {machine!r}")
        gmm = model.models[str(machine)]
        out[str(machine)] = np.array([-gmm.score(f) for f in model.features(waves)], dtype=np.float64)
    return out
