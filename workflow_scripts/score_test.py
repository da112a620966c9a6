"""Adapter for rule score_test: -max cosine of every test clip to its machine's representatives."""

from asdflow.schemas import read_table, write_table
from asdflow.systems import score_with_representatives
from asdflow.workflow import step_logging

with step_logging(snakemake.log[0], "score_test") as log:  # noqa: F821
    inp = snakemake.input  # noqa: F821
    scores = score_with_representatives(read_table(inp.embeddings, "embeddings"),
                                        read_table(inp.representatives, "representatives"),
                                        read_table(inp.manifest, "dcase_manifest"))
    write_table(scores, snakemake.output[0], "scores")  # noqa: F821
    log.info("%d test clips scored", len(scores))
