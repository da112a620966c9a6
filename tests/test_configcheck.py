"""Config errors are one short line per problem, naming the key and the file that set it, raised
before any job runs; paths the workflow reads must exist (issue 14)."""

from __future__ import annotations

import pytest
import yaml

from asdflow.configcheck import (ConfigError, check_config, config_problems, key_source, path_problems,
                                 synth_problems)
from conftest import REPO, run_snakemake

SCHEMA = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
DEFAULT = yaml.safe_load((REPO / "config.yaml").read_text())


def _with(**patch):
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg.update(patch)
    return cfg


def test_default_config_has_no_problems():
    assert config_problems(DEFAULT, SCHEMA) == []
    assert path_problems(DEFAULT) == []


def test_typo_inside_external_is_named_with_a_suggestion(tmp_path):
    cfg = _with(external={"segments": [str(tmp_path)], "audio_dirs": [str(tmp_path)], "label": "x.csv"})
    [(path, msg)] = config_problems(cfg, SCHEMA)
    assert path == ["external", "label"]
    assert "unknown key" in msg and "did you mean 'labels'" in msg
    assert "not valid under any" not in msg


def test_typo_at_top_level_and_wrong_enum_are_short():
    cfg = _with(trian={"epochs": 3})
    cfg["train"] = dict(cfg["train"], sampler="domian")
    problems = dict((".".join(map(str, p)), m) for p, m in config_problems(cfg, SCHEMA))
    assert set(problems) == {"trian", "train.sampler"}
    assert "did you mean 'train'" in problems["trian"]
    assert "'domian' is not one of" in problems["train.sampler"]
    assert all(len(m) < 400 for m in problems.values())


def test_missing_paths_and_audioset_without_labels(tmp_path):
    cfg = _with(dcase_root=str(tmp_path / "nope"),
                external={"segments": [str(tmp_path / "seg.csv")], "audio_dirs": [str(tmp_path)]})
    problems = {".".join(map(str, p)): m for p, m in path_problems(cfg)}
    assert "does not exist" in problems["dcase_root"]
    assert "does not exist" in problems["external.segments.0"]
    assert "needs labels" in problems["external"]
    assert "external.audio_dirs.0" not in problems  # that folder exists


def test_dcase_root_without_any_dataset_folder(tmp_path):
    (tmp_path / "fan").mkdir()
    problems = dict((p[0], m) for p, m in path_problems(_with(dcase_root=str(tmp_path))))
    assert "holds none of" in problems["dcase_root"]
    (tmp_path / "dev_data").mkdir()
    assert path_problems(_with(dcase_root=str(tmp_path))) == []


def test_synth_options_are_checked_against_the_data_config():
    """synth.options replace preset fields of the built-in data; a wrong one is named before any
    job runs, with the generator's own message."""
    assert synth_problems(DEFAULT) == []
    ok = _with(synth={"preset": "demo", "seed": 0, "options": {"nearby_machinery": 0.7, "snr_db": [0, 10]}})
    assert synth_problems(ok) == []
    [(path, msg)] = synth_problems(_with(synth={"preset": "demo", "seed": 0, "options": {"nearby": 0.7}}))
    assert path == ["synth", "options"] and "unknown SynthConfig field(s) ['nearby']" in msg
    [(_, msg)] = synth_problems(_with(synth={"preset": "tiny", "seed": 0, "options": {"nearby_machinery": 2}}))
    assert "nearby_machinery must be in [0, 1]" in msg


def test_key_source_names_the_last_file_that_sets_the_key():
    sources = [("config.yaml", {"train": {"epochs": 10}}), ("mine.yaml", {"train": {"epochs": 3}}),
               ("--config", {"seeds": [1]})]
    assert key_source(["train", "epochs"], sources) == "mine.yaml"
    assert key_source(["seeds"], sources) == "--config"
    assert key_source(["audio"], sources) is None


def test_check_config_message_names_file_and_lists_every_problem(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("dcase_root: /no/such/dir\n")
    cfg = _with(dcase_root="/no/such/dir")
    with pytest.raises(ConfigError) as err:
        check_config(cfg, REPO / "schemas" / "config.schema.yaml",
                     configfiles=[str(REPO / "config.yaml"), str(mine)])
    text = str(err.value)
    assert f"config key dcase_root (set in {mine})" in text and "does not exist" in text
    assert len(text.splitlines()) <= 4


def test_workflow_stops_at_parse_time_with_the_short_message(tmp_path):
    """The real Snakefile, a dry run: the typo is reported before any job, without a schema dump."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("external:\n  segments: [/no/seg.csv]\n  audio_dirs: [/tmp]\n  label: x.csv\n")
    proc = run_snakemake(tmp_path, "-n", configfiles=[bad], timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"config key external.label (set in {bad}): unknown key (did you mean 'labels'?" in out
    assert len(out.splitlines()) < 20, out
