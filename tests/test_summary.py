"""Summary tables: long-form metrics, mean ± variance over seeds, seed-000 Table 2 / A.1 shapes."""

import numpy as np
import pandas as pd
import pytest

from asdflow.summary import (aggregate_over_seeds, collect_diagnostics, collect_metrics, ladder_table, paper_tables,
                             results_markdown, sd_table)


def _run(system, seed, stage, auc_s, auc_t, pauc, official):
    table = pd.DataFrame([
        {"dataset": "dev_data", "machine": "fan", "section": "00", "domain": d, "auc": a, "pauc": pauc,
         "pauc_domain": pauc, "n_normal": 10, "n_anomaly": 10} for d, a in (("source", auc_s), ("target", auc_t))])
    summary = {"dev_data": {"official_score": official, "auc_source_hmean": auc_s, "auc_target_hmean": auc_t,
                            "pauc_hmean": pauc, "pauc_domain_source_hmean": pauc, "pauc_domain_target_hmean": pauc}}
    return (system, seed, stage, table, summary)


@pytest.fixture
def long():
    return collect_metrics([
        _run("Ba-labeled", 0, 1, 0.9, 0.8, 0.7, 0.8),
        _run("Ba+Ltrp+Ps+Ex", 0, 1, 0.6, 0.5, 0.55, 0.55),
        _run("Ba+Ltrp+Ps+Ex", 1, 1, 0.8, 0.7, 0.65, 0.70),
        _run("Ba+Ltrp+Ps+Ex", 0, 2, 0.7, 0.6, 0.6, 0.63),
        _run("Ba+Ltrp+Ps+Ex", 1, 2, 0.9, 0.8, 0.7, 0.79),
    ])


def test_long_form_has_the_documented_columns(long):
    assert {"system", "seed", "stage", "split", "machine", "section", "domain", "auc", "pauc"} <= set(long.columns)
    assert set(long["split"]) == {"dev"} and set(long["domain"]) == {"source", "target"}
    overall = long[long["machine"] == "ALL"]
    assert len(overall) == 5 * 2 and overall["official_score"].notna().all()
    assert long.loc[long["machine"] != "ALL", "official_score"].isna().all()


def test_mean_and_sample_variance_over_seeds(long):
    agg = aggregate_over_seeds(long, {"Ba-labeled": "machine_attr", "Ba+Ltrp+Ps+Ex": "machine"})
    row = agg[(agg["system"] == "Ba+Ltrp+Ps+Ex") & (agg["stage"] == 1) & (agg["metric"] == "official_score")].iloc[0]
    assert row["n_seeds"] == 2 and row["condition"] == "w/o label"
    assert row["mean"] == pytest.approx(62.5)
    assert row["var"] == pytest.approx(np.var([55.0, 70.0], ddof=1))  # 112.5
    assert row["sd"] == pytest.approx(np.std([55.0, 70.0], ddof=1)) == pytest.approx(np.sqrt(112.5))
    src = agg[(agg["system"] == "Ba+Ltrp+Ps+Ex") & (agg["stage"] == 2) & (agg["metric"] == "auc_source")].iloc[0]
    assert src["mean"] == pytest.approx(80.0) and src["var"] == pytest.approx(200.0)
    single = agg[(agg["system"] == "Ba-labeled") & (agg["metric"] == "auc_target")].iloc[0]
    assert single["condition"] == "w/ label" and single["mean"] == pytest.approx(80.0) and np.isnan(single["var"])


def test_paper_table_shapes(long):
    agg = aggregate_over_seeds(long, {"Ba-labeled": "machine_attr"})
    table2, table_a1 = paper_tables(agg)
    assert list(table2.columns) == ["condition", "system", "stage", "dev"]
    assert list(table_a1.columns) == ["condition", "system", "stage", "dev source", "dev target"]
    assert table2["condition"].tolist() == ["w/ label", "w/o label", "w/o label"]  # labelled block first
    assert table2.loc[1, "dev"] == "62.50 ± 112.50" and table2.loc[0, "dev"] == "80.00"
    assert table_a1.loc[2, "dev source"] == "80.00 ± 200.00"
    md = results_markdown(long)
    assert "Table 2 shape" in md and "Table A.1 shape" in md and "62.50 ± 112.50" in md


def _quality(ari, nmi, chance=None):
    q = pd.DataFrame({"machine": ["fan", "mean"], "n": [10, 10], "ari": [ari, ari], "nmi": [nmi, nmi]})
    return q if chance is None else q.assign(ari_chance=chance)


def _audit(n_ex, share):
    return pd.DataFrame({"machine": ["fan", "ALL"], "threshold": [0.1, np.nan], "n_assigned": [50, 50],
                         "n_out": [n_ex + 5, n_ex + 5], "n_ex": [n_ex, n_ex], "machine_like_share": [share, share]})


def test_sd_table_and_ladder_with_stage_diagnostics(long):
    conditions = {"Ba-labeled": "machine_attr"}
    agg = aggregate_over_seeds(long, conditions)
    sd = sd_table(agg).set_index(["system", "stage"])
    assert sd.loc[("Ba+Ltrp+Ps+Ex", 1), "official score"] == f"62.50 ± {np.sqrt(112.5):.2f}"
    diag = collect_diagnostics(
        [("Ba+Ltrp+Ps+Ex", 0, 2, _quality(0.2, 0.5, 0.01)), ("Ba+Ltrp+Ps+Ex", 1, 2, _quality(0.4, 0.7, 0.03))],
        [("Ba+Ltrp+Ps+Ex", 0, 2, _audit(10, 0.5)), ("Ba+Ltrp+Ps+Ex", 1, 2, _audit(20, 0.7))])
    assert len(diag) == 2 and set(diag["stage"]) == {2}
    ladder = ladder_table(agg, diag)
    assert list(ladder.columns) == ["system", "stage", "seeds", "official score", "AUC source", "AUC target", "ARI",
                                    "ARI chance", "NMI", "N_ex", "machine-like share"]
    by = ladder.set_index(["system", "stage"])
    row = by.loc[("Ba+Ltrp+Ps+Ex", 2)]
    assert row["official score"] == f"71.00 ± {np.std([63.0, 79.0], ddof=1):.2f}"
    assert row["ARI"] == f"0.300 ± {np.std([0.2, 0.4], ddof=1):.3f}" and row["NMI"].startswith("0.600 ± ")
    assert row["ARI chance"] == f"0.020 ± {np.std([0.01, 0.03], ddof=1):.3f}"
    assert row["N_ex"].startswith("15 ± ") and row["machine-like share"].startswith("0.60 ± ")
    # stage 1 and systems without diagnostics: empty cells, still a row (the Table-2 labelled block too)
    assert by.loc[("Ba+Ltrp+Ps+Ex", 1), "ARI"] == "" and by.loc[("Ba-labeled", 1), "N_ex"] == ""
    assert ladder_table(agg).loc[:, "ARI"].eq("").all()
    # a real-data audit without the share and a pseudo-label-only stage
    diag2 = collect_diagnostics([("Ba+Ltrp+Ps+Ex", 0, 2, _quality(0.2, 0.5))],
                                [("Ba+Ltrp+Ps+Ex", 0, 2, _audit(10, np.nan).drop(columns="machine_like_share"))])
    assert diag2["machine_like_share"].isna().all() and diag2["n_ex"].tolist() == [10]
    md = results_markdown(long, conditions, diag)
    assert "Mean ± standard deviation" in md and "## Ladder" in md and "62.50 ± 112.50" in md


def test_data_summary_names_empty_machine_folders_and_warnings():
    import pandas as pd

    from asdflow.summary import data_summary_markdown

    manifest = pd.DataFrame({"dataset": ["dev_data"] * 2, "machine": ["fan"] * 2, "split": ["train", "test"],
                             "domain": ["source"] * 2, "label": ["normal"] * 2})
    report = {"root": "/d", "n_files_seen": 2, "skip_counts": {"empty_machine_folder": 1},
              "machines": {"dev_data": {"fan": {"train": 1, "test": 1}, "pump": {"train": 0, "test": 0}}},
              "warnings": ["/d/dev_data/pump: machine folder without any clip, machine pump left out of dev_data"]}
    md = data_summary_markdown(manifest, report, {"n_ok": 2, "n_failed": 0, "clips_per_second": 1.0},
                               {"n_rows": 0, "n_shards": 1, "warnings": ["the external pool has 0 usable clips"]})
    assert "without any usable clip (left out): dev_data/pump" in md
    assert "## Warnings (2;" in md and "- the external pool has 0 usable clips" in md
    assert "empty_machine_folder" in md
