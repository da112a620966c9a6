"""Systems as recipes, and the per-stage steps every system goes through.

A *system* (config ``system_definitions``) names a backend and its options:

* ``embedding``: a net (Ba, Wilkinghoff, Spec) trained on the trainset's label column with the
  subspace loss (+ triplet loss), or a frozen pre-trained one (BEATs, saved untrained),
  embeddings of every DCASE clip, representatives from the original training clips, score =
  −max cosine similarity (further back-ends: :mod:`asdflow.backends`);
* frame baselines (:data:`asdflow.baselines.BASELINES`): ``gmm`` (log-mel frames + one GMM
  per machine type, score = −mean log-likelihood), ``autoencoder`` (the official DCASE AE
  baseline, score = mean reconstruction error), ``cae_svdd`` (seed 004) and ``serial_oe``
  (seed 001: outlier-exposure extractor per machine type + GMM per section on chunk embeddings).

Each backend turns artifacts into train and test ``scores`` tables; :func:`evaluate_scores` judges every
system the same way (official DCASE metrics + submission files).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from asdflow.data import attach_cache_rows, dcase_trainset
from asdflow.metrics import auc_pauc_table, decision_threshold, resolve_rules, summary_scores, write_submission
from asdflow.recipes import SystemRecipe
from asdflow.schemas import validate_frame

__all__ = [
    "SystemRecipe",
    "build_stage1_trainset",
    "reuse_stage1_model",
    "embeddings_table",
    "fit_representatives",
    "score_with_representatives",
    "with_file_names",
    "SHARD_COLUMNS",
    "fit_frame_baseline",
    "frame_baseline_scores",
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


def reuse_stage1_model(model: str | Path, report: str | Path, out_model: str | Path, out_report: str | Path,
                       base: str) -> dict[str, Any]:
    """A system's stage 1 taken from its ``stage1_from`` base: the base's ``model.pt`` copied
    and its train report with ``reused_from: <base>`` added (written and returned)."""
    import shutil

    from asdflow.workflow import read_json, write_json

    out_model = Path(out_model)
    out_model.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_model.with_name(out_model.name + ".tmp")
    shutil.copyfile(model, tmp)
    tmp.replace(out_model)
    rep = {**read_json(report), "reused_from": base}
    write_json(rep, out_report)
    return rep


def _file_name(paths: pd.Series) -> pd.Series:
    return paths.map(lambda p: Path(p).name)


def embeddings_table(manifest: pd.DataFrame, emb: np.ndarray) -> pd.DataFrame:
    """The EMBEDDINGS artifact: manifest identity columns + one embedding per clip."""
    out = manifest[["clip_id", "dataset", "machine", "section", "domain", "split", "label"]].reset_index(drop=True)
    out["embedding"] = list(np.asarray(emb, dtype=np.float32))
    return out


def with_file_names(scored: pd.DataFrame, manifest: pd.DataFrame) -> pd.DataFrame:
    """A SCORES table: ``scored`` (identity columns + score) with the clips' file names."""
    paths = manifest.set_index("clip_id").loc[scored["clip_id"], "path"]
    scored = scored.copy()
    scored["file_name"] = _file_name(pd.Series(paths.to_numpy(), index=scored.index))
    return scored[_SCORE_COLS + ["score"]]


def fit_representatives(
    train_embeddings: pd.DataFrame, trainset: pd.DataFrame, manifest: pd.DataFrame, scoring: Mapping[str, Any],
    seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Representatives per machine type and the scores of the training clips against them.

    Representatives come from the embeddings of the trainset's original (non-external) clips
    (paper §3.3; external clips never define them). The training-clip scores feed the decision
    thresholds and, in later stages, the selection thresholds a_thr (§4.1.1).
    ``scoring``: the keys :data:`asdflow.recipes.REPRESENTATIVE_OPTIONS` of the config's
    ``scoring`` block (the rule passes only these). Returns ``(train scores, representatives)``.
    """
    from asdflow.scoring import score_by_machine

    original = trainset.loc[~trainset["is_external"], "clip_id"]
    ref = train_embeddings[train_embeddings["clip_id"].isin(original)].assign(is_external=False)
    if ref.empty:
        raise ValueError("fit_representatives: no training embedding belongs to the trainset's original clips")
    scored, reps = score_by_machine(
        ref, train_embeddings, per_section=scoring.get("per_section", False), k_source=scoring.get("k_source", 16),
        target_mode=scoring.get("target_mode", "all"), k_target=scoring.get("k_target", 10),
        renormalize=scoring.get("renormalize", True), seed=seed,
    )
    return with_file_names(scored, manifest), reps


def score_with_representatives(embeddings: pd.DataFrame, representatives: pd.DataFrame,
                               manifest: pd.DataFrame) -> pd.DataFrame:
    """Anomaly score −max cosine of every clip against its machine type's representatives
    (machine × section ones when the representatives were built per section). Clips of a
    machine type without representatives get NaN (logged)."""
    from asdflow.scoring import score_against_representatives

    scores = score_against_representatives(embeddings, representatives)
    scored = embeddings.drop(columns=["embedding"]).assign(score=scores)
    return with_file_names(scored, manifest)


def _waves_by_machine(clips: pd.DataFrame, cache) -> dict[str, np.ndarray]:
    return {str(m): cache.get_rows(g["cache_row"].to_numpy()) for m, g in clips.groupby("machine")}


def fit_frame_baseline(manifest: pd.DataFrame, cache_npy: str | Path, backend: str, options: Mapping[str, Any],
                       sample_rate: int, seed: int):
    """Fit a frame-feature baseline (:data:`asdflow.baselines.BASELINES`: ``gmm``,
    ``autoencoder``, ``cae_svdd``, ``serial_oe``) on the manifest's training clips, per machine
    type; backends that use domains get each clip's (0 source, 1 target; None for a machine with
    unknown domains), backends that use sections / attributes get each clip's section id and
    visible attribute string ("" when hidden)."""
    from asdflow.baselines import get_baseline
    from asdflow.io.cache import AudioCache

    clips = attach_cache_rows(manifest, cache_npy)
    train = clips[clips["split"] == "train"]
    if train.empty:
        raise ValueError(f"{backend} baseline: the manifest has no decodable training clips")
    groups = list(train.groupby("machine"))  # same order as _waves_by_machine
    domains = {str(m): None if (g["domain"] == "unknown").any() else (g["domain"] == "target").astype(int).to_numpy()
               for m, g in groups}
    sections = {str(m): g["section"].astype(str).to_numpy() for m, g in groups}
    attrs = ({str(m): g["attr_string"].astype(str).to_numpy() for m, g in groups}
             if "attr_string" in train.columns else None)
    return get_baseline(backend).fit(_waves_by_machine(train, AudioCache(Path(cache_npy))), sample_rate,
                                     options, seed, domains_by_machine=domains, sections_by_machine=sections,
                                     attributes_by_machine=attrs)


def frame_baseline_scores(model, backend: str, manifest: pd.DataFrame, cache_npy: str | Path) -> pd.DataFrame:
    """Scores of every clip (train and test) by a fitted frame baseline (higher = more anomalous)."""
    from asdflow.baselines import get_baseline
    from asdflow.io.cache import AudioCache

    baseline = get_baseline(backend)
    clips = attach_cache_rows(manifest, cache_npy)
    cache = AudioCache(Path(cache_npy))
    parts = []
    for machine, g in clips.groupby("machine"):
        if str(machine) not in baseline.machines(model):
            log.warning("%s baseline: machine %s has no training clips; its clips get no score", backend, machine)
            continue
        s = baseline.score(model, {str(machine): cache.get_rows(g["cache_row"].to_numpy())},
                           sections_by_machine={str(machine): g["section"].astype(str).to_numpy()})[str(machine)]
        parts.append(g.assign(score=np.asarray(s, dtype=np.float64)))
    scored = pd.concat(parts, ignore_index=True)
    scored["file_name"] = _file_name(scored["path"])
    return scored[_SCORE_COLS + ["score"]]


def evaluate_scores(
    scores: pd.DataFrame, submission_dir: str | Path, *, max_fpr: float = 0.1, threshold: str = "gamma",
    threshold_q: float = 0.9, rules: str = "auto"
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Official metrics per dataset × machine × section × domain, summaries, submission files.

    ``rules`` (``evaluation.rules``): ``dcase2020`` | ``dcase2021`` | ``dcase2022+`` | ``auto``
    (from the test clips' ``file_name``, :func:`asdflow.metrics.detect_rules`); one rule set for
    every dataset, docs/formats.md §2.2. The summary records it: top-level ``rules`` (applied)
    and ``rules_config`` (as configured), and ``rules`` in every dataset's summary.

    Decision thresholds: one per machine type from its normal training scores (``threshold``
    gamma fit or percentile at ``threshold_q``), as the DCASE baseline does. The submission
    files have the 2022-2025 form whatever the rules (docs/formats.md §2.1).
    """
    test = scores[scores["split"] == "test"]
    applied = resolve_rules(rules, test["file_name"] if "file_name" in test.columns else None)
    table = auc_pauc_table(test, max_fpr=max_fpr, rules=applied)
    table = pd.DataFrame(validate_frame(table, "metrics").to_pandas())
    summary: dict[str, Any] = {"rules": applied, "rules_config": rules}
    for dataset, g in table.groupby("dataset"):
        summary[dataset] = summary_scores(g, rules=applied)
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


#: The external-manifest columns :func:`score_external_shard` reads.
SHARD_COLUMNS = ("clip_id", "path", "label_mids", "label_names")


def score_external_shard(
    model, shard: pd.DataFrame, cache_npy: str | Path | None, representatives: pd.DataFrame, *,
    audio_spec=None, batch_size: int = 64, num_workers: int = 0, amp: bool = True, use_gpu: str | bool = "auto",
    renormalize: bool = True, progress: bool = True, optimize: bool = True
) -> pd.DataFrame:
    """Embed one external-pool shard with a stage's model and find, per clip, the machine type of
    the most similar representative and its anomaly score for that machine (FAISS inner-product
    search over L2-normalised vectors; paper §4.1.1).

    ``shard`` is an external-manifest shard (at least :data:`SHARD_COLUMNS`; Arrow-backed
    columns, ``read_table(..., arrow_dtypes=True)``, keep its memory small). Waveforms come from its decoded-audio cache
    ``cache_npy``, or, with ``cache_npy=None``, are decoded from the shard's ``path`` column
    with ``audio_spec`` (an :class:`~asdflow.io.audio.AudioSpec`; same quantisation as the
    cache, so both give the same scores). Clips that failed to decode are left out: their count
    is ``attrs['n_failed']``, the per-file errors of the no-cache path ``attrs['failed']``.

    Streaming: each batch is embedded (:func:`asdflow.embed.embed_stream`, loading overlapped
    with compute, bfloat16 autocast on CUDA with ``amp``, the folded channels-last inference copy
    of the model with ``optimize``) and searched at once, so peak memory
    is set by ``batch_size``, the prefetch depth and the representatives, plus O(shard) for the
    manifest and the output columns; no embedding matrix of the shard is built.
    """
    from asdflow.embed import CacheBatches, DecodeBatches, embed_stream
    from asdflow.scoring import build_index, search_nearest_machine, stack_embeddings

    if cache_npy is not None:
        clips = attach_cache_rows(shard, cache_npy)
        source = CacheBatches(clips["cache_path"].tolist(), clips["cache_row"].tolist(), batch_size)
        n_failed_before = int(clips.attrs.get("n_failed", 0))
    else:
        if audio_spec is None:
            raise ValueError("score_external_shard: without a cache, audio_spec is needed to decode the clips")
        clips = shard.reset_index(drop=True)
        source = DecodeBatches(clips["path"].tolist(), audio_spec, batch_size)
        n_failed_before = 0
    machines = representatives["machine"].astype(str).tolist()
    index = build_index(stack_embeddings(representatives), machines, use_gpu=use_gpu, normalize=renormalize)
    names = np.asarray(sorted(set(machines)))
    n = len(clips)
    machine_code = np.zeros(n, dtype=np.int32)
    similarity = np.zeros(n, dtype=np.float64)
    ok = np.zeros(n, dtype=bool)
    failed = []
    for b in embed_stream(model, source, num_workers=num_workers, amp=amp, optimize=optimize, progress=progress,
                          desc="embedding pool shard"):
        sl = slice(b.start, b.start + len(b.embeddings))
        hits = search_nearest_machine(index, machines, b.embeddings)
        machine_code[sl] = np.searchsorted(names, hits["machine"].to_numpy())
        similarity[sl] = hits["similarity"].to_numpy()
        ok[sl] = b.ok
        for j in np.flatnonzero(~b.ok):
            failed.append({"clip_id": str(clips["clip_id"].iat[b.start + j]), "path": str(clips["path"].iat[b.start + j]),
                           "error": b.errors[j]})
            log.warning("pool clip skipped: %s", b.errors[j])
    out = clips.loc[ok, ["clip_id", "label_mids", "label_names"]].reset_index(drop=True)
    out["machine"] = names[machine_code[ok]] if len(names) else np.asarray([], dtype=str)
    out["similarity"] = similarity[ok]
    out["score"] = -similarity[ok]
    out.attrs["n_failed"] = n_failed_before + len(failed)
    out.attrs["failed"] = failed
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
