"""A pool that grows (issue 14): clips completed later re-ingest and re-score only the shards they
land in; the other shards keep their artifacts, the selection merge covers old and new shards.

Uses a copy of the session's tiny end-to-end run (results and Snakemake's metadata), adds one
clip to its AudioSet-layout pool, then follows the README's two steps: re-ingest the pool
(``--forcerun external_manifest``), then a dry run of the default target lists the jobs left.
"""

from __future__ import annotations

import re
import shutil

from asdflow.io.external import shard_of
from conftest import run_snakemake


def _planned(stdout: str) -> list[tuple[str, dict[str, str]]]:
    jobs = []
    for block in re.split(r"\n(?=\s*rule \w+:)", stdout):
        m = re.match(r"\s*rule (\w+):", block)
        if m:
            w = re.search(r"^\s*wildcards: (.*)$", block, re.M)
            kv = dict(x.split("=", 1) for x in w.group(1).strip().split(", ")) if w else {}
            jobs.append((m.group(1), kv))
    return jobs


def test_adding_a_clip_reruns_only_its_shard(tiny_run, tiny_config, tmp_path):
    work = tmp_path / "run"
    shutil.copytree(tiny_run, work, symlinks=True, copy_function=shutil.copy2)
    synth = next((work / "results" / "data" / "synth").iterdir())
    audioset = synth / "audioset"
    seg = audioset / "metadata" / "eval_segments.csv"
    donor = next((audioset / "audio").rglob("Y*.wav"))
    ytid = "grownClip01"
    shutil.copy2(donor, audioset / "audio" / "eval_segments" / f"Y{ytid}.wav")
    mid = re.search(r'"(/m/[^",]+)', seg.read_text().splitlines()[-1]).group(1)
    with seg.open("a") as fh:
        fh.write(f'{ytid}, 0.000, 1.500, "{mid}"\n')
    n_shards = 2
    grown = f"{shard_of('ext/' + ytid, n_shards):04d}"

    # step 1: re-ingest the pool (Snakemake cannot see new files inside a data folder)
    # "--forcerun=<rule>": the option takes several values, a bare "--forcerun <rule> <target>" would
    # swallow the target and run the default target instead
    proc = run_snakemake(work, "--forcerun=external_manifest", "results/manifests/external.report.json",
                         configfiles=[tiny_config])
    assert proc.returncode == 0, proc.stderr[-3000:]
    # step 2: what a normal run would do now
    proc = run_snakemake(work, "-n", configfiles=[tiny_config])
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = _planned(proc.stdout)
    per_shard = [(r, w["shard"]) for r, w in jobs if "shard" in w]
    assert ("cache_external_shard", grown) in per_shard, per_shard
    assert all(s == grown for _, s in per_shard), per_shard  # the other shard keeps its cache and scores
    assert any(r == "score_external_shard" for r, _ in per_shard)
    rules = {r for r, _ in jobs}
    assert "external_manifest" not in rules
    assert {"select_external", "train_embedding"} <= rules, rules  # the merge covers old + new shards
    assert not any(r == "train_embedding" and w.get("stage") == "1" for r, w in jobs)  # stage 1: no pool
