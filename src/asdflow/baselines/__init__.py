"""Simple comparison baselines (not part of the seed method)."""

from asdflow.baselines.gmm import (
    GMMBaseline,
    context_frames,
    fit_gmm_baseline,
    logmel,
    mel_filterbank,
    score_gmm_baseline,
)

__all__ = [
    "GMMBaseline",
    "context_frames",
    "fit_gmm_baseline",
    "logmel",
    "mel_filterbank",
    "score_gmm_baseline",
]
