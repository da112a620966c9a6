"""Adapter for rules cache_dcase_audio / cache_external_shard: decode a manifest once."""

from pathlib import Path

import pyarrow.parquet as pq

from asdflow.io.audio import AudioSpec
from asdflow.io.cache import build_cache
from asdflow.workflow import step_logging, write_json

with step_logging(snakemake.log[0], snakemake.rule) as log:  # noqa: F821
    manifest = pq.read_table(snakemake.input.manifest, columns=["clip_id", "path"]).to_pandas()  # noqa: F821
    spec = AudioSpec(**snakemake.params.audio)  # noqa: F821
    report = build_cache(
        manifest["clip_id"].tolist(),
        manifest["path"].tolist(),
        Path(snakemake.output.npy),  # noqa: F821
        spec,
        num_workers=max(0, snakemake.threads - 1),  # noqa: F821
        progress=True,
    )
    write_json(report, snakemake.output.report)  # noqa: F821
    log.info("cached %d clips (%d failed) at %.1f clips/s", report["n"], report["n_failed"], report["clips_per_second"])
