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
    wide = wide.astype(int).reset_index()
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


_SPLIT_NAME = {"dev_data": "dev", "eval_data": "eval"}


def collect_metrics(runs: list[tuple[str, int, int, pd.DataFrame, Mapping[str, Any]]]) -> pd.DataFrame:
    """Long-form table over runs of (system, seed, stage, metrics table, metrics summary).

    Columns: system, seed, stage, split (dev|eval), machine, section, domain, auc, pauc,
    pauc_domain, official_score. Per machine × section × domain rows have official_score NaN;
    one row per run × split with machine ``ALL`` carries the official score and the harmonic
    means of AUC (source/target in their domain rows) and pAUC.
    """
    parts = []
    for system, seed, stage, table, summary in runs:
        t = table.rename(columns={"dataset": "split"}).assign(system=system, seed=seed, stage=stage)
        t["split"] = t["split"].map(lambda s: _SPLIT_NAME.get(s, s))
        t["official_score"] = float("nan")
        parts.append(t)
        for dataset, s in summary.items():
            if not isinstance(s, Mapping) or "official_score" not in s:
                continue
            for domain in ("source", "target"):
                parts.append(pd.DataFrame([{
                    "system": system, "seed": seed, "stage": stage, "split": _SPLIT_NAME.get(dataset, dataset),
                    "machine": "ALL", "section": "", "domain": domain,
                    "auc": s.get(f"auc_{domain}_hmean"), "pauc": s.get("pauc_hmean"),
                    "pauc_domain": s.get(f"pauc_domain_{domain}_hmean"), "official_score": s["official_score"],
                }]))
    cols = ["system", "seed", "stage", "split", "machine", "section", "domain", "auc", "pauc", "pauc_domain",
            "official_score"]
    if not parts:
        return pd.DataFrame(columns=cols)
    return pd.concat(parts, ignore_index=True)[cols]


def _mean_std(values: pd.Series) -> str:
    v = values.dropna().to_numpy(dtype=float) * 100
    if len(v) == 0:
        return ""
    if len(v) == 1:
        return f"{v[0]:.2f}"
    return f"{v.mean():.2f} ± {v.std(ddof=1):.2f}"


def results_markdown(long: pd.DataFrame) -> str:
    """Results table (%, mean ± std over seeds): official score, AUC source/target, pAUC per
    system × stage × split, then per-machine AUCs (harmonic mean of source and target)."""
    overall = long[long["machine"] == "ALL"]
    rows = []
    for (system, stage, split), g in overall.groupby(["system", "stage", "split"], sort=False):
        src, tgt = g[g["domain"] == "source"], g[g["domain"] == "target"]
        rows.append({
            "system": system, "stage": stage, "split": split, "seeds": src["seed"].nunique(),
            "official score": _mean_std(src["official_score"]),
            "AUC source": _mean_std(src["auc"]), "AUC target": _mean_std(tgt["auc"]),
            "pAUC": _mean_std(src["pauc"]),
        })
    parts = ["# Results (%)", "", frame_to_markdown(pd.DataFrame(rows)), ""]
    per = long[long["machine"] != "ALL"]
    if len(per):
        wide = (per.groupby(["system", "stage", "split", "machine", "domain"])["auc"].mean() * 100).unstack(
            ["machine", "domain"])
        wide.columns = [f"{m} {d[:3]}" for m, d in wide.columns]
        parts += ["AUC per machine type and domain (mean over seeds):", "",
                  frame_to_markdown(wide.reset_index(), floatfmt="{:.1f}"), ""]
    return "\n".join(parts)
