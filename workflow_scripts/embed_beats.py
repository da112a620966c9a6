"""Adapter for rule embed_beats: frozen, mean-pooled BEATs features of the DCASE training clips."""

import torch

from asdflow.data import attach_cache_rows
from asdflow.embed import embed_waves, inference_batch_size
from asdflow.nets.beats import BEATsFrontend
from asdflow.schemas import read_table, write_table
from asdflow.systems import embeddings_table
from asdflow.train import pick_device
from asdflow.workflow import step_logging

with step_logging(snakemake.log[0], "embed_beats") as log:  # noqa: F821
    torch.set_num_threads(snakemake.threads)  # noqa: F821
    p = snakemake.params  # noqa: F821
    manifest = read_table(snakemake.input.manifest, "dcase_manifest")  # noqa: F821
    clips = attach_cache_rows(manifest[manifest["split"] == "train"], snakemake.input.cache)  # noqa: F821
    device = pick_device("auto")
    model = BEATsFrontend(n_samples=0, checkpoint=p.checkpoint).to(device)
    batch = inference_batch_size(device, p.clip_seconds, cpu_batch_seconds=p.inference["cpu_batch_seconds"],
                                 gpu_batch_size=p.inference["gpu_batch_size"])
    emb = embed_waves(model, clips["cache_path"].tolist(), clips["cache_row"].tolist(), batch_size=batch,
                      optimize=p.inference["optimize"], amp=True)
    write_table(embeddings_table(clips, emb), snakemake.output[0], "embeddings")  # noqa: F821
    log.info("BEATs features of %d training clips, dimension %d (%s)", *emb.shape, p.checkpoint)
