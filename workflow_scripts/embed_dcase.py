"""Adapter for rule embed_dcase: embeddings of every DCASE clip with the stage's model, per split."""

import torch

from asdflow.data import attach_cache_rows
from asdflow.embed import embed_waves, inference_batch_size
from asdflow.schemas import read_table, write_table
from asdflow.systems import embeddings_table
from asdflow.train import load_model
from asdflow.workflow import step_logging

with step_logging(snakemake.log[0], "embed_dcase") as log:  # noqa: F821
    torch.set_num_threads(snakemake.threads)  # noqa: F821
    model, _ = load_model(snakemake.input.model)  # noqa: F821
    clips = attach_cache_rows(read_table(snakemake.input.manifest, "dcase_manifest"), snakemake.input.cache)  # noqa: F821
    p = snakemake.params  # noqa: F821
    batch = inference_batch_size(next(model.parameters()).device, p.clip_seconds,
                                 cpu_batch_seconds=p.inference["cpu_batch_seconds"],
                                 gpu_batch_size=p.inference["gpu_batch_size"])
    emb = embed_waves(model, clips["cache_path"].tolist(), clips["cache_row"].tolist(), batch_size=batch,
                      optimize=p.inference["optimize"])
    table = embeddings_table(clips, emb)
    for split in ("train", "test"):
        write_table(table[table["split"] == split], snakemake.output[split], "embeddings")  # noqa: F821
    log.info("%d embeddings of dimension %d", *emb.shape)
