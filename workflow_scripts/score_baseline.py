"""Adapter for rule score_baseline: train and test scores of a fitted frame baseline."""

import torch

from asdflow.baselines import load_baseline_model
from asdflow.schemas import read_table, write_table
from asdflow.systems import frame_baseline_scores
from asdflow.workflow import step_logging

with step_logging(snakemake.log[0], "score_baseline") as log:  # noqa: F821
    inp, out, backend = snakemake.input, snakemake.output, snakemake.params.backend  # noqa: F821
    torch.set_num_threads(snakemake.threads)  # noqa: F821
    scores = frame_baseline_scores(load_baseline_model(inp.model, backend), backend,
                                   read_table(inp.manifest, "dcase_manifest"), inp.cache)
    write_table(scores[scores["split"] == "train"], out.train_scores, "scores")
    write_table(scores[scores["split"] == "test"], out.test_scores, "scores")
    log.info("%s: %d clips scored", backend, len(scores))
