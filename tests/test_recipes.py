"""System recipes: attribute visibility per system, pseudo-label methods, stage-1 reuse."""

import copy
import logging

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from asdflow.data import dcase_trainset, machine_attr_labels, true_attr_string
from asdflow.pseudo import pseudo_labels
from asdflow.recipes import SystemRecipe, check_stage1_reuse
from conftest import REPO

SCHEMA = str(REPO / "schemas" / "config.schema.yaml")


def _config():
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    validate(cfg, schema=SCHEMA)
    return cfg


# --------------------------------------------------------------------------- attribute visibility


def _manifest(hide: bool, with_attrs: bool = True) -> pd.DataFrame:
    """A manifest as io.dcase writes it: 2 machine types x 2 domains x 2 attribute values."""
    rows = []
    for machine in ("fan", "pump"):
        for domain in ("source", "target"):
            for rpm in ("1000", "1400"):
                for i in range(3):
                    pairs = [{"name": "rpm", "value": rpm}, {"name": "load", "value": "low"}] if with_attrs else []
                    s = ",".join(f"{a['name']}={a['value']}" for a in pairs)
                    rows.append({"clip_id": f"{machine}/{domain}/{rpm}/{i}", "machine": machine, "section": "00",
                                 "domain": domain, "split": "train", "label": "normal",
                                 "attributes": [] if hide else pairs, "hidden_attributes": pairs if hide else [],
                                 "attr_string": "" if hide else s})
    test = dict(rows[0], clip_id="fan/test/0", split="test")
    return pd.DataFrame(rows + [test])


@pytest.mark.parametrize("hide", [True, False])
def test_true_attributes_whether_hidden_or_not(hide):
    m = _manifest(hide)
    assert set(true_attr_string(m)) == {"rpm=1000,load=low", "rpm=1400,load=low"}
    assert machine_attr_labels(m).iloc[0] == "fan_sec00_rpm=1000,load=low"
    assert (true_attr_string(_manifest(hide, with_attrs=False)) == "").all()


@pytest.mark.parametrize("hide", [True, False])
def test_unlabeled_trainset_never_contains_an_attribute(hide):
    m = _manifest(hide)
    train = dcase_trainset(m, "machine")
    assert set(train["label"]) == {"fan", "pump"}
    assert not train["label"].str.contains("rpm|load|1000|1400").any()
    # the k-means pseudo-labels of an unlabeled system: machine type + cluster only
    emb = np.random.default_rng(0).standard_normal((len(train), 4))
    pl = pseudo_labels(emb, train["machine"], train["domain"], k_source=2, k_target=2)
    assert not pl["label"].str.contains("rpm|load").any()


@pytest.mark.parametrize("hide", [True, False])
def test_labeled_trainset_trains_on_the_true_attributes(hide, caplog):
    with caplog.at_level(logging.WARNING):
        train = dcase_trainset(_manifest(hide), "machine_attr")
    assert set(train["label"]) == {f"{m}_sec00_rpm={r},load=low" for m in ("fan", "pump") for r in ("1000", "1400")}
    assert "no attributes" not in caplog.text
    assert len(train) == 24 and not train["is_external"].any()


def test_labeled_without_any_attributes_warns_and_falls_back(caplog):
    with caplog.at_level(logging.WARNING):
        train = dcase_trainset(_manifest(True, with_attrs=False), "machine_attr")
    assert set(train["label"]) == {"fan_sec00", "pump_sec00"}
    assert "no attributes" in caplog.text


# --------------------------------------------------------------------------- pseudo-label methods


def test_pseudo_label_method():
    base = {"backend": "embedding", "stages": 2}
    assert SystemRecipe("a", **base, pseudo_labels=True).pseudo_label_method == "kmeans"
    assert SystemRecipe("a", **base, pseudo_labels="oracle").pseudo_label_method == "oracle"
    assert SystemRecipe("a", **base, external="score").pseudo_label_method is None
    with pytest.raises(ValueError, match="pseudo_labels"):
        SystemRecipe("a", **base, pseudo_labels="spectral")
    with pytest.raises(ValueError, match="pseudo-labels"):
        SystemRecipe("a", backend="gmm", pseudo_labels="oracle")


def test_schema_accepts_oracle_and_stage1_from_only_where_valid():
    cfg = _config()
    assert cfg["system_definitions"]["Ps-oracle"]["pseudo_labels"] == "oracle"
    for bad in ({"pseudo_labels": "spectral"}, {"stage1_from": 3}):
        c = copy.deepcopy(cfg)
        c["system_definitions"]["Ps"].update(bad)
        with pytest.raises(WorkflowError):
            validate(c, schema=SCHEMA)


# --------------------------------------------------------------------------- stage-1 reuse


def test_default_config_stage1_reuse():
    cfg = _config()
    bases = check_stage1_reuse(cfg["system_definitions"], cfg["train"])
    assert {s: bases[s] for s in ("Ps-oracle", "Ps", "Ex", "Ex-random", "Ps+Ex")} == dict.fromkeys(
        ("Ps-oracle", "Ps", "Ex", "Ex-random", "Ps+Ex"), "U")
    assert {s: bases[s] for s in ("Ba+Ltrp+Ps", "Ba+Ltrp+Ex", "Ba+Ltrp+Ps+Ex", "Ba+Ltrp+Ex-random")} == dict.fromkeys(
        ("Ba+Ltrp+Ps", "Ba+Ltrp+Ex", "Ba+Ltrp+Ps+Ex", "Ba+Ltrp+Ex-random"), "Ba+Ltrp")
    assert "U" not in bases and "L" not in bases
    recipes = {n: SystemRecipe.from_config(n, cfg["system_definitions"]) for n in ("L", "U", "Ps-oracle", "Ps+Ex")}
    assert recipes["L"].labels == "machine_attr" and recipes["U"].labels == "machine" and recipes["U"].triplet
    assert recipes["Ps-oracle"].stages == 2 and recipes["Ps+Ex"].stages == 3


@pytest.mark.parametrize("change, key", [
    ({"train": {"lr": 0.01}}, "train.lr"),
    ({"labels": "machine_attr"}, "labels"),
    ({"network": "Wilkinghoff"}, "network"),
    ({"triplet": False}, "train.triplet"),
])
def test_stage1_reuse_refuses_a_different_stage1(change, key):
    defs = {"base": {"backend": "embedding", "triplet": True},
            "sys": {"backend": "embedding", "triplet": True, "pseudo_labels": True, "stages": 2,
                    "stage1_from": "base"}}
    assert check_stage1_reuse(defs, {"epochs": 2}) == {"sys": "base"}
    defs["sys"].update(change)
    with pytest.raises(ValueError, match=rf"system sys: stage1_from 'base'.*differs in {key}"):
        check_stage1_reuse(defs, {"epochs": 2})


def test_stage1_reuse_unknown_base_cycles_and_baselines():
    emb = {"backend": "embedding"}
    with pytest.raises(ValueError, match="'nope' is not in system_definitions"):
        check_stage1_reuse({"a": {**emb, "stage1_from": "nope"}}, {})
    with pytest.raises(ValueError, match="cycle"):
        check_stage1_reuse({"a": {**emb, "stage1_from": "b"}, "b": {**emb, "stage1_from": "a"}}, {})
    with pytest.raises(ValueError, match="gmm backend"):
        check_stage1_reuse({"a": {**emb, "stage1_from": "g"}, "g": {"backend": "gmm"}}, {})
    with pytest.raises(ValueError, match="another system"):
        SystemRecipe("a", backend="embedding", stage1_from="a")
    # chains resolve to the direct base (whose own stage 1 is reused in turn)
    assert check_stage1_reuse({"a": emb, "b": {**emb, "stage1_from": "a"}, "c": {**emb, "stage1_from": "b"}},
                              {}) == {"b": "a", "c": "b"}


def test_reuse_stage1_model_copies_and_records_the_base(tmp_path):
    import json

    from asdflow.systems import reuse_stage1_model

    (tmp_path / "model.pt").write_bytes(b"\x00weights\x01")
    (tmp_path / "report.json").write_text(json.dumps({"epochs": 2, "history": []}))
    out = tmp_path / "sys/stage1"
    rep = reuse_stage1_model(tmp_path / "model.pt", tmp_path / "report.json", out / "model.pt",
                             out / "train_report.json", "base")
    assert (out / "model.pt").read_bytes() == b"\x00weights\x01"
    assert json.loads((out / "train_report.json").read_text()) == rep == {"epochs": 2, "history": [],
                                                                          "reused_from": "base"}
