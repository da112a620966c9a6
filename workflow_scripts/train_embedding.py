"""Adapter for rule train_embedding: train the system's net on its trainset."""

import torch

from asdflow.io.audio import AudioSpec
from asdflow.schemas import read_table
from asdflow.train import TrainConfig, train_model
from asdflow.workflow import step_logging, write_json

with step_logging(snakemake.log[0], "train_embedding") as log:  # noqa: F821
    torch.set_num_threads(snakemake.threads)  # noqa: F821
    spec = AudioSpec(**snakemake.params.audio)  # noqa: F821
    cfg = TrainConfig.from_dict(snakemake.params.train)  # noqa: F821
    trainset = read_table(snakemake.input.trainset, "trainset")  # noqa: F821
    report = train_model(trainset, cfg, snakemake.output.model, n_samples=spec.n_samples,  # noqa: F821
                         sample_rate=spec.sample_rate)
    write_json(report, snakemake.output.report)  # noqa: F821
    log.info("%.1f s per epoch on %s", report["seconds_per_epoch"], report["device"])
