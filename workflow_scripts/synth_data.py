"""Adapter for rule synth_data: write the built-in synthetic data set."""

from pathlib import Path

from asdflow.synth import SynthConfig, generate
from asdflow.workflow import step_logging

with step_logging(snakemake.log[0], "synth_data") as log:  # noqa: F821
    p = snakemake.params  # noqa: F821
    cfg = SynthConfig.from_preset(p.preset, seed=p.seed, **dict(p.options))
    out_dir = Path(snakemake.output.summary).parent  # noqa: F821
    summary = generate(out_dir, cfg, progress=True, workers=snakemake.threads)  # noqa: F821
    log.info("wrote synthetic data to %s", out_dir)
