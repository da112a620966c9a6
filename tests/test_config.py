"""The config schema fills defaults, documents every key and rejects typos and bad values."""

import copy

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from conftest import REPO

SCHEMA = str(REPO / "schemas" / "config.schema.yaml")


def _load(name="config.yaml"):
    return yaml.safe_load((REPO / name).read_text())


def test_default_config_is_valid_and_complete():
    cfg = _load()
    validate(cfg, schema=SCHEMA)
    assert cfg["dcase_root"] is None and cfg["external"] == "synthetic"
    assert cfg["audio"]["sample_rate"] == 16000


def test_defaults_fill_missing_keys():
    cfg = {"dcase_root": "/data/dcase"}
    validate(cfg, schema=SCHEMA)
    assert cfg["external"] == "synthetic"
    assert cfg["hide_attributes"] is True
    assert cfg["external_pool"]["n_shards"] >= 1


def test_every_schema_property_has_a_description_or_default():
    schema = yaml.safe_load(open(SCHEMA))
    for key, prop in schema["properties"].items():
        assert "description" in prop or "default" in prop, key


@pytest.mark.parametrize(
    "patch",
    [
        {"dcase_rot": "/x"},  # typo in a top-level key
        {"audio": {"sample_rte": 16000}},  # typo in a nested key
        {"audio": {"length_policy": "loop"}},
        {"external": {"segments": ["a.csv"], "labels": "l.csv"}},  # audio_dirs missing
        {"external": "audioset"},
        {"external_pool": {"n_shards": 0}},
        {"synth": {"preset": "huge"}},
        {"inference": {"cpu_batch_seconds": 0}},
        {"inference": {"gpu_batch_size": 0}},
        {"inference": {"batch_size": 64}},  # the old rule parameter is not an inference key
    ],
)
def test_bad_values_are_rejected(patch):
    cfg = copy.deepcopy(_load())
    cfg.update(patch)
    with pytest.raises(WorkflowError):
        validate(cfg, schema=SCHEMA)


def test_audioset_external_mapping_is_valid():
    cfg = _load()
    cfg["external"] = {"segments": ["s.csv"], "labels": "l.csv", "audio_dirs": ["/a"]}
    validate(cfg, schema=SCHEMA)
