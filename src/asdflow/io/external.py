"""Ingestion of the external audio pool (AudioSet, or a plain folder) into manifest shards.

Formats follow docs/formats.md §3:

* :func:`read_segments_csv` reads the official segments lists (``#`` comment lines, ``", "``
  separation, quoted comma-joined mids) and the ``audioset_tagging_cnn`` part files (3 leading
  ``empty`` placeholder lines). Malformed rows are returned as counted skips.
* :func:`read_class_labels` reads ``class_labels_indices.csv`` (official quoted names, or the
  unquoted copies that replace spaces by ``_``).
* :func:`build_audio_index` maps file stems to paths once (``Y<YTID>``, ``<YTID>``,
  ``<YTID>_<start>`` and ``<YTID>_<start>_<end>``; wav/flac/ogg; searched recursively).
* :func:`scan_audioset` / :func:`scan_plain_folder` return ``n_shards`` frames of schema
  ``external_manifest`` and a report; :func:`write_external_manifest` writes them.

Scale: the unbalanced list has ~2M rows. Parsing is plain string splitting, the audio index is
one directory walk, and the per-clip work is a dict lookup; ``probe_audio=False`` also skips the
per-file header read (``duration`` NaN, ``sample_rate``/``channels`` -1) for fast ingestion of
huge pools, leaving bad files to the audio cache step (which records failures).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, Sequence

import numpy as np
import pandas as pd

from asdflow.schemas import EXTERNAL_MANIFEST, write_table

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioIndex",
    "ExternalPoolError",
    "assign_shards",
    "shard_of",
    "build_audio_index",
    "check_pool_usable",
    "read_class_labels",
    "read_segments_csv",
    "scan_audioset",
    "scan_plain_folder",
    "write_external_manifest",
]

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS: tuple[str, ...] = ("wav", "flac", "ogg")
_COLUMNS = EXTERNAL_MANIFEST.names
_SEGMENT_COLUMNS = ["ytid", "start_seconds", "end_seconds", "label_mids"]


class ExternalPoolError(ValueError):
    """The external pool's inputs are unusable as a whole (missing files, no audio at all)."""


# --------------------------------------------------------------------------- metadata readers


def _read_text_lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        return fh.read().splitlines()


def read_segments_csv(path: Path) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Read an AudioSet segments CSV.

    Returns ``(df, skipped_rows)``: ``df`` has columns ``ytid`` (str), ``start_seconds``,
    ``end_seconds`` (float) and ``label_mids`` (list of str, file order), in file order;
    ``skipped_rows`` lists malformed rows as ``{"file", "line", "reason", "text"}``.
    Lines starting with ``#``, blank lines and the ``empty`` placeholder lines of the
    ``audioset_tagging_cnn`` part files are not rows.
    """
    path = Path(path)
    if not path.is_file():
        raise ExternalPoolError(f"AudioSet segments file {path} not found")
    ytids: list[str] = []
    starts: list[float] = []
    ends: list[float] = []
    mids: list[list[str]] = []
    skipped: list[dict[str, Any]] = []

    def bad(lineno: int, reason: str, text: str) -> None:
        skipped.append({"file": str(path), "line": lineno, "reason": reason, "text": text[:200]})

    for lineno, line in enumerate(_read_text_lines(path), start=1):
        s = line.strip()
        if not s or s[0] == "#" or s == "empty":
            continue
        parts = s.split(",", 3)
        if len(parts) < 4:
            bad(lineno, f"{len(parts)} fields, expected YTID, start_seconds, end_seconds, positive_labels", s)
            continue
        ytid = parts[0].strip()
        labels = parts[3].strip()
        if labels.startswith('"'):
            if len(labels) < 2 or not labels.endswith('"') or labels.count('"') != 2:
                bad(lineno, "unbalanced quotes in positive_labels", s)
                continue
            labels = labels[1:-1]
        elif '"' in labels:
            bad(lineno, "stray quote in positive_labels", s)
            continue
        try:
            start, end = float(parts[1]), float(parts[2])
        except ValueError:
            bad(lineno, "start/end seconds are not numbers", s)
            continue
        if not ytid or any(c in ytid for c in ' "/'):
            bad(lineno, f"bad YTID {ytid!r}", s)
            continue
        row_mids = [m.strip() for m in labels.split(",") if m.strip()]
        if not row_mids:
            bad(lineno, "no positive labels", s)
            continue
        ytids.append(ytid)
        starts.append(start)
        ends.append(end)
        mids.append(row_mids)
    df = pd.DataFrame(
        {
            "ytid": pd.Series(ytids, dtype=object),
            "start_seconds": np.asarray(starts, dtype="float64"),
            "end_seconds": np.asarray(ends, dtype="float64"),
            "label_mids": pd.Series(mids, dtype=object),
        },
        columns=_SEGMENT_COLUMNS,
    )
    if skipped:
        log.warning("%s: %d malformed rows skipped", path, len(skipped))
    return df, skipped


def read_class_labels(path: Path) -> dict[str, str]:
    """Read ``class_labels_indices.csv`` into ``{mid: display_name}``.

    Handles the official file (``index,mid,display_name`` with quoted names that contain
    commas) and the unquoted copies where spaces became ``_`` (names are then re-joined on
    their commas and get their spaces back). A header row is optional.
    """
    path = Path(path)
    if not path.is_file():
        raise ExternalPoolError(f"class labels file {path} not found")
    rows = [r for r in csv.reader(io.StringIO("\n".join(_read_text_lines(path)))) if r and any(c.strip() for c in r)]
    mid_col, name_col, start = 1, 2, 0
    if rows and not rows[0][0].strip().isdigit():
        header = [h.strip().lower() for h in rows[0]]
        mid_col = header.index("mid") if "mid" in header else 1
        name_col = header.index("display_name") if "display_name" in header else mid_col + 1
        start = 1
    out: dict[str, str] = {}
    for i, row in enumerate(rows[start:], start=start + 1):
        if len(row) <= mid_col:
            log.warning("%s: row %d has too few fields, ignored: %r", path, i, row)
            continue
        mid = row[mid_col].strip()
        name = ",".join(row[name_col:]).strip() if name_col < len(row) else ""
        if mid:
            out.setdefault(mid, name or mid)
    names = list(out.values())
    if names and not any(" " in n for n in names) and any("_" in n for n in names):
        out = {m: n.replace("_", " ") for m, n in out.items()}  # underscore variant
    return out


# --------------------------------------------------------------------------- audio index

_TRAIL2 = re.compile(r"^(?P<key>.+)_(?P<start>\d+(?:\.\d+)?)_(?P<end>\d+(?:\.\d+)?)$")
_TRAIL1 = re.compile(r"^(?P<key>.+)_(?P<start>\d+(?:\.\d+)?)$")


def _walk_audio(dirs: Sequence[Path], extensions: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Yield ``(stem, path)`` for every audio file under ``dirs`` in a deterministic order."""
    exts = {"." + e.lower().lstrip(".") for e in extensions}
    seen_dirs: set[str] = set()
    for top in dirs:
        # as given: a relative folder (the built-in pool under results/) gives paths relative to
        # the workflow directory, so a moved or copied workflow directory keeps its manifests
        top = Path(top)
        for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
            real = os.path.realpath(dirpath)
            if real in seen_dirs:  # symlink loop or the same folder twice
                dirnames[:] = []
                continue
            seen_dirs.add(real)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                stem, ext = os.path.splitext(name)
                if ext.lower() in exts and not name.startswith("."):
                    yield stem, os.path.join(dirpath, name)


@dataclass
class AudioIndex:
    """Audio files by stem, built once; see :meth:`lookup`."""

    exact: dict[str, str] = field(default_factory=dict)
    loose: dict[str, list[tuple[str, float, float]]] = field(default_factory=dict)
    n_files: int = 0
    n_duplicate_stems: int = 0

    def add(self, stem: str, path: str) -> None:
        self.n_files += 1
        if stem in self.exact:
            self.n_duplicate_stems += 1
            return
        self.exact[stem] = path
        m2 = _TRAIL2.match(stem)
        if m2:
            self.loose.setdefault(m2["key"], []).append((path, float(m2["start"]), float(m2["end"])))
        m1 = _TRAIL1.match(stem)
        if m1:
            self.loose.setdefault(m1["key"], []).append((path, float(m1["start"]), math.nan))

    def lookup(self, ytid: str, start: float | None = None) -> str | None:
        """Path of the clip of ``ytid``: ``Y<YTID>`` or ``<YTID>`` stems first, then
        ``<YTID>_<start>[_<end>]`` stems (the one whose start matches ``start`` if several)."""
        for key in ("Y" + ytid, ytid):
            p = self.exact.get(key)
            if p is not None:
                return p
        for key in ("Y" + ytid, ytid):
            cands = self.loose.get(key)
            if not cands:
                continue
            if start is not None and len(cands) > 1:
                for p, s, _ in cands:
                    if abs(s - start) < 1e-3:
                        return p
            return cands[0][0]
        return None


def build_audio_index(audio_dirs: Sequence[Path], extensions: Iterable[str] = AUDIO_EXTENSIONS) -> AudioIndex:
    """Walk ``audio_dirs`` recursively once; raises :class:`ExternalPoolError` for a missing folder."""
    missing = [str(d) for d in audio_dirs if not Path(d).is_dir()]
    if missing:
        raise ExternalPoolError(f"external audio folder(s) not found: {missing}")
    index = AudioIndex()
    for stem, path in _walk_audio(audio_dirs, extensions):
        index.add(stem, path)
    return index


# --------------------------------------------------------------------------- shards + probing


def shard_of(clip_id: str, n_shards: int) -> int:
    """The shard of one clip: a stable hash of its id modulo ``n_shards``."""
    digest = hashlib.blake2b(clip_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n_shards


def assign_shards(df: pd.DataFrame, n_shards: int) -> list[pd.DataFrame]:
    """Put every clip into shard ``shard_of(clip_id)``; rows within a shard sorted by ``clip_id``.

    A clip's shard depends on its own id only, so a pool that grows (clips completed later, a
    segments file added) changes only the shards that receive new clips: the other shard
    manifests are rewritten byte for byte the same and Snakemake, comparing input checksums, does
    not re-cache or re-score them. Shard sizes are balanced in expectation (binomial spread,
    about ±1.5 % at 4,500 clips per shard). Sets the ``shard`` column; returns exactly
    ``n_shards`` frames.
    """
    if n_shards < 1:
        raise ValueError(f"n_shards must be >= 1, got {n_shards}")
    df = df.sort_values("clip_id", kind="stable").reset_index(drop=True)
    df["shard"] = np.array([shard_of(c, n_shards) for c in df["clip_id"]], dtype="int64")
    return [df[df["shard"] == i].reset_index(drop=True) for i in range(n_shards)]


def _frame(cols: dict[str, list[Any]]) -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(cols[c], dtype=object) for c in _COLUMNS}, columns=_COLUMNS)
    return df.astype(
        {
            "start_seconds": "float64",
            "end_seconds": "float64",
            "duration": "float64",
            "shard": "int64",
            "sample_rate": "int64",
            "channels": "int64",
        }
    )


def _probe(path: str) -> tuple[float, int, int]:
    """(duration, sample_rate, channels) from the header; raises on an unreadable/empty file."""
    import soundfile as sf

    info = sf.info(path)
    if info.frames <= 0:
        raise ValueError("empty audio (0 frames)")
    return info.frames / info.samplerate, int(info.samplerate), int(info.channels)


def _new_report(kind: str, n_shards: int, probe_audio: bool) -> dict[str, Any]:
    return {
        "kind": kind,
        "n_shards": int(n_shards),
        "probe_audio": bool(probe_audio),
        "n_rows": 0,
        "shard_sizes": [],
        "n_missing": 0,
        "missing": [],
        "n_unreadable": 0,
        "unreadable": [],
        "notes": {},
        "warnings": [],
    }


def _finish(cols: dict[str, list[Any]], report: dict[str, Any], n_shards: int, notes: Counter) -> list[pd.DataFrame]:
    shards = assign_shards(_frame(cols), n_shards)
    report["n_rows"] = int(sum(len(s) for s in shards))
    report["shard_sizes"] = [int(len(s)) for s in shards]
    report["n_missing"] = len(report["missing"])
    report["n_unreadable"] = len(report["unreadable"])
    report["notes"] = dict(sorted(notes.items()))
    n_empty = sum(1 for s in shards if s.empty)
    if n_empty:
        report["warnings"].append(f"{n_empty} of {n_shards} shards are empty ({report['n_rows']} clips)")
    for s in report["warnings"]:
        log.warning("%s", s)
    return shards


def _probe_into(
    path: str, key: str, cols: dict[str, list[Any]], report: dict[str, Any], notes: Counter, probe_audio: bool
) -> bool:
    """Append duration/sample_rate/channels for ``path``; False (and a report entry) if unreadable."""
    if not probe_audio:
        cols["duration"].append(math.nan)
        cols["sample_rate"].append(-1)
        cols["channels"].append(-1)
        return True
    try:
        dur, sr, ch = _probe(path)
    except Exception as exc:  # soundfile raises several types on bad files
        report["unreadable"].append({"ytid": key, "path": path, "error": f"{type(exc).__name__}: {exc}"[:300]})
        log.warning("unreadable external audio %s: %s", path, exc)
        return False
    if ch != 1:
        notes["multichannel"] += 1
    notes[f"sample_rate_{sr}"] += 1
    cols["duration"].append(dur)
    cols["sample_rate"].append(sr)
    cols["channels"].append(ch)
    return True


# --------------------------------------------------------------------------- scans


def scan_audioset(
    segments: list[Path],
    labels: Path,
    audio_dirs: list[Path],
    *,
    n_shards: int,
    label_mode: Literal["all", "first"] = "all",
    probe_audio: bool = True,
    extensions: Iterable[str] = AUDIO_EXTENSIONS,
) -> tuple[list[pd.DataFrame], dict[str, Any]]:
    """AudioSet pool → ``n_shards`` manifest frames (schema ``external_manifest``) + report.

    One row per segment whose audio is found (see :meth:`AudioIndex.lookup`). A YTID listed
    again (in the same or a later segments file) is kept once, first occurrence wins.
    ``label_mode="first"`` keeps only the first mid of each segment, as the reference code
    does (docs/formats.md §3.4); ``"all"`` keeps every mid. Mids missing from ``labels`` are kept
    with the mid as display name and counted. ``probe_audio=False`` skips header reads
    (``duration`` NaN, ``sample_rate``/``channels`` -1) for fast ingestion of huge pools.

    Report keys: ``n_segments``, ``skipped_rows``/``n_skipped_rows`` (malformed CSV rows),
    ``duplicates``/``n_duplicates``, ``missing`` (``{"ytid", "segments_file"}``)/``n_missing``,
    ``missing_per_file``, ``unreadable``/``n_unreadable``, ``unknown_mids`` (mid → count),
    ``n_unknown_mids``, ``audio_index``, ``n_rows``, ``n_shards``, ``shard_sizes``, ``notes``,
    ``warnings``.
    """
    if label_mode not in ("all", "first"):
        raise ValueError(f"label_mode must be 'all' or 'first', got {label_mode!r}")
    if n_shards < 1:
        raise ValueError(f"n_shards must be >= 1, got {n_shards}")
    segments = [Path(p) for p in segments]
    if not segments:
        raise ExternalPoolError("no AudioSet segments files given")
    names = read_class_labels(Path(labels))
    index = build_audio_index([Path(d) for d in audio_dirs], extensions)
    report = _new_report("audioset", n_shards, probe_audio)
    report.update(
        segments_files=[str(p) for p in segments],
        labels=str(labels),
        audio_dirs=[str(d) for d in audio_dirs],
        label_mode=label_mode,
        audio_index={"n_files": index.n_files, "n_duplicate_stems": index.n_duplicate_stems},
        n_segments=0,
        n_skipped_rows=0,
        skipped_rows=[],
        n_duplicates=0,
        duplicates=[],
        missing_per_file={},
        n_unknown_mids=0,
        unknown_mids={},
    )
    if index.n_files == 0:
        raise ExternalPoolError(f"no audio files ({'/'.join(extensions)}) under {[str(d) for d in audio_dirs]}")

    cols: dict[str, list[Any]] = {c: [] for c in _COLUMNS}
    first_file: dict[str, str] = {}
    unknown: Counter[str] = Counter()
    notes: Counter[str] = Counter()
    for seg in segments:
        df, skipped = read_segments_csv(seg)
        seg_name = str(seg)
        report["n_segments"] += len(df)
        report["skipped_rows"] += skipped
        n_missing_here = 0
        for ytid, start, end, mids in zip(df["ytid"], df["start_seconds"], df["end_seconds"], df["label_mids"]):
            if ytid in first_file:
                report["duplicates"].append({"ytid": ytid, "segments_file": seg_name, "kept_from": first_file[ytid]})
                continue
            first_file[ytid] = seg_name
            path = index.lookup(ytid, start)
            if path is None:
                report["missing"].append({"ytid": ytid, "segments_file": seg_name})
                n_missing_here += 1
                continue
            if not _probe_into(path, ytid, cols, report, notes, probe_audio):
                continue
            if label_mode == "first":
                mids = mids[:1]
            for m in mids:
                if m not in names:
                    unknown[m] += 1
            cols["clip_id"].append(f"ext/{ytid}")
            cols["ytid"].append(ytid)
            cols["path"].append(path)
            cols["start_seconds"].append(start)
            cols["end_seconds"].append(end)
            cols["label_mids"].append(list(mids))
            cols["label_names"].append([names.get(m, m) for m in mids])
            cols["segments_file"].append(seg_name)
            cols["shard"].append(-1)
        report["missing_per_file"][seg_name] = n_missing_here
    report["n_skipped_rows"] = len(report["skipped_rows"])
    report["n_duplicates"] = len(report["duplicates"])
    report["unknown_mids"] = dict(sorted(unknown.items()))
    report["n_unknown_mids"] = len(unknown)
    if report["n_skipped_rows"]:
        report["warnings"].append(f"{report['n_skipped_rows']} malformed segments rows skipped")
    if report["n_duplicates"]:
        report["warnings"].append(f"{report['n_duplicates']} YTIDs listed more than once (first kept)")
    if unknown:
        report["warnings"].append(f"{len(unknown)} label mids not in {labels} (display name = mid)")
    n_listed = report["n_segments"] - report["n_duplicates"]
    if report["missing"]:
        report["warnings"].append(f"{len(report['missing'])} of {n_listed} listed clips have no audio file")
    if report["unreadable"]:
        report["warnings"].append(f"{len(report['unreadable'])} audio files are unreadable (left out)")
    shards = _finish(cols, report, n_shards, notes)
    log.info(
        "AudioSet pool: %d clips, %d missing, %d unreadable",
        report["n_rows"],
        report["n_missing"],
        report["n_unreadable"],
    )
    return shards, report


def _read_plain_labels(path: Path) -> tuple[dict[str, list[str]], list[dict[str, Any]]]:
    """``file,labels`` CSV → ``{file or stem: [labels]}`` and malformed rows."""
    if not path.is_file():
        raise ExternalPoolError(f"labels csv {path} not found")
    rows = list(csv.reader(io.StringIO("\n".join(_read_text_lines(path)))))
    if not rows:
        return {}, []
    header = [h.strip().lower() for h in rows[0]]
    if "file" not in header or "labels" not in header:
        raise ExternalPoolError(f"{path}: expected columns file,labels, got {rows[0]}")
    fc, lc = header.index("file"), header.index("labels")
    out: dict[str, list[str]] = {}
    bad: list[dict[str, Any]] = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header) or not row[fc].strip():
            bad.append(
                {
                    "file": str(path),
                    "line": lineno,
                    "reason": "wrong number of fields or empty file",
                    "text": ",".join(row)[:200],
                }
            )
            continue
        key = os.path.basename(row[fc].strip().replace("\\", "/"))
        out.setdefault(key, [x.strip() for x in row[lc].split(";") if x.strip()])
    return out, bad


def scan_plain_folder(
    audio_dirs: list[Path],
    labels_csv: Path | None,
    *,
    n_shards: int,
    probe_audio: bool = True,
    class_labels: Path | None = None,
    extensions: Iterable[str] = AUDIO_EXTENSIONS,
) -> tuple[list[pd.DataFrame], dict[str, Any]]:
    """A plain folder pool (not AudioSet) → ``n_shards`` manifest frames + report.

    Every audio file under ``audio_dirs`` is a clip (``ytid`` = stem, ``clip_id`` =
    ``ext/<stem>``; a stem seen again gets ``ext/<stem>#<k>``). Labels come from ``labels_csv``
    (columns ``file,labels``; labels separated by ``;``; ``file`` is a base name or a stem);
    files not in it get no labels (counted as ``n_unlabeled``). ``class_labels`` optionally
    maps labels (mids) to display names. ``probe_audio`` as in :func:`scan_audioset`.
    """
    if n_shards < 1:
        raise ValueError(f"n_shards must be >= 1, got {n_shards}")
    missing = [str(d) for d in audio_dirs if not Path(d).is_dir()]
    if missing:
        raise ExternalPoolError(f"external audio folder(s) not found: {missing}")
    report = _new_report("folder", n_shards, probe_audio)
    report.update(
        audio_dirs=[str(d) for d in audio_dirs],
        labels_csv=str(labels_csv) if labels_csv else None,
        n_files=0,
        n_unlabeled=0,
        n_skipped_rows=0,
        skipped_rows=[],
        n_labels_without_audio=0,
        labels_without_audio=[],
        n_stem_collisions=0,
    )
    labels: dict[str, list[str]] = {}
    if labels_csv is not None:
        labels, bad = _read_plain_labels(Path(labels_csv))
        report["skipped_rows"] = bad
        report["n_skipped_rows"] = len(bad)
        if bad:
            report["warnings"].append(f"{len(bad)} malformed rows in {labels_csv} skipped")
    names = read_class_labels(Path(class_labels)) if class_labels else {}
    cols: dict[str, list[Any]] = {c: [] for c in _COLUMNS}
    notes: Counter[str] = Counter()
    used_keys: set[str] = set()
    stem_count: Counter[str] = Counter()
    seg_name = str(labels_csv) if labels_csv else ""
    for stem, path in _walk_audio([Path(d) for d in audio_dirs], extensions):
        report["n_files"] += 1
        base = os.path.basename(path)
        key = base if base in labels else stem if stem in labels else None
        if not _probe_into(path, stem, cols, report, notes, probe_audio):
            continue
        k = stem_count[stem]
        stem_count[stem] += 1
        if k:
            report["n_stem_collisions"] += 1
        mids = labels[key] if key is not None else []
        if key is None:
            report["n_unlabeled"] += 1
        else:
            used_keys.add(key)
        cols["clip_id"].append(f"ext/{stem}" if k == 0 else f"ext/{stem}#{k}")
        cols["ytid"].append(stem)
        cols["path"].append(path)
        cols["start_seconds"].append(math.nan)
        cols["end_seconds"].append(math.nan)
        cols["label_mids"].append(list(mids))
        cols["label_names"].append([names.get(m, m) for m in mids])
        cols["segments_file"].append(seg_name)
        cols["shard"].append(-1)
    if report["n_files"] == 0:
        raise ExternalPoolError(f"no audio files ({'/'.join(extensions)}) under {[str(d) for d in audio_dirs]}")
    unused = sorted(set(labels) - used_keys)
    report["labels_without_audio"] = unused
    report["n_labels_without_audio"] = len(unused)
    if labels_csv is not None and report["n_unlabeled"]:
        report["warnings"].append(f"{report['n_unlabeled']} audio files are not in {labels_csv} (no labels)")
    if unused:
        report["warnings"].append(f"{len(unused)} rows of {labels_csv} match no audio file")
    if report["unreadable"]:
        report["warnings"].append(f"{len(report['unreadable'])} audio files are unreadable (left out)")
    shards = _finish(cols, report, n_shards, notes)
    return shards, report


def check_pool_usable(report: dict[str, Any], required_by: Sequence[str]) -> str | None:
    """An empty effective pool (no CSV row matched a readable clip) is an error when a requested
    system trains on external data (``required_by`` names them): it would silently train without
    any. Otherwise it is a warning, appended to ``report["warnings"]`` and returned."""
    if report.get("n_rows", 0) > 0:
        return None
    facts = [f"{report.get('n_segments', 0)} segment rows read"] if "n_segments" in report else []
    if "audio_index" in report:
        facts.append(f"{report['audio_index'].get('n_files', 0)} audio files found")
    facts.append(f"{report.get('n_missing', 0)} rows without audio")
    facts.append(f"{report.get('n_unreadable', 0)} unreadable files")
    if report.get("n_unknown_mids"):
        facts.append(f"{report['n_unknown_mids']} rows with unknown labels")
    where = ", ".join(report.get("audio_dirs", [])) or "the audio folders"
    msg = (f"the external pool has 0 usable clips ({'; '.join(facts)}): no clip under {where} matches a "
           "row of the segments/labels files (AudioSet audio must be named Y<YTID>.wav/.flac/.ogg or "
           "<YTID>.*)")
    if required_by:
        raise ExternalPoolError(msg + f"; systems {sorted(required_by)} train on external data")
    report.setdefault("warnings", []).append(msg)
    return msg


def write_external_manifest(
    shards: list[pd.DataFrame], report: dict[str, Any], out_parquets: list[Path], out_report: Path
) -> None:
    """Write one schema-checked parquet per shard and the report as JSON."""
    if len(shards) != len(out_parquets):
        raise ValueError(f"{len(shards)} shards but {len(out_parquets)} output paths")
    for df, out in zip(shards, out_parquets):
        write_table(df, out, kind="external_manifest")
    out_report = Path(out_report)
    out_report.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_report.with_name(out_report.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, default=str) + "\n")
    os.replace(tmp, out_report)
