"""Adapter for rule external_manifest: external pool → n_shards manifest shards + report."""

from pathlib import Path

from asdflow.io.external import check_pool_usable, scan_audioset, scan_plain_folder, write_external_manifest
from asdflow.workflow import read_json, step_logging

with step_logging(snakemake.log[0], "external_manifest") as log:  # noqa: F821
    p = snakemake.params  # noqa: F821
    ext = dict(p.external)
    if ext["kind"] == "synthetic":
        s = read_json(Path(ext["synth_dir"]) / "synth_summary.json")
        ext = {"kind": "audioset", "segments": s["segments"], "labels": s["labels"], "audio_dirs": s["audio_dirs"]}
    if ext["kind"] == "audioset":
        shards, report = scan_audioset(
            [Path(x) for x in ext["segments"]],
            Path(ext["labels"]),
            [Path(x) for x in ext["audio_dirs"]],
            n_shards=p.n_shards,
            label_mode=p.label_mode,
        )
    else:
        labels_csv = ext.get("labels_csv")
        shards, report = scan_plain_folder(
            [Path(x) for x in ext["audio_dirs"]],
            Path(labels_csv) if labels_csv else None,
            n_shards=p.n_shards,
        )
    warning = check_pool_usable(report, p.required_by)  # raises if a requested system needs the pool
    if warning:
        log.warning("%s", warning)
    out = snakemake.output  # noqa: F821
    write_external_manifest(shards, report, [Path(x) for x in out.shards], Path(out.report))
    log.info("%d clips in %d shards", sum(len(s) for s in shards), len(shards))
