"""Decoded-audio cache: every clip is decoded once into an int16 array file that later steps read.

A cache is three files next to each other:

* ``<name>.npy``: int16 array ``[N, spec.n_samples]`` (numpy format; rows read with ``pread``);
* ``<name>.index.parquet``: ``clip_id → row`` with status ``ok``/``failed`` (AUDIO_CACHE_INDEX);
* ``<name>.spec.json``: the :class:`AudioSpec` it was built with (checked by readers).

Disk cost: 2 bytes × sample_rate × clip_seconds per clip, e.g. 576 kB for an 18-s clip at
16 kHz, i.e. about 0.58 TB per million clips (0.32 TB at 10 s).
"""

from __future__ import annotations

import json
import logging
import os
import time
from multiprocessing import get_context
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from asdflow.io.audio import AudioError, AudioSpec, load_clip
from asdflow.schemas import read_table, write_table

__all__ = ["AudioCache", "build_cache", "cache_paths", "dequantize", "quantize"]

log = logging.getLogger(__name__)


def _npy_layout(npy: Path) -> tuple[tuple[int, ...], int]:
    """Shape and data offset of a C-order int16 ``.npy`` file (header only, no data read)."""
    try:
        with open(npy, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
            offset = f.tell()
    except (OSError, ValueError) as exc:
        raise ValueError(f"{npy}: not a readable .npy array ({exc})") from exc
    if dtype != np.dtype(np.int16) or fortran:
        raise ValueError(f"{npy}: expected a C-order int16 array, found {dtype} (fortran={fortran})")
    return tuple(shape), offset


def cache_paths(npy_path: str | Path) -> tuple[Path, Path, Path]:
    """(array, index, spec) paths of the cache whose array is ``npy_path``."""
    npy = Path(npy_path)
    stem = npy.name[: -len(".npy")] if npy.name.endswith(".npy") else npy.name
    return npy, npy.with_name(stem + ".index.parquet"), npy.with_name(stem + ".spec.json")


def quantize(wave: np.ndarray) -> np.ndarray:
    """The cache's storage format: clip to [-1, 1], scale by 32767, round to int16."""
    return np.round(np.clip(wave, -1.0, 1.0) * 32767.0).astype(np.int16)


def dequantize(stored: np.ndarray) -> np.ndarray:
    """Float32 waveform(s) of stored int16 samples (divided by 32768, as every reader does)."""
    return stored.astype(np.float32) / 32768.0


def _decode(args: tuple[str, dict]) -> tuple[np.ndarray | None, int, str]:
    path, spec_dict = args
    spec = AudioSpec(**spec_dict)
    try:
        wave = load_clip(path, spec)
    except AudioError as exc:
        return None, 0, str(exc)
    return wave, len(wave), ""


def _decoded(paths: Sequence[str], spec: AudioSpec, num_workers: int) -> Iterator[tuple[np.ndarray | None, int, str]]:
    jobs = ((str(p), spec.to_dict()) for p in paths)
    if num_workers <= 0:
        yield from map(_decode, jobs)
        return
    with get_context("fork").Pool(num_workers) as pool:
        yield from pool.imap(_decode, jobs, chunksize=8)


def build_cache(
    clip_ids: Sequence[str],
    paths: Sequence[str],
    npy_path: str | Path,
    spec: AudioSpec,
    *,
    num_workers: int = 0,
    progress: bool = True,
) -> dict:
    """Decode every clip once into the cache at ``npy_path``; return a report.

    Clips that cannot be decoded get a zero row with status ``failed`` (counted and listed in
    the report), never an exception. Files are written under temporary names and renamed at
    the end, so an interrupted build leaves nothing that looks complete. Memory use is one clip
    per worker: rows are appended to the file in order (no memmap, so the written pages do not
    accumulate in the job's resident memory).
    """
    if len(clip_ids) != len(paths):
        raise ValueError("clip_ids and paths differ in length")
    if len(set(clip_ids)) != len(clip_ids):
        raise ValueError("clip_ids are not unique")
    npy, index_path, spec_path = cache_paths(npy_path)
    npy.parent.mkdir(parents=True, exist_ok=True)
    tmp_npy = npy.with_name(npy.name + ".tmp.npy")
    n = len(clip_ids)
    t0 = time.perf_counter()
    status, errors, orig = [], [], []
    failed, clipped = [], 0
    zero_row = np.zeros(spec.n_samples, dtype=np.int16)
    try:
        f = open(tmp_npy, "wb")
        np.lib.format.write_array_header_1_0(f, {"descr": np.dtype(np.int16).str, "fortran_order": False,
                                                 "shape": (n, spec.n_samples)})
        it = _decoded(paths, spec, num_workers)
        for i, (wave, n_orig, err) in enumerate(tqdm(it, total=n, disable=not progress, desc="decoding",
                                                     mininterval=2.0)):
            if wave is None:
                f.write(zero_row.tobytes())
                status.append("failed")
                errors.append(err)
                failed.append({"clip_id": clip_ids[i], "path": str(paths[i]), "error": err})
                log.warning("cache: %s", err)
            else:
                over = np.abs(wave) > 1.0
                clipped += int(over.sum())
                f.write(quantize(wave).tobytes())
                status.append("ok")
                errors.append("")
            orig.append(n_orig)
        f.close()
        index = pd.DataFrame({"clip_id": list(clip_ids), "row": np.arange(n, dtype=np.int64),
                              "orig_samples": np.asarray(orig, dtype=np.int64), "status": status, "error": errors})
        write_table(index, index_path, "audio_cache_index")
        spec_path.write_text(json.dumps(spec.to_dict(), indent=2) + "\n")
        tmp_npy.replace(npy)
    except BaseException:
        if "f" in locals():
            f.close()
        tmp_npy.unlink(missing_ok=True)
        index_path.unlink(missing_ok=True)
        spec_path.unlink(missing_ok=True)
        raise
    seconds = time.perf_counter() - t0
    return {
        "n": n,
        "n_ok": n - len(failed),
        "n_failed": len(failed),
        "failed": failed,
        "n_clipped_samples": clipped,
        "seconds": seconds,
        "clips_per_second": n / seconds if seconds > 0 else float("nan"),
        "spec": spec.to_dict(),
        "bytes": int(n * spec.n_samples * 2),
    }


class AudioCache:
    """Read access to a decoded-audio cache (opening reads the index and the array header, no
    audio; rows are read on demand)."""

    def __init__(self, npy_path: str | Path, expect_spec: AudioSpec | None = None) -> None:
        self.npy_path, index_path, spec_path = cache_paths(npy_path)
        if not self.npy_path.exists():
            raise FileNotFoundError(f"{self.npy_path}: audio cache not found")
        try:
            self.spec = AudioSpec(**json.loads(spec_path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"{spec_path}: missing or invalid cache spec ({exc})") from exc
        if expect_spec is not None and expect_spec != self.spec:
            raise ValueError(f"{self.npy_path}: cache was built with {self.spec}, expected {expect_spec}; rebuild it")
        # Arrow-backed columns: no Python object per clip (a job opening a 100k-clip cache stays small)
        self.index = read_table(index_path, "audio_cache_index", arrow_dtypes=True)
        shape, self._offset = _npy_layout(self.npy_path)
        if shape != (len(self.index), self.spec.n_samples):
            raise ValueError(f"{self.npy_path}: array shape {shape} does not match its index/spec")
        self._row_bytes = 2 * self.spec.n_samples
        self._fd: int | None = None
        self._row: dict[str, int] | None = None  # clip id -> row, built on the first row_of()

    def __len__(self) -> int:
        return len(self.index)

    @property
    def clip_ids(self) -> list[str]:
        return self.index["clip_id"].tolist()

    @property
    def status(self) -> pd.Series:
        return self.index.set_index("clip_id")["status"]

    def row_of(self, clip_id: str) -> int:
        if self._row is None:
            self._row = dict(zip(self.index["clip_id"], self.index["row"]))
        try:
            return int(self._row[clip_id])
        except KeyError:
            raise KeyError(f"{clip_id!r} is not in the audio cache {self.npy_path}") from None

    def __getstate__(self) -> dict:  # picklable (DataLoader workers): the file is reopened on use
        return {**self.__dict__, "_fd": None}

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)

    def read_rows(self, rows: np.ndarray | Sequence[int]) -> np.ndarray:
        """The stored int16 samples ``[B, n_samples]`` of the given rows, in the given order.

        Read with ``pread`` into a fresh buffer, one call per run of consecutive rows: unlike a
        memmap, nothing of the file stays mapped into the process, so the resident memory of a
        job that streams a large cache stays at the batch it holds (the pages remain in the
        OS page cache, reclaimable).
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        n = len(self.index)
        if len(rows) and (rows.min() < 0 or rows.max() >= n):
            raise IndexError(f"{self.npy_path}: rows out of range 0..{n - 1}")
        out = np.empty((len(rows), self.spec.n_samples), dtype=np.int16)
        if not len(rows):
            return out
        if self._fd is None:
            self._fd = os.open(self.npy_path, os.O_RDONLY)
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(rows)]):
            view = memoryview(out[lo:hi]).cast("B")
            pos, done = self._offset + int(rows[lo]) * self._row_bytes, 0
            while done < len(view):
                got = os.preadv(self._fd, [view[done:]], pos + done)
                if got <= 0:
                    raise OSError(f"{self.npy_path}: file ends early (truncated cache?)")
                done += got
        return out

    def get_rows(self, rows: np.ndarray | Sequence[int]) -> np.ndarray:
        """Float32 waveforms ``[B, n_samples]`` of the given rows."""
        return dequantize(self.read_rows(rows))

    def get(self, clip_ids: Sequence[str]) -> np.ndarray:
        return self.get_rows([self.row_of(c) for c in clip_ids])
