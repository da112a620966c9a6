"""Adapter for rule cache_selected_external (external_pool.cache: false): decode only the
selected pool clips, for training, into a small per-stage cache with its manifest."""

from pathlib import Path

from asdflow.io.audio import AudioSpec
from asdflow.io.cache import build_cache
from asdflow.schemas import read_table, write_table
from asdflow.select import selected_manifest
from asdflow.workflow import step_logging, write_json

with step_logging(snakemake.log[0], "cache_selected_external") as log:  # noqa: F821
    inp, out = snakemake.input, snakemake.output  # noqa: F821
    clips = selected_manifest(read_table(inp.selection, "selection"), inp.ext_manifests)
    write_table(clips, out.manifest, "external_manifest")
    report = build_cache(clips["clip_id"].tolist(), clips["path"].tolist(), Path(out.npy),
                         AudioSpec(**snakemake.params.audio), num_workers=max(0, snakemake.threads - 1))  # noqa: F821
    write_json(report, out.report)
    log.info("cached %d selected pool clips (%d failed)", report["n"], report["n_failed"])
