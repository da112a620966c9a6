"""What one CPU training step of the embedding net costs, and what two exact speed-ups save.

A step of ``Ba+Ltrp`` (the demo's settings) is a forward/backward pass on the batch, a second
one on the triplet clips (anchors, positives, negatives) and the pitch shift of the anchors.
Two changes that leave the results the same (up to float rounding) are measured side by side
with what they replace, interleaved over ``--repeats`` rounds (median and best kept):

* ``stem``: the 7x7 stem convolution of a spectrogram taller than wide (the 256-ms branch,
  ~2000 bins x 16 frames for 2-s clips) run on the transposed map (``_Stem.cpu_transpose_tall``)
  vs the plain layout;
* ``pitch``: ``pitch_shift`` with its resamplers built once (``_resampler`` cache) vs built on
  every call (the cache cleared before each call; ``julius.resample_frac`` did that).

Usage (idle machine, about a minute on 2 cores)::

    .venv/bin/python benchmarks/train_step.py
    .venv/bin/python benchmarks/train_step.py --clip-seconds 10 --batch 16   # longer clips

Writes ``benchmarks/out/train_step.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _model(n_samples: int, n_classes: int = 40):
    import yaml

    from asdflow.recipes import SystemRecipe
    from asdflow.train import TrainConfig, _build

    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    recipe = SystemRecipe.from_config("Ba+Ltrp", cfg["system_definitions"])
    tcfg = TrainConfig.from_dict({**recipe.train_options(cfg["train"], seed=0), "device": "cpu"})
    model, _, _ = _build(tcfg, n_samples, n_classes, __import__("torch").device("cpu"))
    return model, tcfg


def _timed(fn, reps: int = 2) -> float:
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps * 1000.0


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip-seconds", type=float, default=2.0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--anchors", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "train_step"))
    args = ap.parse_args(argv)

    import torch

    from asdflow.losses import triplet
    from asdflow.nets.ba import _Stem

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n_samples = int(round(args.clip_seconds * 16000))
    model, _ = _model(n_samples)
    model.train()
    x = torch.randn(args.batch, n_samples)
    shifts = torch.tensor([6.0, -7, 8, -9, 10, 11, -12, 12] * (args.anchors // 8 + 1))[: args.anchors]

    def fb(b: int) -> None:
        out = model(x[:b])
        (out["cat"].sum() + sum(o.sum() for o in out["branches"])).backward()

    def stem(on: bool, b: int):
        def run() -> None:
            _Stem.cpu_transpose_tall = on
            fb(b)
        return run

    def pitch(cached: bool):
        def run() -> None:
            if not cached:
                triplet._resampler.cache_clear()
            triplet.pitch_shift(x[: args.anchors], shifts)
        return run

    variants = {
        "forward/backward, batch, stem plain": stem(False, args.batch),
        "forward/backward, batch, stem transposed": stem(True, args.batch),
        "forward/backward, triplet clips, stem plain": stem(False, 3 * args.anchors),
        "forward/backward, triplet clips, stem transposed": stem(True, 3 * args.anchors),
        "pitch shift, resamplers rebuilt": pitch(False),
        "pitch shift, resamplers cached": pitch(True),
    }
    for fn in variants.values():  # warm-up (allocator, oneDNN primitive caches)
        fn()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.repeats):
        for name, fn in variants.items():
            times[name].append(_timed(fn))
    _Stem.cpu_transpose_tall = True
    rows = {k: {"median_ms": statistics.median(v), "best_ms": min(v)} for k, v in times.items()}
    step_old = sum(rows[k]["median_ms"] for k in variants if "plain" in k or "rebuilt" in k)
    step_new = sum(rows[k]["median_ms"] for k in variants if "transposed" in k or "cached" in k)
    result = {
        "settings": vars(args) | {"torch": torch.__version__},
        "rows": rows,
        "step_ms_before": step_old,
        "step_ms_after": step_new,
        "ratio": step_new / step_old,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    lines = [f"# One training step, {args.clip_seconds:g}-s clips, batch {args.batch}, {args.anchors} anchors, "
             f"{args.threads} threads ({args.repeats} rounds)", "",
             "| part | median ms | best ms |", "|---|---|---|"]
    lines += [f"| {k} | {v['median_ms']:.1f} | {v['best_ms']:.1f} |" for k, v in rows.items()]
    lines += ["", f"step (the three parts): {step_old:.0f} ms before, {step_new:.0f} ms after "
                  f"({result['ratio']:.2f}x)"]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
