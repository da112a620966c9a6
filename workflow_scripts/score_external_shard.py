"""Adapter for rule score_external_shard: pool shard -> nearest machine + anomaly score."""

import torch

from asdflow.embed import inference_batch_size
from asdflow.io.audio import AudioSpec
from asdflow.schemas import read_table, write_table
from asdflow.systems import SHARD_COLUMNS, score_external_shard
from asdflow.train import load_model
from asdflow.workflow import step_logging

with step_logging(snakemake.log[0], "score_external_shard") as log:  # noqa: F821
    inp, p, threads = snakemake.input, snakemake.params, snakemake.threads  # noqa: F821
    torch.set_num_threads(threads)
    model, _ = load_model(inp.model)
    device = next(model.parameters()).device
    inf = p.inference
    batch = inference_batch_size(device, p.audio["clip_seconds"], cpu_batch_seconds=inf["cpu_batch_seconds"],
                                 gpu_batch_size=inf["gpu_batch_size"])
    log.info("batches of %d clips on %s", batch, device)
    # CPU: the cores compute, one prefetch thread loads; GPU: the job's CPUs decode in workers
    # only the columns scoring needs, kept in Arrow memory: the job's memory barely grows with the shard
    shard = read_table(inp.manifest, "external_manifest", columns=list(SHARD_COLUMNS), arrow_dtypes=True)
    scores = score_external_shard(model, shard,
                                  inp.cache if p.use_cache else None, read_table(inp.representatives, "representatives"),
                                  audio_spec=AudioSpec(**p.audio), batch_size=batch,
                                  num_workers=max(0, threads - 1) if device.type == "cuda" else 0, amp=p.amp,
                                  renormalize=p.renormalize, optimize=inf["optimize"])
    write_table(scores, snakemake.output[0], "external_scores")  # noqa: F821
    log.info("%d pool clips scored (%d failed to decode)", len(scores), scores.attrs.get("n_failed", 0))
    for f in scores.attrs.get("failed", [])[:20]:
        log.warning("not decoded: %s", f["error"])
