"""Human-readable summary tables (Markdown) built from workflow artifacts."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

__all__ = ["aggregate_over_seeds", "collect_diagnostics", "collect_metrics", "data_summary_markdown",
           "evaluation_rules", "frame_to_markdown", "ladder_table", "paper_tables", "results_markdown", "sd_table"]


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
    # machine folders that gave no clip at all are absent from the counts above: name them
    empty = [f"{ds}/{m}" for ds, machines in dcase_report.get("machines", {}).items()
             for m, splits in machines.items() if not any(splits.values())]
    if empty:
        parts += ["", f"Machine folders without any usable clip (left out): {', '.join(sorted(empty))}"]
    warnings = list(dcase_report.get("warnings", [])) + list((external_report or {}).get("warnings", []))
    if warnings:
        shown = warnings[:_MAX_WARNINGS]
        parts += ["", f"## Warnings ({len(warnings)}; the reports next to the manifests list every skipped file)", ""]
        parts += [f"- {w}" for w in shown]
        if len(warnings) > len(shown):
            parts.append(f"- ... {len(warnings) - len(shown)} more")
    return "\n".join(parts) + "\n"


_MAX_WARNINGS = 20


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
        parts.append(t)  # official_score: NaN on these rows (absent here, filled by concat)
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


#: Metrics of the overall rows (machine ``ALL``) that the paper-style tables report.
_OVERALL = {"official_score": ("source", "official_score"), "auc_source": ("source", "auc"),
            "auc_target": ("target", "auc"), "pauc": ("source", "pauc")}


def aggregate_over_seeds(long: pd.DataFrame, conditions: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Mean, variance and standard deviation over seeds (in %) of the overall scores of each
    system × stage × split.

    ``long`` is :func:`collect_metrics` output. Columns: condition (``w/ label`` for systems
    trained on attribute labels, ``w/o label`` otherwise; ``conditions`` maps system → label
    mode), system, stage, split, metric (official_score | auc_source | auc_target | pauc),
    mean, var (sample variance, ddof = 1; NaN with one seed), sd (its square root), n_seeds.
    Systems keep their first appearance order.
    """
    conditions = conditions or {}
    overall = long[long["machine"] == "ALL"]
    rows = []
    for (system, stage, split), g in overall.groupby(["system", "stage", "split"], sort=False):
        cond = "w/ label" if conditions.get(system) == "machine_attr" else "w/o label"
        for metric, (domain, col) in _OVERALL.items():
            v = g.loc[g["domain"] == domain].drop_duplicates("seed")[col].dropna().to_numpy(dtype=float) * 100
            rows.append({"condition": cond, "system": system, "stage": int(stage), "split": split,
                         "metric": metric, "mean": v.mean() if len(v) else float("nan"),
                         "var": v.var(ddof=1) if len(v) > 1 else float("nan"),
                         "sd": v.std(ddof=1) if len(v) > 1 else float("nan"), "n_seeds": len(v)})
    return pd.DataFrame(rows, columns=["condition", "system", "stage", "split", "metric", "mean", "var", "sd",
                                       "n_seeds"])


def _mean_var(mean: float, var: float) -> str:
    if pd.isna(mean):
        return ""
    return f"{mean:.2f}" if pd.isna(var) else f"{mean:.2f} ± {var:.2f}"


_METRIC_NAMES = {"official_score": "official score", "auc_source": "AUC source", "auc_target": "AUC target",
                 "pauc": "pAUC"}


def sd_table(agg: pd.DataFrame) -> pd.DataFrame:
    """The compact table: one row per system × stage × split, cells "mean ± sd" (sample sd)."""
    rows = []
    for (system, stage, split), g in agg.groupby(["system", "stage", "split"], sort=False):
        cells = {_METRIC_NAMES[r.metric]: _mean_var(r.mean, r.sd) for r in g.itertuples(index=False)}
        rows.append({"system": system, "stage": stage, "split": split, "seeds": int(g["n_seeds"].max()), **cells})
    return pd.DataFrame(rows)


_DIAG_COLS = ["system", "seed", "stage", "ari", "ari_chance", "nmi", "n_out", "n_ex", "machine_like_share"]


def collect_diagnostics(quality: list[tuple[str, int, int, pd.DataFrame]],
                        audits: list[tuple[str, int, int, pd.DataFrame]]) -> pd.DataFrame:
    """Stage >= 2 diagnostics, one row per system × seed × stage that has any: the mean ARI and
    NMI of its pseudo-labels against the true attributes and the ARI's chance level
    (``pseudolabel_quality.csv``, row ``mean``; see :func:`asdflow.pseudo.label_quality`) and its external selection's total N_out, N_ex and overall share of machine-like
    clips (``selection_audit.csv``, row ``ALL``; NaN without the pool's truth). Both describe the
    data stage m was trained on (they are computed from stage m−1)."""
    rows: dict[tuple[str, int, int], dict[str, Any]] = {}

    def row(system: str, seed: int, stage: int) -> dict[str, Any]:
        return rows.setdefault((system, int(seed), int(stage)), {"system": system, "seed": int(seed),
                                                                   "stage": int(stage)})

    for system, seed, stage, q in quality:
        mean = q[q["machine"].astype(str) == "mean"]
        if len(mean):
            row(system, seed, stage).update(ari=float(mean["ari"].iloc[0]), nmi=float(mean["nmi"].iloc[0]))
            if "ari_chance" in mean.columns:  # tables written before the chance level existed lack it
                row(system, seed, stage)["ari_chance"] = float(mean["ari_chance"].iloc[0])
    for system, seed, stage, a in audits:
        machines = a["machine"].astype(str)
        total = a[machines == "ALL"]
        per = a[machines != "ALL"]
        r = row(system, seed, stage)
        r["n_out"] = float(total["n_out"].iloc[0]) if len(total) else float(per["n_out"].sum())
        r["n_ex"] = float(total["n_ex"].iloc[0]) if len(total) else float(per["n_ex"].sum())
        if "machine_like_share" in a.columns and len(total):
            r["machine_like_share"] = float(total["machine_like_share"].iloc[0])
    return pd.DataFrame(list(rows.values()), columns=_DIAG_COLS)


def _fmt_sd(v: np.ndarray, fmt: str) -> str:
    v = v[~np.isnan(v)]
    if not len(v):
        return ""
    return fmt.format(v.mean()) + ("" if len(v) < 2 else " ± " + fmt.format(v.std(ddof=1)))


def ladder_table(agg: pd.DataFrame, diagnostics: pd.DataFrame | None = None, split: str | None = None) -> pd.DataFrame:
    """The ladder: one row per system × stage (of one split: ``dev`` when present), cells
    "mean ± sd" over seeds: official score, AUC source, AUC target (%), and where the stage has
    them the pseudo-label ARI (and its chance level) and NMI, N_ex (selected pool clips, all machine types) and the
    share of machine-like clips in the selection (:func:`collect_diagnostics`)."""
    cols = ["system", "stage", "seeds", "official score", "AUC source", "AUC target", "ARI", "ARI chance", "NMI",
            "N_ex", "machine-like share"]
    if agg.empty:
        return pd.DataFrame(columns=cols)
    splits = list(dict.fromkeys(agg["split"]))
    split = split or ("dev" if "dev" in splits else splits[0])
    a = agg[agg["split"] == split]
    diag = diagnostics if diagnostics is not None else pd.DataFrame(columns=_DIAG_COLS)
    rows = []
    for (system, stage), g in a.groupby(["system", "stage"], sort=False):
        cells = {_METRIC_NAMES[r.metric]: _mean_var(r.mean, r.sd) for r in g.itertuples(index=False)
                 if r.metric != "pauc"}
        d = diag[(diag["system"] == system) & (diag["stage"] == int(stage))]

        def col(name: str, fmt: str) -> str:
            return _fmt_sd(d[name].to_numpy(dtype=float), fmt) if len(d) else ""

        rows.append({"system": system, "stage": int(stage), "seeds": int(g["n_seeds"].max()), **cells,
                     "ARI": col("ari", "{:.3f}"),
                     "ARI chance": col("ari_chance", "{:.3f}"), "NMI": col("nmi", "{:.3f}"), "N_ex": col("n_ex", "{:.0f}"),
                     "machine-like share": col("machine_like_share", "{:.2f}")})
    return pd.DataFrame(rows).reindex(columns=cols, fill_value="")


def paper_tables(agg: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seed 000's Table 2 (official score per split) and Table A.1 (AUC per split × domain)
    shapes: one row per condition × system × stage (labelled block first), cells "mean ± var"."""
    agg = agg.assign(cell=[_mean_var(m, v) for m, v in zip(agg["mean"], agg["var"])])
    order = {"w/ label": 0, "w/o label": 1}
    keys = ["condition", "system", "stage"]
    base = agg[keys].drop_duplicates().copy()
    base["_o"] = base["condition"].map(order)
    base = base.sort_values(["_o"], kind="stable").drop(columns="_o")
    splits = [s for s in ("dev", "eval") if s in set(agg["split"])] + sorted(set(agg["split"]) - {"dev", "eval"})

    def wide(metrics: dict[str, str]) -> pd.DataFrame:
        out = base.copy()
        for split in splits:
            for metric, name in metrics.items():
                cells = agg[(agg["split"] == split) & (agg["metric"] == metric)].set_index(keys)["cell"]
                out[f"{split} {name}".strip()] = [cells.get(tuple(k), "") for k in out[keys].itertuples(index=False)]
        return out.reset_index(drop=True)

    return wide({"official_score": ""}), wide({"auc_source": "source", "auc_target": "target"})


def evaluation_rules(summaries: list[Mapping[str, Any]]) -> str:
    """The ``rules`` recorded in metrics summaries (``metrics_summary.json``), comma-joined in
    first-seen order; ``""`` when none records any (summaries written before rules existed)."""
    seen = [s["rules"] for s in summaries if isinstance(s, Mapping) and isinstance(s.get("rules"), str)]
    return ", ".join(dict.fromkeys(seen))


#: How each rule set's official score is formed (asdflow.metrics, docs/formats.md §2.2).
_RULES_SCORE = {
    "dcase2022+": "official score = harmonic mean of source AUC, target AUC and pAUC, the pAUC over both "
                  "domains of a section",
    "dcase2021": "official score = harmonic mean of the AUC and pAUC of every machine × section × domain, "
                 "each on that domain's clips only",
    "dcase2020": "official score = harmonic mean of the AUC and pAUC of every machine id (asdflow's choice: "
                 "the 2020 evaluator defines no overall score); 2020 has no target domain",
}


def results_markdown(long: pd.DataFrame, conditions: Mapping[str, str] | None = None,
                     diagnostics: pd.DataFrame | None = None, rules: str | None = None) -> str:
    """The results page: overall scores (mean ± variance, and mean ± sd), the ladder with the
    stage >= 2 diagnostics, Table 2 and Table A.1 shapes, per-machine AUCs (%).

    ``rules``: the evaluation rules of the runs (:func:`evaluation_rules`); when given, the
    header names them and says how their official score is formed."""
    agg = aggregate_over_seeds(long, conditions)
    rows = []
    for (system, stage, split), g in agg.groupby(["system", "stage", "split"], sort=False):
        cells = {_METRIC_NAMES[r.metric]: _mean_var(r.mean, r.var) for r in g.itertuples(index=False)}
        rows.append({"system": system, "stage": stage, "split": split, "seeds": int(g["n_seeds"].max()), **cells})
    table2, table_a1 = paper_tables(agg)
    if rules:
        how = "; ".join(f"`{r}`: {_RULES_SCORE.get(r, 'see docs/formats.md §2.2')}" for r in rules.split(", "))
        header = [f"Evaluation rules (`evaluation.rules`, docs/formats.md §2.2): {how}.", "",
                  "Mean ± variance over seeds (harmonic means over machine types).", ""]
    else:
        header = ["Mean ± variance over seeds (harmonic means over machine types; official "
                  "score = harmonic mean of source AUC, target AUC and pAUC).", ""]
    parts = ["# Results (%)", "", *header,
             frame_to_markdown(pd.DataFrame(rows)), "",
             "## Mean ± standard deviation over seeds", "", frame_to_markdown(sd_table(agg)), "",
             "## Ladder (dev; mean ± sd over seeds)", "",
             "ARI/NMI: the stage's pseudo-labels against the true attribute combinations (machine × "
             "domain); N_ex: selected pool clips (all machine types); machine-like share: of the selected "
             "clips, those from machine-like pool classes (built-in pool only). Both are the data the "
             "stage was trained on, computed from the stage before.", "",
             frame_to_markdown(ladder_table(agg, diagnostics)), "",
             "## Official score by split (seed 000 Table 2 shape)", "", frame_to_markdown(table2), "",
             "## AUC by split and domain (seed 000 Table A.1 shape)", "", frame_to_markdown(table_a1), ""]
    per = long[long["machine"] != "ALL"]
    if len(per):
        wide = (per.groupby(["system", "stage", "split", "machine", "domain"], sort=False)["auc"].mean() * 100
                ).unstack(["machine", "domain"])
        wide = wide[sorted(wide.columns)]
        wide.columns = [f"{m} {d[:3]}" for m, d in wide.columns]
        parts += ["## AUC per machine type and domain (mean over seeds)", "",
                  frame_to_markdown(wide.reset_index(), floatfmt="{:.1f}"), ""]
    return "\n".join(parts)
