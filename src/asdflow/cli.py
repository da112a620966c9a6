"""`asdflow` command line: the few things a user runs outside Snakemake."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main"]


def _cmd_synth(args: argparse.Namespace) -> int:
    from asdflow.synth import SynthConfig, generate

    overrides = {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    cfg = SynthConfig.preset(args.preset, **overrides)
    summary = generate(Path(args.out), cfg, progress=True)
    print(json.dumps({k: summary[k] for k in ("dcase_root", "labels", "segments", "audio_dirs")}, indent=2))
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    import pandas as pd
    import pyarrow.parquet as pq

    path = Path(args.path)
    if not path.exists():
        print(f"asdflow inspect: {path}: no such file", file=sys.stderr)
        return 2
    if path.suffix == ".json":
        print(path.read_text())
        return 0
    print(pq.read_schema(path))
    df = pq.read_table(path).to_pandas()
    with pd.option_context("display.max_columns", 30, "display.width", 200):
        print(f"\n{len(df)} rows\n")
        print(df.head(args.rows).to_string())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asdflow", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("synth", help="write the built-in synthetic DCASE-layout data and AudioSet-layout pool")
    p.add_argument("--preset", default="demo", help="tiny | demo")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_cmd_synth)
    p = sub.add_parser("inspect", help="print the schema and first rows of a parquet artifact (or a JSON report)")
    p.add_argument("path")
    p.add_argument("--rows", type=int, default=10)
    p.set_defaults(func=_cmd_inspect)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
