"""Pseudo-labels from k-means of a stage's training embeddings (seed 000 §4.2.2, eq. 13), the
oracle labels of the diagnostic ladder, and their quality against the true attributes."""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

__all__ = ["pseudo_labels", "oracle_labels", "label_quality"]

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
        centres, offsets = [], []
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


def label_quality(pred: Sequence[str], truth: Sequence[str], groups: Sequence[str]) -> pd.DataFrame:
    """ARI and NMI of pseudo-labels against true labels, per group (machine type) and the mean."""
    df = pd.DataFrame({"pred": np.asarray(pred).astype(str), "truth": np.asarray(truth).astype(str),
                       "group": np.asarray(groups).astype(str)})
    rows = [{"machine": g, "n": len(d), "ari": adjusted_rand_score(d["truth"], d["pred"]),
             "nmi": normalized_mutual_info_score(d["truth"], d["pred"])} for g, d in df.groupby("group")]
    out = pd.DataFrame(rows, columns=["machine", "n", "ari", "nmi"])
    if len(out):
        out = pd.concat([out, pd.DataFrame([{"machine": "mean", "n": int(out["n"].sum()), "ari": out["ari"].mean(),
                                             "nmi": out["nmi"].mean()}])], ignore_index=True)
    return out
