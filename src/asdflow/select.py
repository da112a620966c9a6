"""Pseudo-anomalous set selection from external data (seed 000 §4.1.1, eq. 7)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

__all__ = ["machine_thresholds", "select_external"]

log = logging.getLogger(__name__)


def machine_thresholds(train_scores: pd.DataFrame) -> pd.Series:
    """a_thr per machine type: the highest anomaly score over its original training clips."""
    df = train_scores
    if "is_external" in df.columns:
        df = df[~df["is_external"].fillna(False).astype(bool)]
    return df.groupby("machine")["score"].max()


def _label(machine: str, mids, label_mode: str) -> str:
    mids = [m for m in (list(mids) if mids is not None else []) if m]
    if not mids:
        return f"{machine}_unlabeled"
    if label_mode == "first":
        return f"{machine}_{mids[0]}"
    return f"{machine}_{'+'.join(sorted(mids))}"


def select_external(
    ext_scores: pd.DataFrame, thresholds: pd.Series, *, n_max: int = 1000, mode: str = "score",
    label_mode: str = "first", inclusive: bool = False, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per machine m: candidates = pool clips assigned to m (nearest machine) with score below
    a_thr(m) (``inclusive``: ≤, the reference code); N_ex = min(N_out, n_max) of them with the
    lowest scores are kept (``mode="score"``), or - ablation ``mode="random"`` - the same N_ex
    drawn uniformly from all clips assigned to m. Label ``<machine>_<mid>``: first AudioSet label
    (``label_mode="first"``) or all labels sorted and joined with ``+``; the same mid under two
    machine types is two classes. Returns (selection, audit)."""
    if mode not in ("score", "random"):
        raise ValueError(f"unknown selection mode {mode!r}; expected 'score' or 'random'")
    if label_mode not in ("first", "all"):
        raise ValueError(f"unknown label_mode {label_mode!r}; expected 'first' or 'all'")
    rng = np.random.default_rng(seed)
    kept, audit = [], []
    for machine in sorted(set(thresholds.index) | set(ext_scores["machine"])):
        assigned = ext_scores[ext_scores["machine"] == machine]
        if machine not in thresholds.index:
            log.warning("selection: %d pool clips assigned to %s, which has no threshold; skipped",
                        len(assigned), machine)
            continue
        thr = float(thresholds[machine])
        below = assigned["score"] <= thr if inclusive else assigned["score"] < thr
        cand = assigned[below].sort_values(["score", "clip_id"], kind="stable")
        n_ex = min(len(cand), n_max)
        if mode == "score":
            pick = cand.iloc[:n_ex]
        else:
            pick = assigned.iloc[np.sort(rng.choice(len(assigned), size=n_ex, replace=False))] if n_ex else cand.iloc[:0]
            pick = pick.sort_values(["score", "clip_id"], kind="stable")
        pick = pick.assign(label=[_label(machine, m, label_mode) for m in pick["label_mids"]],
                           rank=np.arange(len(pick), dtype=np.int64))
        kept.append(pick[["clip_id", "machine", "score", "label", "rank"]])
        audit.append({"machine": machine, "threshold": thr, "n_assigned": len(assigned), "n_out": len(cand),
                      "n_ex": len(pick), "n_max": n_max, "mode": mode,
                      "class_histogram": json.dumps(pick["label"].value_counts().sort_index().to_dict())})
    cols = ["clip_id", "machine", "score", "label", "rank"]
    selection = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame(columns=cols)
    return selection, pd.DataFrame(audit)
