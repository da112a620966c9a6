"""Adapter for rule trainset_stage1: original training clips + label column."""

from asdflow.schemas import read_table, write_table
from asdflow.systems import build_stage1_trainset
from asdflow.workflow import step_logging

with step_logging(snakemake.log[0], "trainset") as log:  # noqa: F821
    manifest = read_table(snakemake.input.manifest, "dcase_manifest")  # noqa: F821
    trainset = build_stage1_trainset(manifest, snakemake.params.cache_npy, snakemake.params.labels)  # noqa: F821
    write_table(trainset, snakemake.output[0], "trainset")  # noqa: F821
    log.info("%d clips, %d classes", len(trainset), trainset["label"].nunique())
