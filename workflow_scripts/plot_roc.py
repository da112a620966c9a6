"""Adapter for rule plot_roc."""

from asdflow.report import plot_roc
from asdflow.schemas import read_table
from asdflow.workflow import step_logging

with step_logging(snakemake.log[0], "plot_roc"):  # noqa: F821
    wc = snakemake.wildcards  # noqa: F821
    plot_roc(read_table(snakemake.input[0], "scores"), snakemake.output[0],  # noqa: F821
             title=f"{wc.system}, seed {wc.seed}, stage {wc.stage}")
