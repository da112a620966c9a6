"""Adapter for rule fit_baseline: fit a frame baseline (gmm, autoencoder, cae_svdd)."""

import torch

from asdflow.baselines import save_baseline_model
from asdflow.schemas import read_table
from asdflow.systems import fit_frame_baseline
from asdflow.workflow import step_logging

with step_logging(snakemake.log[0], "fit_baseline") as log:  # noqa: F821
    p = snakemake.params  # noqa: F821
    torch.set_num_threads(snakemake.threads)  # noqa: F821
    manifest = read_table(snakemake.input.manifest, "dcase_manifest")  # noqa: F821
    model = fit_frame_baseline(manifest, snakemake.input.cache, p.backend, p.options, p.sample_rate,  # noqa: F821
                               seed=int(snakemake.wildcards.seed))  # noqa: F821
    save_baseline_model(model, snakemake.output[0], p.backend)  # noqa: F821
    log.info("%s baseline fitted with options %s", p.backend, p.options)
