"""Adapter for rule dcase_manifest: scan a DCASE Task 2 folder into a manifest parquet."""

from pathlib import Path

from asdflow.io.dcase import scan_dcase, write_dcase_manifest
from asdflow.workflow import step_logging

with step_logging(snakemake.log[0], "dcase_manifest") as log:  # noqa: F821
    p = snakemake.params  # noqa: F821
    gt = Path(p.eval_ground_truth) if p.eval_ground_truth else None
    df, report = scan_dcase(
        Path(p.root),
        datasets=tuple(p.datasets),
        hide_attributes=p.hide_attributes,
        eval_ground_truth=gt,
        min_seconds=p.min_seconds,
    )
    write_dcase_manifest(df, report, Path(snakemake.output.manifest), Path(snakemake.output.report))  # noqa: F821
    log.info("%d clips, %d skipped", len(df), len(report["skipped"]))
