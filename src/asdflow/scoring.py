"""Representatives, the −max-cosine anomaly score, and FAISS search over representatives.

Paper (seed 000 §3.3, eqs. 2-6): per machine type, the source training embeddings are
clustered by k-means (k_so = 16) and the target ones by k_ta-means (k_ta = 10); the anomaly
score of a test embedding z is ``−max_j cos(z, c_j)`` over all J = k_so + k_ta representatives.

Reference code (``ibkuroyagi/unlabeled-asd train_infer.py``,
docs/reference.md §3.6): embeddings L2-normalised, ``KMeans(16, random_state=seed)``
on source, **every** target training embedding is a representative (with 10 target clips per
type this is the paper's k_ta = 10), k-means centroids are **not** re-normalised, and the score
is ``min_j (1 − <z, c_j>)``. Representatives come from the original training clips only.

Choices here (paper = default, code = named option):

* ``target_mode="all"`` (default): each target training clip is its own representative - the
  paper's k_ta = 10 with 10 target clips, and what the code does; ``"kmeans"``: k-means with
  ``k_target`` clusters (capped at the number of target clips).
* ``renormalize=True`` (default, paper eq. 5 is a cosine): k-means centres are L2-normalised,
  so ``−max <ẑ, c>`` is exactly ``−max cos``. ``renormalize=False`` (code): centres stay as
  k-means returns them (norm < 1), and :func:`anomaly_scores` gives ``−max <ẑ, c>`` =
  the code's ``min(1 − <ẑ, c>) − 1`` (same ranking, constant offset).
* ``n_init`` of k-means is set explicitly (default 10, the scikit-learn default before 1.4
  that the reference code most likely ran with - unverified; newer scikit-learn uses 1).
* Scores are computed per machine type (pooled sections, as the code: one section per type
  since 2023); ``per_section=True`` builds representatives per machine × section (as
  ``wilkinghoff/ssl4asd``).
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans

__all__ = [
    "anomaly_scores",
    "build_index",
    "l2_normalize",
    "per_machine_scores",
    "representatives",
    "machine_representatives",
    "score_against_representatives",
    "score_by_machine",
    "search_nearest_machine",
    "stack_embeddings",
]

log = logging.getLogger(__name__)

#: Upper bound on the elements of one similarity block (rows × representatives) - bounds memory.
_BLOCK_ELEMS = 1 << 22
#: Largest k a FAISS GPU flat index accepts.
_FAISS_MAX_K = 2048


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation (float32); all-zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {x.shape}")
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, eps)


def stack_embeddings(df: pd.DataFrame, column: str = "embedding") -> np.ndarray:
    """Stack an embedding column (one list/array per row) into an [N, D] float32 matrix."""
    if len(df) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([np.asarray(v, dtype=np.float32) for v in df[column].to_numpy()])


# --------------------------------------------------------------------------------------------
# Representatives and the −max-cosine score
# --------------------------------------------------------------------------------------------

def _kmeans(x: np.ndarray, k: int, seed: int, n_init: int) -> tuple[np.ndarray, np.ndarray]:
    km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(x)
    return km.cluster_centers_.astype(np.float32), np.bincount(km.labels_, minlength=k)


def representatives(
    train_emb: np.ndarray,
    domains: Sequence[str] | np.ndarray,
    k_source: int = 16,
    target_mode: str = "all",
    k_target: int = 10,
    seed: int = 0,
    renormalize: bool = True,
    n_init: int = 10,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Representatives ``[J, D]`` of one machine type (or machine × section) and their metadata.

    Embeddings are L2-normalised first. Source: k-means (``k_source``, capped at the number of
    source clips; clips whose domain is not ``"target"`` - including ``"unknown"`` - count as
    source). Target: every target embedding (``target_mode="all"``) or k-means with
    ``k_target`` (capped) clusters (``"kmeans"``). ``renormalize`` L2-normalises the k-means
    centres (paper) or keeps them raw (reference code). ``meta`` has one row per centre:
    ``kind`` (``source_kmeans`` | ``target_sample`` | ``target_kmeans``), ``domain``,
    ``n_members``. Source centres come first.
    """
    x = l2_normalize(train_emb)
    dom = np.asarray(domains).astype(str)
    if len(dom) != len(x):
        raise ValueError(f"{len(x)} embeddings but {len(dom)} domain values")
    if len(x) == 0:
        raise ValueError("representatives: no training embeddings")
    if target_mode not in ("all", "kmeans"):
        raise ValueError(f"target_mode must be 'all' or 'kmeans', got {target_mode!r}")
    is_t = dom == "target"
    xs, xt = x[~is_t], x[is_t]
    parts: list[np.ndarray] = []
    meta: list[pd.DataFrame] = []

    def add(c: np.ndarray, kind: str, domain: str, n: np.ndarray, from_kmeans: bool) -> None:
        if from_kmeans and renormalize:
            c = l2_normalize(c)
        parts.append(c.astype(np.float32))
        meta.append(pd.DataFrame({"kind": kind, "domain": domain, "n_members": n.astype(np.int64)}))

    if len(xs):
        k = min(int(k_source), len(xs))
        if k < k_source:
            log.info("representatives: k_source %d capped at %d source clips", k_source, k)
        c, n = _kmeans(xs, k, seed, n_init)
        add(c, "source_kmeans", "source", n, True)
    else:
        log.warning("representatives: no source training clips")
    if len(xt):
        if target_mode == "all":
            add(xt, "target_sample", "target", np.ones(len(xt), dtype=np.int64), False)
        else:
            k = min(int(k_target), len(xt))
            c, n = _kmeans(xt, k, seed, n_init)
            add(c, "target_kmeans", "target", n, True)
    centres = np.concatenate(parts).astype(np.float32)
    return centres, pd.concat(meta, ignore_index=True)


def _blocks(n_rows: int, n_cols: int, batch_size: int | None):
    step = batch_size or max(1, _BLOCK_ELEMS // max(1, n_cols))
    for i in range(0, n_rows, step):
        yield slice(i, min(i + step, n_rows))


def anomaly_scores(test_emb: np.ndarray, centres: np.ndarray, batch_size: int | None = None) -> np.ndarray:
    """``−max_j <ẑ, c_j>`` for every row of ``test_emb`` (paper eq. 6), float64 ``[N]``.

    ``ẑ`` is the L2-normalised test embedding; ``centres`` are used as given, so with unit-norm
    centres (``representatives(renormalize=True)``) this is exactly ``−max cos``. Computed in
    row blocks of at most ``batch_size`` rows (default: ~4 M similarities per block).
    """
    z = l2_normalize(test_emb)
    c = np.asarray(centres, dtype=np.float32)
    if c.ndim != 2 or len(c) == 0:
        raise ValueError("anomaly_scores: no representatives")
    if z.shape[1] != c.shape[1]:
        raise ValueError(f"dimension mismatch: embeddings {z.shape[1]}, centres {c.shape[1]}")
    out = np.empty(len(z), dtype=np.float64)
    for sl in _blocks(len(z), len(c), batch_size):
        out[sl] = -(z[sl] @ c.T).max(axis=1)
    return out


def score_by_machine(
    emb_df_train: pd.DataFrame,
    emb_df_test: pd.DataFrame,
    *,
    embedding_col: str = "embedding",
    **options,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score ``emb_df_test`` against representatives built per machine type from ``emb_df_train``.

    Both frames need ``machine``, ``domain`` and ``embedding_col`` (one vector per row), plus
    ``section`` when ``per_section``. Training rows with a true ``is_external`` value (selected
    external clips in stage ≥ 2) are **excluded**: representatives come from the original
    training clips only. ``options`` go to :func:`machine_representatives` (``per_section``,
    ``k_source``, ``target_mode``, ``k_target``, ``seed``, ``renormalize``, ``n_init``). Returns

    * a copy of ``emb_df_test`` without the embedding column, plus ``score`` (−max cosine);
      rows of a machine (× section) without training clips get NaN (logged);
    * the representatives table (``machine``, ``section`` - ``"*"`` when pooled -, ``kind``,
      ``n_members``, ``embedding`` as float32 arrays), i.e. the ``representatives`` artifact.
    """
    reps = machine_representatives(emb_df_train, embedding_col=embedding_col, **options)
    out = emb_df_test.drop(columns=[embedding_col]).copy()
    out["score"] = score_against_representatives(emb_df_test, reps, embedding_col=embedding_col)
    return out, reps


def machine_representatives(
    emb_df_train: pd.DataFrame,
    *,
    embedding_col: str = "embedding",
    per_section: bool = False,
    **options,
) -> pd.DataFrame:
    """The ``representatives`` table: :func:`representatives` of each machine type (× section
    with ``per_section``; ``section`` is ``"*"`` when pooled) of the original training clips
    (rows with a true ``is_external`` are left out; ``options`` are those of
    :func:`representatives`: ``k_source``, ``target_mode``, ``k_target``, ``seed``,
    ``renormalize``, ``n_init``). Columns ``machine``, ``section``, ``kind``,
    ``n_members``, ``embedding`` (float32 arrays)."""
    train = emb_df_train
    if "is_external" in train.columns:
        ext = train["is_external"].fillna(False).astype(bool)
        if ext.any():
            log.info("representatives: excluding %d external training rows", int(ext.sum()))
        train = train[~ext.to_numpy()]
    keys = ["machine", "section"] if per_section else ["machine"]
    rep_rows: list[pd.DataFrame] = []
    for key, g in train.groupby(keys, sort=True):
        key = tuple(str(k) for k in (key if isinstance(key, tuple) else (key,)))
        centres, meta = representatives(stack_embeddings(g, embedding_col), g["domain"].to_numpy(), **options)
        meta = meta.assign(machine=key[0], section=key[1] if per_section else "*",
                           embedding=list(centres))
        rep_rows.append(meta[["machine", "section", "kind", "n_members", "embedding"]])
    return (pd.concat(rep_rows, ignore_index=True) if rep_rows else
            pd.DataFrame(columns=["machine", "section", "kind", "n_members", "embedding"]))


def score_against_representatives(emb_df: pd.DataFrame, reps: pd.DataFrame, *,
                                  embedding_col: str = "embedding") -> np.ndarray:
    """−max cosine of every row of ``emb_df`` against its machine type's representatives
    (machine × section ones when ``reps`` was built per section). Rows of a machine (× section)
    without representatives get NaN (logged)."""
    per_section = bool(len(reps)) and bool((reps["section"] != "*").any())
    keys = ["machine", "section"] if per_section else ["machine"]
    scores = np.full(len(emb_df), np.nan)
    row_keys = (emb_df[keys].astype(str).agg("\x1f".join, axis=1).to_numpy() if len(emb_df)
                else np.array([], dtype=str))
    for key, r in reps.groupby(keys, sort=True):
        key = tuple(str(k) for k in (key if isinstance(key, tuple) else (key,)))
        sel = np.nonzero(row_keys == "\x1f".join(key))[0]
        if len(sel):
            scores[sel] = anomaly_scores(stack_embeddings(emb_df.iloc[sel], embedding_col), stack_embeddings(r))
    missing = np.isnan(scores)
    if missing.any():
        log.warning("%d clips of %s have no representatives (no training clips) -> score NaN",
                    int(missing.sum()), sorted(set(row_keys[missing]))[:10])
    return scores


# --------------------------------------------------------------------------------------------
# FAISS search over the representatives of all machine types
# --------------------------------------------------------------------------------------------

def build_index(centres: np.ndarray, machine_of_centre: Sequence[str] | None = None,
                use_gpu: str | bool = "auto", normalize: bool = True):
    """An exact inner-product FAISS index (``IndexFlatIP``) over the representatives.

    ``normalize=True`` L2-normalises the centres first (inner product = cosine, paper eq. 5);
    ``False`` indexes them as given (reference code with raw k-means centroids).
    ``use_gpu``: ``"auto"`` moves the index to GPU 0 when this faiss build sees a GPU, ``True``
    requires one (warns and stays on CPU otherwise), ``False`` keeps it on CPU. The search code
    is the same either way. ``machine_of_centre`` is only checked for length here; pass it again
    to :func:`search_nearest_machine`.
    """
    import warnings

    with warnings.catch_warnings():  # SWIG bindings emit import-time DeprecationWarnings
        warnings.simplefilter("ignore", DeprecationWarning)
        import faiss

    c = np.ascontiguousarray(l2_normalize(centres) if normalize else np.asarray(centres, np.float32))
    if machine_of_centre is not None and len(machine_of_centre) != len(c):
        raise ValueError(f"{len(c)} centres but {len(machine_of_centre)} machine labels")
    index = faiss.IndexFlatIP(c.shape[1])
    index.add(c)
    n_gpu = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    want = (use_gpu == "auto" and n_gpu > 0) or use_gpu is True
    if use_gpu is True and n_gpu == 0:
        log.warning("build_index: use_gpu=True but faiss sees no GPU; staying on CPU")
        want = False
    if want:
        res = faiss.StandardGpuResources()
        gpu_index = faiss.index_cpu_to_gpu(res, 0, index)
        gpu_index.asdflow_resources = res  # keep the resources alive with the index
        return gpu_index
    return index


def _search(index, queries: np.ndarray, k: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    q = np.ascontiguousarray(l2_normalize(queries))
    if q.shape[1] != index.d:
        raise ValueError(f"dimension mismatch: queries {q.shape[1]}, index {index.d}")
    sims = np.empty((len(q), k), dtype=np.float32)
    ids = np.empty((len(q), k), dtype=np.int64)
    for i in range(0, len(q), batch_size):
        s, j = index.search(q[i:i + batch_size], k)
        sims[i:i + batch_size], ids[i:i + batch_size] = s, j
    return sims, ids


def per_machine_scores(index, machine_of_centre: Sequence[str], queries: np.ndarray,
                       batch_size: int = 65536) -> pd.DataFrame:
    """Score of every query for **every** machine type: ``−max`` similarity over that machine's
    representatives (the reference code's per-machine score matrix, ``min(1 − dot)`` up to the
    constant 1). DataFrame ``[N, n_machines]``, columns = machine types (sorted)."""
    machines = np.asarray(machine_of_centre).astype(str)
    names, code = np.unique(machines, return_inverse=True)
    n_c = index.ntotal
    if len(machines) != n_c:
        raise ValueError(f"index holds {n_c} centres but {len(machines)} machine labels")
    perm = np.argsort(code, kind="stable")  # centre columns grouped by machine
    starts = np.r_[0, np.nonzero(np.diff(code[perm]))[0] + 1]
    q = np.asarray(queries)
    step = max(1, min(batch_size, _BLOCK_ELEMS // max(1, n_c)))
    out = np.empty((len(q), len(names)), dtype=np.float64)
    for i in range(0, len(q), step):
        blk = q[i:i + step]
        if n_c <= _FAISS_MAX_K:
            sims, ids = _search(index, blk, n_c, step)  # every centre, sorted by similarity
            full = np.empty_like(sims)
            np.put_along_axis(full, ids, sims, axis=1)  # back to centre order
        else:  # GPU flat indexes cap k; fall back to the exact product with the stored centres
            full = l2_normalize(blk) @ index.reconstruct_n(0, n_c).T
        out[i:i + step] = np.maximum.reduceat(full[:, perm], starts, axis=1)
    return pd.DataFrame(-out, columns=list(names))


def search_nearest_machine(index, machine_of_centre: Sequence[str], queries: np.ndarray,
                           k: int = 1, batch_size: int = 65536, per_machine: bool = False):
    """For each query, the machine type of its most similar representative (paper §4.1:
    "the class with the highest similarity").

    Returns a DataFrame with ``machine`` (of the nearest representative), ``similarity`` (its
    cosine) and ``score`` (= −max similarity over that machine's representatives, which is
    ``−similarity`` since the global maximum is also that machine's maximum). ``k`` nearest
    representatives are retrieved; with ``k > 1`` the frame also has ``machine_topk``
    (list of the k machines, nearest first) and ``similarity_topk``. ``per_machine=True``
    returns ``(frame, per_machine_scores(...))`` - the reference code's behaviour of scoring
    every query against every machine type.
    """
    machines = np.asarray(machine_of_centre).astype(str)
    if len(machines) != index.ntotal:
        raise ValueError(f"index holds {index.ntotal} centres but {len(machines)} machine labels")
    k = max(1, min(int(k), index.ntotal, _FAISS_MAX_K))
    sims, ids = _search(index, queries, k, batch_size)
    df = pd.DataFrame({
        "machine": machines[ids[:, 0]],
        "similarity": sims[:, 0].astype(np.float64),
        "score": -sims[:, 0].astype(np.float64),
    })
    if k > 1:
        df["machine_topk"] = list(machines[ids])
        df["similarity_topk"] = list(sims.astype(np.float64))
    if per_machine:
        return df, per_machine_scores(index, machines, queries, batch_size)
    return df
