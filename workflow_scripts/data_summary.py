"""Adapter for rule data_summary: Markdown counts of the ingested data."""

from pathlib import Path

from asdflow.schemas import read_table
from asdflow.summary import data_summary_markdown
from asdflow.workflow import read_json, step_logging

with step_logging(snakemake.log[0], "data_summary"):  # noqa: F821
    inp = snakemake.input  # noqa: F821
    manifest = read_table(inp.manifest, "dcase_manifest")
    ext = read_json(inp.external_report[0]) if inp.external_report else None
    md = data_summary_markdown(manifest, read_json(inp.report), read_json(inp.cache_report), ext)
    Path(snakemake.output.md).write_text(md)  # noqa: F821
    print(md)
