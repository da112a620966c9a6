"""Systems as recipes, and the per-stage steps every system goes through.

A *system* (config ``system_definitions``) names a backend and its options:

* ``embedding``: a net (Ba, Wilkinghoff) trained on the trainset's label column with the
  subspace loss (+ triplet loss), embeddings of every DCASE clip, representatives from the
  original training clips, score = −max cosine similarity;
* ``gmm``: log-mel frames + one GMM per machine type, score = −mean log-likelihood.

Each backend turns artifacts into a ``scores`` table; :func:`evaluate_scores` judges every
system the same way (official DCASE metrics + submission files).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from asdflow.data import attach_cache_rows, dcase_trainset
from asdflow.metrics import auc_pauc_table, decision_threshold, summary_scores, write_submission
from asdflow.recipes import SystemRecipe
from asdflow.schemas import validate_frame

__all__ = [
    "SystemRecipe",
    "build_stage1_trainset",
    "embeddings_table",
    "score_embeddings",
    "gmm_scores",
    "evaluate_scores",
]

log = logging.getLogger(__name__)

_SCORE_COLS = ["clip_id", "file_name", "dataset", "machine", "section", "domain", "split", "label"]


def build_stage1_trainset(manifest: pd.DataFrame, cache_npy: str | Path, labels: str) -> pd.DataFrame:
    """Original DCASE training clips with their label column and cache location (TRAINSET)."""
    train = dcase_trainset(manifest, label_mode=labels)
    train = attach_cache_rows(train, cache_npy)
    if train.attrs.get("n_failed"):
        log.warning("%d training clips failed to decode and are left out", train.attrs["n_failed"])
    cols = ["clip_id", "machine", "section", "domain", "label", "is_external", "cache_path", "cache_row"]
    return train[cols]


def _file_name(paths: pd.Series) -> pd.Series:
    return paths.map(lambda p: Path(p).name)


def embeddings_table(manifest: pd.DataFrame, emb: np.ndarray) -> pd.DataFrame:
    """The EMBEDDINGS artifact: manifest identity columns + one embedding per clip."""
    out = manifest[["clip_id", "dataset", "machine", "section", "domain", "split", "label"]].reset_index(drop=True)
    out["embedding"] = list(np.asarray(emb, dtype=np.float32))
    return out


def score_embeddings(
    embeddings: pd.DataFrame, trainset: pd.DataFrame, manifest: pd.DataFrame, scoring: Mapping[str, Any], seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores of every DCASE clip (train and test) and the representatives table.

    Representatives come from the embeddings of the trainset's original (non-external) clips;
    train-clip scores feed decision thresholds (and, in later stages, selection thresholds).
    """
    from asdflow.scoring import score_by_machine

    ref = embeddings[embeddings["clip_id"].isin(trainset.loc[~trainset["is_external"], "clip_id"])]
    ref = ref.assign(is_external=False)
    scored, reps = score_by_machine(
        ref,
        embeddings,
        per_section=scoring.get("per_section", False),
        k_source=scoring.get("k_source", 16),
        target_mode=scoring.get("target_mode", "all"),
        k_target=scoring.get("k_target", 10),
        renormalize=scoring.get("renormalize", True),
        seed=seed,
    )
    paths = manifest.set_index("clip_id").loc[scored["clip_id"], "path"]
    scored["file_name"] = _file_name(pd.Series(paths.to_numpy()))
    return scored[_SCORE_COLS + ["score"]], reps


def gmm_scores(manifest: pd.DataFrame, cache_npy: str | Path, options: Mapping[str, Any], sample_rate: int,
               seed: int) -> pd.DataFrame:
    """GMM baseline: fit per machine type on training clips, score every clip."""
    from asdflow.baselines.gmm import fit_gmm_baseline, score_gmm_baseline
    from asdflow.io.cache import AudioCache

    clips = attach_cache_rows(manifest, cache_npy)
    cache = AudioCache(Path(cache_npy))
    train = clips[clips["split"] == "train"]
    waves_train = {m: cache.get_rows(g["cache_row"].to_numpy()) for m, g in train.groupby("machine")}
    model = fit_gmm_baseline(waves_train, sr=sample_rate, n_components=options.get("n_components", 8),
                             context=options.get("context", 5), max_frames=options.get("max_frames", 20000),
                             seed=seed)
    parts = []
    for machine, g in clips.groupby("machine"):
        if machine not in waves_train:
            log.warning("GMM: machine %s has no training clips; its clips get no score", machine)
            continue
        s = score_gmm_baseline(model, {machine: cache.get_rows(g["cache_row"].to_numpy())})[machine]
        parts.append(g.assign(score=np.asarray(s, dtype=np.float64)))
    scored = pd.concat(parts, ignore_index=True)
    scored["file_name"] = _file_name(scored["path"])
    return scored[_SCORE_COLS + ["score"]]


def evaluate_scores(
    scores: pd.DataFrame, submission_dir: str | Path, *, max_fpr: float = 0.1, threshold: str = "gamma",
    threshold_q: float = 0.9
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Official metrics per dataset × machine × section × domain, summaries, submission files.

    Decision thresholds: one per machine type from its normal training scores (``threshold``
    gamma fit or percentile at ``threshold_q``), as the DCASE baseline does.
    """
    test = scores[scores["split"] == "test"]
    table = auc_pauc_table(test, max_fpr=max_fpr)
    table = pd.DataFrame(validate_frame(table, "metrics").to_pandas())
    summary: dict[str, Any] = {}
    for dataset, g in table.groupby("dataset"):
        summary[dataset] = summary_scores(g)
    train = scores[scores["split"] == "train"]
    thresholds = {
        m: decision_threshold(g["score"].to_numpy(), method=threshold, q=threshold_q)
        for m, g in train.groupby("machine")
    }
    submission_dir = Path(submission_dir)
    written = []
    for dataset, g in test.groupby("dataset"):
        g = g[g["machine"].isin(thresholds)]
        written += write_submission(g, submission_dir / dataset, thresholds)
    summary["thresholds"] = thresholds
    summary["submission_files"] = len(written)
    return table, summary


def score_external_shard(
    model, shard: pd.DataFrame, cache_npy: str | Path, representatives: pd.DataFrame, *, batch_size: int = 64,
    use_gpu: str | bool = "auto", renormalize: bool = True, progress: bool = True
) -> pd.DataFrame:
    """Embed one external-pool shard with a stage's model and find, per clip, the machine type of
    the most similar representative and its anomaly score for that machine (FAISS inner-product
    search over L2-normalised vectors; paper §4.1.1).

    ``shard`` is an external-manifest shard; ``cache_npy`` its decoded-audio cache. Clips whose
    decoding failed are left out (their count is in ``attrs['n_failed']``). Memory is bounded by
    ``batch_size`` and the number of representatives, not by the shard size.
    """
    from asdflow.embed import embed_waves
    from asdflow.scoring import build_index, search_nearest_machine, stack_embeddings

    clips = attach_cache_rows(shard, cache_npy)
    emb = embed_waves(model, clips["cache_path"].tolist(), clips["cache_row"].tolist(), batch_size=batch_size,
                      progress=progress, desc="embedding pool shard")
    machines = representatives["machine"].astype(str).tolist()
    index = build_index(stack_embeddings(representatives), machines, use_gpu=use_gpu, normalize=renormalize)
    queries = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    hits = search_nearest_machine(index, machines, queries.astype(np.float32))
    out = clips[["clip_id", "label_mids", "label_names"]].reset_index(drop=True)
    out = pd.concat([out, hits[["machine", "similarity", "score"]]], axis=1)
    out.attrs["n_failed"] = clips.attrs.get("n_failed", 0)
    return out


def build_stage_trainset(
    manifest: pd.DataFrame,
    dcase_cache: str | Path,
    labels: str,
    *,
    pseudolabels: pd.DataFrame | None = None,
    selection: pd.DataFrame | None = None,
    external_shards: list[tuple[pd.DataFrame, str]] | None = None,
) -> pd.DataFrame:
    """Training set of stage m >= 2 (TRAINSET): original clips, relabelled with the previous
    stage's pseudo-labels when given, plus the selected external clips with their
    ``<machine>_<mid>`` labels (read from the pool shard caches).

    ``external_shards``: (shard manifest, cache npy path) pairs holding the selected clips.
    """
    train = build_stage1_trainset(manifest, dcase_cache, labels)
    if pseudolabels is not None:
        pl = pseudolabels.set_index("clip_id")["label"]
        missing = ~train["clip_id"].isin(pl.index)
        if missing.any():
            raise KeyError(f"{int(missing.sum())} training clips have no pseudo-label "
                           f"(e.g. {train.loc[missing, 'clip_id'].iloc[0]!r}); rebuild pseudolabels")
        train["label"] = pl.loc[train["clip_id"]].to_numpy()
    parts = [train]
    if selection is not None and len(selection):
        if not external_shards:
            raise ValueError("a selection was given without the external shards that hold its clips")
        located = []
        for shard, cache in external_shards:
            s = shard[shard["clip_id"].isin(selection["clip_id"])]
            if len(s):
                located.append(attach_cache_rows(s[["clip_id"]], cache)[["clip_id", "cache_path", "cache_row"]])
        found = pd.concat(located, ignore_index=True) if located else pd.DataFrame(columns=["clip_id"])
        ext = selection.merge(found, on="clip_id", how="inner")
        if len(ext) < len(selection):
            log.warning("%d selected clips were not found in the pool caches", len(selection) - len(ext))
        parts.append(ext.assign(section="ext", domain="source", is_external=True)[train.columns])
    out = pd.concat(parts, ignore_index=True)
    out["cache_row"] = out["cache_row"].astype("int64")
    return out
