"""Rerun semantics of the DAG: a changed parameter or input reruns exactly what it invalidates.

Both tests dry-run the completed tiny workflow (``tiny_run``) and read which jobs Snakemake
would run, with their wildcards.
"""

import re
import shutil
import time

import numpy as np
import pytest

from asdflow.schemas import read_table, write_table
from conftest import run_snakemake

def planned_jobs(stdout: str) -> set[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run lists ('' for rules without wildcards)."""
    jobs = set()
    for block in re.split(r"\n(?=\s*rule \w+:)", stdout):
        m = re.match(r"\s*rule (\w+):", block)
        if not m:
            continue
        w = re.search(r"^\s*wildcards: (.*)$", block, re.M)
        jobs.add((m.group(1), w.group(1).strip() if w else ""))
    return jobs


def dry_run(workdir, *configfiles, extra=()):
    proc = run_snakemake(workdir, "-n", *extra, configfiles=list(configfiles))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return planned_jobs(proc.stdout)


def test_changing_n_max_reruns_only_stage2_selection_and_downstream(tiny_run, tiny_config, tmp_path):
    override = tmp_path / "n_max.yaml"
    override.write_text("system_definitions:\n  Ba+Ltrp+Ps+Ex:\n    n_max: 3\n")
    jobs = dry_run(tiny_run, tiny_config, override)
    iterative = {(r, w) for r, w in jobs if "system=Ba+Ltrp+Ps+Ex" in w}
    assert all("stage=2" in w for _, w in iterative), sorted(iterative)  # nothing of stage 1
    assert {r for r, _ in iterative} == {
        "select_external", "trainset_stage_m", "train_embedding", "embed_dcase", "representatives", "score_test",
        "evaluate", "plot_roc", "plot_embeddings", "score_backends", "evaluate_backend"}
    # the pool is not re-scored and the pseudo-labels are not recomputed: they come from stage 1
    assert not {r for r, _ in iterative} & {"score_external_shard", "pseudolabels"}
    others = {r for r, w in jobs if w == ""}
    assert others == {"summary_table", "plot_auc_by_stage", "all"}
    assert not any("system=Ba+Ltrp," in w or "system=GMM" in w or "system=AE" in w for _, w in jobs)


def test_changing_evaluation_rules_reruns_only_evaluation(tiny_run, tiny_config, tmp_path):
    # evaluation.rules is an `evaluate` param: every evaluate job and the tables after it rerun,
    # no scoring, training or data job
    override = tmp_path / "rules.yaml"
    override.write_text("evaluation:\n  rules: dcase2021\n")
    jobs = dry_run(tiny_run, tiny_config, override)
    assert {r for r, _ in jobs} == {"evaluate", "evaluate_backend", "summary_table", "plot_auc_by_stage", "all"}, \
        sorted(jobs)
    assert len([w for r, w in jobs if r == "evaluate"]) > 1  # every system x seed x stage


def test_changing_a_further_backend_reruns_only_backend_scoring(tiny_run, tiny_config, tmp_path):
    # a further back-end's option is a score_backends param; the paper's representatives (and so
    # the pool scores, selection and training of later stages) must not depend on it
    override = tmp_path / "knn.yaml"
    override.write_text("scoring:\n  knn: {k_source: 2, k_target: 1}\n")
    jobs = dry_run(tiny_run, tiny_config, override)
    rules = {r for r, _ in jobs}
    assert "score_backends" in rules and "evaluate_backend" in rules, sorted(jobs)
    assert not rules & {"representatives", "score_test", "score_external_shard", "select_external",
                        "pseudolabels", "trainset_stage_m", "train_embedding", "embed_dcase"}, sorted(jobs)


def test_changed_test_clip_embeddings_rerun_only_scoring_evaluation_and_plots(tiny_run, tiny_config, tmp_path):
    work = tmp_path / "copy"
    shutil.copytree(tiny_run, work, symlinks=True)  # keeps mtimes and Snakemake's metadata
    assert dry_run(work, tiny_config) == set()
    # a test clip's input to scoring changes (new content: Snakemake 9 ignores a newer mtime
    # when the file's checksum is the recorded one, so a bare `touch` would plan nothing)
    path = work / "results/Ba+Ltrp/seed0/stage1/embeddings_test.parquet"
    emb = read_table(path, "embeddings")
    emb.at[0, "embedding"] = -np.asarray(emb.at[0, "embedding"])
    time.sleep(0.01)
    write_table(emb, path, "embeddings")
    jobs = dry_run(work, tiny_config)
    assert jobs == {
        ("score_test", "system=Ba+Ltrp, seed=0, stage=1"),
        ("evaluate", "system=Ba+Ltrp, seed=0, stage=1"),
        ("plot_roc", "system=Ba+Ltrp, seed=0, stage=1"),
        ("plot_embeddings", "system=Ba+Ltrp, seed=0, stage=1"),  # the 2-D map shows test clips too
        ("summary_table", ""), ("plot_auc_by_stage", ""), ("all", ""),
        # the further scoring back-ends of the tiny config, from the same embeddings
        ("score_backends", "system=Ba+Ltrp, seed=0, stage=1"),
        *{("evaluate_backend", f"system=Ba+Ltrp, seed=0, stage=1, backend={b}")
          for b in ("knn", "smote_knn", "rescaled_knn", "gmm")},
    }


@pytest.mark.parametrize("text,expected", [
    ("rule a:\n    input: x\n    wildcards: s=1\nrule b:\n    jobid: 1\n", {("a", "s=1"), ("b", "")}),
    ("group job g:\n    rule c:\n        output: y\n        wildcards: s=2, t=3\n", {("c", "s=2, t=3")}),
])
def test_dry_run_parser(text, expected):
    assert planned_jobs(text) == expected
