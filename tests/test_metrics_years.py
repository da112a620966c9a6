"""Per-year official scoring (``evaluation.rules``): dcase2020, dcase2021, dcase2022+ and ``auto``.

Every expected value below is computed by hand in the comments (docs/formats.md §2.2):

* AUC = fraction of (anomaly, normal) pairs in which the anomaly scores higher.
* pAUC, p = max_fpr = 0.1, McClish: ``0.5 * (1 + (A - p²/2) / (p - p²/2))`` with ``A`` the raw
  ROC area over FPR ∈ [0, 0.1]. The fixtures are built so that the ROC is flat at some TPR ``t``
  over [0, 0.1] (the top clips are anomalies, then a normal whose FPR step is > 0.1), so
  ``A = 0.1 t`` and pAUC = ``0.5 * (1 + (0.1 t - 0.005) / 0.095)``:
  t = 1 → 1; t = 0.5 → 0.5 * (1 + 0.045/0.095) = 14/19; t = 0.25 → 0.5 * (1 + 0.02/0.095) = 23/38.
* hmean(v_1..v_n) = n / Σ 1/v_i.
"""

from __future__ import annotations

import json
import logging
import math
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from sklearn.metrics import roc_auc_score

from asdflow.metrics import (
    RULES,
    auc_pauc_table,
    detect_rules,
    official_score,
    resolve_rules,
    rules_of_name,
    summary_scores,
)


def _rows(machine, section, domain, label, scores, dataset="dev_data"):
    return [dict(dataset=dataset, machine=machine, section=section, domain=domain, label=label, score=s, split="test")
            for s in scores]


# ---------------------------------------------------------------------------------------------
# dcase2020: AUC / pAUC per machine id over all its clips; per-machine "Average"; asdflow's score
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def year2020() -> pd.DataFrame:
    # 2020 data has one domain: the manifest gives every 2020 clip domain "source" (§1.3).
    rows = (
        # fan id 00: AUC: 0.5 beats all 4 normals, 0.35 beats 0.1 0.2 0.3 -> 7/8.
        #   ROC: 0.5 A -> (0, .5); 0.4 N -> (.25, .5): TPR .5 on [0, .1] -> pAUC 14/19
        _rows("fan", "00", "source", "normal", [0.1, 0.2, 0.3, 0.4])
        + _rows("fan", "00", "source", "anomaly", [0.35, 0.5])
        # fan id 02: perfectly separated -> AUC 1, pAUC 1
        + _rows("fan", "02", "source", "normal", [0.1, 0.2])
        + _rows("fan", "02", "source", "anomaly", [0.8, 0.9])
        # valve id 00: 0.7 beats both normals, 0.1 none -> AUC 2/4 = 1/2.
        #   ROC: 0.7 A -> (0, .5); 0.6 N -> (.5, .5): TPR .5 on [0, .1] -> pAUC 14/19
        + _rows("valve", "00", "source", "normal", [0.5, 0.6])
        + _rows("valve", "00", "source", "anomaly", [0.1, 0.7])
    )
    return pd.DataFrame(rows)


def test_2020_table_hand_values(year2020):
    t = auc_pauc_table(year2020, rules="dcase2020")
    assert t.attrs["rules"] == "dcase2020"
    assert len(t) == 3 and set(t["domain"]) == {"source"}  # one row per machine id
    t = t.set_index(["machine", "section"])
    assert t.loc[("fan", "00"), "auc"] == pytest.approx(7 / 8)
    assert t.loc[("fan", "00"), "pauc"] == pytest.approx(14 / 19)
    assert t.loc[("fan", "02"), "auc"] == pytest.approx(1.0) and t.loc[("fan", "02"), "pauc"] == pytest.approx(1.0)
    assert t.loc[("valve", "00"), "auc"] == pytest.approx(1 / 2)
    assert t.loc[("valve", "00"), "pauc"] == pytest.approx(14 / 19)
    assert (t["pauc_domain"] == t["pauc"]).all()  # one domain: its pAUC is the id's pAUC
    assert t.loc[("fan", "00"), "n_normal"] == 4 and t.loc[("fan", "00"), "n_anomaly"] == 2


def test_2020_score_and_evaluator_average_rows(year2020):
    t = auc_pauc_table(year2020, rules="dcase2020")
    # asdflow's 2020 score: hmean of every id's AUC and pAUC: [7/8, 1, 1/2] + [14/19, 1, 14/19]
    #   6 / (8/7 + 1 + 2 + 19/14 + 1 + 19/14) = 6 / (8/7 + 4 + 19/7) = 6 / (55/7) = 42/55
    assert official_score(t) == pytest.approx(42 / 55, abs=1e-12)  # rules from t.attrs
    s = summary_scores(t)
    assert s["rules"] == "dcase2020"
    assert s["official_score"] == pytest.approx(42 / 55, abs=1e-12)
    assert s["n_sections"] == 3
    # the evaluator's "Average" row per machine type: arithmetic mean over ids
    #   fan: AUC (7/8 + 1)/2 = 15/16, pAUC (14/19 + 1)/2 = 33/38; valve: its only id
    rows = s["evaluator_rows"]
    assert rows["fan"]["Average"]["auc"] == pytest.approx(15 / 16)
    assert rows["fan"]["Average"]["pauc"] == pytest.approx(33 / 38)
    assert rows["valve"]["Average"] == pytest.approx({"auc": 0.5, "pauc": 14 / 19})
    # per machine: fan hmean [7/8, 1, 14/19, 1] = 4 / (8/7 + 1 + 19/14 + 1) = 4 / (63/14) = 8/9
    #              valve hmean [1/2, 14/19] = 2 / (2 + 19/14) = 2 / (47/14) = 28/47
    assert s["per_machine"]["fan"] == pytest.approx(8 / 9)
    assert s["per_machine"]["valve"] == pytest.approx(28 / 47)
    # AUC / pAUC means over ids; 2020 has no target domain
    assert s["auc_amean"] == pytest.approx((7 / 8 + 1 + 1 / 2) / 3)
    assert s["pauc_hmean"] == pytest.approx(3 / (19 / 14 + 1 + 19 / 14))
    assert s["auc_source_hmean"] == pytest.approx(s["auc_hmean"]) and math.isnan(s["auc_target_hmean"])


def test_2020_equals_2022_values_on_one_domain(year2020):
    # with a single domain the 2022+ masks cover the whole id, so AUC and pAUC agree; only the
    # score differs (2022+ counts the one domain's AUC and the pAUC, as 2020 does -> equal too)
    a = auc_pauc_table(year2020, rules="dcase2020")
    b = auc_pauc_table(year2020, rules="dcase2022+")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert official_score(a, rules="dcase2020") == pytest.approx(official_score(b, rules="dcase2022+"))


# ---------------------------------------------------------------------------------------------
# dcase2021 vs dcase2022+: the domain masks
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def two_domains() -> pd.DataFrame:
    rows = (
        _rows("fan", "00", "source", "normal", [0.1, 0.2, 0.3, 0.4])
        + _rows("fan", "00", "source", "anomaly", [0.35, 0.5])
        + _rows("fan", "00", "target", "normal", [0.6, 0.7])
        + _rows("fan", "00", "target", "anomaly", [0.65, 0.9])
    )
    return pd.DataFrame(rows)


def test_2021_hand_values(two_domains):
    t = auc_pauc_table(two_domains, rules="dcase2021").set_index("domain")
    # source only: as fan id 00 above -> AUC 7/8, pAUC 14/19
    assert t.loc["source", "auc"] == pytest.approx(7 / 8)
    assert t.loc["source", "pauc"] == pytest.approx(14 / 19)
    # target only: normals {0.6, 0.7}, anomalies {0.65, 0.9}: 0.9 beats 2, 0.65 beats 0.6 -> 3/4;
    #   ROC 0.9 A -> (0, .5); 0.7 N -> (.5, .5) -> pAUC 14/19
    assert t.loc["target", "auc"] == pytest.approx(3 / 4)
    assert t.loc["target", "pauc"] == pytest.approx(14 / 19)
    assert (t["pauc"] == t["pauc_domain"]).all()
    assert t["n_normal"].tolist() == [4, 2] and t["n_anomaly"].tolist() == [2, 2]  # the domain's own
    # official 2021: hmean [7/8, 3/4, 14/19, 14/19] = 4 / (8/7 + 4/3 + 19/7)
    #   = 4 / ((24 + 28 + 57)/21) = 84/109
    tab = auc_pauc_table(two_domains, rules="dcase2021")
    assert official_score(tab) == pytest.approx(84 / 109, abs=1e-12)
    s = summary_scores(tab)
    assert s["rules"] == "dcase2021" and s["official_score"] == pytest.approx(84 / 109, abs=1e-12)
    # the evaluator's per-machine rows over sections x domains:
    #   arithmetic mean AUC (7/8 + 3/4)/2 = 13/16, pAUC 14/19;
    #   harmonic mean AUC 2 / (8/7 + 4/3) = 2 / (52/21) = 21/26, pAUC 14/19
    rows = s["evaluator_rows"]["fan"]
    assert rows["arithmetic mean"] == pytest.approx({"auc": 13 / 16, "pauc": 14 / 19})
    assert rows["harmonic mean"] == pytest.approx({"auc": 21 / 26, "pauc": 14 / 19})
    assert s["pauc_hmean"] == pytest.approx(14 / 19)  # over section x domain pAUCs
    assert s["n_sections"] == 1


def test_2021_differs_from_2022_where_the_domain_masks_matter(two_domains):
    new = auc_pauc_table(two_domains, rules="dcase2022+").set_index("domain")
    old = auc_pauc_table(two_domains, rules="dcase2021").set_index("domain")
    # 2022+ AUC (source): source normals {0.1..0.4} vs ALL anomalies {0.35, 0.5, 0.65, 0.9}:
    #   0.35 beats 3, the others 4 each -> 15/16 (2021: 7/8)
    assert new.loc["source", "auc"] == pytest.approx(15 / 16)
    # 2022+ AUC (target): target normals {0.6, 0.7} vs all anomalies: 0.65 beats 1, 0.9 beats 2
    #   -> 3/8 (2021: 3/4): the low source anomalies now count against the target normals
    assert new.loc["target", "auc"] == pytest.approx(3 / 8)
    # 2022+ pAUC over the section: 6 normals (FPR step 1/6), 4 anomalies; 0.9 A -> (0, .25),
    #   0.7 N -> (1/6, .25): TPR .25 on [0, .1] -> 23/38, in both rows
    assert new["pauc"].tolist() == pytest.approx([23 / 38, 23 / 38])
    assert new["pauc_domain"].tolist() == pytest.approx(old["pauc_domain"].tolist())  # same definition
    assert new["n_anomaly"].tolist() == [4, 4]
    # 2022+ score: hmean [15/16, 3/8, 23/38] = 3 / (16/15 + 8/3 + 38/23)
    #   = 3 / ((368 + 920 + 570)/345) = 1035/1858
    tab = auc_pauc_table(two_domains, rules="dcase2022+")
    assert official_score(tab) == pytest.approx(1035 / 1858, abs=1e-12)
    assert official_score(auc_pauc_table(two_domains, rules="dcase2021")) == pytest.approx(84 / 109)
    assert not math.isclose(1035 / 1858, 84 / 109)
    assert "evaluator_rows" not in summary_scores(tab)  # the 2022+ summary keeps its keys


def test_2021_epsilon_floor():
    # a perfectly inverted domain: AUC 0 and pAUC 0.5 * (1 - 0.005/0.095) = 9/19; floored at eps
    rows = (_rows("m", "00", "source", "normal", [0.9]) + _rows("m", "00", "source", "anomaly", [0.1])
            + _rows("m", "00", "target", "normal", [0.1]) + _rows("m", "00", "target", "anomaly", [0.9]))
    t = auc_pauc_table(pd.DataFrame(rows), rules="dcase2021")
    assert t["auc"].tolist() == [0.0, 1.0]
    eps = sys.float_info.epsilon
    assert official_score(t) == pytest.approx(scipy.stats.hmean([eps, 1.0, 9 / 19, 1.0]), rel=1e-12)


# ---------------------------------------------------------------------------------------------
# The official evaluators' loops, written out with scikit-learn, on random data
# ---------------------------------------------------------------------------------------------

def _random_scores(seed: int, domains=("source", "target")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for m in ("ToyCar", "fan"):
        for sec in ("00", "01", "02"):
            for d in domains:
                for lab, mu in (("normal", 0.0), ("anomaly", 0.7)):
                    rows += _rows(m, sec, d, lab, np.round(rng.normal(mu, 1, rng.integers(3, 25)), 1))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", range(4))
def test_2021_matches_the_evaluator_loop(seed):
    df = _random_scores(seed)
    perf = []  # dcase2021_task2_evaluator: per machine, per domain, per section
    for (m, sec, d), g in df.groupby(["machine", "section", "domain"]):
        y = (g["label"] == "anomaly").to_numpy(int)
        perf.append([roc_auc_score(y, g["score"]), roc_auc_score(y, g["score"], max_fpr=0.1)])
    want = scipy.stats.hmean(np.maximum(np.array(perf).ravel(), sys.float_info.epsilon))
    assert official_score(auc_pauc_table(df, rules="dcase2021")) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_2020_matches_the_evaluator_loop(seed):
    df = _random_scores(seed, domains=("source",))
    s = summary_scores(auc_pauc_table(df, rules="dcase2020"))
    for m, gm in df.groupby("machine"):  # evaluator.py: per id AUC, pAUC; "Average" = numpy.mean
        perf = [[roc_auc_score((g["label"] == "anomaly").to_numpy(int), g["score"]),
                 roc_auc_score((g["label"] == "anomaly").to_numpy(int), g["score"], max_fpr=0.1)]
                for _, g in gm.groupby("section")]
        avg = np.mean(np.array(perf), axis=0)
        assert s["evaluator_rows"][m]["Average"] == pytest.approx({"auc": avg[0], "pauc": avg[1]}, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# auto: the rules from the test clips' names (docs/formats.md §1.3)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, rules", [
    ("normal_id_01_00000000.wav", "dcase2020"),
    ("anomaly_id_04_00000123.wav", "dcase2020"),
    ("id_05_00000000.wav", "dcase2020"),  # 2020 eval, hidden
    ("section_00_source_test_anomaly_0099.wav", "dcase2021"),  # 2021 dev test: no attribute tail
    ("section_03_target_test_0000.wav", "dcase2021"),  # 2021 eval: domain visible, label hidden
    ("section_00_source_test_normal_0000_car_A1_spd_28V_mic_1.wav", "dcase2022+"),
    ("section_00_target_test_anomaly_0007_noAttribute.wav", "dcase2022+"),
    ("section_00_source_normal_0035_weight15_BckgF.wav", "dcase2022+"),  # 2024 RoboticArm
    ("section_03_0000.wav", "dcase2022+"),  # 2022+ eval, hidden
    ("recording_17.wav", None),
])
def test_rules_of_name(name, rules):
    assert rules_of_name(name) == rules


def test_detect_rules():
    assert detect_rules(["normal_id_00_00000000.wav", "id_01_00000001.wav"]) == "dcase2020"
    # 2021 dev (no tail) and eval (hidden_domain) names together are one year
    assert detect_rules(["section_00_source_test_normal_0000.wav", "section_03_target_test_0001.wav"]) == "dcase2021"
    assert detect_rules(["section_00_0000.wav", "section_00_source_test_normal_0000_a_1.wav"]) == "dcase2022+"
    with pytest.raises(ValueError, match="several years.*evaluation.rules"):
        detect_rules(["normal_id_00_00000000.wav", "section_00_0000.wav"])


def test_detect_rules_without_dcase_names_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="asdflow.metrics"):
        assert detect_rules(["a.wav", "b.wav"]) == "dcase2022+"
        assert detect_rules([]) == "dcase2022+"
    assert "no DCASE test-clip name" in caplog.text


def test_resolve_rules():
    for r in RULES:
        assert resolve_rules(r, ["normal_id_00_00000000.wav"]) == r  # explicit rules win
    assert resolve_rules("auto", ["id_05_00000000.wav"]) == "dcase2020"
    with pytest.raises(ValueError, match="dcase2019"):
        resolve_rules("dcase2019")


def test_table_auto_uses_file_names(two_domains):
    df = two_domains.assign(file_name=[f"section_00_{d}_test_{lab}_{i:04d}.wav" for i, (d, lab) in
                                       enumerate(zip(two_domains["domain"], two_domains["label"]))])
    t = auc_pauc_table(df, rules="auto")
    assert t.attrs["rules"] == "dcase2021"
    assert official_score(t) == pytest.approx(84 / 109)


def _with_train(test: pd.DataFrame, names, train_name: str) -> pd.DataFrame:
    test = test.assign(file_name=names)
    train = test.drop_duplicates("machine").assign(split="train", label="normal", file_name=train_name)
    train = pd.concat([train.assign(score=v) for v in (0.1, 0.2, 0.3, 0.4)], ignore_index=True)
    train["file_name"] = [f"{n}_{i}" for i, n in enumerate(train["file_name"])]
    return pd.concat([train, test], ignore_index=True).assign(clip_id=lambda d: d["file_name"])


def test_evaluate_scores_auto_2020(year2020, tmp_path):
    from asdflow.systems import evaluate_scores

    names = [f"{lab}_id_{sec}_{i:08d}.wav" for i, (lab, sec) in
             enumerate(zip(year2020["label"], year2020["section"]))]
    scores = _with_train(year2020, names, "normal_id_00_train")
    table, summary = evaluate_scores(scores, tmp_path / "sub", threshold="percentile")
    assert summary["rules"] == "dcase2020" and summary["rules_config"] == "auto"
    assert summary["dev_data"]["rules"] == "dcase2020"
    assert summary["dev_data"]["official_score"] == pytest.approx(42 / 55)
    assert list(table.columns) == ["dataset", "machine", "section", "domain", "auc", "pauc", "pauc_domain",
                                   "n_normal", "n_anomaly"]
    json.dumps(summary)  # the summary stays JSON-serialisable


def test_evaluate_scores_auto_2021_and_override(two_domains, tmp_path):
    from asdflow.systems import evaluate_scores

    names = [f"section_00_{d}_test_{lab}_{i:04d}.wav" for i, (d, lab) in
             enumerate(zip(two_domains["domain"], two_domains["label"]))]
    # 2021 train names carry a tail; only test names decide
    scores = _with_train(two_domains, names, "section_00_source_train_normal_0000_A1Spd28VMic1")
    _, summary = evaluate_scores(scores, tmp_path / "a", threshold="percentile")
    assert summary["rules"] == "dcase2021"
    assert summary["dev_data"]["official_score"] == pytest.approx(84 / 109)
    _, summary = evaluate_scores(scores, tmp_path / "b", threshold="percentile", rules="dcase2022+")
    assert summary["rules"] == "dcase2022+" and summary["rules_config"] == "dcase2022+"
    assert summary["dev_data"]["official_score"] == pytest.approx(1035 / 1858)


# ---------------------------------------------------------------------------------------------
# Config key and summary table
# ---------------------------------------------------------------------------------------------

def test_config_key_and_schema():
    import yaml
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    from conftest import REPO

    schema = str(REPO / "schemas" / "config.schema.yaml")
    assert yaml.safe_load((REPO / "config.yaml").read_text())["evaluation"]["rules"] == "auto"
    cfg = {"dcase_root": "/data"}
    validate(cfg, schema=schema)
    assert cfg["evaluation"]["rules"] == "auto"
    for ok in ("dcase2020", "dcase2021", "dcase2022+"):
        validate({"evaluation": {"rules": ok}}, schema=schema)
    with pytest.raises(WorkflowError):
        validate({"evaluation": {"rules": "dcase2019"}}, schema=schema)


def test_summary_table_names_the_rules():
    from asdflow.summary import collect_metrics, evaluation_rules, results_markdown

    table = pd.DataFrame([{"dataset": "dev_data", "machine": "fan", "section": "00", "domain": "source",
                           "auc": 0.9, "pauc": 0.7, "pauc_domain": 0.7, "n_normal": 4, "n_anomaly": 2}])
    s = {"rules": "dcase2020", "rules_config": "auto", "thresholds": {"fan": 0.3},
         "dev_data": {"official_score": 0.8, "auc_source_hmean": 0.9, "auc_target_hmean": float("nan"),
                      "pauc_hmean": 0.7, "rules": "dcase2020"}}
    assert evaluation_rules([s, s]) == "dcase2020" and evaluation_rules([{}]) == ""
    long = collect_metrics([("GMM", 0, 1, table, s)])
    assert (long["machine"] == "ALL").sum() == 2  # the rules fields are not datasets
    md = results_markdown(long, rules=evaluation_rules([s]))
    assert "`dcase2020`" in md and "asdflow's choice" in md
    assert "Evaluation rules" not in results_markdown(long)
