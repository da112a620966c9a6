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
