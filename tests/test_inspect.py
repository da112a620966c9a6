"""`asdflow inspect`: column meanings, the artifact registry, docs/artifacts.md, provenance, summaries.

Fast: tables written in tmp_path, one tiny 1-rule Snakemake run for the provenance and the
rerun check, and one parse of the real workflow (no jobs) for the registry's coverage.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from asdflow.artifacts import ARTIFACTS, artifacts_markdown, match_artifact
from asdflow.audit import inspect_path, metadata_record_path, parse_dry_run
from asdflow.cli import main
from asdflow.schemas import SCHEMAS, describe, field_description, read_table, write_table
from conftest import REPO, SNAKEMAKE


def _inspect(path, **kw) -> str:
    buf = io.StringIO()
    assert inspect_path(path, out=buf, **kw) == 0
    return buf.getvalue()


def _scores(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame({
        "clip_id": [f"dev_data/fan/test/c{i}" for i in range(n)], "file_name": [f"c{i}.wav" for i in range(n)],
        "dataset": "dev_data", "machine": ["fan", "fan", "fan", "fan", "pump", "pump"][:n], "section": "00",
        "domain": "source", "split": "test", "label": "normal", "score": [0.5, 1.5, np.nan, 2.5, 3.5, 4.5][:n]})


# --------------------------------------------------------------------------- column meanings


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_every_schema_field_has_a_description(kind):
    meanings = describe(kind)
    assert list(meanings) == SCHEMAS[kind].names
    empty = [name for name, text in meanings.items() if not text.strip()]
    assert not empty, f"{kind}: columns without a description: {empty}"


def test_descriptions_are_stored_in_written_files_and_checks_ignore_metadata(tmp_path):
    path = write_table(_scores(), tmp_path / "s.parquet", "scores")
    field = pq.read_schema(path).field("score")
    assert field_description(field) == describe("scores")["score"] != ""
    # a file written before the descriptions existed (no field metadata) reads and rewrites fine
    plain = pa.schema([pa.field(f.name, f.type) for f in SCHEMAS["scores"]])
    old = tmp_path / "old.parquet"
    pq.write_table(pa.Table.from_pandas(_scores(), schema=plain, preserve_index=False), old)
    back = read_table(old, "scores", arrow_dtypes=True)
    write_table(back, tmp_path / "again.parquet", "scores")
    assert len(read_table(tmp_path / "again.parquet", "scores")) == 6


# --------------------------------------------------------------------------- the registry

_RULE_OUTPUTS = r"""
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.io import strip_wildcard_constraints
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings
repo, work, config = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
    wf = api.workflow(resource_settings=ResourceSettings(cores=1),
                      config_settings=ConfigSettings(configfiles=[config]),
                      snakefile=repo / "Snakefile", workdir=work)
    rules = {r.name: [strip_wildcard_constraints(str(f)) for f in r.output] for r in wf._workflow.rules}
print("RULES" + json.dumps(rules))
"""


@pytest.fixture(scope="module")
def rule_outputs(tmp_path_factory, tiny_config) -> dict[str, list[str]]:
    """Rule -> output patterns of the real workflow (parsed by Snakemake, no job run)."""
    work = tmp_path_factory.mktemp("parse")
    proc = subprocess.run([sys.executable, "-c", _RULE_OUTPUTS, str(REPO), str(work), str(tiny_config)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RULES"))
    return json.loads(line[len("RULES"):])


def test_every_rule_output_under_results_matches_a_registry_pattern(rule_outputs):
    sample = {"system": "Some+System", "seed": "0", "stage": "2", "shard": "0003", "backend": "knn"}
    checked, bad = 0, []
    for rule, outputs in rule_outputs.items():
        for pattern in outputs:
            if not pattern.startswith("results/"):
                continue
            path = pattern.format(**sample)
            hit = match_artifact(path)
            checked += 1
            if hit is None:
                bad.append(f"{rule}: {pattern} matches no registry pattern")
            elif rule not in hit[0].rules:
                bad.append(f"{rule}: {pattern} matches {hit[0].pattern}, which names rules {hit[0].rules}")
            elif not hit[0].declared:
                bad.append(f"{rule}: {pattern} matches {hit[0].pattern}, marked not declared")
    assert checked > 40, checked
    assert not bad, "\n".join(bad)


def test_registry_names_only_existing_rules(rule_outputs):
    unknown = {r for a in ARTIFACTS for r in a.rules} - set(rule_outputs)
    assert not unknown, f"registry names rules the workflow does not have: {sorted(unknown)}"
    for art in ARTIFACTS:
        assert art.meaning.strip() and art.group, art.pattern
        assert not art.schema or art.schema in SCHEMAS, art.pattern


def test_docs_artifacts_md_is_generated_from_the_code():
    doc = (REPO / "docs" / "artifacts.md").read_text(encoding="utf-8")
    assert doc == artifacts_markdown(), (
        "docs/artifacts.md is out of date: regenerate it with `.venv/bin/asdflow docs-artifacts > docs/artifacts.md`")
    for art in ARTIFACTS:
        assert f"`{art.pattern}`" in doc
    for kind, schema in SCHEMAS.items():
        for f in schema:
            assert f"| `{f.name}` |" in doc


def test_cli_docs_artifacts_prints_the_markdown(capsys):
    assert main(["docs-artifacts"]) == 0
    assert capsys.readouterr().out == artifacts_markdown()


# --------------------------------------------------------------------------- contents


def test_inspect_parquet_shows_meanings_summary_and_rows(tmp_path):
    path = write_table(_scores(), tmp_path / "results/Sys/seed0/stage1/test_scores.parquet", "scores")
    text = _inspect(path, rows=2)
    assert "results/{system}/seed{seed}/stage{stage}/test_scores.parquet" in text
    assert "system=Sys, seed=0, stage=1" in text and "rule score_test or score_baseline" in text
    assert "schema check: names and types match" in text
    for name, meaning in describe("scores").items():
        assert meaning in text, name
    assert "over 6 rows" in text
    assert "min 0.5, mean 2.5, max 4.5; NaN 1" in text  # numeric: NaN counted, not averaged
    assert "2 distinct; most common: 'fan' ×4, 'pump' ×2" in text
    assert "all 6 distinct (unique)" in text
    assert "First 2 rows" in text and "c1.wav" in text and "c2.wav" not in text
    assert "no Snakemake metadata" in text


def test_inspect_embeddings_reports_list_lengths_and_schema_problems(tmp_path):
    df = pd.DataFrame({"clip_id": ["a", "b", "c"], "dataset": "dev_data", "machine": "fan", "section": "00",
                       "domain": "source", "split": "train", "label": "normal",
                       "embedding": [np.ones(4, np.float32), np.zeros(4, np.float32), np.full(4, 2, np.float32)]})
    path = write_table(df, tmp_path / "results/S/seed1/stage2/embeddings_train.parquet", "embeddings")
    text = _inspect(path)
    assert "length min 4, mean 4, max 4" in text and "values min 0, max 2, NaN 0" in text
    assert "[4: 1, 1, 1, …]" in text
    bad = tmp_path / "results/S/seed1/stage2/embeddings_test.parquet"
    pq.write_table(pa.table({"clip_id": ["a"], "embedding": [[1.0, 2.0]]}), bad)
    text = _inspect(bad)
    assert "missing column 'dataset'" in text and "column 'embedding' is list<element: double>" in text


def test_inspect_npy_cache_with_its_index(tmp_path):
    d = tmp_path / "results/cache"
    d.mkdir(parents=True)
    arr = np.arange(5 * 8, dtype=np.int16).reshape(5, 8) + 1
    arr[[1, 3]] = 0
    np.save(d / "dcase.npy", arr)
    index = pd.DataFrame({"clip_id": list("abcde"), "row": np.arange(5), "orig_samples": 8,
                          "status": ["ok", "failed", "ok", "failed", "ok"], "error": ["", "bad header", "", "x", ""]})
    write_table(index, d / "dcase.index.parquet", "audio_cache_index")
    (d / "dcase.spec.json").write_text(json.dumps({"sample_rate": 16000, "clip_seconds": 0.0005}))
    text = _inspect(d / "dcase.npy")
    assert "decoded DCASE audio" in text and "rule cache_dcase_audio" in text
    assert "shape (5, 8), dtype int16, 80 B in memory" in text
    assert "all-zero rows: 2 of 5" in text
    assert "index (dcase.index.parquet): 5 rows" in text and "status: ok 3, failed 2" in text
    assert "failed: b: bad header" in text and '"sample_rate": 16000' in text


def test_inspect_pt_checkpoint(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "results/U/seed0/stage1/model.pt"
    path.parent.mkdir(parents=True)
    torch.save({"model": {"encoder.conv.weight": torch.zeros(3, 4), "encoder.conv.bias": torch.zeros(3),
                          "head.weight": torch.zeros(2, 3)},
                "loss": {"centres": torch.zeros(5, 7)}, "classes": ["ToyCar", "fan", "pump"],
                "config": {"network": "Ba", "epochs": 2, "lr": 0.001}, "sample_rate": 16000,
                "history": [{"loss": 3.0, "seconds": 1.0, "epoch": 1}, {"loss": 2.0, "seconds": 3.0, "epoch": 2}]},
               path)
    text = _inspect(path)
    assert "trained embedding net" in text and "rule train_embedding or reuse_stage1_model" in text
    assert "keys: model, loss, classes, config, sample_rate, history" in text
    assert "classes: 3 (ToyCar, fan, pump)" in text
    assert "network" in text and '"Ba"' in text
    assert "model.encoder" in text and "15" in text and "model.head" in text and "loss.centres" in text
    assert "training: 2 epochs recorded" in text and "epoch 2: loss 2" in text and "2 s per epoch" in text


def test_inspect_json_csv_and_unknown_files(tmp_path):
    report = tmp_path / "results/manifests/dcase.report.json"
    report.parent.mkdir(parents=True)
    report.write_text(json.dumps({"n_rows": 3, "skipped": [{"path": f"x{i}", "reason": "short"} for i in range(30)]}))
    text = _inspect(report)
    assert "DCASE ingestion report" in text and '"n_rows": 3' in text and "… 10 more items" in text
    sub = tmp_path / "results/A/seed0/stage1/submission/dev_data/anomaly_score_fan_section_00_test.csv"
    sub.parent.mkdir(parents=True)
    sub.write_text("a.wav,0.5\nb.wav,1.5\n")
    text = _inspect(sub)
    assert "file_name" in text and "anomaly score, higher = more anomalous" in text and "over 2 rows" in text
    odd = tmp_path / "results/notes.bin"
    odd.write_bytes(b"\x00\x01\xff")
    text = _inspect(odd)
    assert "unknown artifact" in text and "binary file" in text
    broken = tmp_path / "results/manifests/dcase.parquet"
    broken.write_text("not parquet")
    text = _inspect(broken)
    assert "cannot read dcase.parquet" in text and "Traceback" not in text


def test_inspect_missing_file_is_a_message_not_a_traceback(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope.parquet")]) == 2
    err = capsys.readouterr().err
    assert "nope.parquet: no such file" in err and "Traceback" not in err


# --------------------------------------------------------------------------- provenance

_SNAKEFILE = """
configfile: "cfg.yaml"

rule make_scores:
    input: "data/scores.parquet"
    output: "results/Sys/seed0/stage1/test_scores.parquet"
    log: "logs/make_scores.log"
    params: factor=config["factor"], code="0.1.0+0123456789"
    shell: "cp {input} {output} && echo copied > {log}"
"""


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [str(SNAKEMAKE), "--snakefile", str(workdir / "Snakefile"), "--directory", str(workdir),
           "--cores", "1", "--nocolor", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    """A finished 1-rule Snakemake run whose output is a registry artifact."""
    work = tmp_path_factory.mktemp("toy_run")
    (work / "Snakefile").write_text(_SNAKEFILE)
    (work / "cfg.yaml").write_text("factor: 2\n")
    write_table(_scores(), work / "data/scores.parquet", "scores")
    old = time.time() - 100
    os.utime(work / "data/scores.parquet", (old, old))
    proc = _snakemake(work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work


def test_metadata_file_name_is_snakemakes(toy_run):
    key = "results/Sys/seed0/stage1/test_scores.parquet"
    path = metadata_record_path(toy_run, key)
    assert path.is_file() and json.loads(path.read_text())["rule"] == "make_scores"
    assert path.parent == toy_run / ".snakemake" / "metadata"


def test_provenance_of_a_real_run(toy_run):
    artifact = toy_run / "results/Sys/seed0/stage1/test_scores.parquet"
    text = _inspect(artifact)
    assert f"workflow dir  {toy_run}" in text
    assert "rule          make_scores" in text
    assert "code version  0.1.0+0123456789" in text
    assert "      2\n" in text  # the config value, as a param
    assert "data/scores.parquet" in text and "older" in text
    assert "logs/make_scores.log (" in text and "last: copied" in text
    assert "all present, none newer than the artifact" in text
    assert "from the record alone: no reason to rerun" in text and "--rerun-check" in text
    assert "anomaly score; higher = more anomalous" in text  # contents still shown


def test_rerun_check_up_to_date_then_why_not(toy_run, tmp_path):
    artifact = toy_run / "results/Sys/seed0/stage1/test_scores.parquet"
    snakefile = toy_run / "Snakefile"
    text = _inspect(artifact, rerun_check=True, snakefile=snakefile)
    assert "UP TO DATE" in text, text
    # another config value (as --configfile on top of the workflow's): params changed
    override = tmp_path / "override.yaml"
    override.write_text("factor: 3\n")
    text = _inspect(artifact, rerun_check=True, snakefile=snakefile, configfiles=[str(override)])
    assert "WOULD RERUN: 1 job(s)" in text and "its own job: rule make_scores" in text
    assert "Params have changed" in text


def test_newer_and_missing_inputs_are_flagged(toy_run, tmp_path):
    import shutil

    work = tmp_path / "copy"
    shutil.copytree(toy_run, work, symlinks=True)
    artifact = work / "results/Sys/seed0/stage1/test_scores.parquet"
    inp = work / "data/scores.parquet"
    write_table(_scores(5), inp, "scores")  # other content, newer than the artifact
    later = artifact.stat().st_mtime + 10
    os.utime(inp, (later, later))
    text = _inspect(artifact)
    assert "NEWER than the artifact" in text and "1 input(s) newer than the artifact" in text
    assert "from the record alone: would rerun" in text
    inp.unlink()
    text = _inspect(artifact)
    assert "MISSING" in text and "1 input(s) missing" in text


def test_incomplete_marker_and_undeclared_files(tmp_path):
    work = tmp_path / "wf"
    key = "results/U/seed0/stage1/model.pt"
    marker = metadata_record_path(work, key, "incomplete")
    marker.parent.mkdir(parents=True)
    marker.write_text('{"external_jobid": null}')
    (work / ".snakemake/metadata").mkdir(parents=True)
    ckpt = work / "results/U/seed0/stage1/model.pt.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"not a torch file")
    text = _inspect(ckpt)
    assert "per-epoch training checkpoint" in text and "not a declared output" in text
    assert f"INCOMPLETE: Snakemake marked {key} incomplete" in text
    assert "no metadata record for results/U/seed0/stage1/model.pt" in text
    assert "cannot read model.pt.ckpt" in text


def test_code_versions_of_the_rules_are_recognised():
    import asdflow
    from asdflow.audit import current_code_versions

    current = current_code_versions()
    assert current[asdflow.code_version("io", "schemas.py")] == "CODE_IO"
    assert len(current) >= 6 and all(name.startswith("CODE_") for name in current.values())


def test_parse_dry_run():
    text = """Building DAG of jobs...
[Tue Dec  1 18:43:36 2026]
rule make:
    input: in.txt
    output: results/out.txt, results/other.txt
    jobid: 1
    reason: Params have changed since last execution
    wildcards: system=U, seed=0
    resources: tmpdir=/tmp
[Tue Dec  1 18:43:36 2026]
localrule down:
    input: results/out.txt
    output: results/down.txt
    jobid: 0
    reason: Input files updated by another job: results/out.txt
Job stats:
"""
    jobs = parse_dry_run(text)
    assert [j["rule"] for j in jobs] == ["make", "down"]
    assert jobs[0]["reason"].startswith("Params have changed") and jobs[0]["wildcards"] == "system=U, seed=0"
    assert jobs[1]["output"] == "results/down.txt"
