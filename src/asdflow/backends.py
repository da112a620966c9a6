"""Scoring back-ends on one embedding pass (issue 13): each turns a machine type's training
embeddings (with their domains) into anomaly scores of any embeddings, higher = more anomalous.

The seed paper's scoring (−max cosine to k-means representatives, ``kmeans_cos``) lives in
:mod:`asdflow.scoring` and its own rules (``representatives``, ``score_test``); the back-ends
here score the same stage embeddings in one further job (rule ``score_backends``), so adding one
never re-embeds anything. Every back-end works on L2-normalised embeddings of one machine type
(and section with ``scoring.per_section``), fitted on the original training clips only
(external clips never define normality):

* ``knn``: the mean distance to the k nearest training embeddings of each domain, the smaller
  of the two domains (seed 003 §2.2.2: the minimum cosine distance to the training data; k = 1
  there). Distances are cosine distances, 1 − cos.
* ``smote_knn``: ``knn`` after SMOTE oversampling of the target-domain training embeddings
  (imbalanced-learn; seed 003 §3: ratio 0.2, 2 neighbours; ``k_neighbors`` capped by the
  target clip count).
* ``rescaled_knn``: every distance to a training embedding y is divided by y's mean distance to
  its own ``k_ref`` nearest training neighbours (local density), then the mean of the ``k``
  smallest rescaled distances (Wilkinghoff et al., "Keeping the balance: anomaly score
  calculation for domain generalization", ICASSP 2025, as the ASD toolkit implements it); both
  domains pooled, so a sparse target domain is not penalised.
* ``gmm``: a Gaussian mixture per machine type on the embeddings (Serial-OE style, full
  covariance), score = −log-likelihood.

Training clips are scored leave-one-out (their own embedding is not their neighbour) by the
kNN back-ends, so the decision thresholds see honest scores; ``gmm`` scores them in-sample.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["SCORING_BACKENDS", "DEFAULT_BACKEND", "ScoringBackend", "get_scoring_backend", "score_backends"]

log = logging.getLogger(__name__)

#: The seed paper's scoring, computed by the representatives/score_test rules.
DEFAULT_BACKEND = "kmeans_cos"


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _cos_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.clip(1.0 - a @ b.T, 0.0, 2.0)


def _mean_knn(d: np.ndarray, k: int) -> np.ndarray:
    k = max(1, min(k, d.shape[1]))
    return np.sort(d, axis=1)[:, :k].mean(axis=1)


def _knn_domains(train: np.ndarray, is_target: np.ndarray, query: np.ndarray, self_index: np.ndarray | None,
                 k_source: int, k_target: int) -> np.ndarray:
    d = _cos_dist(query, train)
    if self_index is not None:
        d[np.arange(len(query)), self_index] = np.inf  # leave one out
    scores = []
    for mask, k in ((~is_target, k_source), (is_target, k_target)):
        sub = d[:, mask]
        if sub.shape[1] == 0:  # a domain whose only clip is left out gives inf -> NaN below
            continue
        s = _mean_knn(sub, k)
        scores.append(np.where(np.isfinite(s), s, np.nan))
    if not scores:
        return np.full(len(query), np.nan)
    return np.fmin.reduce(scores) if len(scores) > 1 else scores[0]


def knn_scores(train: np.ndarray, is_target: np.ndarray, query: np.ndarray, self_index: np.ndarray | None = None,
               *, k_source: int = 1, k_target: int = 1, seed: int = 0) -> np.ndarray:
    """Seed 003 §2.2.2: min over domains of the mean cosine distance to the k nearest training
    embeddings of that domain."""
    return _knn_domains(_unit(train), np.asarray(is_target, bool), _unit(query), self_index, k_source, k_target)


def smote_knn_scores(train: np.ndarray, is_target: np.ndarray, query: np.ndarray,
                     self_index: np.ndarray | None = None, *, k_source: int = 1, k_target: int = 1,
                     smote_ratio: float = 0.2, smote_neighbors: int = 2, seed: int = 0) -> np.ndarray:
    """``knn`` after SMOTE oversampling of the target-domain training embeddings up to
    ``smote_ratio`` times the source count (no oversampling when the target already reaches it,
    or with fewer than 2 target clips). The synthetic embeddings only add target neighbours; the
    leave-one-out index still refers to the original clips."""
    train, is_target = _unit(train), np.asarray(is_target, bool)
    n_src, n_tgt = int((~is_target).sum()), int(is_target.sum())
    if n_tgt >= 2 and n_src > 0 and n_tgt < smote_ratio * n_src:
        from imblearn.over_sampling import SMOTE

        sm = SMOTE(sampling_strategy=smote_ratio, k_neighbors=min(smote_neighbors, n_tgt - 1), random_state=seed)
        x, y = sm.fit_resample(train, is_target.astype(int))
        extra = _unit(np.asarray(x)[len(train):])  # imblearn appends the synthetic rows
        train = np.concatenate([train, extra])
        is_target = np.concatenate([is_target, np.ones(len(extra), bool)])
    return _knn_domains(train, is_target, _unit(query), self_index, k_source, k_target)


def rescaled_knn_scores(train: np.ndarray, is_target: np.ndarray, query: np.ndarray,
                        self_index: np.ndarray | None = None, *, k: int = 1, k_ref: int = 16,
                        seed: int = 0) -> np.ndarray:
    """Distances to the training embeddings, each divided by that training embedding's mean
    distance to its ``k_ref`` nearest other training embeddings; mean of the ``k`` smallest."""
    train, query = _unit(train), _unit(query)
    dd = _cos_dist(train, train)
    np.fill_diagonal(dd, np.inf)
    ref = _mean_knn(dd, min(k_ref, len(train) - 1)) if len(train) > 1 else np.ones(1)  # never the clip itself
    d = _cos_dist(query, train) / np.maximum(ref, 1e-12)[None, :]
    if self_index is not None:
        d[np.arange(len(query)), self_index] = np.inf
    if d.shape[1] - (self_index is not None) < 1:
        return np.full(len(query), np.nan)
    return _mean_knn(d, k)


def gmm_scores(train: np.ndarray, is_target: np.ndarray, query: np.ndarray, self_index: np.ndarray | None = None,
               *, n_components: int = 2, covariance_type: str = "full", reg_covar: float = 1e-3,
               seed: int = 0) -> np.ndarray:
    """−log-likelihood under a Gaussian mixture of the (L2-normalised) training embeddings
    (components capped by the clip count); training clips are scored in-sample."""
    train = _unit(train)
    gm = _fitted_gmm(train, min(n_components, len(train)), covariance_type, reg_covar, seed)
    return -gm.score_samples(_unit(query))


_GMM_FIT: dict[tuple, Any] = {}


def _fitted_gmm(train: np.ndarray, n_components: int, covariance_type: str, reg_covar: float, seed: int):
    """The mixture fitted to ``train``, remembered for the next call with the same data and
    settings: score_backends scores a machine type's training clips and then its test clips
    against the same reference, and the fit (seconds for 384-d full covariances) is the cost.
    One entry: the previous fit is dropped when the data change."""
    from sklearn.mixture import GaussianMixture

    key = (train.shape, hashlib.sha1(np.ascontiguousarray(train).tobytes()).hexdigest(), n_components,
           covariance_type, float(reg_covar), seed)
    if key not in _GMM_FIT:
        _GMM_FIT.clear()
        _GMM_FIT[key] = GaussianMixture(n_components, covariance_type=covariance_type, reg_covar=reg_covar,
                                        random_state=seed).fit(train)
    return _GMM_FIT[key]


@dataclass(frozen=True)
class ScoringBackend:
    """A back-end: ``scores(train, is_target, query, self_index, **options, seed=)``."""

    name: str
    scores: Callable[..., np.ndarray]

    @property
    def options(self) -> tuple[str, ...]:
        import inspect

        params = inspect.signature(self.scores).parameters.values()
        return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name != "seed")


SCORING_BACKENDS: Mapping[str, ScoringBackend] = {
    "knn": ScoringBackend("knn", knn_scores),
    "smote_knn": ScoringBackend("smote_knn", smote_knn_scores),
    "rescaled_knn": ScoringBackend("rescaled_knn", rescaled_knn_scores),
    "gmm": ScoringBackend("gmm", gmm_scores),
}


def get_scoring_backend(name: str) -> ScoringBackend:
    try:
        return SCORING_BACKENDS[name]
    except KeyError:
        known = sorted([DEFAULT_BACKEND, *SCORING_BACKENDS])
        raise KeyError(f"unknown scoring backend {name!r}; known: {known}") from None


def _stack(df: pd.DataFrame) -> np.ndarray:
    return np.stack(df["embedding"].to_numpy()).astype(np.float64) if len(df) else np.zeros((0, 1))


def score_backends(
    train_embeddings: pd.DataFrame, test_embeddings: pd.DataFrame, original_ids: Sequence[str],
    backends: Sequence[str], options: Mapping[str, Mapping[str, Any]] | None = None, *, per_section: bool = False,
    seed: int = 0
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Train and test scores of every back-end in ``backends`` (not ``kmeans_cos``).

    ``train_embeddings``/``test_embeddings``: EMBEDDINGS tables of one stage; ``original_ids``:
    the clip ids of the trainset's original (non-external) clips, the only ones that define
    normality. Returns ``{backend: (train, test)}``, each the embeddings' identity columns plus
    ``score`` (NaN for a machine type without training clips, logged)."""
    options = options or {}
    for b in backends:
        get_scoring_backend(b)
        unknown = sorted(set(options.get(b, {}) or {}) - set(get_scoring_backend(b).options))
        if unknown:
            raise ValueError(f"scoring backend {b}: unknown options {unknown} "
                             f"(known: {list(get_scoring_backend(b).options)})")
    ref_all = train_embeddings[train_embeddings["clip_id"].isin(set(original_ids))]
    keys = ["machine", "section"] if per_section else ["machine"]
    out: dict[str, tuple[list, list]] = {b: ([], []) for b in backends}
    for key, ref in ref_all.groupby(keys):
        key = key if isinstance(key, tuple) else (key,)
        sel = dict(zip(keys, key))

        def part(df: pd.DataFrame) -> pd.DataFrame:
            m = np.ones(len(df), bool)
            for c, v in sel.items():
                m &= (df[c] == v).to_numpy()
            return df[m]

        tr, te = part(train_embeddings), part(test_embeddings)
        x_ref, is_t = _stack(ref), (ref["domain"] == "target").to_numpy()
        pos = {c: i for i, c in enumerate(ref["clip_id"])}
        self_index = np.array([pos.get(c, -1) for c in tr["clip_id"]])
        for b in backends:
            be, opts = get_scoring_backend(b), dict(options.get(b, {}) or {})
            s_tr = np.full(len(tr), np.nan)
            own = self_index >= 0  # original clips: leave one out; external ones (none here) plain
            if own.any():
                s_tr[own] = be.scores(x_ref, is_t, _stack(tr[own]), self_index[own], **opts, seed=seed)
            if (~own).any():
                s_tr[~own] = be.scores(x_ref, is_t, _stack(tr[~own]), None, **opts, seed=seed)
            s_te = be.scores(x_ref, is_t, _stack(te), None, **opts, seed=seed) if len(te) else np.zeros(0)
            out[b][0].append(tr.drop(columns=["embedding"]).assign(score=s_tr))
            out[b][1].append(te.drop(columns=["embedding"]).assign(score=s_te))
    missing = sorted(set(test_embeddings["machine"]) - set(ref_all["machine"]))
    if missing:
        log.warning("scoring backends: machine types without training clips get no score: %s", missing)
    result = {}
    for b, (trs, tes) in out.items():
        cols = [c for c in train_embeddings.columns if c != "embedding"] + ["score"]
        result[b] = (pd.concat(trs, ignore_index=True) if trs else pd.DataFrame(columns=cols),
                     pd.concat(tes, ignore_index=True) if tes else pd.DataFrame(columns=cols))
    return result
