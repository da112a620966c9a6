"""Adapter for rule score_external_shard: pool shard -> nearest machine + anomaly score."""

import torch

from asdflow.schemas import read_table, write_table
from asdflow.systems import score_external_shard
from asdflow.train import load_model
from asdflow.workflow import step_logging

with step_logging(snakemake.log[0], "score_external_shard") as log:  # noqa: F821
    inp, p = snakemake.input, snakemake.params  # noqa: F821
    torch.set_num_threads(snakemake.threads)  # noqa: F821
    model, _ = load_model(inp.model)
    scores = score_external_shard(model, read_table(inp.manifest, "external_manifest"), inp.cache,
                                  read_table(inp.representatives, "representatives"), batch_size=p.batch_size,
                                  renormalize=p.renormalize)
    write_table(scores, snakemake.output[0], "external_scores")  # noqa: F821
    log.info("%d pool clips scored (%d failed to decode)", len(scores), scores.attrs.get("n_failed", 0))
