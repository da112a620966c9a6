"""End-to-end: the real Snakemake workflow on the tiny config; every artifact has its schema."""

import json

import numpy as np
import pandas as pd
import torch

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
    assert min(map(len, shards)) > 0  # stable hash sharding: balanced in expectation
    for i, shard in enumerate(shards):
        c = AudioCache(r / f"cache/external/shard-{i:04d}.npy")
        assert c.clip_ids == shard["clip_id"].tolist()
        # the pool is written at 32 kHz: the cache holds it resampled to 16 kHz
        assert c.get_rows(np.arange(len(c))).shape == (len(shard), 16000)
    assert "ToyCar" in (r / "summary/data.md").read_text()


def _planned(stdout: str) -> list[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run lists."""
    import re

    jobs = []
    for block in re.split(r"\n(?=\s*rule \w+:)", stdout):
        m = re.match(r"\s*rule (\w+):", block)
        if m:
            w = re.search(r"^\s*wildcards: (.*)$", block, re.M)
            jobs.append((m.group(1), w.group(1).strip() if w else ""))
    return jobs


def test_stage1_is_trained_once_and_reused(tmp_path, tiny_config):
    """stage1_from: Ba+Ltrp+Ps+Ex (tiny: 2 stages) copies Ba+Ltrp's stage-1 model; its own
    stage 2 is trained; everything after the model is still its own."""
    proc = run_snakemake(tmp_path, "-n", configfiles=[tiny_config])
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = [(r, dict(kv.split("=", 1) for kv in w.split(", ")) if w else {}) for r, w in _planned(proc.stdout)]
    train = sorted((w["system"], w["stage"]) for r, w in jobs if r == "train_embedding")
    # Wilkinghoff+SSL is a stage-1 system of its own (another net: nothing to reuse), as is DCASE2025-Spec
    assert train == [("Ba+Ltrp", "1"), ("Ba+Ltrp+Ps+Ex", "2"), ("DCASE2025-Spec", "1"), ("DCASE2025-Spec", "2"),
                     ("Wilkinghoff+SSL", "1")], train
    assert [w for r, w in jobs if r == "reuse_stage1_model"] == [{"system": "Ba+Ltrp+Ps+Ex", "seed": "0"}]
    for rule in ("trainset_stage1", "embed_dcase", "representatives", "score_test", "evaluate"):
        assert any(r == rule and w["system"] == "Ba+Ltrp+Ps+Ex" and w.get("stage", "1") == "1" for r, w in jobs), rule
    # a stage 1 that differs from the base's is refused at parse time, naming both and the key
    bad = tmp_path / "bad.yaml"
    bad.write_text("system_definitions:\n  Ba+Ltrp+Ps+Ex:\n    train: {lr: 0.01}\n")
    proc = run_snakemake(tmp_path, "-n", configfiles=[tiny_config, bad])
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "system Ba+Ltrp+Ps+Ex: stage1_from 'Ba+Ltrp'" in out and "train.lr" in out, out[-2000:]


def test_seeds_from_the_command_line(tmp_path, tiny_config):
    """`--config seeds='[0,1,2]'` (Snakemake 9 hands the items over as strings) plans 3 seeds."""
    proc = run_snakemake(tmp_path, "-n", "--config", "systems=[Ba+Ltrp]", "seeds=[0,1,2]",
                         configfiles=[tiny_config])
    assert proc.returncode == 0, proc.stderr[-3000:]
    seeds = sorted(w.split("seed=")[1].split(",")[0] for r, w in _planned(proc.stdout) if r == "train_embedding")
    assert seeds == ["0", "1", "2"], seeds


def test_labeled_and_unlabeled_trainsets_in_one_run(tmp_path, tiny_config):
    """hide_attributes on (default): the labeled ladder rung L trains on the true attributes,
    its unlabeled twin U never sees one (data steps + the two trainsets only, no training)."""
    proc = run_snakemake(tmp_path, "--", "results/L/seed0/stage1/trainset.parquet",
                         "results/U/seed0/stage1/trainset.parquet", configfiles=[tiny_config])
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = read_table(tmp_path / "results/manifests/dcase.parquet", "dcase_manifest")
    assert (manifest["attr_string"] == "").all()  # hidden from the manifest's visible columns
    labeled = read_table(tmp_path / "results/L/seed0/stage1/trainset.parquet", "trainset")
    unlabeled = read_table(tmp_path / "results/U/seed0/stage1/trainset.parquet", "trainset")
    assert set(unlabeled["label"]) == {"ToyCar", "fan"}
    assert labeled["label"].str.match(r"^(ToyCar|fan)_sec00_\w+=").all() and labeled["label"].nunique() > 2
    assert sorted(labeled["clip_id"]) == sorted(unlabeled["clip_id"])


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
    for system in ("Ba+Ltrp", "GMM", "AE", "CAE-DANN-SVDD", "Serial-OE"):
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
    assert {sy.split("@")[0] for sy in long["system"]} == {"Ba+Ltrp", "GMM", "AE", "CAE-DANN-SVDD", "Serial-OE",
                                                           "Ba+Ltrp+Ps+Ex", "Wilkinghoff+SSL", "DCASE2025-Spec",
                                                           "Ens-zsum", "Ens-rank"}
    assert long.loc[long["machine"] == "ALL", "official_score"].notna().all()
    table = (r / "summary/table.md").read_text()
    assert "Ba+Ltrp" in table and "GMM" in table and "AE" in table and "official score" in table
    # the frame baselines went through the same generic rules, with their own fitted models
    from asdflow.baselines import load_baseline_model
    assert set(load_baseline_model(r / "AE/seed0/stage1/baseline.pkl", "autoencoder").states) == {"ToyCar", "fan"}
    cae = load_baseline_model(r / "CAE-DANN-SVDD/seed0/stage1/baseline.pkl", "cae_svdd")
    assert set(cae.states) == {"ToyCar", "fan"}  # one shared model (paper 004), keyed per machine type
    soe = load_baseline_model(r / "Serial-OE/seed0/stage1/baseline.pkl", "serial_oe")
    # seed 001: one extractor per machine type (the other type's clips were its pseudo-anomalies),
    # GMMs per section (+ the type's pooled one); no anomaly list given
    assert set(soe.states) == {"ToyCar", "fan"} and set(soe.gmms["fan"]) == {"*", "00"}
    assert soe.config["n_anomalous"] == {} and soe.config["extractor"] == "Ba"


def test_wilkinghoff_ssl_system(tiny_run):
    """Seed 002's Wilkinghoff+SSL: its train.ssl options reach the training loop (an SSL loss
    term in the history, mixup at 50 %, the SSL head saved) and its rows are in the summary."""
    import torch

    stage = tiny_run / "results/Wilkinghoff+SSL/seed0/stage1"
    report = json.loads((stage / "train_report.json").read_text())
    assert report["epochs"] == len(report["history"]) == 2
    assert all(np.isfinite(h["ssl"]) and h["ssl"] > 0 and h["trp"] == 0 for h in report["history"])
    state = torch.load(stage / "model.pt", map_location="cpu", weights_only=False)
    assert state["config"]["network"] == "Wilkinghoff"
    assert state["config"]["ssl"] == {"statex": True, "featex": True, "variant": "paper", "prob": 0.5, "weight": 1.0}
    n = len(state["classes"])  # machine-type labels; StatEx x FeatEx: 9 N SSL classes, 16 sub-clusters
    assert state["ssl_head"]["head.centres"].shape == (32, 9 * n * 16)
    emb = read_table(stage / "embeddings_test.parquet", "embeddings")
    assert len(emb["embedding"].iloc[0]) == 32  # 2 branches x 16 (tiny net)
    long = pd.read_csv(tiny_run / "results/summary/metrics.csv")
    rows = long[(long["system"].str.split("@").str[0] == "Wilkinghoff+SSL") & (long["machine"] == "ALL")]
    assert set(rows["backend"]) == {"kmeans_cos", "knn", "smote_knn", "rescaled_knn", "gmm"}
    assert rows["official_score"].notna().all()
    assert "Wilkinghoff+SSL" in (tiny_run / "results/summary/table.md").read_text()


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
    assert {"machine", "threshold", "n_out", "n_ex", "machine_like_share"} <= set(audit.columns)
    per, total = audit[audit["machine"] != "ALL"], audit[audit["machine"] == "ALL"].iloc[0]
    assert (per["n_ex"] == per["n_out"].clip(upper=5)).all() and total["n_ex"] == per["n_ex"].sum() == len(sel)
    # the built-in pool knows which clips are machine-like: a share per machine and overall
    assert (per.loc[per["n_ex"] > 0, "machine_like_share"].between(0, 1)).all()
    assert len(sel) == 0 or 0 <= total["machine_like_share"] <= 1
    classes = pd.read_csv(s2 / "selection_classes.csv", keep_default_na=False)
    assert list(classes.columns) == ["machine", "mid", "display_name", "count"]
    assert classes["count"].sum() == len(sel)
    assert (sel["label_name"] != "").any() or len(sel) == 0
    # stage 1 is Ba+Ltrp's model (stage1_from), recorded as reused; its scores are its own files
    assert (s1 / "model.pt").read_bytes() == (r / "Ba+Ltrp/seed0/stage1/model.pt").read_bytes()
    assert json.loads((s1 / "train_report.json").read_text())["reused_from"] == "Ba+Ltrp"
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
    # Ba+Ltrp, GMM, AE, CAE-DANN-SVDD, Serial-OE, Wilkinghoff+SSL + Ba+Ltrp+Ps+Ex and DCASE2025-Spec stages
    # 1, 2 + the 2 ensembles; and the 4 further scoring back-ends of the 6 embedding runs (tiny config:
    # all five back-ends)
    assert len(table2) == len(table_a1) == 12 + 4 * 6
    assert set(table2.loc[table2["system"].str.startswith("Wilkinghoff+SSL"), "stage"]) == {1}
    long = pd.read_csv(r / "metrics.csv")
    runs = long[(long["system"].str.startswith("Ba+Ltrp")) & (long["stage"] == 1) & (long["machine"] == "ALL")]
    assert set(runs.loc[runs["system"].str.split("@").str[0] == "Ba+Ltrp", "backend"]) == {
        "kmeans_cos", "knn", "smote_knn", "rescaled_knn", "gmm"}
    assert set(long.loc[long["system"] == "GMM", "backend"]) == {"gmm"}
    assert runs["official_score"].notna().all()
    for b in ("knn", "smote_knn", "rescaled_knn", "gmm"):  # one job scored them all, then evaluate per back-end
        assert (tiny_run / f"results/Ba+Ltrp/seed0/stage1/backends/{b}/metrics.parquet").exists()
    assert len(list((tiny_run / "logs/score_backends/Ba+Ltrp/seed0").glob("stage1.log"))) == 1
    agg = pd.read_csv(r / "aggregate.csv")
    assert set(agg["metric"]) == {"official_score", "auc_source", "auc_target", "pauc"}
    assert "sd" in agg.columns
    ladder = pd.read_csv(r / "ladder.csv", keep_default_na=False).set_index(["system", "stage"])
    assert len(ladder) == 12 + 4 * 6 and ladder.loc[("Ba+Ltrp+Ps+Ex", 2), "ARI"] != ""
    assert ladder.loc[("Ba+Ltrp+Ps+Ex", 2), "N_ex"] != "" and ladder.loc[("Ba+Ltrp+Ps+Ex", 1), "ARI"] == ""
    assert "## Ladder" in (r / "table.md").read_text()
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


def test_score_ensembles_are_evaluated_like_any_system(tiny_run):
    """The tiny config's two ensembles (zsum over Ba+Ltrp+Ps+Ex stage 2 by kmeans_cos and
    smote_knn + GMM; rank over Ba+Ltrp+Ps+Ex stage 1 by knn + GMM, weights 2:1) have the score
    tables, metrics, submission files, ROC figure and summary rows of any system."""
    r = tiny_run / "results"
    gmm = {s: read_table(r / f"GMM/seed0/stage1/{s}_scores.parquet", "scores") for s in ("train", "test")}
    for name, combine, members in (
            ("Ens-zsum", "zsum", ["Ba+Ltrp+Ps+Ex/stage2@kmeans_cos", "Ba+Ltrp+Ps+Ex/stage2@smote_knn",
                                  "GMM/stage1@gmm"]),
            ("Ens-rank", "rank", ["Ba+Ltrp+Ps+Ex/stage1@knn", "GMM/stage1@gmm"])):
        d = r / name / "seed0/stage1"
        for split in ("train", "test"):
            scores = read_table(d / f"{split}_scores.parquet", "scores")
            assert sorted(scores["clip_id"]) == sorted(gmm[split]["clip_id"]) and scores["score"].notna().all()
        report = json.loads((d / "ensemble.json").read_text())
        assert report["combine"] == combine and report["members"] == members
        assert len(report["groups"]) == 2 * len(members)  # 2 machine types x members
        assert len(read_table(d / "metrics.parquet", "metrics")) == 4
        assert len(list((d / "submission/dev_data").glob("*.csv"))) == 4
        assert (d / "report/roc.png").read_bytes()[:4] == b"\x89PNG"
    ranked = read_table(r / "Ens-rank/seed0/stage1/test_scores.parquet", "scores")
    assert ranked["score"].between(0, 1).all()
    long = pd.read_csv(r / "summary/metrics.csv")
    rows = long[long["system"].isin(["Ens-zsum", "Ens-rank"]) & (long["machine"] == "ALL")]
    assert set(zip(rows["system"], rows["backend"], rows["stage"])) == {
        ("Ens-zsum", "ensemble:zsum", 1), ("Ens-rank", "ensemble:rank", 1)}
    assert rows["official_score"].notna().all()
    table = (r / "summary/table.md").read_text()
    assert "Ens-zsum" in table and "Ens-rank" in table
    assert {"Ens-zsum", "Ens-rank"} <= set(pd.read_csv(r / "summary/table2.csv")["system"])


def test_inspect_shows_provenance_for_every_artifact(tiny_run):
    """`asdflow inspect` knows every file of the tiny run and finds its job in Snakemake's
    metadata (declared outputs, files inside directory outputs, the synthetic data files)."""
    import io
    import re

    from asdflow.audit import inspect_path

    files = sorted(p for p in (tiny_run / "results").rglob("*") if p.is_file())
    assert len(files) > 50
    seen_rules = set()
    for path in files:
        buf = io.StringIO()
        assert inspect_path(path, rows=2, out=buf) == 0, path
        text = buf.getvalue()
        assert "unknown artifact" not in text, text[:600]
        m = re.search(r"^  rule +(\w+)$", text, re.M)
        assert m, f"no provenance for {path}:\n{text[:1500]}"
        assert "cannot read" not in text, text[-800:]
        seen_rules.add(m.group(1))
    assert {"synth_data", "dcase_manifest", "train_embedding", "embed_dcase", "select_external",
            "evaluate", "summary_table", "plot_roc"} <= seen_rules, seen_rules
    model = io.StringIO()
    inspect_path(tiny_run / "results/Ba+Ltrp/seed0/stage1/model.pt", out=model)
    assert "parameters per top-level module" in model.getvalue() and "classes: 2 (ToyCar, fan)" in model.getvalue()


def test_dcase2025_spec_runs_end_to_end(tiny_run):
    """Seed 003's system on the tiny data: Spec net (4 branches), stage 2 on GMM-BIC
    pseudo-labels of stage 1's embeddings, SMOTE-kNN scoring as DCASE2025-Spec@smote_knn."""
    r = tiny_run / "results"
    s1, s2 = r / "DCASE2025-Spec/seed0/stage1", r / "DCASE2025-Spec/seed0/stage2"
    emb = read_table(s1 / "embeddings_train.parquet", "embeddings")
    assert len(emb["embedding"].iloc[0]) == 64  # 4 branches x 16 (tiny net)
    cfg = torch.load(s1 / "model.pt", weights_only=False)["config"]
    assert cfg["network"] == "Spec" and cfg["trainable_centres"] and cfg["mixup_prob"] == 0.5
    assert not cfg["triplet"]["enabled"] and cfg["epochs"] == 1
    pl = read_table(s2 / "pseudolabels.parquet", "pseudolabels")
    assert pl["label"].str.match(r"^(ToyCar|fan)_pl\d+$").all()
    quality = pd.read_csv(s2 / "pseudolabel_quality.csv")
    assert {"n_clusters", "ari", "nmi"} <= set(quality.columns)
    log = (tiny_run / "logs/pseudolabels/DCASE2025-Spec/seed0/stage2.log").read_text()
    assert "gmm_bic component counts" in log and "gmm_bic on stage features" in log
    long = pd.read_csv(r / "summary/metrics.csv")
    rows = long[(long["system"].str.split("@").str[0] == "DCASE2025-Spec") & (long["machine"] == "ALL")]
    assert {(s, st) for s, st in zip(rows["system"], rows["stage"])} >= {
        ("DCASE2025-Spec", 1), ("DCASE2025-Spec", 2), ("DCASE2025-Spec@smote_knn", 1),
        ("DCASE2025-Spec@smote_knn", 2)}
    assert rows["official_score"].notna().all()
    table2 = pd.read_csv(r / "summary/table2.csv")
    assert {"DCASE2025-Spec", "DCASE2025-Spec@smote_knn"} <= set(table2["system"])
