"""Adapter for rule summary_table: long-form metrics, seed aggregates, paper-style tables."""

from pathlib import Path

from asdflow.schemas import read_table
from asdflow.summary import aggregate_over_seeds, collect_metrics, paper_tables, results_markdown
from asdflow.workflow import read_json, step_logging

with step_logging(snakemake.log[0], "summary_table"):  # noqa: F821
    inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
    runs = [
        (Path(m).parts[-4], int(Path(m).parts[-3].removeprefix("seed")), int(Path(m).parts[-2].removeprefix("stage")),
         read_table(m, "metrics"), read_json(s))
        for m, s in zip(inp.metrics, inp.summaries)
    ]
    long = collect_metrics(runs)
    long.to_csv(out.csv, index=False)
    long.to_parquet(out.parquet, index=False)
    agg = aggregate_over_seeds(long, p.conditions)
    agg.to_csv(out.aggregate, index=False)
    table2, table_a1 = paper_tables(agg)
    table2.to_csv(out.table2, index=False)
    table_a1.to_csv(out.table_a1, index=False)
    md = results_markdown(long, p.conditions)
    Path(out.md).write_text(md)
    print(md)
