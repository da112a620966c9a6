"""Score ensembles (issue 13): member syntax and resolution, zsum and rank combination on
constructed scores with hand-computed answers, clip alignment errors, zero-sd members."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from asdflow.configcheck import ConfigError, check_config
from asdflow.ensemble import MemberSpec, combine_scores, ensemble_base_systems, ensemble_problems, resolve_members
from asdflow.recipes import SystemRecipe
from conftest import REPO, run_snakemake

DEFS = {
    "Ba+Ltrp": {"backend": "embedding"},
    "Ps+Ex": {"backend": "embedding", "stages": 3},
    "GMM": {"backend": "gmm"},
    "Ens": {"backend": "ensemble", "members": ["Ps+Ex", "Ps+Ex/stage1@knn", "GMM"]},
}


def _scores(split, machine_scores, section="00"):
    """A SCORES table: {machine: [scores]} -> clips <machine>_<split>_<i>."""
    rows = []
    for machine, scores in machine_scores.items():
        for i, s in enumerate(scores):
            rows.append({"clip_id": f"{machine}_{split}_{i}", "file_name": f"{machine}_{split}_{i}.wav",
                         "dataset": "dev_data", "machine": machine, "section": section, "domain": "source",
                         "split": split, "label": "normal" if split == "train" else "unknown", "score": float(s)})
    return pd.DataFrame(rows)


# --- member syntax and resolution ----------------------------------------------------------------

def test_member_syntax():
    assert MemberSpec.parse("Ba+Ltrp+Ps+Ex") == MemberSpec("Ba+Ltrp+Ps+Ex", None, None)
    assert MemberSpec.parse("Ps+Ex/stage2@smote_knn") == MemberSpec("Ps+Ex", 2, "smote_knn")
    assert MemberSpec.parse("GMM@gmm") == MemberSpec("GMM", None, "gmm")
    for bad in ("", "a@b@c", "x/stage", "x/2", "x/stage0"):
        with pytest.raises(ValueError, match="member"):
            MemberSpec.parse(bad)


def test_members_resolve_to_stage_and_backend_with_their_score_paths():
    ms = resolve_members("Ens", DEFS, ["kmeans_cos", "knn"])
    assert [m.spec for m in ms] == ["Ps+Ex/stage3@kmeans_cos", "Ps+Ex/stage1@knn", "GMM/stage1@gmm"]
    assert [m.scores_path(0, "test") for m in ms] == [
        "results/Ps+Ex/seed0/stage3/test_scores.parquet",
        "results/Ps+Ex/seed0/stage1/backends/knn/test_scores.parquet",
        "results/GMM/seed0/stage1/test_scores.parquet"]


@pytest.mark.parametrize("member, message", [
    ("Nope", "system 'Nope' is not in system_definitions"),
    ("Ps+Ex/stage4", "Ps+Ex has 3 stage(s), no stage 4"),
    ("Ba+Ltrp@rescaled_knn", "'rescaled_knn' is not computed; add it to scoring.backends"),
    ("GMM@knn", "GMM is a gmm system with one scoring"),
    ("Ens", "cannot be its own member"),
    ("Ba+Ltrp/x", "is not of the form"),
])
def test_bad_members_name_the_ensemble_and_the_member(member, message):
    defs = {**DEFS, "Ens": {"backend": "ensemble", "members": ["GMM", member]}}
    [(path, msg)] = ensemble_problems(defs, ["kmeans_cos", "knn"])
    assert path == ["system_definitions", "Ens", "members"]
    assert "system Ens" in msg and repr(member) in msg and message in msg, msg


def test_scoring_backends_are_required_only_of_the_ensembles_a_run_computes():
    # Ens needs knn; Outer (nested) runs Ens. A grid without either need not compute knn, but
    # the members' structure is still checked; a system's own scoring back-end counts for it.
    defs = {**DEFS, "Outer": {"backend": "ensemble", "members": ["Ens", "GMM"]},
            "Own": {"backend": "embedding", "scoring": "smote_knn"},
            "Ens2": {"backend": "ensemble", "members": ["Own@smote_knn", "GMM"]}}
    assert ensemble_problems(defs, ["kmeans_cos"], systems=["Ba+Ltrp", "GMM", "Ens2"]) == []
    for grid in (["Ens"], ["Outer"]):
        [(path, msg)] = ensemble_problems(defs, ["kmeans_cos"], systems=grid)
        assert path == ["system_definitions", "Ens", "members"] and "'knn' is not computed" in msg, msg
    bad = {**defs, "Ens3": {"backend": "ensemble", "members": ["Nope", "GMM"]}}
    [(path, msg)] = ensemble_problems(bad, ["kmeans_cos"], systems=["GMM"])
    assert path == ["system_definitions", "Ens3", "members"] and "'Nope' is not in system_definitions" in msg


def test_other_ensemble_problems():
    defs = {**DEFS, "Ens": {"backend": "ensemble", "members": ["GMM", "Ba+Ltrp"], "weights": [1],
                            "network": "Ba"},
            "Ba": {"backend": "embedding", "combine": "zsum"}}
    problems = {".".join(p): m for p, m in ensemble_problems(defs)}
    assert set(problems) == {"system_definitions.Ens.weights", "system_definitions.Ens.network",
                             "system_definitions.Ba.combine"}
    assert "1 weights for 2 members" in problems["system_definitions.Ens.weights"]
    cyc = {**DEFS, "A": {"backend": "ensemble", "members": ["B", "GMM"]},
           "B": {"backend": "ensemble", "members": ["A", "GMM"]}}
    assert any("cycle" in m for _, m in ensemble_problems(cyc))
    nested = {**DEFS, "A": {"backend": "ensemble", "members": ["Ens", "Ba+Ltrp"]}}
    assert ensemble_problems(nested, ["kmeans_cos", "knn"]) == []
    assert ensemble_base_systems("A", nested) == {"Ps+Ex", "GMM", "Ba+Ltrp"}


def test_recipe_of_an_ensemble():
    r = SystemRecipe.from_config("Ens", {"Ens": {"backend": "ensemble", "members": ["a", "b"], "weights": [1, 2]}})
    assert r.members == ("a", "b") and r.combine == "zsum" and r.weights == (1.0, 2.0) and r.stages == 1
    with pytest.raises(ValueError, match="at least 2 members"):
        SystemRecipe.from_config("E", {"E": {"backend": "ensemble", "members": ["a"]}})
    with pytest.raises(ValueError, match="keys of ensembles"):
        SystemRecipe.from_config("E", {"E": {"backend": "gmm", "members": ["a", "b"]}})


def test_check_config_reports_an_unknown_member_with_its_file(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("system_definitions:\n  Ens: {backend: ensemble, members: [GMM, Ba+Ltrp+Ps+Exx]}\n")
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["system_definitions"]["Ens"] = {"backend": "ensemble", "members": ["GMM", "Ba+Ltrp+Ps+Exx"]}
    with pytest.raises(ConfigError) as err:
        check_config(cfg, REPO / "schemas" / "config.schema.yaml", configfiles=[str(REPO / "config.yaml"), str(mine)])
    text = str(err.value)
    assert f"config key system_definitions.Ens.members (set in {mine})" in text
    assert "system Ens: member 'Ba+Ltrp+Ps+Exx': system 'Ba+Ltrp+Ps+Exx' is not in system_definitions" in text
    cfg["system_definitions"]["Ens"]["members"] = ["GMM", "Ba+Ltrp+Ps+Ex/stage2@smote_knn"]
    check_config(cfg, REPO / "schemas" / "config.schema.yaml")  # config.yaml computes smote_knn


# --- combination ---------------------------------------------------------------------------------

def test_zsum_equals_hand_computed_values():
    # member a: fan train [1, 2, 3] -> mean 2, sd sqrt(2/3); ToyCar train [10, 10, 16] -> mean 12, sd sqrt(8)
    # member b: fan train [0, 4] -> mean 2, sd 2; ToyCar train [1, 3, 5]... per clip, aligned by id
    a = (_scores("train", {"fan": [1, 2, 3], "ToyCar": [10, 10, 16]}),
         _scores("test", {"fan": [2, 5], "ToyCar": [12, 20]}))
    b = (_scores("train", {"fan": [0, 4, 2], "ToyCar": [1, 3, 5]}),
         _scores("test", {"fan": [6, -2], "ToyCar": [3, 1]}))
    b = (b[0].iloc[::-1].reset_index(drop=True), b[1].sample(frac=1, random_state=0))  # other row order
    res = combine_scores([("a", *a), ("b", *b)])
    sa_f, sb_f = np.sqrt(2 / 3), np.sqrt(8 / 3)
    sa_t, sb_t = np.sqrt(8), np.sqrt(8 / 3)
    test = res.test.set_index("clip_id")["score"]
    assert test["fan_test_0"] == pytest.approx((2 - 2) / sa_f + (6 - 2) / sb_f)
    assert test["fan_test_1"] == pytest.approx((5 - 2) / sa_f + (-2 - 2) / sb_f)
    assert test["ToyCar_test_0"] == pytest.approx((12 - 12) / sa_t + (3 - 3) / sb_t)
    assert test["ToyCar_test_1"] == pytest.approx((20 - 12) / sa_t + (1 - 3) / sb_t)
    assert list(res.test["clip_id"]) == list(a[1]["clip_id"])  # the first member's order and columns
    assert list(res.test.columns) == list(a[1].columns)
    # the training clips get the same transform: per machine, sum of two standardised members
    train = res.train.set_index("clip_id")["score"]
    assert train["fan_train_0"] == pytest.approx((1 - 2) / sa_f + (0 - 2) / sb_f)
    assert res.train.groupby("machine")["score"].mean().abs().max() < 1e-12
    # weights: w_a * z_a + w_b * z_b
    w = combine_scores([("a", *a), ("b", *b)], weights=[2, 0.5]).test.set_index("clip_id")["score"]
    assert w["fan_test_1"] == pytest.approx(2 * (5 - 2) / sa_f + 0.5 * (-2 - 2) / sb_f)
    stats = {(g["machine"], g["member"]): g for g in res.report["groups"]}
    assert stats[("ToyCar", "a")]["mean"] == 12 and stats[("ToyCar", "a")]["sd"] == pytest.approx(sa_t)


def test_zsum_uses_no_test_statistics():
    """One test clip's ensemble score does not change when the other test clips change."""
    a = (_scores("train", {"fan": [1, 2, 3]}), _scores("test", {"fan": [2, 5, 9]}))
    b = (_scores("train", {"fan": [0, 4, 2]}), _scores("test", {"fan": [6, -2, 0]}))
    first = combine_scores([("a", *a), ("b", *b)]).test["score"].iloc[0]
    a2 = (a[0], _scores("test", {"fan": [2, 500, -90]}))
    for combine in ("zsum", "rank"):
        x = combine_scores([("a", *a), ("b", *b)], combine=combine).test["score"].iloc[0]
        y = combine_scores([("a", *a2), ("b", *b)], combine=combine).test["score"].iloc[0]
        assert x == y
    assert first == combine_scores([("a", *a2), ("b", *b)]).test["score"].iloc[0]


def test_rank_is_the_weighted_mean_of_the_training_ecdf():
    # member a train [1, 2, 3, 4]; test 2.5 -> 2/4; 2 -> (1 + 0.5)/4; 9 -> 1; 0 -> 0
    # member b train [10, 20]; test 15 -> 0.5; 20 -> (1 + 0.5)/2; 5 -> 0; 25 -> 1
    a = (_scores("train", {"fan": [1, 2, 3, 4]}), _scores("test", {"fan": [2.5, 2, 9, 0]}))
    b = (_scores("train", {"fan": [10, 20, 10, 20]}), _scores("test", {"fan": [15, 20, 5, 25]}))
    res = combine_scores([("a", *a), ("b", *b)], combine="rank")
    # member b's train has 4 clips [10, 20, 10, 20]: 15 -> 2/4; 20 -> (2 + 1)/4; 5 -> 0; 25 -> 1
    expected = [(0.5 + 0.5) / 2, (0.375 + 0.75) / 2, (1 + 0) / 2, (0 + 1) / 2]
    np.testing.assert_allclose(res.test["score"], expected)
    w = combine_scores([("a", *a), ("b", *b)], combine="rank", weights=[3, 1])
    np.testing.assert_allclose(w.test["score"], [(3 * 0.5 + 0.5) / 4, (3 * 0.375 + 0.75) / 4, 0.75, 0.25])
    # train clips on the same scale: a's [1, 2, 3, 4] -> [1, 3, 5, 7] / 8; b's -> [1, 3, 1, 3] / 4 / 2... averaged
    np.testing.assert_allclose(res.train["score"], [(1 / 8 + 1 / 4) / 2, (3 / 8 + 3 / 4) / 2,
                                                    (5 / 8 + 1 / 4) / 2, (7 / 8 + 3 / 4) / 2])
    assert res.test["score"].between(0, 1).all()


def test_members_with_different_clips_raise_naming_the_member_and_clips():
    a = (_scores("train", {"fan": [1, 2, 3]}), _scores("test", {"fan": [2, 5, 1]}))
    b = (_scores("train", {"fan": [0, 4, 2]}), _scores("test", {"fan": [6, -2]}))
    with pytest.raises(ValueError) as err:
        combine_scores([("Ps+Ex/stage3@kmeans_cos", *a), ("GMM/stage1@gmm", *b)])
    msg = str(err.value)
    assert "ensemble member GMM/stage1@gmm does not cover the same clips as member Ps+Ex/stage3@kmeans_cos" in msg
    assert "lacks 1 test clips" in msg and "fan_test_2" in msg
    extra = (b[0], _scores("test", {"fan": [6, -2, 0, 1]}))
    with pytest.raises(ValueError, match=r"scores 1 test clips that a does not: fan_test_3"):
        combine_scores([("a", *a), ("b", *extra)])
    with pytest.raises(ValueError, match="more than once"):
        combine_scores([("a", *a), ("b", pd.concat([b[0], b[0].iloc[:1]]), a[1])])


def test_zero_sd_member_contributes_nothing_in_that_machine():
    # member b is constant on fan's training clips: left out there (z := 0), used on ToyCar
    a = (_scores("train", {"fan": [1, 2, 3], "ToyCar": [1, 3]}), _scores("test", {"fan": [5], "ToyCar": [4]}))
    b = (_scores("train", {"fan": [7, 7, 7], "ToyCar": [0, 2]}), _scores("test", {"fan": [9], "ToyCar": [3]}))
    res = combine_scores([("a", *a), ("b", *b)])
    test = res.test.set_index("clip_id")["score"]
    assert test["fan_test_0"] == pytest.approx((5 - 2) / np.sqrt(2 / 3))
    assert test["ToyCar_test_0"] == pytest.approx((4 - 2) / 1 + (3 - 1) / 1)
    assert np.isfinite(res.train["score"]).all()
    left = {(g["machine"], g["member"]) for g in res.report["groups"] if g["left_out"]}
    assert left == {("fan", "b")}
    # rank: a constant member is a step function (0 below, 1/2 at, 1 above its training value)
    r = combine_scores([("a", *a), ("b", *b)], combine="rank").test.set_index("clip_id")["score"]
    assert r["fan_test_0"] == pytest.approx((1 + 1) / 2)


def test_per_section_statistics_and_nan_scores():
    tr = pd.concat([_scores("train", {"fan": [0, 2]}, "00"),
                    _scores("train", {"fan": [10, 30]}, "01").assign(clip_id=lambda d: d["clip_id"] + "s1")])
    te = pd.concat([_scores("test", {"fan": [2]}, "00"),
                    _scores("test", {"fan": [30]}, "01").assign(clip_id=lambda d: d["clip_id"] + "s1")])
    te2 = te.assign(score=[1.0, np.nan])
    res = combine_scores([("a", tr, te), ("b", tr, te2)], per_section=True)
    np.testing.assert_allclose(res.test["score"], [1 + 0, np.nan])
    assert res.report["n_test_without_score"] == 1
    with pytest.raises(ValueError, match="combine"):
        combine_scores([("a", tr, te)], combine="mean")
    with pytest.raises(ValueError, match="weights"):
        combine_scores([("a", tr, te), ("b", tr, te)], weights=[1])


def test_workflow_stops_at_parse_time_on_an_unknown_member(tmp_path):
    """The real Snakefile, a dry run: the bad member is named before any job."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("systems: [Ens]\n"
                   "system_definitions:\n  Ens: {backend: ensemble, members: [GMM, 'Ba+Ltrp@nope_knn']}\n")
    proc = run_snakemake(tmp_path, "-n", configfiles=[bad], timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert (f"config key system_definitions.Ens.members (set in {bad}): system Ens: member 'Ba+Ltrp@nope_knn': "
            "scoring back-end 'nope_knn' is not computed") in out, out[-2000:]
