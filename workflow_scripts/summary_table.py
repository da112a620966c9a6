"""Adapter for rule summary_table: long-form metrics.csv and the Markdown results table."""

from pathlib import Path

from asdflow.schemas import read_table
from asdflow.summary import collect_metrics, results_markdown
from asdflow.workflow import read_json, step_logging

with step_logging(snakemake.log[0], "summary_table"):  # noqa: F821
    inp = snakemake.input  # noqa: F821
    runs = [
        (Path(m).parts[-4], int(Path(m).parts[-3].removeprefix("seed")), int(Path(m).parts[-2].removeprefix("stage")),
         read_table(m, "metrics"), read_json(s))
        for m, s in zip(inp.metrics, inp.summaries)
    ]
    long = collect_metrics(runs)
    long.to_csv(snakemake.output.csv, index=False)  # noqa: F821
    md = results_markdown(long)
    Path(snakemake.output.md).write_text(md)  # noqa: F821
    print(md)
