"""Human-readable summary tables (Markdown) built from workflow artifacts."""

from __future__ import annotations

from typing import Any, Mapping

import pandas as pd

__all__ = ["data_summary_markdown", "frame_to_markdown"]


def frame_to_markdown(df: pd.DataFrame, floatfmt: str = "{:.4f}") -> str:
    """A GitHub-flavoured Markdown table (no extra dependency on `tabulate`)."""
    cols = [str(c) for c in df.columns]

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return "" if pd.isna(v) else floatfmt.format(v)
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v) for v in row) + " |")
    return "\n".join(lines)


def data_summary_markdown(
    manifest: pd.DataFrame,
    dcase_report: Mapping[str, Any],
    cache_report: Mapping[str, Any],
    external_report: Mapping[str, Any] | None = None,
) -> str:
    """Counts of clips per dataset × machine × split × domain × label, plus skip/failure counts."""
    counts = (
        manifest.groupby(["dataset", "machine", "split", "domain", "label"], dropna=False)
        .size()
        .rename("clips")
        .reset_index()
    )
    wide = counts.pivot_table(
        index=["dataset", "machine"], columns=["split", "domain", "label"], values="clips", fill_value=0
    )
    wide.columns = ["/".join(c) for c in wide.columns]
    wide = wide.reset_index()
    parts = ["# Data summary", "", f"DCASE root: `{dcase_report.get('root', '?')}`", ""]
    parts += [frame_to_markdown(wide), ""]
    skips = dcase_report.get("skip_counts", {})
    parts.append(
        f"DCASE files seen: {dcase_report.get('n_files_seen', '?')}, rows: {len(manifest)}, "
        f"skipped: {sum(skips.values())} {dict(skips) if skips else ''}"
    )
    parts.append(
        f"Audio cache: {cache_report.get('n_ok', '?')} ok, {cache_report.get('n_failed', '?')} failed, "
        f"{cache_report.get('clips_per_second', float('nan')):.1f} clips/s"
    )
    if external_report is not None:
        parts.append(
            f"External pool: {external_report.get('n_rows', '?')} clips in "
            f"{external_report.get('n_shards', '?')} shards; missing audio: "
            f"{external_report.get('n_missing', '?')}, unreadable: {external_report.get('n_unreadable', '?')}"
        )
    return "\n".join(parts) + "\n"
