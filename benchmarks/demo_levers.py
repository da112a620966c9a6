"""What the demo's training levers cost: seconds per training epoch on a real demo trainset.

The demo's time is almost all embedding training (4 trainings of 10 epochs; README "Two
commands"). This script trains one epoch per variant on the same trainset and reports the
seconds per epoch, interleaving the variants over ``--repeats`` rounds (best kept):

* ``demo``: the demo's settings (config.yaml ``train``), the job's 2 threads;
* ``threads1``: the same with 1 torch thread (what two concurrent 1-thread jobs each get);
* ``parallel2x1``: two 1-thread trainings at once in two processes (wall time of the pair,
  per training: what running ``L`` and ``Ba+Ltrp`` stage 1 side by side would cost);
* ``anchors4``: 4 triplet anchors per batch instead of 8;
* ``batch64``: batch 64 instead of 32 (same epochs: half the steps);
* ``paper_net``: the paper's widths (base 16, spectrum 128) with all clips as anchors.

Usage (after ``make demo``, on an idle machine; about 4 minutes on 2 cores)::

    .venv/bin/python benchmarks/demo_levers.py
    .venv/bin/python benchmarks/demo_levers.py --trainset results/L/seed0/stage1/trainset.parquet --repeats 1

Writes ``benchmarks/out/demo_levers.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

VARIANTS: dict[str, dict] = {
    "demo": {},
    "threads1": {"_threads": 1},
    "anchors4": {"triplet": {"anchors": 4}},
    "batch64": {"batch_size": 64},
    "paper_net": {"net": {"base_channels": 16, "spectrum_channels": 128}, "triplet": {"anchors": None}},
}


def _demo_train_config(system: str = "Ba+Ltrp+Ps+Ex") -> dict:
    """The TrainConfig dict the workflow gives ``system`` with config.yaml (one epoch, CPU)."""
    import yaml

    from asdflow.recipes import SystemRecipe

    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    recipe = SystemRecipe.from_config(system, cfg["system_definitions"])
    return {**recipe.train_options(cfg["train"], seed=0), "epochs": 1, "device": "cpu"}


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = {**out.get(k, {}), **v} if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def one_epoch(trainset: str, overrides: dict, threads: int, n_samples: int = 32000) -> float:
    """Seconds of one training epoch (as the training report measures it) in this process."""
    import pandas as pd
    import torch

    from asdflow.train import TrainConfig, train_model

    torch.set_num_threads(threads)  # train_model's use_job_cpus keeps it (it only ever lowers it)
    table = pd.read_parquet(trainset)
    cfg = TrainConfig.from_dict(_merge(_demo_train_config(), overrides))
    with tempfile.TemporaryDirectory() as tmp:
        rep = train_model(table, cfg, Path(tmp) / "m.pt", n_samples=n_samples, progress=False)
    return float(rep["history"][0]["seconds"])


def _child(trainset: str, overrides: dict, threads: int, n_samples: int) -> subprocess.Popen:
    """One epoch in a fresh process (each variant starts from the same state: no warm caches)."""
    code = ("import json,sys; sys.path.insert(0, %r); from demo_levers import one_epoch; "
            "print(json.dumps(one_epoch(%r, json.loads(%r), %d, %d)))") % (
        str(Path(__file__).parent), trainset, json.dumps(overrides), threads, n_samples)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def measure(trainset: str, variant: str, n_samples: int = 32000) -> float:
    """Seconds per epoch of ``variant`` (for parallel2x1: wall time of the pair / 2)."""
    if variant == "parallel2x1":
        t0 = time.perf_counter()
        procs = [_child(trainset, {}, 1, n_samples) for _ in range(2)]
        for p in procs:
            p.communicate()
        return (time.perf_counter() - t0) / 2
    over = dict(VARIANTS[variant])
    threads = int(over.pop("_threads", 2))
    p = _child(trainset, over, threads, n_samples)
    out, _ = p.communicate()
    return float(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trainset", default="results/Ba+Ltrp+Ps+Ex/seed0/stage2/trainset.parquet")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--n-samples", type=int, default=32000, help="clip length in samples (demo: 2 s at 16 kHz)")
    ap.add_argument("--variants", nargs="*", default=[*VARIANTS, "parallel2x1"])
    args = ap.parse_args(argv)
    if not Path(args.trainset).exists():
        print(f"{args.trainset}: no such trainset; run `make demo` first (or pass --trainset)", file=sys.stderr)
        return 2
    best: dict[str, float] = {}
    for r in range(args.repeats):
        for v in args.variants:
            s = measure(args.trainset, v, args.n_samples)
            best[v] = min(best.get(v, float("inf")), s)
            print(f"round {r + 1}: {v:12s} {s:7.1f} s/epoch", flush=True)
    base = best.get("demo")
    out = ROOT / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "demo_levers.json").write_text(json.dumps({"trainset": args.trainset, "seconds_per_epoch": best}, indent=1))
    lines = ["| variant | s / epoch | vs demo |", "|---|---|---|"]
    lines += [f"| {v} | {s:.1f} | {s / base:.2f}x |" if base else f"| {v} | {s:.1f} | |" for v, s in best.items()]
    (out / "demo_levers.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
