"""``asdflow inspect PATH``: what an artifact is, what it holds, and where it came from.

Three parts, each printed as a block:

* **Artifact**: the matching pattern of :data:`asdflow.artifacts.ARTIFACTS`, its meaning and the
  rule that writes it.
* **Provenance**: Snakemake's metadata record of the file (the workflow directory is the first
  folder above PATH with ``.snakemake/metadata``): rule, run time, code version, params, inputs
  with their modification times (newer than the artifact? missing?), log. ``--rerun-check`` runs
  ``snakemake -n`` on it and reports whether it is up to date with the current config and why not.
* **Contents**: tables (parquet, CSV) with column types, meanings and a per-column summary plus
  the first rows; JSON reports pretty-printed; ``.npy`` caches (shape, all-zero rows, index
  status); ``.pt`` models (config, parameters per module, classes, training history); baseline
  pickles; figures, audio and text files.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import textwrap
from base64 import urlsafe_b64encode
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from asdflow.artifacts import ARTIFACTS, Artifact, column_meanings, format_pattern, match_artifact

__all__ = [
    "find_workflow_dir",
    "inspect_path",
    "metadata_record_path",
    "parse_dry_run",
    "read_metadata",
]

REPO = Path(__file__).resolve().parents[2]
INDENT = "  "


# --------------------------------------------------------------------------- formatting


def _num(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        return f"{x:.6g}"
    return str(x)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _time(t: float | None) -> str:
    return "-" if t is None else datetime.fromtimestamp(t).isoformat(sep=" ", timespec="seconds")


def _duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    if m < 60:
        return f"{m} min {s} s"
    h, m = divmod(m, 60)
    return f"{h} h {m} min"


def _short(text: str, width: int = 100) -> str:
    text = str(text).replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


# --------------------------------------------------------------------------- Snakemake metadata


def find_workflow_dir(path: Path) -> Path | None:
    """The first folder above ``path`` (absolute, symlinks kept) holding ``.snakemake/metadata``."""
    p = Path(os.path.abspath(path))
    for d in p.parents:
        if (d / ".snakemake" / "metadata").is_dir():
            return d
    return None


def metadata_record_path(workdir: Path, key: str, subject: str = "metadata") -> Path:
    """Where Snakemake's file persistence keeps the record of output ``key`` (the output path as
    the rule wrote it, relative to the workflow dir): ``.snakemake/<subject>/`` + the urlsafe
    base64 of the key, cut into ``@``-prefixed folders when longer than a file name may be.
    Uses Snakemake's own ``FilePersistence._record_path`` when importable."""
    base = str(Path(workdir) / ".snakemake" / subject)
    try:
        from snakemake.persistence.file import FilePersistence

        class _Stub:  # the method needs only the file-name limit of the folder
            _fetch_max_len = staticmethod(lambda subject: _name_max(subject))

        return Path(FilePersistence._record_path(_Stub(), base, key))
    except Exception:  # noqa: BLE001 - an older/newer Snakemake: the same encoding by hand
        max_len = _name_max(base)
        b64 = urlsafe_b64encode(key.encode()).decode()
        parts = [b64[i: i + max_len - 1] for i in range(0, len(b64), max_len - 1)]
        return Path(base, *["@" + s for s in parts[:-1]], parts[-1])


def _name_max(folder: str) -> int:
    try:
        n = os.pathconf(folder if os.path.exists(folder) else os.path.dirname(folder) or ".", "PC_NAME_MAX")
    except (OSError, ValueError):
        n = 255
    return n or 255


def read_metadata(workdir: Path, key: str) -> dict | None:
    """Snakemake's metadata record of output ``key``, or None."""
    path = metadata_record_path(workdir, key)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _is_incomplete(workdir: Path, key: str) -> bool:
    return metadata_record_path(workdir, key, "incomplete").is_file()


def _record_for(workdir: Path, relpath: str, art: Artifact | None,
                wildcards: dict[str, str]) -> tuple[str, dict | None, str]:
    """(key, record, how) of the metadata that describes ``relpath``: its own record, that of a
    directory output it lies in, or (a file a job writes next to its declared outputs) that of
    the registry's ``provenance_of`` output."""
    record = read_metadata(workdir, relpath)
    if record is not None:
        return relpath, record, ""
    parts = relpath.split("/")
    for i in range(len(parts) - 1, 0, -1):
        parent = "/".join(parts[:i])
        record = read_metadata(workdir, parent)
        if record is not None:
            return parent, record, f"inside the directory output {parent}"
    if art is not None and art.provenance_of:
        key = format_pattern(art.provenance_of, wildcards)
        return key, read_metadata(workdir, key), "this file is not a declared output; its job also wrote that one"
    return relpath, None, ""


# --------------------------------------------------------------------------- code versions


_CODE_VERSION = re.compile(r"\d+\.\d+(?:\.\d+)?(?:[.\w-]*?)\+[0-9a-f]{10}")


def current_code_versions(repo: Path = REPO) -> dict[str, str]:
    """``{version string: CODE_* name}`` of the code versions ``rules/common.smk`` computes now
    (empty when the rules are not next to the package, e.g. an installed wheel)."""
    common = repo / "rules" / "common.smk"
    if not common.is_file():
        return {}
    import asdflow

    out = {}
    text = common.read_text()
    for m in re.finditer(r"^(CODE_\w+)\s*=\s*asdflow\.code_version\((.*?)\)\s*$", text, re.M | re.S):
        try:
            parts = ast.literal_eval("(" + m.group(2).strip().rstrip(",") + ",)")
            out[asdflow.code_version(*parts)] = m.group(1)
        except Exception:  # noqa: BLE001 - a definition this parser does not understand
            continue
    return out


# --------------------------------------------------------------------------- provenance block


def _mtime(path: Path) -> float | None:
    """Modification time of a file, or of a directory output's ``.snakemake_timestamp``."""
    try:
        if path.is_dir() and (path / ".snakemake_timestamp").exists():
            return (path / ".snakemake_timestamp").stat().st_mtime
        return path.stat().st_mtime
    except OSError:
        return None


def _sha256(path: Path) -> str | None:
    try:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return "sha256:" + h.hexdigest()
    except OSError:
        return None


def provenance_lines(path: Path, workdir: Path | None, relpath: str | None, art: Artifact | None,
                     wildcards: dict[str, str]) -> tuple[list[str], str | None, list[str]]:
    """The provenance block, the output key whose job wrote ``path`` (None: no record) and the
    reasons to rerun that the record alone shows (changed code version, newer or missing inputs)."""
    out = ["Provenance"]
    reasons: list[str] = []
    if workdir is None:
        out.append(f"{INDENT}no Snakemake metadata: no folder above {path} has .snakemake/metadata "
                   "(not written by a workflow run, or its .snakemake folder was removed)")
        return out, None, reasons
    key, rec, how = _record_for(workdir, relpath, art, wildcards)
    meta_dir = workdir / ".snakemake" / "metadata"
    if _is_incomplete(workdir, key):
        out.append(f"{INDENT}INCOMPLETE: Snakemake marked {key} incomplete (its job is running, or was "
                   "killed; the next run redoes it)")
        reasons.append("marked incomplete")
    if rec is None:
        out.append(f"{INDENT}no metadata record for {key} in {meta_dir} (written outside Snakemake, "
                   "by a run with --drop-metadata, or the record was cleaned up)")
        return out, None, reasons
    out.append(f"{INDENT}workflow dir  {workdir}")
    if how:
        out.append(f"{INDENT}record        of {key} ({how})")
    out.append(f"{INDENT}rule          {rec.get('rule')}")
    start, end = rec.get("starttime"), rec.get("endtime")
    ran = f"{_time(start)} → {_time(end)}"
    if start is not None and end is not None:
        ran += f" ({_duration(end - start)})"
    out.append(f"{INDENT}ran           {ran}")
    params = [str(p) for p in rec.get("params") or []]
    versions = []
    for p in params:
        versions += _CODE_VERSION.findall(p)
    if versions:
        # compared with today's CODE_* of rules/common.smk only for this workflow's own rules
        ours = rec.get("rule") in {r for a in ARTIFACTS for r in a.rules}
        current = current_code_versions() if ours else {}
        for i, v in enumerate(dict.fromkeys(versions)):
            if not current:
                state = ""
            elif v in current:
                state = f"  = {current[v]} now (package code unchanged)"
            else:
                state = "  not a current code version: the package code it depends on changed since"
                reasons.append(f"code version {v} changed")
            out.append(f"{INDENT}{'code version' if i == 0 else '':<14}{v}{state}")
    out.append(f"{INDENT}params        ({len(params)}; Snakemake records values, not names)")
    for p in params:
        lines = textwrap.wrap(_short(p, 1200), 140, break_long_words=True, break_on_hyphens=False) or [""]
        out += [f"{INDENT * 3}{'' if i == 0 else '  '}{ln}" for i, ln in enumerate(lines)]
    art_mtime = _mtime(path)
    inputs = list(rec.get("input") or [])
    checksums = rec.get("input_checksums") or {}
    out.append(f"{INDENT}inputs        ({len(inputs)})")
    newer, missing = [], []
    width = min(max((len(i) for i in inputs), default=0), 80)
    for inp in inputs:
        p = workdir / inp if not os.path.isabs(inp) else Path(inp)
        t = _mtime(p)
        if t is None:
            state = "MISSING"
            missing.append(inp)
        elif art_mtime is not None and t > art_mtime:
            state = "NEWER than the artifact"
            recorded = checksums.get(inp)
            if recorded and p.is_file() and _sha256(p) == recorded:
                state += " (same content as when it ran: checksum unchanged, no rerun for it)"
            else:
                newer.append(inp)
        else:
            state = "older"
        out.append(f"{INDENT * 3}{inp:<{width}}  {_time(t)}  {state}")
    logs = list(rec.get("log") or [])
    for i, lg in enumerate(logs):
        p = workdir / lg
        if p.is_file():
            lines = p.read_text(errors="replace").splitlines()
            last = next((ln for ln in reversed(lines) if ln.strip()), "")
            state = f"{_size(p.stat().st_size)}, {len(lines)} lines; last: {_short(last, 90)}"
        else:
            state = "missing"
        out.append(f"{INDENT}{'log' if i == 0 else '':<14}{lg} ({state})")
    if newer:
        reasons.append(f"{len(newer)} input(s) newer than the artifact")
    if missing:
        reasons.append(f"{len(missing)} input(s) missing")
    if not inputs:
        out.append(f"{INDENT}inputs check  no inputs")
    elif missing or newer:
        out.append(f"{INDENT}inputs check  " + ", ".join(r for r in reasons if "input" in r))
    else:
        out.append(f"{INDENT}inputs check  all present, none newer than the artifact")
    return out, key, reasons


# --------------------------------------------------------------------------- rerun check


def _snakemake_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("snakemake")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "snakemake"]


def parse_dry_run(text: str) -> list[dict[str, str]]:
    """The jobs a ``snakemake -n`` output lists: ``{"rule", "output", "reason", "wildcards", ...}``."""
    jobs: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in text.splitlines():
        m = re.match(r"^\s*(?:local)?rule (\w+):\s*$", line)
        if m:
            current = {"rule": m.group(1)}
            jobs.append(current)
            continue
        m = re.match(r"^\s{4,}(\w+): (.*)$", line)
        if current is not None and m:
            current[m.group(1)] = m.group(2).strip()
        elif not line.startswith(" "):
            current = None
    return jobs


def rerun_check_lines(workdir: Path, target: str, configfiles: Sequence[str] = (),
                      snakefile: str | Path | None = None, timeout: float = 600) -> list[str]:
    """Run ``snakemake -n TARGET`` in the workflow dir and say whether it would run anything."""
    snakefile = Path(snakefile) if snakefile else REPO / "Snakefile"
    cmd = [*_snakemake_cmd(), "-n", "--nocolor", "--cores", "1", "--snakefile", str(snakefile.resolve()),
           "--directory", str(workdir)]
    if configfiles:
        cmd += ["--configfile", *[str(Path(c).resolve()) for c in configfiles]]
    cmd += ["--", target]
    shown = " ".join(cmd[cmd.index("-n"):])
    out = ["Up to date with the current config?", f"{INDENT}ran: snakemake {shown}"]
    if not snakefile.is_file():
        return out + [f"{INDENT}cannot check: no Snakefile at {snakefile} (pass --snakefile)"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return out + [f"{INDENT}cannot check: snakemake -n took longer than {timeout:.0f} s"]
    text = proc.stdout + "\n" + proc.stderr
    if proc.returncode != 0:
        tail = [ln for ln in text.splitlines() if ln.strip()][-12:]
        return out + [f"{INDENT}snakemake -n failed (exit {proc.returncode}):"] + [INDENT * 2 + ln for ln in tail]
    if "Nothing to be done" in text:
        return out + [f"{INDENT}UP TO DATE: Snakemake has nothing to do for {target}"]
    jobs = parse_dry_run(text)
    own = [j for j in jobs if target in [o.strip() for o in j.get("output", "").split(",")]]
    out.append(f"{INDENT}WOULD RERUN: {len(jobs)} job(s) for {target}")
    for j in own:
        out.append(f"{INDENT * 2}its own job: rule {j['rule']}"
                   + (f" ({j['wildcards']})" if j.get("wildcards") else ""))
        out.append(f"{INDENT * 3}reason: {j.get('reason', '?')}")
    others = [j for j in jobs if j not in own]
    for j in others[:20]:
        wc = f" ({j['wildcards']})" if j.get("wildcards") else ""
        out.append(f"{INDENT * 2}rule {j['rule']}{wc}: {_short(j.get('reason', '?'), 140)}")
    if len(others) > 20:
        out.append(f"{INDENT * 2}… {len(others) - 20} more jobs")
    return out


# --------------------------------------------------------------------------- contents: tables


def _column_summary(col) -> str:
    """One line: numeric min/mean/max and NaN count; strings: distinct values and the most
    common; lists: length stats (and value range of numeric lists)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    nulls = col.null_count
    null = f", null {nulls}" if nulls else ""
    if len(col) == 0:
        return "(no rows)"
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = t.value_type
    if pa.types.is_boolean(t):
        true = pc.sum(col.cast(pa.int64())).as_py() or 0
        return f"true {true}, false {len(col) - true - nulls}{null}"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        x = np.asarray(col.to_numpy(zero_copy_only=False), dtype=float)
        ok = x[~np.isnan(x)]
        if pa.types.is_floating(t):  # pandas writes NaN as null: count both as NaN
            nan_text, null = f"; NaN {int(np.isnan(x).sum())}", ""
        else:
            nan_text = ""
        if not len(ok):
            return f"all NaN/null{nan_text}{null}"
        return (f"min {_num(float(ok.min()))}, mean {_num(float(ok.mean()))}, max {_num(float(ok.max()))}"
                f"{nan_text}{null}")
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        vc = pc.value_counts(col)
        values, counts = vc.field("values").to_pylist(), vc.field("counts").to_pylist()
        n_distinct = len(values) - (1 if None in values else 0)
        empty = pc.sum(pc.equal(col, "")).as_py() or 0
        tail = (f"; empty {empty}" if empty else "") + null
        if n_distinct == len(col) - nulls:
            return f"all {n_distinct:,} distinct (unique), e.g. {_short(repr(values[0]), 60)}{tail}"
        order = sorted(range(len(values)), key=lambda i: (-counts[i], str(values[i])))
        top = ", ".join(f"{_short(repr(values[i]), 40)} ×{counts[i]:,}" for i in order[:3])
        return f"{n_distinct:,} distinct; most common: {top}{tail}"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        lengths = np.asarray(pc.list_value_length(col).to_numpy(zero_copy_only=False), dtype=float)
        lengths = lengths[~np.isnan(lengths)]
        text = (f"length min {int(lengths.min())}, mean {_num(float(lengths.mean()))}, max {int(lengths.max())}"
                if len(lengths) else "no lists")
        empty = int((lengths == 0).sum())
        if empty:
            text += f"; empty {empty}"
        vt = t.value_type
        if pa.types.is_integer(vt) or pa.types.is_floating(vt):
            v = np.asarray(pc.list_flatten(col).to_numpy(zero_copy_only=False), dtype=float)
            if len(v):
                nan = int(np.isnan(v).sum())
                ok = v[~np.isnan(v)]
                rng = f"min {_num(float(ok.min()))}, max {_num(float(ok.max()))}" if len(ok) else "all NaN"
                text += f"; values {rng}, NaN {nan}"
                if pa.types.is_floating(vt) and len(ok) and len(lengths) and lengths.min() == lengths.max() > 0:
                    m = v.reshape(-1, int(lengths.max()))
                    norms = np.linalg.norm(m, axis=1)
                    text += f"; L2 norm mean {_num(float(np.nanmean(norms)))}"
        elif pa.types.is_string(vt):
            vc = pc.value_counts(pc.list_flatten(col))
            text += f"; {len(vc)} distinct items"
        return text + null
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        mm = pc.min_max(col)
        return f"min {mm['min'].as_py()}, max {mm['max'].as_py()}{null}"
    return f"({t}){null}"


def _cell(v: Any) -> str:
    import numpy as np

    if isinstance(v, (list, tuple, np.ndarray)):
        items = list(v)
        if items and isinstance(items[0], dict):
            inner = ", ".join(f"{d.get('name')}={d.get('value')}" if set(d) == {"name", "value"} else str(d)
                              for d in items[:3])
        else:
            inner = ", ".join(_num(float(x)) if isinstance(x, (float, np.floating)) else str(x) for x in items[:3])
        more = ", …" if len(items) > 3 else ""
        return f"[{len(items)}: {inner}{more}]"
    if isinstance(v, float):
        return _num(v)
    return _short(str(v), 48)


def table_lines(table, meanings: dict[str, str], schema=None, rows: int = 10,
                title: str = "Columns") -> list[str]:
    """Columns (type, meaning, summary) and the first rows of an Arrow table. ``schema``: the
    schema the file should have (differences are listed; metadata is not compared)."""
    import pandas as pd

    from asdflow.schemas import field_description

    out = [f"{title} ({table.num_columns}) and summary over {table.num_rows:,} rows"]
    if schema is not None:
        problems = []
        for f in schema:
            if f.name not in table.schema.names:
                problems.append(f"missing column {f.name!r}")
            elif not table.schema.field(f.name).type.equals(f.type):
                problems.append(f"column {f.name!r} is {table.schema.field(f.name).type}, expected {f.type}")
        extra = [n for n in table.schema.names if n not in schema.names]
        if extra:
            problems.append(f"unexpected columns {extra}")
        out.append(f"{INDENT}schema check: " + ("names and types match" if not problems else "; ".join(problems)))
    width = max((len(n) for n in table.schema.names), default=0)
    for f in table.schema:
        meaning = meanings.get(f.name) or field_description(f) or "(no documented meaning)"
        out.append(f"{INDENT}{f.name:<{width}}  {f.type}  — {meaning}")
        try:
            summary = _column_summary(table.column(f.name))
        except Exception as exc:  # noqa: BLE001 - an odd column type must not stop the report
            summary = f"(no summary: {exc})"
        out.append(f"{INDENT}{'':<{width}}    {summary}")
    n = min(rows, table.num_rows)
    if n > 0:
        df = table.slice(0, n).to_pandas()
        df = df.apply(lambda c: c.map(_cell)) if len(df) else df
        out.append("")
        out.append(f"First {n} rows")
        with pd.option_context("display.max_columns", 50, "display.width", 250, "display.max_colwidth", 60):
            out += [INDENT + ln for ln in df.to_string(index=False).splitlines()]
    return out


def _parquet_lines(path: Path, art: Artifact | None, rows: int) -> list[str]:
    import pyarrow.parquet as pq

    from asdflow.schemas import SCHEMAS

    table = pq.read_table(path)
    meanings = column_meanings(art) if art else {}
    schema = SCHEMAS.get(art.schema) if art and art.schema else None
    return table_lines(table, meanings, schema, rows)


def _csv_lines(path: Path, art: Artifact | None, rows: int) -> list[str]:
    import pandas as pd
    import pyarrow as pa

    meanings = column_meanings(art) if art else {}
    try:
        if art is not None and not art.header and meanings:
            df = pd.read_csv(path, header=None, names=list(meanings), keep_default_na=False, na_values=[""])
        else:
            df = pd.read_csv(path)
        table = pa.Table.from_pandas(df, preserve_index=False)
    except (ValueError, pa.ArrowException) as exc:  # not a plain table (e.g. AudioSet segment lists)
        return _text_lines(path, rows) + [f"{INDENT}(not parsed as a table: {_short(exc, 120)})"]
    return table_lines(table, meanings, None, rows)


# --------------------------------------------------------------------------- contents: others


def _truncate(obj: Any, max_items: int = 20) -> Any:
    if isinstance(obj, list):
        head = [_truncate(x, max_items) for x in obj[:max_items]]
        return head + ([f"… {len(obj) - max_items} more items"] if len(obj) > max_items else [])
    if isinstance(obj, dict):
        return {k: _truncate(v, max_items) for k, v in obj.items()}
    return obj


def _json_lines(path: Path) -> list[str]:
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        return [f"not valid JSON ({exc}); first lines:"] + _text_lines(path, 10)[1:]
    return ["Contents (JSON; lists longer than 20 items cut)"] + [INDENT + ln for ln in _pretty(_truncate(data))]


def _pretty(obj: Any, level: int = 0, width: int = 110) -> list[str]:
    """JSON text, indented by 2, with every value that fits in ``width`` on one line."""
    flat = json.dumps(obj, ensure_ascii=False, default=str)
    if not isinstance(obj, (dict, list)) or not obj or len(flat) + 2 * level <= width:
        return [flat]
    pad = "  " * (level + 1)
    items = list(obj.items()) if isinstance(obj, dict) else [(None, v) for v in obj]
    lines = ["{" if isinstance(obj, dict) else "["]
    for i, (k, v) in enumerate(items):
        sub = _pretty(v, level + 1, width)
        head = f"{json.dumps(k, ensure_ascii=False)}: " if k is not None else ""
        sub[0] = pad + head + sub[0]
        if i < len(items) - 1:
            sub[-1] += ","
        lines += sub
    lines.append("  " * level + ("}" if isinstance(obj, dict) else "]"))
    return lines


def _zero_rows(arr) -> int:
    import numpy as np

    if arr.ndim == 1:
        return int((arr == 0).sum())
    rows = arr.reshape(arr.shape[0], -1)
    row_bytes = max(1, rows.shape[1] * rows.dtype.itemsize)
    step = max(1, (64 << 20) // row_bytes)
    return sum(int((~np.asarray(rows[i:i + step]).any(axis=1)).sum()) for i in range(0, rows.shape[0], step))


def _npy_lines(path: Path, rows: int) -> list[str]:
    import numpy as np

    arr = np.load(path, mmap_mode="r", allow_pickle=False)
    out = ["Array",
           f"{INDENT}shape {tuple(arr.shape)}, dtype {arr.dtype}, {_size(arr.nbytes)} in memory"]
    if arr.ndim >= 1 and arr.shape[0]:
        zero = _zero_rows(arr)
        what = "all-zero rows" if arr.ndim > 1 else "zeros"
        note = " (failed clips are stored as zero rows)" if arr.ndim == 2 else ""
        out.append(f"{INDENT}{what}: {zero:,} of {arr.shape[0]:,}{note}")
    stem = path.name[: -len(".npy")]
    index, spec = path.with_name(stem + ".index.parquet"), path.with_name(stem + ".spec.json")
    if spec.is_file():
        try:
            out.append(f"{INDENT}spec ({spec.name}): {json.dumps(json.loads(spec.read_text()))}")
        except ValueError:
            out.append(f"{INDENT}spec ({spec.name}): unreadable")
    if index.is_file():
        import pyarrow.parquet as pq

        idx = pq.read_table(index).to_pandas()
        out.append(f"{INDENT}index ({index.name}): {len(idx):,} rows"
                   + ("" if len(idx) == arr.shape[0] else f" — DIFFERS from the array's {arr.shape[0]:,} rows"))
        if "status" in idx.columns:
            counts = idx["status"].value_counts().to_dict()
            out.append(f"{INDENT}status: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
            if "error" in idx.columns:
                failed = idx[idx["status"] != "ok"]
                for r in failed.head(3).itertuples(index=False):
                    out.append(f"{INDENT * 2}failed: {r.clip_id}: {_short(r.error, 100)}")
    return out


def _pt_lines(path: Path, rows: int) -> list[str]:
    import torch

    state = torch.load(path, map_location="cpu", weights_only=False)
    out = ["Checkpoint"]
    if not isinstance(state, dict):
        return out + [f"{INDENT}a {type(state).__name__}, not a dict checkpoint"]
    out.append(f"{INDENT}keys: {', '.join(map(str, state))}")
    cfg = state.get("config")
    if isinstance(cfg, dict):
        out.append(f"{INDENT}config (training options):")
        width = max((len(str(k)) for k in cfg), default=0)
        out += [f"{INDENT * 2}{k:<{width}}  {_short(json.dumps(v, default=str), 160)}" for k, v in cfg.items()]
    for key in ("n_samples", "sample_rate", "epoch", "reused_from"):
        if key in state:
            out.append(f"{INDENT}{key}: {state[key]}")
    classes = state.get("classes")
    if isinstance(classes, (list, tuple)):
        shown = ", ".join(map(str, classes[:8])) + (", …" if len(classes) > 8 else "")
        out.append(f"{INDENT}classes: {len(classes)} ({shown})")
    counts = _module_parameters(path, state)
    if counts:
        out.append(f"{INDENT}parameters per top-level module:")
        width = max(len(k) for k in counts)
        for name, (n, how) in counts.items():
            out.append(f"{INDENT * 2}{name:<{width}}  {n:>12,}{how}")
    history = state.get("history")
    if isinstance(history, list) and history:
        out.append(f"{INDENT}training: {len(history)} epochs recorded")
        keys = [k for k in history[0] if k != "epoch"]
        for h in (history[:1] + history[-1:] if len(history) > 1 else history):
            out.append(f"{INDENT * 2}epoch {h.get('epoch', '?')}: "
                       + ", ".join(f"{k} {_num(h.get(k))}" for k in keys))
        secs = [h.get("seconds") for h in history if isinstance(h.get("seconds"), (int, float))]
        if secs:
            out.append(f"{INDENT * 2}{_num(sum(secs) / len(secs))} s per epoch")
    if "optimizer" in state:
        out.append(f"{INDENT}optimizer state present (resumable training checkpoint)")
    return out


def _module_parameters(path: Path, state: dict) -> dict[str, tuple[int, str]]:
    """Top-level module -> (parameter count, note): from the rebuilt net when the checkpoint
    loads with today's code, else counted from the state dicts (parameters and buffers)."""
    out: dict[str, tuple[int, str]] = {}
    model_done = False
    if "n_samples" in state and "config" in state:
        try:
            from asdflow.train import load_model

            model, _ = load_model(path, device="cpu")
            for name, child in model.named_children():
                out[f"model.{name}"] = (sum(p.numel() for p in child.parameters()), "")
            own = sum(p.numel() for p in model.parameters(recurse=False))
            if own:
                out["model (own)"] = (own, "")
            model_done = True
        except Exception:  # noqa: BLE001 - older checkpoint or changed net code: count tensors
            model_done = False
    for key, sd in state.items():
        if key == "optimizer" or (key == "model" and model_done) or not isinstance(sd, dict):
            continue
        tensors = {k: v for k, v in sd.items() if hasattr(v, "numel")}
        if not tensors:
            continue
        groups: dict[str, int] = {}
        for k, v in tensors.items():
            top = f"{key}.{k.split('.')[0]}"
            groups[top] = groups.get(top, 0) + int(v.numel())
        for top, n in groups.items():
            out[top] = (n, "  (state-dict tensors: parameters and buffers)")
    return out


def _pkl_lines(path: Path, art: Artifact | None) -> list[str]:
    if art is None or not art.pattern.endswith("baseline.pkl"):
        return ["Contents", f"{INDENT}a pickle file (not unpickled: not a known asdflow artifact)"]
    import pickle

    with open(path, "rb") as f:
        blob = pickle.load(f)
    if not isinstance(blob, dict):
        return ["Contents", f"{INDENT}a pickled {type(blob).__name__} (expected a dict with backend and model)"]
    model = blob.get("model")
    machines = sorted(getattr(model, "models", None) or getattr(model, "states", None) or [])
    return ["Baseline model",
            f"{INDENT}backend: {blob.get('backend')}",
            f"{INDENT}model: {type(model).__module__}.{type(model).__name__}",
            f"{INDENT}machine types: {len(machines)} ({', '.join(map(str, machines[:10]))})"]


def _png_lines(path: Path) -> list[str]:
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return ["Image", f"{INDENT}not a PNG file"]
    w, h = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    return ["Image", f"{INDENT}PNG, {w} × {h} pixels"]


def _wav_lines(path: Path) -> list[str]:
    import soundfile as sf

    info = sf.info(str(path))
    return ["Audio", f"{INDENT}{info.samplerate} Hz, {info.channels} channel(s), {info.duration:.3f} s, "
                     f"{info.subtype}"]


def _text_lines(path: Path, rows: int) -> list[str]:
    lines = path.read_text(errors="replace").splitlines()
    out = [f"Text ({len(lines):,} lines; first {min(rows, len(lines))})"]
    return out + [INDENT + _short(ln, 200) for ln in lines[:rows]]


def _dir_lines(path: Path, rows: int) -> list[str]:
    files = sorted(p for p in path.rglob("*") if p.is_file())
    out = [f"Directory ({len(files)} files, {_size(sum(p.stat().st_size for p in files))})"]
    return out + [INDENT + str(p.relative_to(path)) for p in files[: max(rows, 1)]] + (
        [f"{INDENT}… {len(files) - rows} more"] if len(files) > rows else [])


def content_lines(path: Path, art: Artifact | None, rows: int) -> list[str]:
    name = path.name.lower()
    if path.is_dir():
        return _dir_lines(path, rows)
    if name.endswith(".tmp"):
        return ["Contents", f"{INDENT}a temporary file (not summarised)"]
    suffix = path.suffix.lower()
    handlers = {
        ".parquet": lambda: _parquet_lines(path, art, rows),
        ".csv": lambda: _csv_lines(path, art, rows),
        ".json": lambda: _json_lines(path),
        ".npy": lambda: _npy_lines(path, rows),
        ".pt": lambda: _pt_lines(path, rows),
        ".ckpt": lambda: _pt_lines(path, rows),
        ".pkl": lambda: _pkl_lines(path, art),
        ".png": lambda: _png_lines(path),
        ".wav": lambda: _wav_lines(path),
    }
    if suffix in handlers:
        return handlers[suffix]()
    try:
        path.read_text()
    except (UnicodeDecodeError, OSError):
        return ["Contents", f"{INDENT}binary file, {_size(path.stat().st_size)} (not summarised)"]
    return _text_lines(path, rows)


# --------------------------------------------------------------------------- entry point


def _artifact_lines(path: Path, relpath: str | None, match) -> list[str]:
    out = [f"{path}"]
    if match is None:
        where = relpath if relpath is not None else path
        out.append(f"{INDENT}unknown artifact: {where} matches no pattern of asdflow's artifact registry "
                   "(docs/artifacts.md); showing what the file holds")
        return out
    art, wc = match
    out.append(f"{INDENT}artifact      {art.pattern}"
               + (f"  ({', '.join(f'{k}={v}' for k, v in wc.items())})" if wc else ""))
    out.append(f"{INDENT}meaning       {art.meaning}")
    rules = " or ".join(art.rules) if art.rules else "any job"
    out.append(f"{INDENT}written by    rule {rules}" + ("" if art.declared else " (not a declared output)"))
    if art.schema:
        out.append(f"{INDENT}schema        {art.schema} (asdflow.schemas; docs/artifacts.md)")
    return out


def inspect_path(path: str | Path, rows: int = 10, rerun_check: bool = False,
                 configfiles: Sequence[str] = (), snakefile: str | Path | None = None,
                 out=None) -> int:
    """Print the audit of ``path``; returns the exit status (0 ok, 2 no such file)."""
    out = out or sys.stdout
    path = Path(path)
    if not path.exists():
        print(f"asdflow inspect: {path}: no such file or directory", file=sys.stderr)
        return 2
    workdir = find_workflow_dir(path)
    relpath = Path(os.path.abspath(path)).relative_to(workdir).as_posix() if workdir else None
    match = match_artifact(relpath) if relpath else _match_by_tail(path)
    art, wc = match if match else (None, {})
    blocks: list[list[str]] = [_artifact_lines(path, relpath, match)]
    if path.is_file():
        stat = path.stat()
        blocks[0].append(f"{INDENT}file          {_size(stat.st_size)}, modified {_time(stat.st_mtime)}")
    prov, key, reasons = provenance_lines(path, workdir, relpath, art, wc)
    blocks.append(prov)
    if workdir is not None and (key is not None or (art is not None and art.declared)):
        target = key or relpath
        if rerun_check:
            blocks.append(rerun_check_lines(workdir, target, configfiles, snakefile))
        else:
            seen = ("from the record alone: would rerun (" + "; ".join(reasons) + ")" if reasons else
                    "from the record alone: no reason to rerun (config params are only compared by --rerun-check)")
            blocks.append(["Up to date with the current config?",
                           f"{INDENT}{seen}",
                           f"{INDENT}full check: asdflow inspect {path} --rerun-check [--configfile FILE ...]",
                           f"{INDENT}(runs snakemake -n {target} in {workdir} with the repository's Snakefile; "
                           "pass the --configfile the run used, e.g. configs/ladder.yaml for make ladder)"])
    try:
        blocks.append(content_lines(path, art, rows))
    except Exception as exc:  # noqa: BLE001 - a damaged file: say so instead of a traceback
        blocks.append(["Contents", f"{INDENT}cannot read {path.name}: {type(exc).__name__}: {_short(exc, 300)}"])
    print("\n\n".join("\n".join(b) for b in blocks), file=out)
    return 0


def _match_by_tail(path: Path):
    """Outside a workflow dir: match the path from its ``results/`` component on, if any."""
    parts = Path(os.path.abspath(path)).parts
    if "results" in parts:
        i = len(parts) - 1 - parts[::-1].index("results")
        return match_artifact("/".join(parts[i:]))
    return None

