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
    cfg = SynthConfig.from_preset(args.preset, **overrides)
    summary = generate(Path(args.out), cfg, progress=True)
    print(json.dumps({k: summary[k] for k in ("dcase_root", "labels", "segments", "audio_dirs")}, indent=2))
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from asdflow.audit import inspect_path

    return inspect_path(args.path, rows=args.rows, rerun_check=args.rerun_check,
                        configfiles=args.configfile or (), snakefile=args.snakefile)


def _cmd_docs_artifacts(args: argparse.Namespace) -> int:
    from asdflow.artifacts import artifacts_markdown

    sys.stdout.write(artifacts_markdown())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asdflow", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("synth", help="write the built-in synthetic DCASE-layout data and AudioSet-layout pool")
    p.add_argument("--preset", default="demo", help="tiny | demo")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_cmd_synth)
    p = sub.add_parser(
        "inspect",
        help="audit an artifact: what it is, its columns with meanings and a summary, its provenance",
        description="What an artifact under results/ is (pattern, meaning, rule), what it holds (columns "
                    "with types, meanings and a summary, first rows; caches, models, reports) and where it "
                    "came from (Snakemake metadata: rule, params, code version, inputs, log, run time). "
                    "See docs/artifacts.md.")
    p.add_argument("path")
    p.add_argument("--rows", type=int, default=10, help="first rows (lines of text files) to show")
    p.add_argument("--rerun-check", action="store_true",
                   help="run `snakemake -n` on the artifact in its workflow dir: up to date, or which jobs "
                        "would rerun and why")
    p.add_argument("--configfile", nargs="+", metavar="FILE",
                   help="config file(s) the run used, for --rerun-check (e.g. configs/ladder.yaml)")
    p.add_argument("--snakefile", default=None, help="for --rerun-check (default: the repository's Snakefile)")
    p.set_defaults(func=_cmd_inspect)
    p = sub.add_parser("docs-artifacts", help="print docs/artifacts.md (the artifact registry and schemas)")
    p.set_defaults(func=_cmd_docs_artifacts)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
