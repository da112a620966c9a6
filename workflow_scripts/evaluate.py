"""Adapter for rule evaluate: official metrics + DCASE submission files for any system."""

import pandas as pd

from asdflow.schemas import read_table, write_table
from asdflow.systems import evaluate_scores
from asdflow.workflow import step_logging, write_json

with step_logging(snakemake.log[0], "evaluate") as log:  # noqa: F821
    inp, out = snakemake.input, snakemake.output  # noqa: F821
    scores = pd.concat([read_table(inp.train_scores, "scores"), read_table(inp.test_scores, "scores")],
                       ignore_index=True)
    table, summary = evaluate_scores(scores, out.submission, **snakemake.params.evaluation)  # noqa: F821
    write_table(table, out.metrics, "metrics")
    write_json(summary, out.summary)
    log.info("evaluation rules: %s (evaluation.rules: %s)", summary["rules"], summary["rules_config"])
    for dataset, s in summary.items():
        if isinstance(s, dict) and "official_score" in s:
            log.info("%s: official score %.4f", dataset, s["official_score"])
