"""Selection (thresholds, N_max, labels, random ablation) and k-means pseudo-labels."""

import numpy as np
import pandas as pd
import pytest

from asdflow.pseudo import gmm_bic_labels, label_quality, pseudo_labels
from asdflow.select import machine_thresholds, select_external


def _pool():
    return pd.DataFrame({
        "clip_id": [f"e{i}" for i in range(8)],
        "machine": ["fan"] * 5 + ["pump"] * 3,
        "score": [-0.9, -0.5, -0.7, -0.2, -0.4, -0.8, -0.1, -0.6],
        "label_mids": [["/m/a", "/m/b"], ["/m/a"], [], ["/m/c"], ["/m/b"], ["/m/a"], ["/m/a"], ["/m/d"]],
        "label_names": [[]] * 8,
    })


def test_thresholds_ignore_external_rows():
    df = pd.DataFrame({"machine": ["fan", "fan", "fan"], "score": [0.1, 0.3, 0.9], "is_external": [False, False, True]})
    assert machine_thresholds(df).to_dict() == {"fan": 0.3}


def test_selection_keeps_the_lowest_scores_below_the_threshold():
    thr = pd.Series({"fan": -0.4, "pump": -0.6})
    sel, audit = select_external(_pool(), thr, n_max=2)
    assert sel[sel["machine"] == "fan"]["clip_id"].tolist() == ["e0", "e2"]  # -0.9, -0.7 (N_out = 3)
    assert sel[sel["machine"] == "pump"]["clip_id"].tolist() == ["e5"]  # -0.6 is not < -0.6
    a = audit.set_index("machine")
    assert a.loc["fan", "n_out"] == 3 and a.loc["fan", "n_ex"] == 2 and a.loc["pump", "n_ex"] == 1
    assert set(sel["label"]) == {"fan_/m/a", "fan_unlabeled", "pump_/m/a"}  # /m/a under two machines: 2 classes
    incl, _ = select_external(_pool(), thr, n_max=5, inclusive=True)
    assert "e7" in set(incl["clip_id"])


def test_label_modes_and_unlabeled_clips():
    thr = pd.Series({"fan": 0.0, "pump": 0.0})
    sel, _ = select_external(_pool(), thr, n_max=10, label_mode="all")
    labels = sel.set_index("clip_id")["label"]
    assert labels["e0"] == "fan_/m/a+/m/b" and labels["e2"] == "fan_unlabeled"


def test_random_mode_same_counts_deterministic():
    thr = pd.Series({"fan": -0.4, "pump": -0.6})
    a, audit = select_external(_pool(), thr, n_max=2, mode="random", seed=1)
    b, _ = select_external(_pool(), thr, n_max=2, mode="random", seed=1)
    assert a.equals(b) and audit.set_index("machine")["n_ex"].to_dict() == {"fan": 2, "pump": 1}
    with pytest.raises(ValueError, match="mode"):
        select_external(_pool(), thr, mode="best")


def test_pseudo_labels_format_caps_and_assignment():
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((30, 4))
    machines = ["fan"] * 20 + ["pump"] * 10
    domains = (["source"] * 17 + ["target"] * 3) + (["source"] * 8 + ["target"] * 2)
    pl = pseudo_labels(emb, machines, domains, k_source=4, k_target=4, seed=0)
    assert pl["label"].str.match(r"^(fan|pump)_pl\d+$").all()
    fan_target = pl["pl_cluster"].to_numpy()[17:20]
    assert set(fan_target) <= {4, 5, 6}  # k_target capped at 3 target clips, numbered after the source ones
    src = pl["pl_cluster"].to_numpy()[:17]
    assert set(src) <= {0, 1, 2, 3}  # paper: own-domain centroids only
    again = pseudo_labels(emb, machines, domains, k_source=4, k_target=4, seed=0)
    assert pl.equals(again)
    # a source clip identical to a target clip goes to a target cluster only with assign="all"
    emb2 = np.vstack([emb[:20], emb[18:19]])
    m2, d2 = ["fan"] * 21, domains[:20] + ["source"]
    everyone = pseudo_labels(emb2, m2, d2, k_source=4, k_target=4, assign="all")
    assert everyone["pl_cluster"].iloc[-1] >= 4
    own = pseudo_labels(emb2, m2, d2, k_source=4, k_target=4, assign="domain")
    assert own["pl_cluster"].iloc[-1] < 4


def test_label_quality():
    truth = ["a", "a", "b", "b", "c", "c"]
    q = label_quality(["x", "x", "y", "y", "z", "z"], truth, ["m"] * 6).set_index("machine")
    assert q.loc["m", "ari"] == pytest.approx(1.0) and q.loc["m", "nmi"] == pytest.approx(1.0)
    assert "mean" in q.index and q.loc["m", "n_clusters"] == 3


def test_gmm_bic_finds_the_number_of_blobs_and_the_blobs():
    """Seed 003 §2.2.3: PCA + a GMM per machine type, the component count chosen by BIC. Three
    well separated blobs in machine a, two in machine b: BIC picks 3 and 2 and the clusters are
    the blobs (ARI 1); labels are per machine; deterministic for a seed."""
    rng = np.random.default_rng(0)
    dim = 64

    def blobs(k, n):
        centres = rng.normal(0, 1, (k, dim)) * 3
        return np.concatenate([c + rng.normal(0, 0.3, (n, dim)) for c in centres]), np.repeat(np.arange(k), n)

    xa, ya = blobs(3, 40)
    xb, yb = blobs(2, 40)
    emb = np.concatenate([xa, xb]) + 10  # away from the origin: L2 normalisation keeps the blobs apart
    machines = np.array(["a"] * len(xa) + ["b"] * len(xb))
    pl, chosen = gmm_bic_labels(emb, machines, pca_dims=10, components=(1, 6), seed=0)
    assert {m: c["n_components"] for m, c in chosen.items()} == {"a": 3, "b": 2}
    assert set(chosen["a"]["bic"]) == set(range(1, 7)) and chosen["a"]["pca_dims"] == 10
    q = label_quality(pl["label"], np.concatenate([ya, yb]).astype(str), machines).set_index("machine")
    assert q.loc["a", "ari"] == pytest.approx(1.0) and q.loc["b", "ari"] == pytest.approx(1.0)
    assert q.loc["a", "n_clusters"] == 3 and all(lab.startswith(f"{m}_pl") for lab, m in zip(pl["label"], machines))
    again, _ = gmm_bic_labels(emb, machines, pca_dims=10, components=(1, 6), seed=0)
    assert (again["label"] == pl["label"]).all()
    # few clips: PCA and the component range are capped, not an error
    few, ch = gmm_bic_labels(emb[:4], machines[:4], pca_dims=50, components=(1, 16))
    assert ch["a"]["pca_dims"] == 3 and max(ch["a"]["bic"]) == 4 and len(few) == 4
    with pytest.raises(ValueError, match="components"):
        gmm_bic_labels(emb, machines, components=(3, 2))


def _big_pool(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    machines = np.array(["fan", "pump", "valve", "orphan"])
    return pd.DataFrame({
        "clip_id": [f"c{i:05d}" for i in range(n)],
        "machine": machines[rng.integers(0, 4, n)],
        "score": np.round(rng.uniform(-1, 0, n), 2),  # rounded: many ties, broken by clip_id
        "label_mids": [["/m/x"] if i % 3 else [] for i in range(n)],
        "label_names": [[]] * n,
    })


@pytest.mark.parametrize("mode", ["score", "random"])
def test_shard_merge_equals_whole_pool_selection(mode, tmp_path):
    from asdflow.schemas import write_table
    from asdflow.select import SelectionMerger, select_from_shards

    pool = _big_pool()
    thr = pd.Series({"fan": -0.3, "pump": -0.95, "valve": 0.0})  # "orphan" has no threshold
    whole, whole_audit = select_external(pool, thr, n_max=50, mode=mode, seed=3)
    shuffled = pool.sample(frac=1.0, random_state=1).reset_index(drop=True)
    paths = []
    for i, part in enumerate(np.array_split(np.arange(len(shuffled)), 7)):
        df = shuffled.iloc[part].assign(similarity=lambda d: -d["score"])
        write_table(df[["clip_id", "label_mids", "label_names", "machine", "similarity", "score"]],
                    tmp_path / f"shard-{i:04d}.parquet", "external_scores")
        paths.append(tmp_path / f"shard-{i:04d}.parquet")
    sharded, audit = select_from_shards(reversed(paths), thr, n_max=50, mode=mode, seed=3)
    pd.testing.assert_frame_equal(sharded, whole)
    pd.testing.assert_frame_equal(audit, whole_audit)
    # N_out is the exact count of candidates, n_ex = min(N_out, n_max); pump has fewer than n_max
    a = audit.set_index("machine")
    for m, t in thr.items():
        assigned = pool[pool["machine"] == m]
        assert a.loc[m, "n_assigned"] == len(assigned)
        assert a.loc[m, "n_out"] == int((assigned["score"] < t).sum())
        assert a.loc[m, "n_ex"] == min(a.loc[m, "n_out"], 50)
    assert 0 < a.loc["pump", "n_out"] < 50 and "orphan" not in a.index
    if mode == "score":  # brute force: the n_ex lowest (score, clip_id) below the threshold
        fan = pool[(pool["machine"] == "fan") & (pool["score"] < -0.3)].sort_values(["score", "clip_id"])
        assert sharded[sharded["machine"] == "fan"]["clip_id"].tolist() == fan["clip_id"].iloc[:50].tolist()
    else:  # a sample of all assigned clips (not only candidates), deterministic in the seed
        fan = sharded[sharded["machine"] == "fan"]
        assert set(fan["clip_id"]) <= set(pool.loc[pool["machine"] == "fan", "clip_id"])
        assert (fan["score"] >= -0.3).any()
        other, _ = select_external(pool, thr, n_max=50, mode=mode, seed=4)
        assert set(other["clip_id"]) != set(sharded["clip_id"])
    # bounded: the merger never holds more than n_max + one shard's rows of a machine
    merger = SelectionMerger(thr, n_max=50, mode=mode, seed=3)
    for part in np.array_split(np.arange(len(pool)), 30):
        merger.add(pool.iloc[part])
    assert merger.peak_rows_held <= 50 + max(len(p) for p in np.array_split(np.arange(len(pool)), 30))
    pd.testing.assert_frame_equal(merger.result("first")[0], whole)


def test_random_mode_is_uniform_over_assigned_clips():
    # every assigned clip is drawn with probability n_ex / n_assigned (here 10 / 40), over seeds
    pool = pd.DataFrame({"clip_id": [f"r{i}" for i in range(40)], "machine": "fan",
                         "score": np.linspace(-1, 0, 40), "label_mids": [[]] * 40, "label_names": [[]] * 40})
    counts = pd.Series(0, index=pool["clip_id"])
    for seed in range(200):
        sel, _ = select_external(pool, pd.Series({"fan": -0.5}), n_max=10, mode="random", seed=seed)
        assert len(sel) == 10
        counts[sel["clip_id"]] += 1
    assert counts.between(50 - 30, 50 + 30).all(), counts.describe()  # binomial(200, 1/4): sd 6.1


def test_selected_manifest_finds_rows_across_shards(tmp_path):
    from asdflow.schemas import write_table
    from asdflow.select import selected_manifest

    def shard(ids, k):
        n = len(ids)
        return pd.DataFrame({"clip_id": ids, "ytid": ids, "path": [f"/a/{c}.wav" for c in ids], "start_seconds": 0.0,
                             "end_seconds": 10.0, "label_mids": [["/m/x"]] * n, "label_names": [["x"]] * n,
                             "segments_file": "s.csv", "shard": k, "duration": 10.0, "sample_rate": 16000,
                             "channels": 1})

    paths = []
    for k, ids in enumerate([["a", "b", "c"], ["d", "e"], ["f"]]):
        paths.append(write_table(shard(ids, k), tmp_path / f"shard-{k:04d}.parquet", "external_manifest"))
    sel = pd.DataFrame({"clip_id": ["e", "a", "f"]})
    got = selected_manifest(sel, paths)
    assert got["clip_id"].tolist() == ["e", "a", "f"] and got["path"].tolist() == ["/a/e.wav", "/a/a.wav", "/a/f.wav"]
    with pytest.raises(KeyError, match="'zz'"):
        selected_manifest(pd.DataFrame({"clip_id": ["a", "zz"]}), paths)


# --------------------------------------------------------------------------- oracle pseudo-labels


def test_oracle_labels_are_the_true_attribute_combinations_per_machine_and_domain():
    from asdflow.pseudo import oracle_labels

    machines = ["fan"] * 6 + ["pump"] * 3
    domains = ["source", "source", "source", "target", "target", "source", "source", "target", "target"]
    attrs = ["rpm=1", "rpm=2", "rpm=1", "rpm=1", "rpm=3", "", "v=a", "v=a", "v=a"]
    pl = oracle_labels(machines, domains, attrs)
    assert pl["label"].tolist() == ["fan_source_rpm=1", "fan_source_rpm=2", "fan_source_rpm=1", "fan_target_rpm=1",
                                    "fan_target_rpm=3", "fan_source", "pump_source_v=a", "pump_target_v=a",
                                    "pump_target_v=a"]
    # the same attributes in the two domains are two classes
    assert pl.loc[0, "label"] != pl.loc[3, "label"] and pl.loc[6, "label"] != pl.loc[7, "label"]
    # pl_cluster: an integer code per machine (source combinations first), same label = same code
    assert pl["pl_cluster"].tolist() == [1, 2, 1, 3, 4, 0, 0, 1, 1]
    truth = [f"{m}|{d}|{a}" for m, d, a in zip(machines, domains, attrs)]
    q = label_quality(pl["label"], truth, machines).set_index("machine")
    assert q["ari"].tolist() == pytest.approx([1.0] * 3) and q["nmi"].tolist() == pytest.approx([1.0] * 3)
    with pytest.raises(ValueError, match="no clip has attributes"):
        oracle_labels(["fan"] * 2, ["source"] * 2, ["", ""])


# --------------------------------------------------------------------------- selection diagnostics


def test_selection_class_histogram_and_display_names():
    from asdflow.select import selection_classes

    pool = _pool().assign(label_names=[["A", "B"], ["A"], [], ["C"], ["B"], ["A"], ["A"], ["D"]])
    sel, _ = select_external(pool, pd.Series({"fan": 0.0, "pump": 0.0}), n_max=10)
    assert sel.set_index("clip_id")["label_name"].to_dict() == {
        "e0": "A", "e1": "A", "e2": "", "e3": "C", "e4": "B", "e5": "A", "e6": "A", "e7": "D"}
    classes = selection_classes(sel)
    assert list(classes.columns) == ["machine", "mid", "display_name", "count"]
    assert classes.values.tolist() == [
        ["fan", "/m/a", "A", 2], ["fan", "/m/b", "B", 1], ["fan", "/m/c", "C", 1], ["fan", "unlabeled", "", 1],
        ["pump", "/m/a", "A", 2], ["pump", "/m/d", "D", 1]]
    assert classes["count"].sum() == len(sel)
    assert selection_classes(sel.iloc[:0]).empty
    both, _ = select_external(pool, pd.Series({"fan": 0.0, "pump": 0.0}), n_max=10, label_mode="all")
    assert both.set_index("clip_id").loc["e0", "label_name"] == "A+B"


def test_machine_like_share_of_a_selection():
    from asdflow.select import audit_with_machine_like

    thr = pd.Series({"fan": 0.0, "pump": -0.3})
    sel, audit = select_external(_pool(), thr, n_max=3)  # fan: e0 e2 e1; pump: e5 e7
    truth = pd.Series({"e0": True, "e1": False, "e2": True, "e5": False, "e7": False, "e3": True})
    a = audit_with_machine_like(audit, sel, truth).set_index("machine")
    assert a.loc["fan", "machine_like_share"] == pytest.approx(2 / 3) and a.loc["fan", "n_machine_like"] == 2
    assert a.loc["pump", "machine_like_share"] == 0.0
    assert a.loc["ALL", "machine_like_share"] == pytest.approx(2 / 5)
    assert a.loc["ALL", "n_ex"] == 5 == a.loc[["fan", "pump"], "n_ex"].sum()
    assert a.loc["ALL", "n_out"] == a.loc[["fan", "pump"], "n_out"].sum()
    # real pools have no truth: the share is absent (NaN), the counts are still there
    real = audit_with_machine_like(audit, sel).set_index("machine")
    assert real["machine_like_share"].isna().all() and real.loc["ALL", "n_ex"] == 5


def test_pool_truth_of_the_builtin_pool_matches_the_pool_clip_ids(tmp_path):
    from asdflow.select import read_pool_truth
    from asdflow.synth import SynthConfig
    from asdflow.synth.external import POOL_CATEGORIES, plan_pool
    from asdflow.synth.layout import _write_pool_truth

    pool = plan_pool(SynthConfig.from_preset("tiny"))
    _write_pool_truth(tmp_path / "pool_truth.csv", pool)
    raw = pd.read_csv(tmp_path / "pool_truth.csv", keep_default_na=False)
    assert list(raw.columns) == ["ytid", "file_name", "category", "machine_like"]
    truth = read_pool_truth(tmp_path / "pool_truth.csv")
    assert len(truth) == len(pool) and truth.index.is_unique
    for clip in pool:  # the external manifest's clip ids are ext/<YTID>
        assert truth[f"ext/{clip.ytid}"] == POOL_CATEGORIES[clip.category].machine_like
    assert truth.any() and not truth.all()


def test_label_quality_chance_level_separates_found_attributes_from_domain_split():
    """The ARI's chance level keeps the domain split (clusters are found per machine x domain):
    pseudo-labels that only separate the domains score at chance, ones that find the
    attributes far above it."""
    rng = np.random.default_rng(0)
    domain = np.repeat(["source", "target"], 60)
    attr = np.concatenate([np.tile(["a", "b", "c"], 20), np.tile(["d", "e"], 30)])
    truth = np.char.add(np.char.add(domain.astype(str), "|"), attr.astype(str))
    found = truth.copy()  # the attributes themselves
    domain_only = np.char.add(domain.astype(str), rng.integers(0, 3, size=120).astype(str))
    q_found = label_quality(found, truth, ["m"] * 120, domain, n_perm=50).set_index("machine")
    q_dom = label_quality(domain_only, truth, ["m"] * 120, domain, n_perm=50).set_index("machine")
    assert q_found.loc["m", "ari"] == pytest.approx(1.0)
    assert q_found.loc["m", "ari"] > q_found.loc["m", "ari_chance"] + 10 * q_found.loc["m", "ari_chance_sd"]
    # a domain-only split scores well above 0 but within a few s.d. of its chance level
    assert q_dom.loc["m", "ari"] > 0.1
    assert abs(q_dom.loc["m", "ari"] - q_dom.loc["m", "ari_chance"]) < 4 * q_dom.loc["m", "ari_chance_sd"] + 0.02
    assert np.isnan(label_quality(found, truth, ["m"] * 120, n_perm=0).loc[0, "ari_chance"])
