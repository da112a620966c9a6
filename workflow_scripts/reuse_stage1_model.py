"""Adapter for rule reuse_stage1_model: the stage1_from system's stage-1 model, copied."""

from asdflow.systems import reuse_stage1_model
from asdflow.workflow import step_logging

with step_logging(snakemake.log[0], "reuse_stage1_model") as log:  # noqa: F821
    inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
    reuse_stage1_model(inp.model, inp.report, out.model, out.report, p.base)
    log.info("stage-1 model of %s copied from %s", snakemake.wildcards.system, p.base)  # noqa: F821
