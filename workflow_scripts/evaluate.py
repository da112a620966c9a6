"""Adapter for rule evaluate: official metrics + DCASE submission files for any system."""

from asdflow.schemas import read_table, write_table
from asdflow.systems import evaluate_scores
from asdflow.workflow import step_logging, write_json

with step_logging(snakemake.log[0], "evaluate") as log:  # noqa: F821
    out = snakemake.output  # noqa: F821
    table, summary = evaluate_scores(read_table(snakemake.input.scores, "scores"), out.submission,  # noqa: F821
                                     **snakemake.params.evaluation)  # noqa: F821
    write_table(table, out.metrics, "metrics")
    write_json(summary, out.summary)
    for dataset, s in summary.items():
        if isinstance(s, dict) and "official_score" in s:
            log.info("%s: official score %.4f", dataset, s["official_score"])
