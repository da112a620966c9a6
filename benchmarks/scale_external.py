"""Benchmark of the external-pool path at scale (issue 6). Not a test: run it, read the table.

    .venv/bin/python benchmarks/scale_external.py                 # defaults below
    .venv/bin/python benchmarks/scale_external.py --clips 64 --parts throughput --repeats 2   # ~1 min

One run reports:

1. throughput (clips/s) of each step on the same synthetic 10-s clips (16-kHz PCM-16 WAV, the
   layout of AudioSet's ``sr16_audios``): decode, cache build, cache read, embedding forward
   (the full Ba net), FAISS search, merge; the streaming shard scorer
   (:func:`asdflow.systems.score_external_shard`) with and without the cache, and with the model
   as trained instead of its inference copy (:func:`asdflow.nets.inference.for_inference`);
   and a straightforward per-clip loop (load one file, forward one clip, append to a list, as the
   reference implementation's inference loop does) on the same clips;
2. peak RSS of one shard-scoring job (the real entry point, run as a subprocess; max RSS read
   by ``/usr/bin/time``) at the default shard size and as the shard grows (the whole pool in one shard is the worst case), and of
   the merge job (:func:`asdflow.select.select_from_shards`) as the pool grows, next to the
   concatenate-everything merge it replaces;
3. the dry-run time of the full-scale DAG: a 1.8M-row AudioSet manifest (generated as manifest
   shards only, no audio), M = 5 stages, 400 shards;
4. FLOPs per clip of the Ba net (``torch.utils.flop_counter``), this machine's measured matmul
   GFLOP/s, the fraction of that roofline the forward pass reaches, the convolutions' share of
   a profiled forward pass, and the ceiling this puts on any speed-up over the per-clip loop;
5. an extrapolation of one full 1.8M-clip stage on one GPU node, with its assumptions.

Everything is written under ``--out`` (default ``benchmarks/out/scale``, git-ignored):
``results.json`` and ``results.md`` (the tables pasted into ``benchmarks/README.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.simplefilter("ignore", DeprecationWarning)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from asdflow.io.audio import AudioSpec, load_clip  # noqa: E402
from asdflow.io.cache import AudioCache, build_cache, quantize  # noqa: E402
from asdflow.schemas import write_table  # noqa: E402

N_MACHINES = 14  # DCASE 2023: 7 dev + 7 eval machine types
REPS_PER_MACHINE = 26  # 16 source k-means centres + 10 target clips (docs/reference.md §3.6)


# ------------------------------------------------------------------------------------------------
# synthetic data
# ------------------------------------------------------------------------------------------------

def write_wavs(folder: Path, n: int, seconds: float, sr: int = 16000, seed: int = 0) -> list[str]:
    """n mono PCM-16 WAV files of noise + a few tones (decoding cost does not depend on content)."""
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    base = sum(np.sin(2 * np.pi * f * t) for f in (110.0, 440.0, 1234.0)) / 6
    paths = []
    for i in range(n):
        p = folder / f"Y{i:011d}.wav"
        if not p.exists():
            w = base * rng.uniform(0.2, 1.0) + 0.1 * rng.standard_normal(len(t))
            sf.write(p, w.astype(np.float32), sr, subtype="PCM_16")
        paths.append(str(p))
    return paths


def pool_manifest(paths: list[str] | None, n: int) -> pd.DataFrame:
    ids = [f"ext/Y{i:011d}" for i in range(n)]
    return pd.DataFrame({"clip_id": ids, "path": paths if paths is not None else [f"/pool/{c}.wav" for c in ids],
                         "label_mids": [["/m/0"] for _ in range(n)], "label_names": [["x"] for _ in range(n)]})


def write_cache_direct(npy: Path, n: int, spec: AudioSpec, seed: int = 0) -> None:
    """A decoded-audio cache in the exact on-disk format of ``build_cache`` (int16 memmap + index +
    spec), filled with synthetic audio without writing audio files first (for large pools)."""
    from asdflow.io.cache import cache_paths

    npy, index_path, spec_path = cache_paths(npy)
    npy.parent.mkdir(parents=True, exist_ok=True)
    arr = np.lib.format.open_memmap(npy, mode="w+", dtype=np.int16, shape=(n, spec.n_samples))
    rng = np.random.default_rng(seed)
    block = quantize(0.1 * rng.standard_normal((1024, spec.n_samples)))
    for i in range(0, n, 1024):
        m = min(1024, n - i)
        arr[i:i + m] = np.roll(block[:m], i, axis=1)
    arr.flush()
    del arr
    write_table(pd.DataFrame({"clip_id": [f"ext/Y{i:011d}" for i in range(n)], "row": np.arange(n, dtype=np.int64),
                              "orig_samples": np.full(n, spec.n_samples, dtype=np.int64), "status": "ok",
                              "error": ""}), index_path, "audio_cache_index")
    spec_path.write_text(json.dumps(spec.to_dict()) + "\n")


def representatives(dim: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = N_MACHINES * REPS_PER_MACHINE
    return pd.DataFrame({"machine": np.repeat([f"machine{i:02d}" for i in range(N_MACHINES)], REPS_PER_MACHINE),
                         "section": "*", "kind": "source_kmeans", "n_members": 1,
                         "embedding": list(rng.standard_normal((n, dim)).astype(np.float32))})


class StandIn(torch.nn.Module):
    """A cheap embedding net with the Ba interface (``model(x)["cat"]``, 384-d) for the
    memory-scaling runs, where 100k clips through the real net would take hours on 2 cores;
    the real net's per-batch memory is measured in the throughput run."""

    emb_dim = 384

    def __init__(self, frame: int = 400) -> None:
        super().__init__()
        self.frame = frame
        self.proj = torch.nn.Linear(frame // 2 + 1, self.emb_dim, bias=False)

    def forward(self, x: torch.Tensor) -> dict:
        n = x.shape[1] // self.frame * self.frame
        frames = x[:, :n].reshape(x.shape[0], -1, self.frame)
        spec = torch.fft.rfft(frames, dim=-1).abs().log1p().mean(1)
        return {"cat": self.proj(spec)}


def build_model(kind: str, n_samples: int) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "standin":
        return StandIn().eval()
    from asdflow.nets import build_net

    return build_net("Ba", n_samples=n_samples).eval()


# ------------------------------------------------------------------------------------------------
# subprocess jobs (peak RSS): the real entry points, one fresh process each
# ------------------------------------------------------------------------------------------------

def job_shard(args: dict) -> dict:
    """What workflow_scripts/score_external_shard.py does, on a synthetic shard."""
    from asdflow.schemas import read_table
    from asdflow.systems import SHARD_COLUMNS, score_external_shard

    torch.set_num_threads(args["threads"])
    spec = AudioSpec(**args["spec"])
    shard = read_table(args["manifest"], "external_manifest", columns=list(SHARD_COLUMNS), arrow_dtypes=True)
    model = build_model(args["model"], spec.n_samples)
    t0 = time.perf_counter()
    out = score_external_shard(model, shard, args["cache"], representatives(384), audio_spec=spec,
                               batch_size=args["batch_size"], progress=False, use_gpu=False)
    seconds = time.perf_counter() - t0
    write_table(out, args["out"], "external_scores")
    return {"n": len(out), "seconds": seconds, "vm_hwm_mib": _vm_hwm_mib()}


def job_merge(args: dict) -> dict:
    from asdflow.schemas import read_table
    from asdflow.select import select_external, select_from_shards

    thr = pd.Series({f"machine{i:02d}": -0.2 for i in range(N_MACHINES)})
    paths = sorted(Path(args["dir"]).glob("shard-*.parquet"))[: args["n_shards"]]
    t0 = time.perf_counter()
    if args["how"] == "streaming":
        sel, audit = select_from_shards(paths, thr, n_max=1000)
    else:  # what the workflow did before: concatenate every shard, then select
        pool = pd.concat([read_table(p, "external_scores") for p in paths], ignore_index=True)
        sel, audit = select_external(pool, thr, n_max=1000)
    return {"seconds": time.perf_counter() - t0, "rows": int(audit["n_assigned"].sum()), "selected": len(sel),
            "n_out": int(audit["n_out"].sum()), "vm_hwm_mib": _vm_hwm_mib()}


def _vm_hwm_mib() -> float:
    """This process's peak resident set (VmHWM of its own address space, so a fork's copy of the
    parent does not count, unlike ``ru_maxrss`` after fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_job(kind: str, args: dict) -> dict:
    """Run a job in a fresh interpreter started by ``/usr/bin/time`` (a small parent, so the
    kernel's max-RSS record is the job's own); return its result with its peak RSS in MiB."""
    cmd = [sys.executable, __file__, "--job", kind, json.dumps(args)]
    timer = shutil.which("time") or "/usr/bin/time"
    use_time = Path(timer).exists()
    if use_time:
        cmd = [timer, "-f", "MAXRSS_KB %M"] + cmd
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{kind} job failed ({p.returncode}): {args}\n{p.stderr[-3000:]}")
    res = json.loads(p.stdout.strip().splitlines()[-1])
    kb = [int(line.split()[1]) for line in p.stderr.splitlines() if line.startswith("MAXRSS_KB")]
    res["peak_rss_mib"] = kb[-1] / 1024 if kb else res["vm_hwm_mib"]
    res["wall_seconds"] = wall  # the whole job: interpreter start, imports, model, scoring, write
    return res


# ------------------------------------------------------------------------------------------------
# measurements
# ------------------------------------------------------------------------------------------------

def cpu_busy(dt: float = 0.5) -> float:
    """Fraction of all CPUs busy over ``dt`` seconds (from /proc/stat), whoever uses them."""
    def read():
        v = list(map(int, Path("/proc/stat").read_text().splitlines()[0].split()[1:]))
        return v[3] + v[4], sum(v)

    i0, t0 = read()
    time.sleep(dt)
    i1, t1 = read()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def wait_quiet(limit: float = 0.2, max_wait: float = 30.0) -> float:
    """Wait (at most ``max_wait`` s) until other work leaves the CPUs idle; the machine is shared,
    so each timing starts on a quiet machine where possible. Returns the last busy fraction."""
    t0 = time.perf_counter()
    while True:
        b = cpu_busy()
        if b < limit or time.perf_counter() - t0 > max_wait:
            return b


def timed(fn, *a, **k):
    t0 = time.perf_counter()
    res = fn(*a, **k)
    return res, time.perf_counter() - t0


def matmul_gflops(threads: int, n: int = 2048, reps: int = 10) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def flops_per_clip(model: torch.nn.Module, n_samples: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(torch.randn(1, n_samples))
    return float(counter.get_total_flops())


def conv_share(model: torch.nn.Module, batch_size: int, n_samples: int, reps: int = 3) -> tuple[float, float]:
    """(convolution ms, all ops ms) per clip of a forward pass, from torch.profiler's self times."""
    from torch.profiler import ProfilerActivity, profile

    x = torch.randn(batch_size, n_samples)
    with torch.inference_mode():
        model(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(reps):
                model(x)
    events = prof.key_averages()
    conv = sum(e.self_cpu_time_total for e in events if "convolution" in e.key) / 1e3
    total = sum(e.self_cpu_time_total for e in events) / 1e3
    n = reps * batch_size
    return conv / n, total / n


def throughput(out: Path, n_clips: int, seconds: float, batch_size: int, threads: int, repeats: int,
               compile_row: bool = True) -> dict:
    from asdflow.embed import CacheBatches, iter_batches
    from asdflow.nets.inference import for_inference
    from asdflow.scoring import build_index, search_nearest_machine, stack_embeddings
    from asdflow.systems import score_external_shard

    torch.set_num_threads(threads)
    spec = AudioSpec(sample_rate=16000, clip_seconds=seconds)
    paths = write_wavs(out / "wav10s", n_clips, seconds)
    shard = pool_manifest(paths, n_clips)
    model = build_model("ba", spec.n_samples)
    reps = representatives(384)
    rows = {}

    def row(name, n, sec, note="", cpu=None):
        rows[name] = {"clips": n, "seconds": round(sec, 3), "clips_per_s": round(n / sec, 2), "note": note,
                      "cpu_ms_per_clip": None if cpu is None else round(1000 * cpu / n, 2)}

    cache = out / "cache10s" / "shard.npy"
    report, sec = timed(build_cache, shard["clip_id"].tolist(), paths, cache, spec, num_workers=1, progress=False)
    build_row = (n_clips, sec, f"{report['bytes'] / n_clips / 1e3:.0f} kB per clip on disk")
    os.system(f"cat {cache} > /dev/null")  # warm page cache: measure the reader, not the disk
    src = CacheBatches([str(cache)] * n_clips, list(range(n_clips)), batch_size)
    index = build_index(stack_embeddings(reps), reps["machine"].tolist(), use_gpu=False)
    machines = reps["machine"].tolist()

    fast = for_inference(model)  # what embed_stream runs (optimize=True)

    def forward(bs, n, net=model):
        x = torch.from_numpy(AudioCache(cache).get_rows(np.arange(bs)))
        with torch.inference_mode():
            for _ in range(max(1, n // bs)):
                net(x)

    compiled, compile_s = None, 0.0
    if compile_row:  # headroom left by the eager ops: inductor fuses the element-wise ops into the convolutions
        import torch._inductor.config as inductor_config

        compiled = torch.compile(fast, dynamic=False)
        with inductor_config.patch(freezing=True):
            _, compile_s = timed(lambda: forward(batch_size, batch_size, compiled))

    def per_clip_loop():
        embs = []
        with torch.no_grad():
            for p in paths:
                w = torch.from_numpy(load_clip(p, spec))
                embs.append(model(w[None])["cat"][0].numpy())
        return search_nearest_machine(index, machines, np.stack(embs))

    q = np.random.default_rng(0).standard_normal((200_000, 384)).astype(np.float32)
    n_fwd = min(n_clips, 128)
    steps = [  # (name, function, clips, note); each is timed `repeats` times, interleaved; best kept
        ("decode (load_clip + int16, 1 process)", lambda: [quantize(load_clip(p, spec)) for p in paths], n_clips,
         "soundfile + fix_length, no resampling (16-kHz files)"),
        ("cache read (pread, batched)", lambda: [b for b in iter_batches(src, prefetch=0)], n_clips, "page cache warm"),
        ("embedding forward (Ba, batch 1)", lambda: forward(1, n_fwd // 4), n_fwd // 4,
         "the model as trained, preloaded clip: the per-clip loop's forward"),
        ("embedding forward (Ba, batch 1, inference copy)", lambda: forward(1, n_fwd // 4, fast), n_fwd // 4,
         "folded BNs, channels-last (for_inference)"),
        (f"embedding forward (Ba, batch {batch_size})", lambda: forward(batch_size, n_fwd), n_fwd,
         "the model as trained, preloaded batch, inference_mode"),
        (f"embedding forward (Ba, batch {batch_size}, inference copy)", lambda: forward(batch_size, n_fwd, fast),
         n_fwd, "what the shard job runs, preloaded batch"),
        *([(f"embedding forward (Ba, batch {batch_size}, inference copy + torch.compile)",
            lambda: forward(batch_size, n_fwd, compiled), n_fwd,
            f"inductor, freezing; compiling took {compile_s:.0f} s per process: not used by the workflow")]
          if compiled is not None else []),
        ("embedding forward (Ba, batch 32, inference copy)", lambda: forward(32, n_fwd, fast), n_fwd,
         "a larger batch: slower per clip on a CPU (activations leave the caches)"),
        ("FAISS search (flat IP, 364 reps)", lambda: search_nearest_machine(index, machines, q), len(q),
         "exact search + nearest machine, 384-d"),
        ("streaming shard scoring, cache",
         lambda: score_external_shard(model, shard, cache, reps, batch_size=batch_size, progress=False, use_gpu=False),
         n_clips, "score_external_shard: read + forward + search, prefetch thread"),
        ("streaming shard scoring, no cache",
         lambda: score_external_shard(model, shard, None, reps, audio_spec=spec, batch_size=batch_size,
                                      progress=False, use_gpu=False),
         n_clips, "decodes the WAV files in the prefetch thread"),
        ("streaming shard scoring, cache, model as trained",
         lambda: score_external_shard(model, shard, cache, reps, batch_size=batch_size, progress=False, use_gpu=False,
                                      optimize=False),
         n_clips, "optimize=False: batching and prefetch alone"),
        ("per-clip loop (reference style)", per_clip_loop, n_clips,
         "load one file, forward one clip, append; then search"),
    ]
    forward(1, 1), forward(batch_size, batch_size), forward(batch_size, batch_size, fast)  # warm-up
    best: dict[str, float] = {}
    results = {}
    busy_at_best: dict[str, float] = {}
    cpu_best: dict[str, float] = {}
    for rep in range(repeats):
        for name, fn, n, _ in steps:
            busy = wait_quiet()
            c0 = time.process_time()
            results[name], sec = timed(fn)
            cpu = time.process_time() - c0  # all threads of this process: robust to other users of the CPUs
            cpu_best[name] = min(cpu_best.get(name, float("inf")), cpu)
            if sec < best.get(name, float("inf")):
                best[name], busy_at_best[name] = sec, busy
            print(f"  [{rep + 1}/{repeats}] {name:38s} {n / sec:10.1f} clips/s, {1000 * cpu / n:8.2f} CPU-ms/clip "
                  f"(CPUs busy before: {busy:.0%})", flush=True)
    for name, fn, n, note in steps:
        row(name, n, best[name], note + (f"; CPUs {busy_at_best[name]:.0%} busy before" if busy_at_best[name] >= 0.2
                                         else ""), cpu=cpu_best[name])
        if name.startswith("decode"):
            row("cache build (1 decode worker)", *build_row)
    stream, nocache = results["streaming shard scoring, cache"], results["streaming shard scoring, no cache"]
    ref = results["per-clip loop (reference style)"]
    assert np.allclose(stream["score"], nocache["score"], atol=1e-5)
    agree = float((ref["machine"].to_numpy() == stream["machine"].to_numpy()).mean())
    assert agree > 0.99, agree  # same clips, same model: same answers (up to float ties)
    conv_ms, prof_ms = conv_share(fast, batch_size, spec.n_samples)
    return {"rows": rows, "flops_per_clip": flops_per_clip(model, spec.n_samples),
            "conv_ms_per_clip": conv_ms, "profiled_ms_per_clip": prof_ms,
            "flops_per_clip_18s": flops_per_clip(build_model("ba", 288000), 288000),
            "cache_bytes_per_clip": report["bytes"] / n_clips}


def rss_scaling(out: Path, sizes: list[int], decode_sizes: list[int], batch_size: int, threads: int,
                real_sizes: list[int], real_seconds: float) -> list[dict]:
    res = []
    spec = AudioSpec(sample_rate=16000, clip_seconds=0.5)
    from asdflow.embed import inference_batch_size

    small_batch = inference_batch_size("cpu", spec.clip_seconds)  # what the workflow uses for such clips
    for n in sizes:  # cache path, stand-in net, the whole pool as one shard
        d = out / f"pool{n}"
        man = d / "manifest.parquet"
        if not man.exists():
            write_cache_direct(d / "cache.npy", n, spec)
            write_table(full_manifest_frame(n), man, "external_manifest")
        r = run_job("shard", {"manifest": str(man), "cache": str(d / "cache.npy"), "spec": spec.to_dict(),
                              "model": "standin", "batch_size": small_batch, "threads": threads,
                              "out": str(d / "scores.parquet")})
        res.append({"job": "score shard, cache, stand-in net, 0.5-s clips", "clips": n, **r})
        print(f"  shard job (cache)  {n:>7} clips: peak RSS {r['peak_rss_mib']:.0f} MiB, {r['seconds']:.1f} s", flush=True)
    for n in decode_sizes:  # no-cache path: decode real files
        d = out / f"decode{n}"
        paths = write_wavs(d / "wav", n, 0.5)
        man = d / "manifest.parquet"
        write_table(full_manifest_frame(n, paths), man, "external_manifest")
        r = run_job("shard", {"manifest": str(man), "cache": None, "spec": spec.to_dict(), "model": "standin",
                              "batch_size": small_batch, "threads": threads, "out": str(d / "scores.parquet")})
        res.append({"job": "score shard, no cache (decode), stand-in net, 0.5-s clips", "clips": n, **r})
        print(f"  shard job (decode) {n:>7} clips: peak RSS {r['peak_rss_mib']:.0f} MiB, {r['seconds']:.1f} s", flush=True)
    spec10 = AudioSpec(sample_rate=16000, clip_seconds=real_seconds)
    for n in real_sizes:  # the real Ba net on real-length clips
        d = out / f"real{n}"
        man = d / "manifest.parquet"
        if not man.exists():
            write_cache_direct(d / "cache.npy", n, spec10)
            write_table(full_manifest_frame(n), man, "external_manifest")
        r = run_job("shard", {"manifest": str(man), "cache": str(d / "cache.npy"), "spec": spec10.to_dict(),
                              "model": "ba", "batch_size": batch_size, "threads": threads,
                              "out": str(d / "scores.parquet")})
        res.append({"job": f"score shard, cache, Ba net, {real_seconds:g}-s clips", "clips": n, **r})
        print(f"  shard job (Ba)     {n:>7} clips: peak RSS {r['peak_rss_mib']:.0f} MiB, {r['seconds']:.1f} s", flush=True)
    return res


def full_manifest_frame(n: int, paths: list[str] | None = None, shard: int = 0, offset: int = 0) -> pd.DataFrame:
    ids = np.char.add("ext/Y", np.char.zfill(np.arange(offset, offset + n).astype(str), 11)).astype(object)
    return pd.DataFrame({
        "clip_id": ids, "ytid": ids, "path": paths if paths is not None else np.char.add("/pool/", ids.astype(str)) + ".wav",
        "start_seconds": 0.0, "end_seconds": 10.0, "label_mids": [["/m/0"]] * n, "label_names": [["x"]] * n,
        "segments_file": "unbalanced_train_segments.csv", "shard": shard, "duration": 10.0, "sample_rate": 16000,
        "channels": 1,
    })


def merge_scaling(out: Path, rows_list: list[int], shard_rows: int) -> list[dict]:
    d = out / "merge_shards"
    total = max(rows_list)
    n_shards = -(-total // shard_rows)
    rng = np.random.default_rng(0)
    d.mkdir(parents=True, exist_ok=True)
    for s in range(n_shards):
        p = d / f"shard-{s:04d}.parquet"
        if p.exists():
            continue
        ids = np.char.add("ext/Y", np.char.zfill(np.arange(s * shard_rows, (s + 1) * shard_rows).astype(str), 11))
        sim = rng.uniform(0, 1, shard_rows)
        write_table(pd.DataFrame({"clip_id": ids.astype(object), "label_mids": [["/m/0", "/m/1"]] * shard_rows,
                                  "label_names": [["a", "b"]] * shard_rows,
                                  "machine": np.char.add("machine", np.char.zfill(rng.integers(0, N_MACHINES, shard_rows).astype(str), 2)).astype(object),
                                  "similarity": sim, "score": -sim}), p, "external_scores")
    res = []
    for rows in rows_list:
        k = -(-rows // shard_rows)
        for how in ("streaming", "concat"):
            r = run_job("merge", {"dir": str(d), "n_shards": k, "how": how})
            r.update(shards=k, how=how, rows_per_s=round(r["rows"] / r["seconds"]))
            res.append(r)
            print(f"  merge {how:9s} {r['rows']:>8} rows / {k:>3} shards: peak RSS {r['peak_rss_mib']:.0f} MiB, "
                  f"{r['seconds']:.1f} s", flush=True)
    return res


def dry_run(out: Path, n_rows: int, n_shards: int, stages: int) -> list[dict]:
    """Time `snakemake -n` of the full-scale DAG: the manifest shards exist (n_rows rows, no audio)."""
    w = out / "dag"
    ext = w / "results" / "manifests" / "external"
    ext.mkdir(parents=True, exist_ok=True)
    per = -(-n_rows // n_shards)
    if not (ext / f"shard-{n_shards - 1:04d}.parquet").exists():
        for s in range(n_shards):
            m = min(per, n_rows - s * per)
            write_table(full_manifest_frame(m, shard=s, offset=s * per), ext / f"shard-{s:04d}.parquet",
                        "external_manifest")
        (w / "results" / "manifests" / "external.report.json").write_text("{}\n")
        seg = w / "unbalanced_train_segments.csv"  # the big segments file exists but is never read at parse time
        with seg.open("w") as f:
            f.write("# YTID, start_seconds, end_seconds, positive_labels\n")
            for i in range(n_rows):
                f.write(f'Y{i:010d}, 0.000, 10.000, "/m/0"\n')
    res = []
    scontrol = shutil.which("scontrol")
    if scontrol:  # the Slurm plugin asks `scontrol show config` at startup; without a controller it times out
        _, sc = timed(subprocess.run, [scontrol, "show", "config"], capture_output=True)
        print(f"  note: `scontrol show config` takes {sc:.1f} s here (Slurm client without a controller)")
    else:
        sc = 0.0
    for cache in (True, False):
        cfg = w / f"config_cache{int(cache)}.yaml"
        cfg.write_text(json.dumps({
            "external": {"segments": [str(w / "unbalanced_train_segments.csv")], "labels": str(w / "labels.csv"),
                         "audio_dirs": [str(w / "audio")]},
            "external_pool": {"n_shards": n_shards, "cache": cache},
            "systems": ["Ba+Ltrp+Ps+Ex"], "system_definitions": {"Ba+Ltrp+Ps+Ex": {"stages": stages}},
        }))
        cmd = [str(Path(sys.executable).with_name("snakemake")), "-n", "--cores", "16", "--snakefile",
               str(ROOT / "Snakefile"), "--directory", str(w), "--configfile", str(cfg), "--quiet", "rules"]
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        sec = time.perf_counter() - t0
        if p.returncode != 0:
            raise RuntimeError(f"dry run failed:\n{p.stdout}\n{p.stderr}")
        counts = {}
        for line in (p.stdout + p.stderr).splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                counts[parts[0]] = int(parts[1])
        res.append({"cache": cache, "seconds": round(sec, 2), "scontrol_seconds": round(sc, 2),
                    "net_seconds": round(sec - sc, 2), "jobs": counts.get("total"),
                    "score_external_shard": counts.get("score_external_shard"),
                    "cache_external_shard": counts.get("cache_external_shard", 0)})
        print(f"  dry run (cache={cache}): {sec:.1f} s, {counts.get('total')} jobs", flush=True)
    return res


def extrapolate(tp: dict, gflops_cpu: float, node: dict) -> dict:
    """One stage = 1.8M clips through one shard job per GPU: time of each bound, the max wins."""
    n = node["pool"]
    flops = tp["flops_per_clip_18s"]
    compute_s = n * flops / (node["gpu_tflops"] * 1e12 * node["gpu_efficiency"])
    read_s = n * tp["cache_bytes_per_clip_18s"] / (node["read_gbps"] * 1e9)
    decode_rate = tp["rows"]["decode (load_clip + int16, 1 process)"]["clips_per_s"] * node["decode_cores"]
    decode_s = n * (10.0 / node["clip_seconds_measured"]) / decode_rate  # 10-s source clips
    overhead_s = node["n_shards"] * node["job_overhead_s"]  # one shard job after the other per GPU
    with_cache = (max(compute_s, read_s) + overhead_s) / node["gpus"]
    without_cache = (max(compute_s, decode_s) + overhead_s) / node["gpus"]
    few = node["gpu_shards"] * node["job_overhead_s"]  # the same pool in fewer, larger shards
    return {"assumptions": node, "compute_s": compute_s, "cache_read_s": read_s, "decode_s": decode_s,
            "overhead_s": overhead_s, "overhead_few_shards_s": few,
            "stage_with_cache_min": with_cache / 60, "stage_without_cache_min": without_cache / 60,
            "stage_with_cache_few_shards_min": (max(compute_s, read_s) + few) / node["gpus"] / 60,
            "stage_without_cache_few_shards_min": (max(compute_s, decode_s) + few) / node["gpus"] / 60,
            "this_cpu_stage_hours": n / tp["rows"]["streaming shard scoring, cache"]["clips_per_s"] / 3600}


def _table(title: str, header: list[str], rows: list[list]) -> list[str]:
    """A markdown section: heading, table (first column left-aligned, the others right), blank line."""
    out = [f"### {title}", "", "| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out + [""]


def markdown(r: dict) -> str:
    lines = [f"Machine: {r['machine']}; torch {r['torch']} ({r['threads']} threads); "
             f"load average at start {r['loadavg_start']}, at end {r['loadavg_end']}"
             + (f"; reused from an earlier run: {r['reused_from_previous_run']}" if r.get("reused_from_previous_run")
                else "") + ".", ""]
    if "throughput" in r:
        tp, args = r["throughput"], r["args"]
        lines += [f"### Throughput ({args['clips']} clips of {args['clip_seconds']:g} s, 16 kHz, batch "
                  f"{args['batch_size']}; best of {args['repeats']} interleaved timings)", "",
                  "| step | clips/s (wall) | CPU-ms per clip | clips | seconds | note |", "|---|---:|---:|---:|---:|---|"]
        for name, row in tp["rows"].items():
            cpu = "" if row.get("cpu_ms_per_clip") is None else f"{row['cpu_ms_per_clip']:.2f}"
            lines.append(f"| {name} | {row['clips_per_s']:.1f} | {cpu} | {row['clips']} | {row['seconds']:.1f} | "
                         f"{row['note']} |")
        stream = tp["rows"]["streaming shard scoring, cache"]["clips_per_s"]
        nocache = tp["rows"]["streaming shard scoring, no cache"]["clips_per_s"]
        loop = tp["rows"]["per-clip loop (reference style)"]["clips_per_s"]
        fwd = tp["rows"][f"embedding forward (Ba, batch {args['batch_size']}, inference copy)"]
        plain = tp["rows"].get("streaming shard scoring, cache, model as trained", {}).get("clips_per_s")
        g = tp["flops_per_clip"] / 1e9
        cpu = {k: tp["rows"][k].get("cpu_ms_per_clip") for k in ("streaming shard scoring, cache",
                                                                  "streaming shard scoring, no cache",
                                                                  "per-clip loop (reference style)")}
        lines += ["", f"Throughput ratio streaming / per-clip loop (wall clock): **{stream / loop:.2f}x** with the "
                  f"cache, **{nocache / loop:.2f}x** without"
                  + (f"; of it, batching + prefetch alone (model as trained): {plain / loop:.2f}x, the inference "
                     f"copy: {stream / plain:.2f}x." if plain else ".")]
        if None not in cpu.values():
            lines += [f"CPU time per clip, per-clip loop / streaming: "
                      f"**{cpu['per-clip loop (reference style)'] / cpu['streaming shard scoring, cache']:.2f}x** with "
                      f"the cache, {cpu['per-clip loop (reference style)'] / cpu['streaming shard scoring, no cache']:.2f}x"
                      " without."]
        lines += ["", "### Roofline", "",
                  f"- Ba net FLOPs per clip (conv + linear, FlopCounterMode): {g:.2f} GFLOP at "
                  f"{args['clip_seconds']:g} s, {tp['flops_per_clip_18s'] / 1e9:.2f} GFLOP at 18 s",
                  f"- measured matmul (2048x2048 fp32, {r['threads']} threads): {r['matmul_gflops']:.1f} GFLOP/s",
                  f"- forward pass (batch {args['batch_size']}) reaches {fwd['clips_per_s'] * g:.1f} GFLOP/s = "
                  f"**{fwd['clips_per_s'] * g / r['matmul_gflops']:.0%}** of that roofline "
                  f"(streaming shard scoring: {stream * g / r['matmul_gflops']:.0%}, "
                  f"per-clip loop: {loop * g / r['matmul_gflops']:.0%})",
                  f"- ceiling: if the convolutions ran at that matmul rate and every other op (FFTs, magnitudes, "
                  f"pools, batch norms, ReLUs, SE) were free, a clip would take {1000 * g / r['matmul_gflops']:.1f} ms "
                  f"and streaming could be at most **{r['matmul_gflops'] / g / loop:.1f}x** the per-clip loop on "
                  "this CPU"]
        if tp.get("conv_ms_per_clip"):
            lines.append(f"- profiled (torch.profiler, batch {args['batch_size']}, inference copy): convolutions "
                         f"{tp['conv_ms_per_clip']:.1f} ms of {tp['profiled_ms_per_clip']:.1f} ms per clip = "
                         f"{g / tp['conv_ms_per_clip'] * 1000:.0f} GFLOP/s, i.e. "
                         f"{g / tp['conv_ms_per_clip'] * 1000 / r['matmul_gflops']:.0%} of the matmul rate")
        lines.append("")
    if "rss" in r:
        lines += _table("Peak RSS of one shard job as the shard grows",
                        ["job", "clips", "peak RSS (MiB)", "scoring (s)", "whole job (s)"],
                        [[j["job"], j["clips"], f"{j['peak_rss_mib']:.0f}", f"{j['seconds']:.1f}",
                          f"{j.get('wall_seconds', float('nan')):.1f}"] for j in r["rss"]])
    if "merge" in r:
        lines += _table("Merge (select_external) as the pool grows (4,500-row shards, 14 machine types, N_max 1000)",
                        ["merge", "rows", "shards", "peak RSS (MiB)", "seconds", "rows/s"],
                        [[j["how"], j["rows"], j["shards"], f"{j['peak_rss_mib']:.0f}", f"{j['seconds']:.1f}",
                          j["rows_per_s"]] for j in r["merge"]])
    if "dry_run" in r:
        d = r["dry_run_args"] if "dry_run_args" in r else r["args"]
        lines += [f"### Full-scale dry run ({d['full_rows']:,} manifest rows, {d['shards']} shards, M = {d['stages']})",
                  "", "| external_pool.cache | snakemake -n wall (s) | of which scontrol wait (s) | net (s) | jobs | "
                  "score_external_shard | cache_external_shard |", "|---|---:|---:|---:|---:|---:|---:|"]
        for j in r["dry_run"]:
            lines.append(f"| {str(j['cache']).lower()} | {j['seconds']:.1f} | {j['scontrol_seconds']:.1f} | "
                         f"{j['net_seconds']:.1f} | {j['jobs']} | {j['score_external_shard']} | "
                         f"{j['cache_external_shard']} |")
        lines.append("")
    if "extrapolation" in r:
        e = r["extrapolation"]
        a = e["assumptions"]
        lines += ["### Extrapolation: one 1.8M-clip stage on one GPU node", "",
                  f"Assumptions: {a['gpus']} GPU(s) at {a['gpu_tflops']:g} TFLOP/s dense bf16, "
                  f"{a['gpu_efficiency']:.0%} of it reached by the Ba net; cache read at {a['read_gbps']:g} GB/s; "
                  f"{a['decode_cores']} CPU cores decoding at this machine's per-core rate; 18-s crops; shard jobs "
                  "run back to back on the node with loading overlapped (the slowest of compute and I/O is the "
                  "stage time).", "",
                  f"- compute: {e['compute_s'] / 60:.1f} min; cache read: {e['cache_read_s'] / 60:.1f} min; "
                  f"decoding from the audio files: {e['decode_s'] / 60:.1f} min; start-up of {a['n_shards']} shard "
                  f"jobs at {a['job_overhead_s']:.1f} s each (measured here: whole job minus scoring): "
                  f"{e['overhead_s'] / 60:.1f} min",
                  f"- **one stage with the cache: {e['stage_with_cache_min']:.0f} min; without: "
                  f"{e['stage_without_cache_min']:.0f} min** (this 2-core CPU: {e['this_cpu_stage_hours']:.0f} h)",
                  f"- the start-up of the shard jobs dominates on a GPU: the same pool in {a['gpu_shards']} shards "
                  f"({1_800_000 // a['gpu_shards']:,} clips each; peak RSS grows by the O(shard) slope above, "
                  f"memory per batch does not): with the cache {e['stage_with_cache_few_shards_min']:.0f} min, "
                  f"without {e['stage_without_cache_few_shards_min']:.0f} min"]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "scale"))
    ap.add_argument("--clips", type=int, default=256, help="clips of the throughput comparison")
    ap.add_argument("--clip-seconds", type=float, default=10.0)
    ap.add_argument("--batch-size", type=int, default=None,
                    help="clips per batch; default: what the workflow uses on a CPU (config inference)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="timings per step (interleaved; the best is kept)")
    ap.add_argument("--sizes", default="2000,4500,10000,100000",
                    help="shard sizes of the RSS runs (cache, stand-in net; 4500 = the default shard of a 1.8M pool)")
    ap.add_argument("--decode-sizes", default="4500,10000", help="shard sizes of the no-cache RSS runs")
    ap.add_argument("--real-sizes", default="64,512", help="shard sizes of the RSS runs with the real Ba net")
    ap.add_argument("--merge-rows", default="10000,100000,1800000")
    ap.add_argument("--full-rows", type=int, default=1_800_000)
    ap.add_argument("--shards", type=int, default=400)
    ap.add_argument("--stages", type=int, default=5)
    ap.add_argument("--gpu-tflops", type=float, default=312.0, help="dense bf16 peak of one GPU (A100: 312)")
    ap.add_argument("--gpu-efficiency", type=float, default=0.25)
    ap.add_argument("--gpus", type=int, default=1)
    ap.add_argument("--gpu-shards", type=int, default=40, help="shard count of the GPU alternative in the extrapolation")
    ap.add_argument("--read-gbps", type=float, default=2.0)
    ap.add_argument("--decode-cores", type=int, default=16)
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile row (needs a C++ compiler)")
    ap.add_argument("--parts", default="throughput,rss,merge,dryrun", help="which measurements to run")
    ap.add_argument("--job", nargs=2, metavar=("KIND", "ARGS"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.batch_size is None:
        from asdflow.embed import inference_batch_size

        a.batch_size = inference_batch_size("cpu", a.clip_seconds)
    if a.job:
        kind, args = a.job
        print(json.dumps((job_shard if kind == "shard" else job_merge)(json.loads(args))))
        return
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    ints = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    r = {"args": vars(a), "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
         "torch": torch.__version__, "threads": a.threads, "loadavg_start": [round(x, 2) for x in os.getloadavg()]}
    parts = set(a.parts.split(","))
    prev = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else {}
    print("matmul roofline ...", flush=True)
    r["matmul_gflops"] = matmul_gflops(a.threads)
    if "throughput" in parts:
        print("throughput ...", flush=True)
        tp = throughput(out, a.clips, a.clip_seconds, a.batch_size, a.threads, a.repeats, compile_row=not a.no_compile)
        tp["cache_bytes_per_clip_18s"] = 2 * 16000 * 18
        r["throughput"] = tp
    if "rss" in parts:
        print("peak RSS of shard jobs ...", flush=True)
        r["rss"] = rss_scaling(out, ints(a.sizes), ints(a.decode_sizes), a.batch_size, a.threads, ints(a.real_sizes),
                               a.clip_seconds)
    if "merge" in parts:
        print("merge ...", flush=True)
        r["merge"] = merge_scaling(out, ints(a.merge_rows), 4500)
    if "dryrun" in parts:
        print("full-scale dry run ...", flush=True)
        r["dry_run"] = dry_run(out, a.full_rows, a.shards, a.stages)
        r["dry_run_args"] = {"full_rows": a.full_rows, "shards": a.shards, "stages": a.stages}
    for key in ("throughput", "rss", "merge", "dry_run"):  # parts not rerun keep their last results
        if key not in r and key in prev:
            if key == "dry_run":
                r["dry_run_args"] = prev.get("dry_run_args", prev["args"])
            r[key] = prev[key]
            r.setdefault("reused_from_previous_run", []).append(key)
    if "throughput" in r:
        small = [j for j in r.get("rss", []) if j["clips"] == min(x["clips"] for x in r["rss"])] if r.get("rss") else []
        overhead = min((j["wall_seconds"] - j["seconds"] for j in small if "wall_seconds" in j), default=10.0)
        r["extrapolation"] = extrapolate(r["throughput"], r["matmul_gflops"], {
            "n_shards": a.shards, "gpu_shards": a.gpu_shards, "job_overhead_s": round(overhead, 1),
            "pool": 1_800_000, "gpus": a.gpus, "gpu_tflops": a.gpu_tflops, "gpu_efficiency": a.gpu_efficiency,
            "read_gbps": a.read_gbps, "decode_cores": a.decode_cores, "clip_seconds_measured": a.clip_seconds})
    r["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    (out / "results.json").write_text(json.dumps(r, indent=2, default=str) + "\n")
    md = markdown(r)
    (out / "results.md").write_text(md)
    print("\n" + md)


if __name__ == "__main__":
    main()
