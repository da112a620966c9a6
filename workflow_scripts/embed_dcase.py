"""Adapter for rule embed_dcase: embeddings of every DCASE clip with the stage's model, per split."""

import torch

from asdflow.data import attach_cache_rows
from asdflow.embed import embed_waves
from asdflow.schemas import read_table, write_table
from asdflow.systems import embeddings_table
from asdflow.train import load_model
from asdflow.workflow import step_logging

with step_logging(snakemake.log[0], "embed_dcase") as log:  # noqa: F821
    torch.set_num_threads(snakemake.threads)  # noqa: F821
    model, _ = load_model(snakemake.input.model)  # noqa: F821
    clips = attach_cache_rows(read_table(snakemake.input.manifest, "dcase_manifest"), snakemake.input.cache)  # noqa: F821
    emb = embed_waves(model, clips["cache_path"].tolist(), clips["cache_row"].tolist(),
                      batch_size=snakemake.params.batch_size)  # noqa: F821
    table = embeddings_table(clips, emb)
    for split in ("train", "test"):
        write_table(table[table["split"] == split], snakemake.output[split], "embeddings")  # noqa: F821
    log.info("%d embeddings of dimension %d", *emb.shape)
