"""Pseudo-labels of a stage's training embeddings: k-means per machine type x domain (seed 000
§4.2.2, eq. 13) or a Gaussian mixture per machine type whose component count BIC chooses
(seed 003 §2.2.3); the oracle labels of the diagnostic ladder; their quality against the true
attributes."""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

__all__ = ["pseudo_labels", "gmm_bic_labels", "oracle_labels", "label_quality", "CLUSTERING_METHODS"]

#: ``pseudo_labels.method`` values: how systems with ``pseudo_labels: true`` cluster.
CLUSTERING_METHODS = ("kmeans", "gmm_bic")

log = logging.getLogger(__name__)


def pseudo_labels(
    emb: np.ndarray, machines: Sequence[str], domains: Sequence[str], *, k_source: int = 16, k_target: int = 4,
    seed: int = 0, assign: str = "domain", attr_labels: Sequence[str] | None = None
) -> pd.DataFrame:
    """k-means per machine type × domain (k capped by the number of clips) on L2-normalised
    embeddings. ``assign="domain"`` (paper eq. 13): each clip takes the nearest centroid of its
    own domain; ``"all"`` (reference code): the nearest of all its machine's centroids. Source
    clusters are numbered 0..k_so−1, target clusters from k_so. Label ``<machine>_pl<j>``, or
    ``<attr_label>_pl<j>`` in the labeled condition. Returns columns pl_cluster, label."""
    if assign not in ("domain", "all"):
        raise ValueError(f"unknown assign {assign!r}; expected 'domain' or 'all'")
    z = np.asarray(emb, dtype=np.float64)
    z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    machines = np.asarray(machines).astype(str)
    is_target = np.asarray(domains).astype(str) == "target"
    cluster = np.zeros(len(z), dtype=np.int64)
    for m in np.unique(machines):
        centres = []
        for target, k, offset in ((False, k_source, 0), (True, k_target, k_source)):
            sel = (machines == m) & (is_target == target)
            if not sel.any():
                continue
            km = KMeans(n_clusters=min(k, int(sel.sum())), random_state=seed, n_init=10).fit(z[sel])
            centres.append((target, km.cluster_centers_, offset))
        for target, c, offset in centres:
            sel = (machines == m) & (is_target == target)
            pool = centres if assign == "all" else [(target, c, offset)]
            all_c = np.concatenate([cc for _, cc, _ in pool])
            ids = np.concatenate([np.arange(len(cc)) + off for _, cc, off in pool])
            d = ((z[sel][:, None, :] - all_c[None]) ** 2).sum(-1)
            cluster[sel] = ids[d.argmin(axis=1)]
    base = np.asarray(attr_labels).astype(str) if attr_labels is not None else machines
    labels = [f"{b}_pl{j}" for b, j in zip(base, cluster)]
    return pd.DataFrame({"pl_cluster": cluster, "label": labels})


def gmm_bic_labels(
    emb: np.ndarray, machines: Sequence[str], *, pca_dims: int = 50, components: Sequence[int] = (1, 16),
    covariance_type: str = "full", reg_covar: float = 1e-4, seed: int = 0, attr_labels: Sequence[str] | None = None
) -> tuple[pd.DataFrame, dict[str, dict]]:
    """Seed 003 §2.2.3: per machine type, PCA of the (L2-normalised) embeddings to ``pca_dims``
    dimensions, then a Gaussian mixture for every component count in ``components`` (an
    inclusive range ``[lo, hi]``, capped by the clip count), keeping the count with the lowest
    BIC; each clip takes its most probable component. Both domains are clustered together (the
    paper clusters a machine type's clips; target domains hold too few clips for a model of
    their own). ``pca_dims`` is capped by the clips and dimensions available.

    Returns (columns pl_cluster, label ``<machine>_pl<j>`` or ``<attr_label>_pl<j>``) and per
    machine ``{"n_components", "bic": {k: bic}, "pca_dims", "explained_variance"}``.
    """
    lo, hi = (int(components[0]), int(components[-1]))
    if not 1 <= lo <= hi:
        raise ValueError(f"components must be a range [lo, hi] with 1 <= lo <= hi, got {list(components)}")
    z = np.asarray(emb, dtype=np.float64)
    z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    machines = np.asarray(machines).astype(str)
    cluster = np.zeros(len(z), dtype=np.int64)
    chosen: dict[str, dict] = {}
    for m in np.unique(machines):
        sel = machines == m
        x = z[sel]
        dims = max(1, min(pca_dims, x.shape[1], len(x) - 1))
        pca = PCA(dims, random_state=seed).fit(x)
        y = pca.transform(x)
        bics: dict[int, float] = {}
        best = None
        for k in range(lo, min(hi, len(x)) + 1):
            gm = GaussianMixture(k, covariance_type=covariance_type, reg_covar=reg_covar, random_state=seed,
                                 n_init=1).fit(y)
            bics[k] = float(gm.bic(y))
            if best is None or bics[k] < bics[best[0]]:
                best = (k, gm)
        assert best is not None
        cluster[sel] = best[1].predict(y)
        chosen[str(m)] = {"n_components": best[0], "bic": bics, "pca_dims": dims,
                          "explained_variance": float(pca.explained_variance_ratio_.sum())}
        log.info("gmm_bic %s: %d components (BIC over %d..%d), PCA %d dims (%.0f %% variance)", m, best[0], lo,
                 max(bics), dims, 100 * chosen[str(m)]["explained_variance"])
    base = np.asarray(attr_labels).astype(str) if attr_labels is not None else machines
    labels = [f"{b}_pl{j}" for b, j in zip(base, cluster)]
    return pd.DataFrame({"pl_cluster": cluster, "label": labels}), chosen


def oracle_labels(machines: Sequence[str], domains: Sequence[str], attr_strings: Sequence[str]) -> pd.DataFrame:
    """The true attribute combination per machine type x domain in place of k-means clusters
    (``pseudo_labels: oracle``, a diagnostic): label ``<machine>_<domain>_<attributes>``
    (``<machine>_<domain>`` for a clip without attributes). ``pl_cluster`` numbers a machine's
    combinations 0.. (source before target, then by attribute string). Same columns as
    :func:`pseudo_labels`; raises ``ValueError`` when no clip has attributes (nothing to be an
    oracle of)."""
    machines = np.asarray(machines).astype(str)
    domains = np.asarray(domains).astype(str)
    attrs = np.asarray(attr_strings).astype(str)
    if not (len(machines) == len(domains) == len(attrs)):
        raise ValueError("oracle_labels: machines, domains and attr_strings differ in length")
    if len(attrs) and not (attrs != "").any():
        raise ValueError("oracle_labels: no clip has attributes (neither visible nor hidden), so there is no "
                         "true attribute combination to use")
    labels = np.asarray([f"{m}_{d}_{a}" if a else f"{m}_{d}" for m, d, a in zip(machines, domains, attrs)],
                        dtype=object)
    cluster = np.zeros(len(labels), dtype=np.int64)
    for m in np.unique(machines):
        sel = machines == m
        combos = sorted(set(zip(domains[sel], attrs[sel])), key=lambda c: (c[0] != "source", c[0], c[1]))
        code = {c: i for i, c in enumerate(combos)}
        cluster[sel] = [code[c] for c in zip(domains[sel], attrs[sel])]
    return pd.DataFrame({"pl_cluster": cluster, "label": labels.astype(str)})


def label_quality(pred: Sequence[str], truth: Sequence[str], groups: Sequence[str],
                  strata: Sequence[str] | None = None, *, n_perm: int = 100, seed: int = 0) -> pd.DataFrame:
    """ARI and NMI of pseudo-labels against true labels, the number of distinct pseudo-labels
    (``n_clusters``), and the chance level of the ARI, per group (machine type) and the mean.

    Chance level (``ari_chance``, ``ari_chance_sd``): the mean and s.d. of the ARI over
    ``n_perm`` random permutations of the pseudo-labels within each stratum (``strata``, e.g.
    the domain: clusters found per machine × domain get the domain split for free, so the null
    keeps it) — what cluster sizes alone score. An ARI many s.d. above it means the clustering
    found the attributes, not just the domain; ``n_perm=0`` leaves both NaN.
    """
    df = pd.DataFrame({"pred": np.asarray(pred).astype(str), "truth": np.asarray(truth).astype(str),
                       "group": np.asarray(groups).astype(str),
                       "stratum": np.asarray(strata).astype(str) if strata is not None else ""})
    rng = np.random.default_rng(seed)
    rows = []
    for g, d in df.groupby("group"):
        null = [adjusted_rand_score(d["truth"], _permuted_within(d["pred"].to_numpy(), d["stratum"].to_numpy(), rng))
                for _ in range(int(n_perm))]
        rows.append({"machine": g, "n": len(d), "n_clusters": d["pred"].nunique(),
                     "ari": adjusted_rand_score(d["truth"], d["pred"]),
                     "nmi": normalized_mutual_info_score(d["truth"], d["pred"]),
                     "ari_chance": float(np.mean(null)) if null else np.nan,
                     "ari_chance_sd": float(np.std(null)) if null else np.nan})
    cols = ["machine", "n", "n_clusters", "ari", "nmi", "ari_chance", "ari_chance_sd"]
    out = pd.DataFrame(rows, columns=cols)
    if len(out):
        # the mean's chance s.d.: groups are permuted independently, so variances add
        mean_row = {"machine": "mean", "n": int(out["n"].sum()), "n_clusters": out["n_clusters"].mean(),
                    "ari": out["ari"].mean(), "nmi": out["nmi"].mean(), "ari_chance": out["ari_chance"].mean(),
                    "ari_chance_sd": float(np.sqrt((out["ari_chance_sd"] ** 2).sum())) / len(out)}
        out = pd.concat([out, pd.DataFrame([mean_row], columns=cols)], ignore_index=True)
    return out


def _permuted_within(values: np.ndarray, strata: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``values`` shuffled within each stratum (each stratum keeps its own multiset of values)."""
    out = values.copy()
    for s in np.unique(strata):
        idx = np.flatnonzero(strata == s)
        out[idx] = values[rng.permutation(idx)]
    return out
