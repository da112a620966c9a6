"""Adapter for rule score_gmm: the log-mel + GMM baseline system."""

from asdflow.schemas import read_table, write_table
from asdflow.systems import gmm_scores
from asdflow.workflow import step_logging

with step_logging(snakemake.log[0], "score_gmm") as log:  # noqa: F821
    p = snakemake.params  # noqa: F821
    manifest = read_table(snakemake.input.manifest, "dcase_manifest")  # noqa: F821
    scores = gmm_scores(manifest, snakemake.input.cache, p.gmm, p.sample_rate, seed=int(snakemake.wildcards.seed))  # noqa: F821
    write_table(scores, snakemake.output.scores, "scores")  # noqa: F821
    log.info("%d clips scored", len(scores))
