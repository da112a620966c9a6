"""Pseudo-anomalous set selection from external data (seed 000 §4.1.1, eq. 7).

The pool is scored in shards; :class:`SelectionMerger` merges the shard outputs one at a time
without ever holding the pool: per machine type it keeps a running count of the clips assigned
to it and of the candidates N_out (score below the threshold), and a bounded top-k list of at
most ``n_max`` rows. Each shard is merged into that list (sort of ``n_max`` + the shard's
candidates, cut back to ``n_max``), so memory is O(machines x n_max + one shard) whatever the
pool size. Order ties are broken by ``clip_id``, so the result does not depend on the order in
which the shards arrive.

Random ablation (``mode="random"``): every clip gets a pseudo-random key, a keyed hash of
``(seed, clip_id)``; the ``n_max`` smallest keys per machine are kept (a bottom-k sample, i.e.
a uniform sample without replacement, mergeable across shards), and at the end the first
N_ex = min(N_out, n_max) of them are the selection.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

__all__ = ["SelectionMerger", "audit_with_machine_like", "machine_thresholds", "read_pool_truth", "select_external",
           "select_from_shards", "selected_manifest", "selection_classes"]

log = logging.getLogger(__name__)

_KEEP_COLS = ["clip_id", "machine", "score", "label_mids"]
_NAME_COL = "label_names"  # optional in the merger's input: display names of label_mids
_OUT_COLS = ["clip_id", "machine", "score", "label", "label_name", "rank"]


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


def _label_name(mids, names, label_mode: str) -> str:
    """Display name(s) of the class :func:`_label` forms ('' where unknown or unlabeled)."""
    mids = list(mids) if mids is not None else []
    names = list(names) if names is not None else []
    by_mid = {m: (names[i] if i < len(names) else "") for i, m in enumerate(mids) if m}
    if not by_mid:
        return ""
    if label_mode == "first":
        return str(by_mid[next(iter(by_mid))])
    return "+".join(str(by_mid[m]) for m in sorted(by_mid))


def _random_keys(clip_ids: pd.Series, seed: int) -> np.ndarray:
    """A uniform 64-bit key per clip, a keyed hash of (seed, clip_id): the same clip gets the same
    key in whichever shard it is scored."""
    hash_key = f"asdflow{int(seed) % 10**9:09d}"  # pandas wants a 16-character key
    return pd.util.hash_pandas_object(clip_ids.astype(str), index=False, hash_key=hash_key).to_numpy(np.uint64)


class SelectionMerger:
    """Streaming selection over shard score tables (see the module docstring).

    ``add(shard)`` merges one external-scores table (columns ``clip_id``, ``machine``,
    ``score``, ``label_mids``, optionally ``label_names`` for the selection's ``label_name``);
    ``result(label_mode)`` returns ``(selection, audit)`` exactly as selecting from the
    concatenated pool would.
    """

    def __init__(self, thresholds: pd.Series, *, n_max: int = 1000, mode: str = "score", inclusive: bool = False,
                 seed: int = 0) -> None:
        if mode not in ("score", "random"):
            raise ValueError(f"unknown selection mode {mode!r}; expected 'score' or 'random'")
        if n_max < 0:
            raise ValueError(f"n_max must be >= 0, got {n_max}")
        self.thresholds = thresholds.astype(float)
        self.n_max, self.mode, self.inclusive, self.seed = int(n_max), mode, inclusive, seed
        machines = [str(m) for m in thresholds.index]
        self.n_assigned = dict.fromkeys(machines, 0)
        self.n_out = dict.fromkeys(machines, 0)
        self.kept: dict[str, pd.DataFrame] = {}
        self.unknown: dict[str, int] = {}  # pool clips assigned to a machine without a threshold
        self.n_rows = 0
        self.n_shards = 0
        self.peak_rows_held = 0  # largest (kept + incoming) frame merged at once: the memory bound

    def _sort_cols(self) -> list[str]:
        return ["score", "clip_id"] if self.mode == "score" else ["key", "clip_id"]

    def add(self, shard: pd.DataFrame) -> None:
        missing = [c for c in _KEEP_COLS if c not in shard.columns]
        if missing:
            raise KeyError(f"external scores lack columns {missing}")
        df = shard[_KEEP_COLS + ([_NAME_COL] if _NAME_COL in shard.columns else [])]
        self.n_rows += len(df)
        self.n_shards += 1
        known = df["machine"].isin(self.thresholds.index)
        for machine, count in df.loc[~known, "machine"].value_counts().items():
            self.unknown[str(machine)] = self.unknown.get(str(machine), 0) + int(count)
        df = df[known]
        if df.empty:
            return
        thr = self.thresholds.reindex(df["machine"]).to_numpy()
        below = (df["score"].to_numpy() <= thr) if self.inclusive else (df["score"].to_numpy() < thr)
        if self.mode == "score":
            incoming = df[below]
        else:  # random: a sample of all assigned clips; N_out still counts the candidates
            incoming = df.assign(key=_random_keys(df["clip_id"], self.seed))
        for machine, n in df["machine"].value_counts().items():
            self.n_assigned[machine] += int(n)
        for machine, n in df.loc[below, "machine"].value_counts().items():
            self.n_out[machine] += int(n)
        order = self._sort_cols()
        for machine, part in incoming.groupby("machine", sort=False):
            prev = self.kept.get(machine)  # sorted by `order`, at most n_max rows
            if prev is not None and len(prev) >= self.n_max:
                # only rows that can enter the top n_max: not worse than the current last one
                part = part[part[order[0]].to_numpy() <= prev[order[0]].iat[-1]] if self.n_max else part.iloc[:0]
                if part.empty:
                    continue
            merged = part if prev is None else pd.concat([prev, part], ignore_index=True)
            self.peak_rows_held = max(self.peak_rows_held, len(merged))
            idx = np.lexsort((merged["clip_id"].to_numpy(), merged[order[0]].to_numpy()))[: self.n_max]
            self.kept[machine] = merged.iloc[idx].reset_index(drop=True)

    def result(self, label_mode: str = "first") -> tuple[pd.DataFrame, pd.DataFrame]:
        if label_mode not in ("first", "all"):
            raise ValueError(f"unknown label_mode {label_mode!r}; expected 'first' or 'all'")
        for machine, n in sorted(self.unknown.items()):
            log.warning("selection: %d pool clips assigned to %s, which has no threshold; skipped", n, machine)
        kept, audit = [], []
        for machine in sorted(self.n_assigned):
            n_ex = min(self.n_out[machine], self.n_max)
            cand = self.kept.get(machine, pd.DataFrame(columns=_KEEP_COLS))
            pick = cand.sort_values(self._sort_cols(), kind="stable").iloc[:n_ex]
            pick = pick.sort_values(["score", "clip_id"], kind="stable")
            names = pick[_NAME_COL] if _NAME_COL in pick.columns else [None] * len(pick)
            pick = pick.assign(label=[_label(machine, m, label_mode) for m in pick["label_mids"]],
                               label_name=[_label_name(m, n, label_mode) for m, n in zip(pick["label_mids"], names)],
                               rank=np.arange(len(pick), dtype=np.int64))
            kept.append(pick[_OUT_COLS])
            audit.append({"machine": machine, "threshold": float(self.thresholds[machine]),
                          "n_assigned": self.n_assigned[machine], "n_out": self.n_out[machine], "n_ex": len(pick),
                          "n_max": self.n_max, "mode": self.mode,
                          "class_histogram": json.dumps(pick["label"].value_counts().sort_index().to_dict())})
        nonempty = [k for k in kept if len(k)]
        selection = (pd.concat(nonempty, ignore_index=True) if nonempty else pd.DataFrame(columns=_OUT_COLS))
        selection["score"] = selection["score"].astype(np.float64)
        selection["rank"] = selection["rank"].astype(np.int64)
        return selection, pd.DataFrame(audit)


def select_external(
    ext_scores: pd.DataFrame, thresholds: pd.Series, *, n_max: int = 1000, mode: str = "score",
    label_mode: str = "first", inclusive: bool = False, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per machine m: candidates = pool clips assigned to m (nearest machine) with score below
    a_thr(m) (``inclusive``: ≤, the reference code); N_ex = min(N_out, n_max) of them with the
    lowest scores are kept (``mode="score"``), or - ablation ``mode="random"`` - the same N_ex
    drawn uniformly from all clips assigned to m. Label ``<machine>_<mid>``: first AudioSet label
    (``label_mode="first"``) or all labels sorted and joined with ``+``; the same mid under two
    machine types is two classes. Returns (selection, audit).

    One table in memory; :func:`select_from_shards` is the same selection over shard files."""
    if label_mode not in ("first", "all"):
        raise ValueError(f"unknown label_mode {label_mode!r}; expected 'first' or 'all'")
    merger = SelectionMerger(thresholds, n_max=n_max, mode=mode, inclusive=inclusive, seed=seed)
    merger.add(ext_scores)
    return merger.result(label_mode)


def select_from_shards(
    shard_paths: Iterable[str | Path], thresholds: pd.Series, *, n_max: int = 1000, mode: str = "score",
    label_mode: str = "first", inclusive: bool = False, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`select_external` over external-scores shard files, read and merged one at a time
    (only the columns the selection needs), so the pool is never concatenated."""
    from asdflow.schemas import read_table

    if label_mode not in ("first", "all"):
        raise ValueError(f"unknown label_mode {label_mode!r}; expected 'first' or 'all'")
    merger = SelectionMerger(thresholds, n_max=n_max, mode=mode, inclusive=inclusive, seed=seed)
    for path in shard_paths:
        merger.add(read_table(path, "external_scores", columns=_KEEP_COLS + [_NAME_COL]))
    return merger.result(label_mode)


def selection_classes(selection: pd.DataFrame) -> pd.DataFrame:
    """Class histogram of a selection: one row per machine type x class the selected pool clips
    were labelled with (columns machine, mid = the label without its ``<machine>_`` prefix,
    display_name, count), most frequent first within each machine type."""
    cols = ["machine", "mid", "display_name", "count"]
    if selection.empty:
        return pd.DataFrame(columns=cols)
    df = selection.assign(
        mid=[str(lbl).removeprefix(f"{m}_") for lbl, m in zip(selection["label"], selection["machine"])],
        display_name=(selection["label_name"] if "label_name" in selection.columns else "").fillna(""))
    out = df.groupby(["machine", "mid", "display_name"], sort=False).size().rename("count").reset_index()
    out = out.sort_values(["machine", "count", "mid"], ascending=[True, False, True], kind="stable")
    return out[cols].reset_index(drop=True)


def read_pool_truth(path: str | Path) -> pd.Series:
    """The built-in pool's ``pool_truth.csv`` (written by :mod:`asdflow.synth`) as a bool Series
    clip_id -> machine_like, with the pool manifest's clip ids (``ext/<YTID>``, see
    :func:`asdflow.io.external.scan_audioset`)."""
    truth = pd.read_csv(path, dtype={"ytid": str, "file_name": str, "category": str}, keep_default_na=False)
    ml = truth["machine_like"].map(lambda v: str(v).strip().lower() in ("true", "1")).astype(bool)
    return pd.Series(ml.to_numpy(), index=("ext/" + truth["ytid"]).to_numpy(), name="machine_like")


def audit_with_machine_like(audit: pd.DataFrame, selection: pd.DataFrame,
                            machine_like: pd.Series | None = None) -> pd.DataFrame:
    """The selection audit with an ``ALL`` row (counts summed over machine types) and, when the
    pool's truth is known (``machine_like``: clip_id -> bool, the built-in pool), per row the
    number ``n_machine_like`` and share ``machine_like_share`` of selected clips that come from
    machine-like classes. Without truth (real pools) both are NaN; a row without selected (or
    known) clips has share NaN."""
    out = audit.copy()
    total = {"machine": "ALL", "threshold": float("nan")}
    for col in ("n_assigned", "n_out", "n_ex"):
        if col in out.columns:
            total[col] = int(out[col].sum())
    for col in ("n_max", "mode"):
        if col in out.columns and len(out):
            total[col] = out[col].iloc[0]
    if "class_histogram" in out.columns:
        counts = selection["label"].value_counts().sort_index().to_dict() if len(selection) else {}
        total["class_histogram"] = json.dumps(counts)
    out = pd.concat([out, pd.DataFrame([total])], ignore_index=True)
    n_ml = np.full(len(out), np.nan)
    share = np.full(len(out), np.nan)
    if machine_like is not None:
        known = selection["clip_id"].isin(machine_like.index)
        if (~known).any():
            log.warning("%d selected clips are not in the pool truth; left out of the machine-like share",
                        int((~known).sum()))
        sel = selection.loc[known]
        flag = machine_like.reindex(sel["clip_id"]).to_numpy(dtype=bool)
        for i, machine in enumerate(out["machine"]):
            rows = np.ones(len(sel), dtype=bool) if machine == "ALL" else (sel["machine"] == machine).to_numpy()
            n_ml[i] = float(flag[rows].sum())
            share[i] = n_ml[i] / rows.sum() if rows.sum() else np.nan
    out["n_machine_like"] = n_ml
    out["machine_like_share"] = share
    return out


def selected_manifest(selection: pd.DataFrame, manifest_paths: Iterable[str | Path]) -> pd.DataFrame:
    """The external-manifest rows of the selected clips, found by reading the pool's manifest
    shards one at a time (for ``external_pool.cache: false``, where only the selected clips are
    decoded for training). Raises ``KeyError`` naming a selected clip that no shard holds."""
    from asdflow.schemas import read_table

    wanted = set(selection["clip_id"])
    found = []
    for path in manifest_paths:
        ids = read_table(path, "external_manifest", columns=["clip_id"])["clip_id"]
        hit = ids.isin(wanted)
        if hit.any():
            found.append(read_table(path, "external_manifest").loc[hit.to_numpy()])
    out = pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=["clip_id", "path"])
    missing = wanted - set(out["clip_id"])
    if missing:
        raise KeyError(f"{len(missing)} selected clips are in no external manifest shard (e.g. {sorted(missing)[0]!r})")
    order = {c: i for i, c in enumerate(selection["clip_id"])}
    return out.sort_values("clip_id", key=lambda c: c.map(order), kind="stable").reset_index(drop=True)
