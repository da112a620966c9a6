"""Adapter for rule plot_embeddings."""

from asdflow.report import plot_embeddings_2d
from asdflow.schemas import read_table
from asdflow.workflow import step_logging

with step_logging(snakemake.log[0], "plot_embeddings"):  # noqa: F821
    wc, inp = snakemake.wildcards, snakemake.input  # noqa: F821
    plot_embeddings_2d(read_table(inp.train, "embeddings"), read_table(inp.test, "embeddings"),
                       snakemake.output[0], title=f"{wc.system}, seed {wc.seed}, stage {wc.stage}")  # noqa: F821
