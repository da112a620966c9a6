"""Adapter for rule score_embeddings: representatives and -max cosine scores."""

from asdflow.schemas import read_table, write_table
from asdflow.systems import score_embeddings
from asdflow.workflow import step_logging

with step_logging(snakemake.log[0], "score_embeddings") as log:  # noqa: F821
    inp, out = snakemake.input, snakemake.output  # noqa: F821
    scores, reps = score_embeddings(
        read_table(inp.embeddings, "embeddings"),
        read_table(inp.trainset, "trainset"),
        read_table(inp.manifest, "dcase_manifest"),
        snakemake.params.scoring,  # noqa: F821
        seed=int(snakemake.wildcards.seed),  # noqa: F821
    )
    write_table(scores, out.scores, "scores")
    write_table(reps, out.representatives, "representatives")
    log.info("%d clips scored against %d representatives", len(scores), len(reps))
