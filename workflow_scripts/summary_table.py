"""Adapter for rule summary_table: long-form metrics, seed aggregates, paper-style tables, ladder."""

from pathlib import Path

import pandas as pd

from asdflow.schemas import read_table
from asdflow.summary import (aggregate_over_seeds, collect_diagnostics, collect_metrics, evaluation_rules, ladder_table,
                             paper_tables, results_markdown)
from asdflow.workflow import read_json, step_logging


def run_of(path):
    """(system, seed, stage) of results/<system>/seed<k>/stage<m>/<file>; a further scoring
    back-end's run (.../stage<m>/backends/<backend>/<file>) is system ``<system>@<backend>``."""
    parts = Path(path).parts
    if len(parts) >= 6 and parts[-3] == "backends":
        return f"{parts[-6]}@{parts[-2]}", int(parts[-5].removeprefix("seed")), int(parts[-4].removeprefix("stage"))
    return parts[-4], int(parts[-3].removeprefix("seed")), int(parts[-2].removeprefix("stage"))


with step_logging(snakemake.log[0], "summary_table"):  # noqa: F821
    inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
    runs = [(*run_of(m), read_table(m, "metrics"), read_json(s)) for m, s in zip(inp.metrics, inp.summaries)]
    long = collect_metrics(runs)
    # the scoring back-end of every row: the system's default, or the one after "@"
    defaults = dict(p.get("backends") or {})  # system -> its default scoring
    long.insert(1, "backend", [sy.split("@", 1)[1] if "@" in sy else defaults.get(sy, "") for sy in long["system"]])
    conditions = {**p.conditions, **{sy: p.conditions.get(sy.split("@", 1)[0], "") for sy in long["system"]}}
    long.to_csv(out.csv, index=False)
    long.to_parquet(out.parquet, index=False)
    agg = aggregate_over_seeds(long, conditions)
    agg.to_csv(out.aggregate, index=False)
    table2, table_a1 = paper_tables(agg)
    table2.to_csv(out.table2, index=False)
    table_a1.to_csv(out.table_a1, index=False)
    diagnostics = collect_diagnostics([(*run_of(q), pd.read_csv(q)) for q in inp.quality],
                                      [(*run_of(a), pd.read_csv(a)) for a in inp.audits])
    ladder_table(agg, diagnostics).to_csv(out.ladder, index=False)
    md = results_markdown(long, conditions, diagnostics, rules=evaluation_rules([r[4] for r in runs]))
    Path(out.md).write_text(md)
    print(md)
