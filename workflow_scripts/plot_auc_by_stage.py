"""Adapter for rule plot_auc_by_stage."""

import pandas as pd

from asdflow.report import plot_auc_by_stage
from asdflow.workflow import step_logging

with step_logging(snakemake.log[0], "plot_auc_by_stage"):  # noqa: F821
    plot_auc_by_stage(pd.read_parquet(snakemake.input[0]), snakemake.output[0])  # noqa: F821
