"""Ingestion of DCASE Task 2 data (2020–2025) into the ``dcase_manifest`` table.

The file formats are described in docs/formats.md §1; this module follows it:

* :func:`parse_filename` recognises every year's file-name pattern (see :data:`PATTERNS`).
* :func:`scan_dcase` walks ``<root>/<dataset>/[raw/]<machine>/{train,test,supplemental}/*.wav``,
  reads each file header, joins ``attributes_XX.csv`` and (optionally) the official eval ground
  truth, and returns one row per usable clip plus a report of everything it skipped or noticed.
* :func:`write_dcase_manifest` writes the table (schema-checked) and the report (JSON).

Bad input never raises deep inside the scan: a corrupt, empty or too-short wav, an unknown file
name or a malformed attributes row is a *counted skip* in the report (and a log line). Only a
root that does not look like a DCASE layout at all raises :class:`DcaseLayoutError`.

Conventions (documented choices, see docs/formats.md §1.3 and §1.4):

* 2020 names have no domain; they get ``domain="source"`` (one domain), so the per-domain
  metrics reduce to the 2020 ones. Hidden fields are ``"unknown"``.
* The split of a row is the folder it sits in (``train``/``test``/``supplemental``); the split
  token of the name, where there is one, is only checked against it (a mismatch is a warning).
* ``attr_tail`` is the tail of the file name exactly as written (``"noAttribute"`` included);
  ``noAttribute`` means "no attribute pairs", never an error.
* Attribute pairs keep their source order (``d1``, ``d2``, … of the csv, or tail order);
  ``attr_string`` is ``"k1=v1,k2=v2"`` in that order.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from asdflow.schemas import DCASE_MANIFEST, write_table

__all__ = [
    "PATTERNS",
    "SPLITS",
    "DcaseLayoutError",
    "ParsedName",
    "UnknownFilenameError",
    "attr_string",
    "parse_filename",
    "read_attributes_csv",
    "read_eval_ground_truth",
    "scan_dcase",
    "split_attr_tail",
    "write_dcase_manifest",
]

log = logging.getLogger(__name__)

#: Sub-folders of a machine folder that hold clips.
SPLITS = ("train", "test", "supplemental")

_IDX4 = r"(?P<file_index>\d{4})"
_TAIL = r"(?:_(?P<attr_tail>.*))?"

#: File-name patterns, tried in this order on the name without its ``.wav`` extension.
#: The key is what ends up in the manifest's ``name_pattern`` column.
PATTERNS: dict[str, re.Pattern[str]] = {
    # 2021–2025 labelled: section_00_source_train_normal_0000[_<attr>]
    "labelled": re.compile(
        r"^section_(?P<section>\d{2})_(?P<domain>source|target)_(?P<split>train|test)_"
        r"(?P<label>normal|anomaly)_" + _IDX4 + _TAIL + r"$"
    ),
    # 2024 RoboticArm quirk: no train/test token (section_00_source_normal_0035_weight15_BckgF)
    "labelled_nosplit": re.compile(
        r"^section_(?P<section>\d{2})_(?P<domain>source|target)_(?P<label>normal|anomaly)_" + _IDX4 + _TAIL + r"$"
    ),
    # 2021 eval test: label hidden, domain visible (section_03_source_test_0000)
    "hidden_domain": re.compile(
        r"^section_(?P<section>\d{2})_(?P<domain>source|target)_(?P<split>test)_" + _IDX4 + r"$"
    ),
    # 2022–2025 eval test: label and domain hidden (section_00_0000)
    "hidden": re.compile(r"^section_(?P<section>\d{2})_" + _IDX4 + r"$"),
    # 2020: normal_id_01_00000000 (dev/eval train, dev test, relabelled eval test)
    "dcase2020": re.compile(r"^(?P<label>normal|anomaly)_id_(?P<section>\d{2})_(?P<file_index>\d{8})$"),
    # 2020 eval test, label hidden: id_05_00000000
    "dcase2020_hidden": re.compile(r"^id_(?P<section>\d{2})_(?P<file_index>\d{8})$"),
    # 2025 supplemental (names unverified, so tolerant): section_XX_ + anything with machine/noise
    "supplemental": re.compile(r"^section_(?P<section>\d{2})_(?P<rest>.*(?:machine|noise).*)$"),
}

_NO_ATTRIBUTE = "noAttribute"
_WAV = re.compile(r"\.wav$", re.IGNORECASE)


class UnknownFilenameError(ValueError):
    """A file name matches none of the DCASE Task 2 patterns."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"unknown DCASE file-name pattern: {name!r} (known patterns: {', '.join(PATTERNS)}; "
            "see docs/formats.md §1.3)"
        )
        self.name = name


class DcaseLayoutError(ValueError):
    """The DCASE root does not have the expected folder layout."""


@dataclass(frozen=True)
class ParsedName:
    """What a DCASE file name says about its clip.

    ``split`` is ``"unknown"`` for 2020 labelled names (the name does not say), ``domain`` is
    ``"source"`` for every 2020 name (2020 has one domain) and ``"unknown"`` where hidden,
    ``label`` is ``"unknown"`` where hidden.
    """

    section: str
    domain: str
    split: str
    label: str
    file_index: str
    attr_tail: str
    pattern: str


def _stem(name: str) -> str:
    """Base name without a ``.wav`` extension (only that: ``ac_0.03`` must stay whole)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return _WAV.sub("", base)


def parse_filename(name: str) -> ParsedName:
    """Parse a DCASE Task 2 file name (with or without ``.wav``; a path is reduced to its base name).

    Raises :class:`UnknownFilenameError` when no pattern in :data:`PATTERNS` matches.
    """
    stem = _stem(name)
    for pname, rx in PATTERNS.items():
        m = rx.match(stem)
        if m is None:
            continue
        g = m.groupdict()
        if pname == "supplemental":
            tokens = g["rest"].split("_")
            domain = next((t for t in tokens if t in ("source", "target")), "unknown")
            label = next((t for t in tokens if t in ("normal", "anomaly")), "unknown")
            index = next((t for t in reversed(tokens) if re.fullmatch(r"\d{4}", t)), "")
            return ParsedName(g["section"], domain, "supplemental", label, index, "", pname)
        if pname.startswith("dcase2020"):
            split = "test" if pname == "dcase2020_hidden" else "unknown"
            return ParsedName(g["section"], "source", split, g.get("label") or "unknown", g["file_index"], "", pname)
        split = g.get("split") or "test"  # no split token: RoboticArm quirk (test names) or hidden (test)
        return ParsedName(
            section=g["section"],
            domain=g.get("domain") or "unknown",
            split=split,
            label=g.get("label") or "unknown",
            file_index=g["file_index"],
            attr_tail=g.get("attr_tail") or "",
            pattern=pname,
        )
    raise UnknownFilenameError(name)


# --------------------------------------------------------------------------- attributes


def split_attr_tail(tail: str) -> list[tuple[str, str]]:
    """Best-effort split of an attribute tail into ``(key, value)`` pairs (docs/formats.md §1.4).

    ``""`` and ``noAttribute`` give ``[]``. A tail of ``key_value`` tokens whose keys contain no
    digit (``car_G2_spd_34V``, ``m-n_X``, ``ac_0.03_``) gives those pairs; anything else
    (glued ``weight15_BckgF``, odd token counts, repeated keys, 2021 ``A1Spd28VMic1``) gives one
    opaque pair ``("attr", tail)``.
    """
    tail = tail.strip()
    if not tail or tail == _NO_ATTRIBUTE:
        return []
    tokens = tail.split("_")
    while tokens and tokens[-1] == "":
        tokens.pop()
    if tokens and len(tokens) % 2 == 0:
        keys, values = tokens[0::2], tokens[1::2]
        if all(k and not any(c.isdigit() for c in k) for k in keys) and all(values) and len(set(keys)) == len(keys):
            return list(zip(keys, values))
    return [("attr", tail)]


def attr_string(pairs: Iterable[tuple[str, str]]) -> str:
    """Canonical ``"k1=v1,k2=v2"`` form of attribute pairs (order kept)."""
    return ",".join(f"{k}={v}" for k, v in pairs)


_PAIR_COL = re.compile(r"^d(\d+)([pv])$")


def read_attributes_csv(
    path: Path, lines: dict[str, int] | None = None
) -> tuple[dict[str, list[tuple[str, str]]], list[dict[str, Any]]]:
    """Read one ``attributes_XX.csv``: ``{file stem: [(name, value), ...]}`` and the bad rows.

    Rows are keyed by the base name of ``file_name`` without ``.wav``, so ``fan/train/x.wav``,
    ``x.wav`` and ``x`` all match clip ``x``. Any number of ``dNp,dNv`` column pairs is read;
    other columns are ignored. A pair with an empty name and value, or with ``noAttribute`` in
    it, is no pair. Malformed rows (no file name, more cells than the header, half a pair) are
    returned as ``{"path", "line", "reason"}`` and left out; so is a whole file without a
    ``file_name`` column (``line`` 1), and a row with an unterminated quote (its cell would run
    over the following lines, which are then lost too: all of them are reported). ``lines``, when
    given, receives the line number of every accepted row's file stem.
    """
    bad: list[dict[str, Any]] = []
    out: dict[str, list[tuple[str, str]]] = {}
    try:
        text = path.read_text(encoding="utf-8-sig", errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        return out, [{"path": str(path), "line": 0, "reason": f"unreadable attributes csv: {exc}"}]
    reader = csv.reader(io.StringIO(text))
    rows: list[list[str]] = []
    starts: list[int] = []
    end = 0
    for row in reader:
        rows.append(row)
        starts.append(end + 1)
        end = reader.line_num
    if not rows:
        return out, []
    header = [h.strip() for h in rows[0]]
    if "file_name" not in header:
        return out, [{"path": str(path), "line": 1, "reason": f"attributes csv has no file_name column: {header}"}]
    fcol = header.index("file_name")
    pairs_idx: dict[int, dict[str, int]] = {}
    for j, h in enumerate(header):
        m = _PAIR_COL.match(h)
        if m:
            pairs_idx.setdefault(int(m.group(1)), {})[m.group(2)] = j
    pair_cols = [(d["p"], d["v"]) for _, d in sorted(pairs_idx.items()) if "p" in d and "v" in d]
    for lineno, row in zip(starts[1:], rows[1:]):
        if not row or all(not c.strip() for c in row):
            continue
        if any("\n" in c or "\r" in c for c in row):
            last = lineno + sum(c.count("\n") for c in row) - 1
            bad.append({"path": str(path), "line": lineno,
                        "reason": f"unterminated quote: the row runs over lines {lineno}-{max(last, lineno)}, "
                                  "all of them left out"})
            continue
        if len(row) > len(header):
            bad.append({"path": str(path), "line": lineno, "reason": f"{len(row)} cells, header has {len(header)}"})
            continue
        row = [c.strip() for c in row] + [""] * (len(header) - len(row))
        key = _stem(row[fcol])
        if not key:
            bad.append({"path": str(path), "line": lineno, "reason": "empty file_name"})
            continue
        pairs: list[tuple[str, str]] = []
        half = False
        for pj, vj in pair_cols:
            p, v = row[pj], row[vj]
            if p == _NO_ATTRIBUTE or v == _NO_ATTRIBUTE or (not p and not v):
                continue
            if not p or not v:
                half = True
                break
            pairs.append((p, v))
        if half:
            bad.append(
                {"path": str(path), "line": lineno, "reason": "attribute name without value (or value without name)"}
            )
            continue
        if key in out and out[key] != pairs:
            bad.append(
                {"path": str(path), "line": lineno, "reason": f"duplicate file_name {key!r} with other attributes"}
            )
            continue
        out[key] = pairs
        if lines is not None:
            lines.setdefault(key, lineno)
    return out, bad


# --------------------------------------------------------------------------- eval ground truth

_GT_FILE = re.compile(
    r"^ground_truth_(?P<machine>.+?)_section_(?P<section>\d{2})_(?:(?P<domain>source|target)_)?test\.csv$"
)


def _read_lines(path: Path) -> list[list[str]]:
    text = path.read_text(encoding="utf-8-sig", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    return [[c.strip() for c in row] for row in csv.reader(io.StringIO(text)) if row and any(c.strip() for c in row)]


def read_eval_ground_truth(path: Path) -> tuple[dict[tuple[str, str], dict[str, str]], dict[str, Any]]:
    """Read eval ground truth from a folder (or one list file).

    Understands (docs/formats.md §1.6):

    * ``ground_truth_data/ground_truth_<machine>_section_<XX>[_{source,target}]_test.csv``
      (hidden name, 0 normal / 1 anomaly; the 2021 per-domain files also give the domain),
    * ``ground_truth_domain/ground_truth_<machine>_section_<XX>_test.csv`` (0 source / 1 target),
    * ``ground_truth_attributes/ground_truth_<machine>_section_<XX>_test.csv`` (hidden name,
      labelled name without ``.wav`` [, true full name]),
    * the baseline relabel lists ``eval_data_list*.csv`` (machine header lines with one field;
      2020 rows carry a third 0/1 field).

    Returns ``{(machine, hidden stem): {"label"?, "domain"?, "tail"?}}`` and a small report.
    """
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*.csv") if p.is_file())
    gt: dict[tuple[str, str], dict[str, str]] = {}
    rep: dict[str, Any] = {"path": str(path), "files": [], "n_entries": 0, "bad_lines": [], "conflicts": 0}

    def put(machine: str, hidden: str, **fields: str) -> None:
        entry = gt.setdefault((machine, _stem(hidden)), {})
        for k, v in fields.items():
            if not v or v == "unknown":
                continue
            if k in entry and entry[k] != v:
                rep["conflicts"] += 1
                continue
            entry.setdefault(k, v)

    def from_labelled(name: str) -> dict[str, str]:
        try:
            p = parse_filename(name)
        except UnknownFilenameError:
            return {}
        return {"label": p.label, "domain": p.domain, "tail": p.attr_tail}

    for f in files:
        kind = f.parent.name
        m = _GT_FILE.match(f.name)
        is_list = f.name.startswith("eval_data_list") or path.is_file()
        if not (m or is_list):
            continue
        try:
            rows = _read_lines(f)
        except OSError as exc:
            rep["bad_lines"].append({"path": str(f), "line": 0, "reason": f"unreadable: {exc}"})
            continue
        rep["files"].append(str(f))
        if m and not is_list:
            machine, dom = m.group("machine"), m.group("domain")
            for i, row in enumerate(rows, start=1):
                if len(row) < 2:
                    rep["bad_lines"].append({"path": str(f), "line": i, "reason": "fewer than 2 fields"})
                    continue
                hidden, val = row[0], row[1]
                if kind == "ground_truth_attributes":
                    info = from_labelled(row[1])
                    if not info:
                        rep["bad_lines"].append(
                            {"path": str(f), "line": i, "reason": f"unknown labelled name {row[1]!r}"}
                        )
                        continue
                    if len(row) > 2 and row[2]:  # noAttribute machines: 3rd column = true full name
                        info["tail"] = from_labelled(row[2]).get("tail", "")
                    put(machine, hidden, **info)
                elif val not in ("0", "1"):
                    rep["bad_lines"].append({"path": str(f), "line": i, "reason": f"value {val!r} is not 0/1"})
                    continue
                elif kind == "ground_truth_domain":
                    put(machine, hidden, domain="target" if val == "1" else "source")
                else:  # ground_truth_data (or a loose file of that name)
                    put(machine, hidden, label="anomaly" if val == "1" else "normal", domain=dom or "")
                rep["n_entries"] += 1
            continue
        machine = None
        for i, row in enumerate(rows, start=1):
            if len(row) == 1:
                machine = row[0]
                continue
            if machine is None:
                rep["bad_lines"].append({"path": str(f), "line": i, "reason": "row before any machine header line"})
                continue
            info = from_labelled(row[1])
            if len(row) >= 3 and row[2] in ("0", "1"):
                info["label"] = "anomaly" if row[2] == "1" else "normal"
            if not info:
                rep["bad_lines"].append({"path": str(f), "line": i, "reason": f"unknown labelled name {row[1]!r}"})
                continue
            put(machine, row[0], **info)
            rep["n_entries"] += 1
    return gt, rep


# --------------------------------------------------------------------------- scan

_COLUMNS = DCASE_MANIFEST.names
_NOTE_EXAMPLES = 20


def _find_machine_dirs(dataset_dir: Path) -> list[Path]:
    def machines_in(d: Path) -> list[Path]:
        if not d.is_dir():
            return []
        return sorted(
            (
                c
                for c in d.iterdir()
                if c.is_dir() and not c.name.startswith(".") and any((c / s).is_dir() for s in SPLITS)
            ),
            key=lambda p: p.name,
        )

    found = machines_in(dataset_dir / "raw")
    return found if found else machines_in(dataset_dir)


def _layout_hint(root: Path, datasets: tuple[str, ...]) -> str:
    return (
        f"expected {root}/<dataset>/raw/<machine>/{{train,test}}/*.wav (the raw/ level is optional) "
        f"for datasets {list(datasets)}, see docs/formats.md §1.1"
    )


def scan_dcase(
    root: Path,
    *,
    datasets: Iterable[str] = ("dev_data", "eval_data"),
    hide_attributes: bool,
    eval_ground_truth: Path | None = None,
    probe_audio: bool = True,
    min_seconds: float = 0.5,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Scan a DCASE Task 2 root into a manifest frame (schema ``dcase_manifest``) and a report.

    ``root`` holds ``dev_data/`` and optionally ``eval_data/`` (missing datasets are a warning),
    each with machine folders below ``raw/`` or directly. Machine types are the folder names.
    With ``hide_attributes`` the attribute pairs go to ``hidden_attributes`` and ``attributes``
    is empty (the unlabeled condition). ``eval_ground_truth`` (folder or list file, see
    :func:`read_eval_ground_truth`) fills label/domain of hidden eval test clips.
    ``probe_audio=False`` skips the header reads (duration NaN, sample_rate/channels -1), and
    with them the empty/short/corrupt checks.

    The report: ``root``, ``n_files_seen``, ``n_rows``, ``skipped`` (``{"path", "reason",
    "detail"}``), ``skip_counts``, ``machines`` (``{dataset: {machine: {split: rows}}}``),
    ``notes`` (counters: multichannel, non-16 kHz, …), ``warnings``, ``attribute_sources``,
    ``patterns`` and ``ground_truth``.
    """
    datasets = tuple(datasets)
    root = Path(root).absolute()
    if not root.is_dir():
        raise DcaseLayoutError(f"DCASE root {root} does not exist or is not a folder; {_layout_hint(root, datasets)}")

    report: dict[str, Any] = {
        "root": str(root),
        "datasets": list(datasets),
        "hide_attributes": bool(hide_attributes),
        "probe_audio": bool(probe_audio),
        "min_seconds": float(min_seconds),
        "n_files_seen": 0,
        "n_rows": 0,
        "skipped": [],
        "skip_counts": {},
        "machines": {},
        "notes": {},
        "warnings": [],
        "attribute_sources": {},
        "patterns": {},
        "ground_truth": None,
    }
    skip_counts: Counter[str] = Counter()
    notes: Counter[str] = Counter()
    note_examples: dict[str, list[str]] = {}
    attr_sources: Counter[str] = Counter()
    pattern_counts: Counter[str] = Counter()

    def skip(path: Path | str, reason: str, detail: str = "") -> None:
        skip_counts[reason] += 1
        report["skipped"].append({"path": str(path), "reason": reason, "detail": detail})
        log.warning("skipped %s: %s%s", path, reason, f" ({detail})" if detail else "")

    def note(kind: str, path: Path, msg: str) -> None:
        notes[kind] += 1
        ex = note_examples.setdefault(kind, [])
        if len(ex) < _NOTE_EXAMPLES:
            ex.append(str(path))
            report["warnings"].append(f"{path}: {msg}")

    machine_dirs: list[tuple[str, Path]] = []
    for ds in datasets:
        ds_dir = root / ds
        if not ds_dir.is_dir():
            report["warnings"].append(f"{ds_dir}: dataset folder not found, skipped")
            log.warning("%s: dataset folder not found", ds_dir)
            continue
        found = _find_machine_dirs(ds_dir)
        if not found:
            report["warnings"].append(f"{ds_dir}: no machine folders (with train/, test/ or supplemental/)")
        machine_dirs += [(ds, d) for d in found]
    if not machine_dirs:
        hint = ""
        if _find_machine_dirs(root):
            hint = f" ({root} itself holds machine folders: pass its parent folder as the root)"
        raise DcaseLayoutError(f"no machine folders found under {root}{hint}; {_layout_hint(root, datasets)}")

    gt: dict[tuple[str, str], dict[str, str]] = {}
    if eval_ground_truth is not None:
        gt_path = Path(eval_ground_truth)
        if not gt_path.exists():
            report["warnings"].append(f"{gt_path}: eval ground truth not found, ignored")
        else:
            gt, gt_rep = read_eval_ground_truth(gt_path)
            for b in gt_rep["bad_lines"]:
                skip(f"{b['path']}:{b['line']}", "malformed_ground_truth_row", b["reason"])
            report["ground_truth"] = {k: v for k, v in gt_rep.items() if k != "bad_lines"}
            if not gt:
                report["warnings"].append(f"{gt_path}: no ground-truth entries found")

    rows: dict[str, list[Any]] = {c: [] for c in _COLUMNS}
    seen_ids: set[str] = set()
    gt_matched: set[tuple[str, str]] = set()
    gt_fill = Counter()
    for ds, mdir in machine_dirs:
        machine = mdir.name
        attrs: dict[str, list[tuple[str, str]]] = {}
        attr_rows: dict[str, str] = {}  # stem -> "csv:line" of the row that gave its attributes
        for csv_path in sorted(mdir.glob("attributes_*.csv")):
            line_of: dict[str, int] = {}
            got, bad = read_attributes_csv(csv_path, line_of)
            for b in bad:
                skip(f"{csv_path}:{b['line']}", "malformed_attributes_row", b["reason"])
            for k, v in got.items():
                attrs.setdefault(k, v)
                attr_rows.setdefault(k, f"{csv_path}:{line_of.get(k, 0)}")
        stems_in_folder: set[str] = set()
        if (mdir / "test_rename").is_dir():
            report["warnings"].append(f"{mdir / 'test_rename'}: baseline relabel copies, not read")
        per_split = report["machines"].setdefault(ds, {}).setdefault(machine, {})
        for split in SPLITS:
            sdir = mdir / split
            if not sdir.is_dir():
                continue
            wavs = sorted(
                (p for p in sdir.iterdir() if p.suffix.lower() == ".wav" and not p.name.startswith(".")),
                key=lambda p: p.name,
            )
            report["n_files_seen"] += len(wavs)
            stems_in_folder.update(_stem(w.name) for w in wavs)
            n_ok = 0
            for wav in wavs:
                try:
                    parsed = parse_filename(wav.name)
                except UnknownFilenameError:
                    skip(wav, "unknown_name", "file name matches no DCASE pattern")
                    continue
                stem = _stem(wav.name)
                clip_id = f"{ds}/{machine}/{split}/{stem}"
                if clip_id in seen_ids:
                    skip(wav, "duplicate", f"clip_id {clip_id} already seen")
                    continue
                duration, sr, ch = math.nan, -1, -1
                if probe_audio:
                    try:
                        info = _sf_info(wav)
                    except Exception as exc:  # soundfile raises several types on bad files
                        skip(wav, "unreadable_audio", f"{type(exc).__name__}: {exc}".strip()[:300])
                        continue
                    sr, ch = int(info.samplerate), int(info.channels)
                    if info.frames <= 0:
                        skip(wav, "empty_audio", "0 frames")
                        continue
                    duration = info.frames / sr
                    if duration < min_seconds:
                        skip(wav, "too_short", f"{duration:.3f} s < min_seconds {min_seconds}")
                        continue
                    if ch != 1:
                        note("multichannel", wav, f"{ch} channels (kept; the audio loader downmixes)")
                    if sr != 16000:
                        note("sample_rate_not_16000", wav, f"{sr} Hz (kept; the audio loader resamples)")
                if parsed.split not in ("unknown", split):
                    note("split_token_mismatch", wav, f"name says {parsed.split!r}, folder {split!r} (folder wins)")
                label, domain = parsed.label, parsed.domain
                pairs: list[tuple[str, str]] = []
                if attrs.get(stem):
                    pairs, src = attrs[stem], "csv"
                else:
                    pairs = split_attr_tail(parsed.attr_tail)
                    src = "tail" if pairs else "none"
                g = gt.get((machine, stem)) if ds == "eval_data" else None
                if g is not None:
                    gt_matched.add((machine, stem))
                    for field, cur in (("label", label), ("domain", domain)):
                        val = g.get(field)
                        if not val:
                            continue
                        if cur == "unknown":
                            gt_fill[field] += 1
                            if field == "label":
                                label = val
                            else:
                                domain = val
                        elif cur != val:
                            note(
                                "ground_truth_conflict",
                                wav,
                                f"name says {field}={cur!r}, ground truth {val!r} (name wins)",
                            )
                    if not pairs and g.get("tail"):
                        pairs = split_attr_tail(g["tail"])
                        src = "ground_truth" if pairs else src
                if ds == "eval_data" and split == "test" and gt and label == "unknown":
                    notes["eval_test_without_ground_truth"] += 1
                attr_sources[src] += 1
                pattern_counts[parsed.pattern] += 1
                structs = [{"name": k, "value": v} for k, v in pairs]
                seen_ids.add(clip_id)
                n_ok += 1
                for col, val in (
                    ("clip_id", clip_id),
                    ("path", str(wav)),
                    ("dataset", ds),
                    ("machine", machine),
                    ("section", parsed.section),
                    ("domain", domain),
                    ("split", split),
                    ("label", label),
                    ("file_index", parsed.file_index),
                    ("name_pattern", parsed.pattern),
                    ("attr_tail", parsed.attr_tail),
                    ("attributes", [] if hide_attributes else structs),
                    ("hidden_attributes", structs if hide_attributes else []),
                    ("attr_string", "" if hide_attributes else attr_string(pairs)),
                    ("duration", duration),
                    ("sample_rate", sr),
                    ("channels", ch),
                ):
                    rows[col].append(val)
            per_split[split] = n_ok
        for stem in sorted(set(attr_rows) - stems_in_folder):
            skip(attr_rows[stem], "attributes_row_without_clip", f"{stem}: no such .wav in {mdir}")
        if not stems_in_folder:
            skip(mdir, "empty_machine_folder", f"no .wav files in {'/'.join(s for s in SPLITS if (mdir / s).is_dir())}")
            report["warnings"].append(f"{mdir}: machine folder without any clip, machine {machine} left out of {ds}")
        elif not per_split.get("train"):
            report["warnings"].append(f"{mdir}: no usable training clip (train: 0), machine {machine} cannot be "
                                      "trained or scored")

    if report["n_files_seen"] == 0:
        dirs = ", ".join(str(d) for _, d in machine_dirs[:5])
        raise DcaseLayoutError(
            f"no .wav files under {root}: machine folders {dirs}{' ...' if len(machine_dirs) > 5 else ''} "
            f"have no *.wav in {'/'.join(SPLITS)}; {_layout_hint(root, datasets)}"
        )

    df = pd.DataFrame(rows, columns=_COLUMNS)
    df = df.astype({"duration": "float64", "sample_rate": "int64", "channels": "int64"})
    df = df.sort_values("clip_id", kind="stable").reset_index(drop=True)
    if df.empty:
        report["warnings"].append(f"{root}: every file was skipped; the manifest is empty")
    if report["ground_truth"] is not None:
        report["ground_truth"].update(
            n_matched=len(gt_matched),
            n_unmatched_entries=len(gt) - len(gt_matched),
            filled_label=gt_fill["label"],
            filled_domain=gt_fill["domain"],
        )
    for kind, n in notes.items():
        if n > _NOTE_EXAMPLES and kind in note_examples:
            report["warnings"].append(f"... {kind}: {n - _NOTE_EXAMPLES} more files not listed")
    if notes["eval_test_without_ground_truth"]:
        report["warnings"].append(
            f"{notes['eval_test_without_ground_truth']} eval test clips have no ground-truth label"
        )
    report["n_rows"] = int(len(df))
    report["skip_counts"] = dict(sorted(skip_counts.items()))
    report["notes"] = dict(sorted(notes.items()))
    report["attribute_sources"] = dict(sorted(attr_sources.items()))
    report["patterns"] = dict(sorted(pattern_counts.items()))
    log.info(
        "%s: %d files seen, %d rows, %d skipped %s",
        root,
        report["n_files_seen"],
        len(df),
        len(report["skipped"]),
        report["skip_counts"],
    )
    return df, report


def _sf_info(path: Path):
    import soundfile as sf

    return sf.info(str(path))


def write_dcase_manifest(df: pd.DataFrame, report: dict[str, Any], out_parquet: Path, out_report: Path) -> None:
    """Write the manifest (schema-checked, atomic) and the report as JSON."""
    write_table(df, out_parquet, kind="dcase_manifest")
    _write_json(report, Path(out_report))


def _write_json(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)
