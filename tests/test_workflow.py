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


def test_stage1_artifacts(tiny_run):
    r = tiny_run / "results"
    manifest = read_table(r / "manifests/dcase.parquet", "dcase_manifest")
    stage = r / "Ba+Ltrp/seed0/stage1"
    trainset = read_table(stage / "trainset.parquet", "trainset")
    assert set(trainset["label"]) == {"ToyCar", "fan"}  # unlabeled condition: machine-type labels
    assert len(trainset) == (manifest["split"] == "train").sum() and not trainset["is_external"].any()
    train_report = json.loads((stage / "train_report.json").read_text())
    assert train_report["epochs"] == len(train_report["history"]) == 2
    assert all(np.isfinite(h["loss"]) and h["trp"] >= 0 for h in train_report["history"])
    emb = {s: read_table(stage / f"embeddings_{s}.parquet", "embeddings") for s in ("train", "test")}
    for split, e in emb.items():
        assert (e["split"] == split).all() and len(e) == (manifest["split"] == split).sum()
        assert len(e["embedding"].iloc[0]) == 48  # 3 branches x 16 (tiny net)
    reps = read_table(stage / "representatives.parquet", "representatives")
    # per machine: k_source=4 source centres + every (3) target training clip
    assert reps.groupby("machine").size().to_dict() == {"ToyCar": 7, "fan": 7}
    for system in ("Ba+Ltrp", "GMM", "AE"):
        d = r / system / "seed0/stage1"
        for split in ("train", "test"):
            scores = read_table(d / f"{split}_scores.parquet", "scores")
            assert scores["score"].notna().all() and (scores["split"] == split).all()
            assert sorted(scores["clip_id"]) == sorted(manifest.loc[manifest["split"] == split, "clip_id"])
        metrics = read_table(d / "metrics.parquet", "metrics")
        assert len(metrics) == 4  # 2 machines x 1 section x 2 domains
        assert metrics[["auc", "pauc"]].apply(lambda c: c.between(0, 1)).all().all()
        sub = sorted(p.name for p in (d / "submission/dev_data").iterdir())
        assert sub == [f"{k}_{m}_section_00_test.csv" for k in ("anomaly_score", "decision_result")
                       for m in ("ToyCar", "fan")]
        rows = (d / "submission/dev_data/decision_result_fan_section_00_test.csv").read_text().splitlines()
        assert len(rows) == 8 and all(r.split(",")[1] in ("0", "1") for r in rows)
    long = pd.read_csv(r / "summary/metrics.csv")
    assert {"system", "seed", "stage", "split", "machine", "section", "domain", "auc", "pauc"} <= set(long.columns)
    assert set(long["system"]) == {"Ba+Ltrp", "GMM", "AE", "Ba+Ltrp+Ps+Ex"}
    assert long.loc[long["machine"] == "ALL", "official_score"].notna().all()
    table = (r / "summary/table.md").read_text()
    assert "Ba+Ltrp" in table and "GMM" in table and "AE" in table and "official score" in table
    # the frame baselines went through the same generic rules, with their own fitted models
    from asdflow.baselines import load_baseline_model
    assert set(load_baseline_model(r / "AE/seed0/stage1/baseline.pkl", "autoencoder").states) == {"ToyCar", "fan"}


def test_stage2_artifacts_of_the_iterative_system(tiny_run):
    r = tiny_run / "results"
    s1, s2 = r / "Ba+Ltrp+Ps+Ex/seed0/stage1", r / "Ba+Ltrp+Ps+Ex/seed0/stage2"
    ext = pd.concat([read_table(r / f"manifests/external/shard-{i:04d}.parquet", "external_manifest")
                     for i in range(2)])
    scored = pd.concat([read_table(s2 / f"external_scores/shard-{i:04d}.parquet", "external_scores")
                        for i in range(2)])
    assert sorted(scored["clip_id"]) == sorted(ext["clip_id"])  # every pool clip scored once
    assert set(scored["machine"]) <= {"ToyCar", "fan"}
    # selection: below the machine's highest stage-1 training score, at most n_max=5 per machine
    prev = read_table(s1 / "train_scores.parquet", "scores")
    thr = prev.groupby("machine")["score"].max()
    sel = read_table(s2 / "selection.parquet", "selection")
    assert (sel.groupby("machine").size() <= 5).all()
    assert (sel["score"].to_numpy() < thr.loc[sel["machine"]].to_numpy()).all()
    assert all(lbl.startswith(m + "_") for lbl, m in zip(sel["label"], sel["machine"]))
    audit = pd.read_csv(s2 / "selection_audit.csv")
    assert {"machine", "threshold", "n_out", "n_ex"} <= set(audit.columns)
    assert (audit["n_ex"] == audit["n_out"].clip(upper=5)).all()
    pl = read_table(s2 / "pseudolabels.parquet", "pseudolabels")
    assert pl["label"].str.match(r"^(ToyCar|fan)_pl\d+$").all()
    assert (pd.read_csv(s2 / "pseudolabel_quality.csv")["ari"].between(-1, 1)).all()
    trainset = read_table(s2 / "trainset.parquet", "trainset")
    assert trainset["is_external"].sum() == len(sel)
    orig = trainset[~trainset["is_external"]]
    assert (orig.set_index("clip_id")["label"] == pl.set_index("clip_id")["label"].loc[orig["clip_id"]]).all()
    assert (r / "Ba+Ltrp+Ps+Ex/seed0/stage2/metrics.parquet").exists()
    long = pd.read_csv(r / "summary/metrics.csv")
    assert set(long.loc[long["system"] == "Ba+Ltrp+Ps+Ex", "stage"]) == {1, 2}
    # representatives come from original clips only, even with external clips in the trainset
    reps = read_table(s2 / "representatives.parquet", "representatives")
    assert set(reps["machine"]) == {"ToyCar", "fan"}


def test_summary_tables_and_report(tiny_run, tiny_config):
    r = tiny_run / "results/summary"
    long = pd.read_parquet(r / "metrics.parquet")
    assert len(long) == len(pd.read_csv(r / "metrics.csv"))
    table2, table_a1 = pd.read_csv(r / "table2.csv"), pd.read_csv(r / "table_a1.csv")
    assert list(table2.columns) == ["condition", "system", "stage", "dev"]
    assert list(table_a1.columns) == ["condition", "system", "stage", "dev source", "dev target"]
    assert len(table2) == len(table_a1) == 5  # Ba+Ltrp, GMM, AE (stage 1) + Ba+Ltrp+Ps+Ex stages 1, 2
    agg = pd.read_csv(r / "aggregate.csv")
    assert set(agg["metric"]) == {"official_score", "auc_source", "auc_target", "pauc"}
    assert agg["mean"].between(0, 100).all()
    for png in [r / "auc_by_stage.png", tiny_run / "results/AE/seed0/stage1/report/roc.png",
                tiny_run / "results/Ba+Ltrp+Ps+Ex/seed0/stage2/report/embeddings_2d.png"]:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = tiny_run / "report.zip"
    proc = run_snakemake(tiny_run, "--report", str(report), configfiles=[tiny_config])
    assert proc.returncode == 0, proc.stderr[-3000:]
    import zipfile

    names = zipfile.ZipFile(report).namelist()
    assert any(n.endswith("report.html") for n in names)
    for artifact in ("auc_by_stage.png", "roc.png", "embeddings_2d.png", "selection_audit.csv",
                     "pseudolabel_quality.csv", "table2.csv", "table_a1.csv"):
        assert any(n.endswith(artifact) for n in names), artifact
