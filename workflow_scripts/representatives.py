"""Adapter for rule representatives: k-means representatives + training-clip scores."""

from asdflow.schemas import read_table, write_table
from asdflow.systems import fit_representatives
from asdflow.workflow import step_logging

with step_logging(snakemake.log[0], "representatives") as log:  # noqa: F821
    inp, out = snakemake.input, snakemake.output  # noqa: F821
    train_scores, reps = fit_representatives(
        read_table(inp.embeddings, "embeddings"),
        read_table(inp.trainset, "trainset"),
        read_table(inp.manifest, "dcase_manifest"),
        snakemake.params.scoring,  # noqa: F821
        seed=int(snakemake.wildcards.seed),  # noqa: F821
    )
    write_table(reps, out.representatives, "representatives")
    write_table(train_scores, out.train_scores, "scores")
    log.info("%d representatives of %d machine types", len(reps), reps["machine"].nunique())
