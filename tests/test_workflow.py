"""End-to-end: the real Snakemake workflow on the tiny config; every artifact has its schema."""

import json

import numpy as np
import pandas as pd

from asdflow.io.cache import AudioCache
from asdflow.schemas import read_table
from conftest import run_snakemake


def test_data_artifacts(tiny_run):
    r = tiny_run / "results"
    manifest = read_table(r / "manifests/dcase.parquet", "dcase_manifest")
    assert set(manifest["machine"]) == {"ToyCar", "fan"}
    assert manifest["clip_id"].is_unique
    # unlabeled condition by default: attributes hidden but kept for diagnostics
    assert (manifest["attributes"].map(len) == 0).all()
    assert (manifest.loc[manifest["split"] == "train", "hidden_attributes"].map(len) > 0).all()
    report = json.loads((r / "manifests/dcase.report.json").read_text())
    assert report["skipped"] == [] and report["n_rows"] == len(manifest)
    cache = AudioCache(r / "cache/dcase.npy")
    assert cache.clip_ids == manifest["clip_id"].tolist()
    assert (cache.status == "ok").all()
    assert cache.spec.n_samples == 16000  # tiny config: 1.0 s at 16 kHz
    shards = [read_table(r / f"manifests/external/shard-{i:04d}.parquet", "external_manifest") for i in range(2)]
    ext_report = json.loads((r / "manifests/external.report.json").read_text())
    assert sum(map(len, shards)) == ext_report["n_rows"] > 0
    assert ext_report["n_missing"] >= 1  # the synthetic pool misses clips, like real copies
    assert abs(len(shards[0]) - len(shards[1])) <= 1
    for i, shard in enumerate(shards):
        c = AudioCache(r / f"cache/external/shard-{i:04d}.npy")
        assert c.clip_ids == shard["clip_id"].tolist()
        # the pool is written at 32 kHz: the cache holds it resampled to 16 kHz
        assert c.get_rows(np.arange(len(c))).shape == (len(shard), 16000)
    assert "ToyCar" in (r / "summary/data.md").read_text()


def test_dry_run_after_completion_has_nothing_to_do(tiny_run, tiny_config):
    proc = run_snakemake(tiny_run, "-n", configfiles=[tiny_config])
    assert proc.returncode == 0, proc.stderr
    assert "Nothing to be done" in proc.stdout + proc.stderr
