"""AUC / pAUC / official score (DCASE 2022-2025 evaluator definitions), submission files, thresholds."""

from __future__ import annotations

import logging
import math
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from sklearn.metrics import roc_auc_score

from asdflow.metrics import (
    auc_pauc_table,
    decision_threshold,
    official_score,
    pauc_mcclish,
    roc_points,
    summary_scores,
    write_submission,
)


# ---------------------------------------------------------------------------------------------
# pAUC
# ---------------------------------------------------------------------------------------------

def test_pauc_hand_computed_mcclish():
    # 5 normals (0.1 .. 0.5) and 2 anomalies (0.9, 0.5); one anomaly ties the top normal.
    # ROC, scores descending:
    #   0.9 (anomaly)           -> (FPR, TPR) = (0.0, 0.5)
    #   0.5 (1 normal + 1 anom) -> (0.2, 1.0)   tie = one diagonal step
    # The segment (0, .5)-(.2, 1) crosses FPR 0.1 at TPR 0.5 + 0.5 * 0.1/0.2 = 0.75.
    # Raw area over [0, 0.1]: trapezoid 0.1 * (0.5 + 0.75) / 2 = 0.0625.
    # McClish, p = 0.1: 0.5 * (1 + (0.0625 - 0.005) / (0.1 - 0.005)) = 0.5 * (1 + 0.0575/0.095)
    #                 = 0.5 * (1 + 23/38) = 61/76 = 0.80263157894...
    y = [0, 0, 0, 0, 0, 1, 1]
    s = [0.1, 0.2, 0.3, 0.4, 0.5, 0.9, 0.5]
    assert pauc_mcclish(y, s, 0.1) == pytest.approx(61 / 76, abs=1e-12)
    assert roc_auc_score(y, s, max_fpr=0.1) == pytest.approx(61 / 76, abs=1e-12)


def test_roc_points_hand():
    fpr, tpr = roc_points([0, 0, 0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4, 0.5, 0.9, 0.5])
    np.testing.assert_allclose(fpr, [0, 0, 0.2, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_allclose(tpr, [0, 0.5, 1, 1, 1, 1, 1])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("max_fpr", [0.1, 0.05, 0.3, 1.0])
def test_pauc_equals_sklearn(seed, max_fpr):
    rng = np.random.default_rng(seed)
    n_neg, n_pos = rng.integers(3, 60), rng.integers(1, 30)
    y = np.r_[np.zeros(n_neg), np.ones(n_pos)].astype(int)
    s = np.r_[rng.normal(0, 1, n_neg), rng.normal(0.8, 1, n_pos)]
    if seed % 2:  # many ties
        s = np.round(s, 0)
    assert pauc_mcclish(y, s, max_fpr) == pytest.approx(roc_auc_score(y, s, max_fpr=max_fpr), abs=1e-12)


def test_pauc_single_class_nan(caplog):
    with caplog.at_level(logging.WARNING):
        assert math.isnan(pauc_mcclish([0, 0, 0], [1, 2, 3]))
    assert "one class" in caplog.text


# ---------------------------------------------------------------------------------------------
# Table + official score on a two-machine fixture
# ---------------------------------------------------------------------------------------------

def _rows(machine, domain, label, scores):
    return [dict(machine=machine, section="00", domain=domain, label=label, score=s) for s in scores]


@pytest.fixture
def two_machines() -> pd.DataFrame:
    rows = (
        _rows("fan", "source", "normal", [0.1, 0.2, 0.3, 0.4, 0.5])
        + _rows("fan", "target", "normal", [0.6, 0.7, 0.8, 0.9, 1.0])
        + _rows("fan", "source", "anomaly", [0.55, 1.1])
        + _rows("fan", "target", "anomaly", [0.95, 1.2])
        + _rows("valve", "source", "normal", [0.1, 0.3])
        + _rows("valve", "target", "normal", [0.2, 0.4])
        + _rows("valve", "source", "anomaly", [0.35])
        + _rows("valve", "target", "anomaly", [0.25])
    )
    df = pd.DataFrame(rows)
    df["split"] = "test"
    # train rows and hidden-label rows must be ignored
    extra = pd.DataFrame(_rows("fan", "source", "normal", [9.0]) + _rows("fan", "target", "unknown", [9.0]))
    extra["split"] = ["train", "test"]
    return pd.concat([df, extra], ignore_index=True)


def test_table_hand_values(two_machines):
    raw = auc_pauc_table(two_machines)
    assert list(raw.columns) == ["machine", "section", "domain", "auc", "pauc",
                                 "pauc_domain", "n_normal", "n_anomaly"]
    assert raw["domain"].tolist() == ["source", "target", "source", "target"]
    t = raw.set_index(["machine", "domain"])
    # fan source: 5 source normals (<= 0.5) vs all 4 anomalies (0.55, 1.1, 0.95, 1.2) -> 20/20
    assert t.loc[("fan", "source"), "auc"] == pytest.approx(1.0)
    # fan target: normals 0.6..1.0 vs anomalies: 0.55 beats 0, 1.1 beats 5, 0.95 beats 4,
    # 1.2 beats 5 -> 14/20
    assert t.loc[("fan", "target"), "auc"] == pytest.approx(0.7)
    # fan pAUC over all 14 clips: 10 normals (FPR step 0.1); descending 1.2 A, 1.1 A, 1.0 N ->
    # TPR 0.5 on [0, 0.1], raw area 0.05 -> 0.5 * (1 + 0.045/0.095) = 14/19; both rows equal
    assert t.loc[("fan", "source"), "pauc"] == pytest.approx(14 / 19)
    assert t.loc[("fan", "target"), "pauc"] == pytest.approx(14 / 19)
    # per-domain pAUC: source-only is perfect; target-only: 1.2 A (0, .5), 1.0 N (.2, .5) -> 14/19
    assert t.loc[("fan", "source"), "pauc_domain"] == pytest.approx(1.0)
    assert t.loc[("fan", "target"), "pauc_domain"] == pytest.approx(14 / 19)
    # valve source: normals {0.1, 0.3} vs anomalies {0.35, 0.25(target)}: 3 of 4 pairs -> 0.75
    assert t.loc[("valve", "source"), "auc"] == pytest.approx(0.75)
    # valve target: normals {0.2, 0.4} vs {0.35, 0.25}: 2 of 4 pairs -> 0.5
    assert t.loc[("valve", "target"), "auc"] == pytest.approx(0.5)
    # valve pAUC: top clip is a normal (0.4) -> TPR 0 on [0, 0.1] -> 0.5 * (1 - 0.005/0.095) = 9/19
    assert t.loc[("valve", "source"), "pauc"] == pytest.approx(9 / 19)
    assert t.loc[("fan", "source"), "n_normal"] == 5 and t.loc[("fan", "source"), "n_anomaly"] == 4


def test_source_auc_domain_mask():
    # Target normals score high: they must NOT lower the source AUC (excluded), but a low-scoring
    # target anomaly MUST lower it (all anomalies are included).
    rows = (_rows("m", "source", "normal", [0.0, 0.1]) + _rows("m", "target", "normal", [5.0, 6.0])
            + _rows("m", "source", "anomaly", [1.0]) + _rows("m", "target", "anomaly", [2.0]))
    t = auc_pauc_table(pd.DataFrame(rows)).set_index("domain")
    assert t.loc["source", "auc"] == pytest.approx(1.0)
    assert t.loc["target", "auc"] == pytest.approx(0.0)
    rows += _rows("m", "target", "anomaly", [0.05])  # beats 0.0, loses to 0.1
    t = auc_pauc_table(pd.DataFrame(rows)).set_index("domain")
    assert t.loc["source", "auc"] == pytest.approx(5 / 6)  # pairs: 2 + 2 + 1 of 6
    assert t.loc["source", "n_anomaly"] == 3


def test_official_score_hand(two_machines):
    t = auc_pauc_table(two_machines)
    # values: AUC source fan 1, valve 3/4; AUC target fan 7/10, valve 1/2; pAUC (once per
    # section) fan 14/19, valve 9/19.
    # hmean = 6 / (1 + 4/3 + 10/7 + 2 + 19/14 + 19/9); over 126: (126+168+180+252+171+266)/126
    #       = 1163/126  ->  hmean = 6 * 126 / 1163 = 756/1163 = 0.65004299...
    assert official_score(t) == pytest.approx(756 / 1163, abs=1e-12)
    # pAUC counted twice would give 8 / (1163/126 + 19/14 + 19/9) - must differ
    assert official_score(t) != pytest.approx(8 / (1163 / 126 + 19 / 14 + 19 / 9))
    summ = summary_scores(t)
    assert summ["official_score"] == pytest.approx(756 / 1163)
    assert summ["n_sections"] == 2
    assert summ["auc_amean"] == pytest.approx((1 + 0.75 + 0.7 + 0.5) / 4)
    assert summ["auc_source_hmean"] == pytest.approx(2 / (1 + 4 / 3))
    assert summ["auc_target_hmean"] == pytest.approx(2 / (10 / 7 + 2))
    assert summ["pauc_hmean"] == pytest.approx(2 / (19 / 14 + 19 / 9))
    # per machine: fan = 3 / (1 + 10/7 + 19/14) = 3 / (53/14) = 42/53
    assert summ["per_machine"]["fan"] == pytest.approx(42 / 53)
    assert summ["per_machine"]["valve"] == pytest.approx(3 / (4 / 3 + 2 + 19 / 9))


def test_official_score_epsilon_floor():
    t = pd.DataFrame({"machine": ["a", "a"], "section": ["00", "00"], "domain": ["source", "target"],
                      "auc": [0.0, 0.8], "pauc": [0.6, 0.6], "pauc_domain": [0.5, 0.5],
                      "n_normal": [1, 1], "n_anomaly": [1, 1]})
    got = official_score(t)
    eps = sys.float_info.epsilon
    assert got == pytest.approx(scipy.stats.hmean([eps, 0.8, 0.6]), rel=1e-12)
    assert 0 < got < 1e-14


def test_nan_handling(caplog):
    # section "01" has no anomalies -> every AUC undefined, NaN + warning, no exception
    rows = (_rows("m", "source", "normal", [0.1, 0.2]) + _rows("m", "target", "normal", [0.3])
            + _rows("m", "source", "anomaly", [0.9]))
    rows += [dict(r, section="01", label="normal") for r in _rows("m", "source", "normal", [0.1, 0.5])]
    with caplog.at_level(logging.WARNING, logger="asdflow.metrics"):
        t = auc_pauc_table(pd.DataFrame(rows))
    assert "undefined" in caplog.text
    s01 = t[t.section == "01"]
    assert len(s01) == 1 and s01[["auc", "pauc", "pauc_domain"]].isna().all(axis=None)
    s00 = t[t.section == "00"].set_index("domain")
    assert s00.loc["source", "auc"] == 1.0 and s00.loc["target", "auc"] == 1.0
    assert math.isnan(s00.loc["target", "pauc_domain"])  # target has no anomaly of its own
    assert math.isnan(official_score(t))
    assert official_score(t, nan_policy="omit") == pytest.approx(1.0)


def test_dataset_column_is_a_key(two_machines):
    a = two_machines.assign(dataset="dev_data")
    b = two_machines.assign(dataset="eval_data")
    t = auc_pauc_table(pd.concat([a, b]))
    assert t.columns[0] == "dataset" and len(t) == 8
    assert official_score(t) == pytest.approx(756 / 1163)


# ---------------------------------------------------------------------------------------------
# Thresholds and submission files
# ---------------------------------------------------------------------------------------------

def test_threshold_percentile_and_gamma():
    rng = np.random.default_rng(0)
    s = rng.gamma(3.0, 0.5, size=4000)
    assert decision_threshold(s, "percentile", 0.9) == pytest.approx(np.quantile(s, 0.9))
    true = scipy.stats.gamma.ppf(0.9, 3.0, scale=0.5)
    assert decision_threshold(s, "gamma", 0.9) == pytest.approx(true, rel=0.05)
    # -max cosine scores lie in [-1, 1] and are negative: shifted before the fit, shifted back
    neg = -0.9 + rng.gamma(4.0, 0.02, size=2000)
    thr = decision_threshold(neg, "gamma", 0.9)
    assert neg.min() < thr < neg.max()
    assert thr == pytest.approx(np.quantile(neg, 0.9), abs=0.01)
    # degenerate input falls back to the percentile instead of failing
    assert decision_threshold([0.5, 0.5, 0.5], "gamma") == pytest.approx(0.5)
    with pytest.raises(ValueError):
        decision_threshold(s, "median")


def test_write_submission(tmp_path):
    df = pd.DataFrame({
        "machine": ["fan"] * 4 + ["ToyCar"] * 2 + ["fan"],
        "section": ["00"] * 6 + ["00"],
        "file_name": ["section_00_0003.wav", "section_00_0000.wav", "section_00_0010.wav",
                      "section_00_0002.wav", "section_00_0001.wav", "section_00_0000.wav",
                      "section_00_9999.wav"],
        "score": [0.9, -0.5, 0.1, 0.3, 2.0, 1.0, 5.0],
        "split": ["test"] * 6 + ["train"],
    })
    paths = write_submission(df, tmp_path, {"fan": 0.2, "ToyCar": 1.5})
    names = sorted(p.name for p in paths)
    assert names == ["anomaly_score_ToyCar_section_00_test.csv", "anomaly_score_fan_section_00_test.csv",
                     "decision_result_ToyCar_section_00_test.csv", "decision_result_fan_section_00_test.csv"]
    sc = (tmp_path / "anomaly_score_fan_section_00_test.csv").read_text()
    assert sc == ("section_00_0000.wav,-0.5\nsection_00_0002.wav,0.3\n"
                  "section_00_0003.wav,0.9\nsection_00_0010.wav,0.1\n")  # sorted, no header, no train
    dec = (tmp_path / "decision_result_fan_section_00_test.csv").read_text().splitlines()
    assert dec == ["section_00_0000.wav,0", "section_00_0002.wav,1",
                   "section_00_0003.wav,1", "section_00_0010.wav,0"]
    back = pd.read_csv(tmp_path / "decision_result_ToyCar_section_00_test.csv", header=None)
    assert back[0].tolist() == ["section_00_0000.wav", "section_00_0001.wav"]
    assert back[1].tolist() == [0, 1] and back[1].dtype.kind == "i"
    with pytest.raises(KeyError):
        write_submission(df, tmp_path, {"fan": 0.2})
    with pytest.raises(ValueError, match="duplicate"):
        write_submission(pd.concat([df, df]), tmp_path, {"fan": 0.2, "ToyCar": 1.5})
