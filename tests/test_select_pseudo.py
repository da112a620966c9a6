"""Selection (thresholds, N_max, labels, random ablation) and k-means pseudo-labels."""

import numpy as np
import pandas as pd
import pytest

from asdflow.pseudo import label_quality, pseudo_labels
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
    assert "mean" in q.index


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
