"""Running on Slurm (issue 5): the profiles, what the plugin submits, and a real Slurm run.

The profile tests need no Slurm. The integration test needs a local single-node Slurm: when
the suite runs as root on Debian, tests/slurm/start_slurm.sh installs (apt-get) and starts
one (munge, slurmctld, slurmd; reused when already running). Elsewhere that test skips with
the reason, except under CI=true, where it fails instead of skipping.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
import tomllib
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

from conftest import REPO, SNAKEMAKE

GLOBAL_PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
WORKFLOW_PROFILE = REPO / "profiles" / "default" / "config.yaml"
GPU_RULES = ("train_embedding", "embed_dcase", "score_external_shard")
SHARD_RULES = ("score_external_shard", "cache_external_shard")
LOCAL_RULES = {"all", "data_summary", "reuse_stage1_model", "summary_table", "plot_auc_by_stage"}
SLURM_TOOLS = ("sbatch", "squeue", "sacct", "scancel", "srun", "sinfo", "scontrol", "sacctmgr")
SUBMITTING_TOOLS = ("sbatch", "squeue", "sacct", "scancel", "srun")
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _eval_resource(value, attempt: int = 1):
    return eval(value, {}, {"attempt": attempt}) if isinstance(value, str) else value  # noqa: S307


# --- profiles (no Slurm needed) --------------------------------------------------------------


def test_global_profile_keys_are_set_and_commented():
    text = GLOBAL_PROFILE.read_text()
    prof = yaml.safe_load(text)
    assert prof["executor"] == "slurm"
    for key in ("jobs", "latency-wait", "retries", "max-jobs-per-timespan", "slurm-logdir",
                "max-status-checks-per-second", "slurm-array-jobs"):
        assert key in prof, f"{GLOBAL_PROFILE}: no {key}"
    assert set(SHARD_RULES) <= {r.strip() for r in prof["slurm-array-jobs"].split(",")}
    # plugin 2.8.0 drops array-rule jobs it is handed fewer of than are ready (slurm#473): no
    # job limit may cut a wave of ready shards (n_shards of the README's 1.8M-clip example: 400)
    assert prof["jobs"] == "unlimited"
    assert int(prof["max-jobs-per-timespan"].split("/")[0]) >= 10 * 400
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[a-z][a-z0-9-]*:", line):
            above = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            assert above.lstrip().startswith("#"), f"{GLOBAL_PROFILE}:{i + 1}: key without a comment: {line}"
    for placeholder in ("slurm_account", "slurm_partition"):
        assert re.search(rf"#\s*{placeholder}: \"CHANGE-ME\"", text), f"no marked {placeholder} placeholder"
    # `--profile slurm` from the repository root finds this profile
    assert (REPO / "slurm").resolve() == GLOBAL_PROFILE.parent.resolve()
    assert not set(prof) & set(yaml.safe_load(WORKFLOW_PROFILE.read_text())), "keys in both profiles"


def test_slurm_plugin_pinned_and_installed():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pin = next(d for d in deps if d.startswith("snakemake-executor-plugin-slurm=="))
    pinned = pin.split("==")[1]
    assert tuple(map(int, pinned.split("."))) >= (2, 7, 1), f"plugin {pinned} < 2.7.1 (GPU fixes, arrays)"
    assert version("snakemake-executor-plugin-slurm") == pinned


def _workflow_rules() -> set[str]:
    proc = subprocess.run([str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--list-rules",
                           "--workflow-profile", "none"], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {m.group(1) for line in proc.stdout.splitlines() if (m := re.match(r"(\w+)(?: \(|$)", line))}


def test_workflow_profile_names_real_rules_and_gpu_resources():
    prof = yaml.safe_load(WORKFLOW_PROFILE.read_text())
    rules = _workflow_rules()
    named = set(prof["set-resources"]) | set(prof["set-threads"])
    assert named <= rules, f"{WORKFLOW_PROFILE} names rules the workflow lacks: {sorted(named - rules)}"
    for rule in GPU_RULES:
        res = prof["set-resources"][rule]
        assert {"gpu", "cpus_per_gpu", "mem_mb", "runtime"} <= set(res), (rule, res)
        # train_embedding's threads depend on the stage (config.yaml train_threads)
        threads = CONFIG["train_threads"]["later"] if rule == "train_embedding" else prof["set-threads"][rule]
        assert res["gpu"] == 1 and res["cpus_per_gpu"] == threads
        assert _eval_resource(res["mem_mb"], 2) > _eval_resource(res["mem_mb"], 1), f"{rule}: mem_mb ignores attempt"
    for rule, res in prof["set-resources"].items():
        if "mem_mb" in res:
            assert _eval_resource(res["mem_mb"], 2) > _eval_resource(res["mem_mb"], 1), f"{rule}: mem_mb ignores attempt"


class _Resources(dict):
    __getattr__ = dict.__getitem__


def _sbatch_for(rule: str, **override) -> str:
    """The sbatch call the pinned plugin builds for ``rule`` with the workflow profile's values."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    prof = yaml.safe_load(WORKFLOW_PROFILE.read_text())
    res = {k: _eval_resource(v) for k, v in prof["set-resources"][rule].items()}
    res.update(override)
    threads = CONFIG["train_threads"]["later"] if rule == "train_embedding" else prof["set-threads"].get(rule, 1)
    job = SimpleNamespace(resources=_Resources(res), threads=threads,
                          name=rule, is_group=lambda: False)
    params = {"run_uuid": "RUN", "slurm_logfile": "LOG", "comment_str": f"rule_{rule}",
              "account": "", "partition": "", "workdir": "/wd"}
    return get_submit_command(job, params) + set_gres_string(job)


def test_plugin_gpu_options_for_our_profile():
    call = _sbatch_for("train_embedding")
    assert " --gpus=1" in call and " --cpus-per-gpu=8" in call and " --mem 32000" in call and " -t 720" in call
    assert "--ntasks-per-gpu" not in call and "--gres" not in call
    assert " --gpus=a100:1" in _sbatch_for("train_embedding", gpu_model="a100")
    gres_only = _sbatch_for("train_embedding", gpu=0, gres="gpu:a100:1")
    assert " --gres=gpu:a100:1" in gres_only and "--gpus" not in gres_only
    cpu_only = _sbatch_for("train_embedding", gpu=0)
    assert "--gpus" not in cpu_only and " --cpus-per-task=8" in cpu_only


def _fake_slurm_tools(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """PATH whose Slurm commands only record that they were called (and fail)."""
    bindir, calls = tmp_path / "fake-slurm-bin", tmp_path / "slurm-calls.txt"
    bindir.mkdir()
    for tool in SLURM_TOOLS:
        script = bindir / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{calls}"\nexit 1\n')
        script.chmod(0o755)
    return {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}, calls


def test_dry_run_with_slurm_profile_on_default_config_contacts_no_slurm(tmp_path):
    env, calls = _fake_slurm_tools(tmp_path)
    proc = subprocess.run([str(SNAKEMAKE), "--profile", "slurm", "-n", "--directory", str(tmp_path / "wd"),
                           "--nocolor"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    assert "Using profiles slurm and workflow specific profile profiles/default" in out
    stats = re.search(r"Job stats:\n(.*?)\n\s*total\s+(\d+)", out, re.S)
    assert stats and int(stats.group(2)) > 20, out[-3000:]
    for rule in (*GPU_RULES, "cache_external_shard"):
        assert re.search(rf"^{rule}\s+\d+", stats.group(1), re.M), f"{rule} not in the job stats"
    assert "gpu=1, cpus_per_gpu=8" in out  # the workflow profile's GPU resources are applied
    recorded = calls.read_text().splitlines() if calls.exists() else []
    assert not [c for c in recorded if c.split()[0] in SUBMITTING_TOOLS], recorded


def test_local_dry_run_uses_workflow_profile(tmp_path, tiny_config):
    proc = subprocess.run([str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "-n", "--cores", "2",
                           "--directory", str(tmp_path), "--configfile", str(tiny_config), "--nocolor"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert f"workflow specific profile {REPO / 'profiles' / 'default'}" in out
    assert "mem_mb=32000" in out and "gpu=1" in out


def test_lint_is_clean_with_the_slurm_profile(tmp_path, tiny_config):
    proc = subprocess.run([str(SNAKEMAKE), "--lint", "--profile", "slurm", "--directory", str(tmp_path),
                           "--configfile", str(tiny_config), "--nocolor"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Congratulations, your workflow is in a good condition!" in out, out[-4000:]


# --- a real single-node Slurm -----------------------------------------------------------------


def _cannot_start_slurm() -> str | None:
    if os.geteuid() != 0:
        return "not root: tests/slurm/start_slurm.sh needs root to install and start Slurm"
    if not Path("/etc/debian_version").exists():
        return "not Debian: tests/slurm/start_slurm.sh installs Slurm with apt-get"
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        return "no apt-get and no Slurm installed"
    return None


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """A running single-node Slurm (started or reused); skips (fails under CI=true) without one."""
    reason = _cannot_start_slurm()
    if reason is None:
        proc = subprocess.run(["bash", str(REPO / "tests" / "slurm" / "start_slurm.sh")],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0 or not proc.stdout.rstrip().endswith("slurm ready"):
            reason = f"start_slurm.sh failed (rc {proc.returncode}): {proc.stderr[-2000:]}"
        else:
            return proc.stdout
    if IN_CI:
        pytest.fail(f"CI=true but no Slurm: {reason}")
    pytest.skip(reason)


def _node_profile(tmp_path: Path) -> Path:
    """profiles/default with CPUs and memory capped to this one small node (same GPU requests)."""
    prof = yaml.safe_load(WORKFLOW_PROFILE.read_text())
    cpus = os.cpu_count() or 1
    prof["set-threads"] = {rule: min(n, cpus) for rule, n in prof["set-threads"].items()}
    for res in prof["set-resources"].values():
        if "cpus_per_gpu" in res:
            res["cpus_per_gpu"] = min(res["cpus_per_gpu"], cpus)
        if "mem_mb" in res:
            res["mem_mb"] = f"min({res['mem_mb']}, 4000)"
    path = tmp_path / "node-profile" / "config.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(prof))
    return path.parent


_SQUEUE_FIELDS = ("JobID", "ArrayJobID", "ArrayTaskID", "Name", "Comment", "tres-per-job", "State", "WorkDir")


def _squeue(workdir: Path) -> dict[str, dict[str, str]]:
    fmt = ",".join(f"{f}:|" for f in _SQUEUE_FIELDS[:-1]) + f",{_SQUEUE_FIELDS[-1]}:"
    proc = subprocess.run(["squeue", "--states=all", "-h", "-O", fmt], capture_output=True, text=True, timeout=30)
    jobs = {}
    for line in proc.stdout.splitlines():
        rec = dict(zip(_SQUEUE_FIELDS, (v.strip() for v in line.split("|"))))
        if rec.get("WorkDir") == str(workdir):
            jobs[rec["JobID"]] = rec
    return jobs


def _split_rules(names: str, known: set[str]) -> list[str] | None:
    """'evaluate_representatives_score_test' -> the known rule names it joins."""
    if not names:
        return []
    for rule in sorted(known, key=len, reverse=True):
        if names == rule or names.startswith(rule + "_"):
            rest = _split_rules(names[len(rule) + 1:], known)
            if rest is not None:
                return [rule, *rest]
    return None


def _rules_of(comment: str, known: set[str], groups: set[str]) -> list[str]:
    body = comment.removeprefix("rule_").split("_wildcards_")[0]
    if body in known:
        return [body]
    for group in groups:
        if body.startswith(group + "_") and (rules := _split_rules(body[len(group) + 1:], known)):
            return rules
    raise AssertionError(f"cannot tell the rule(s) of Slurm job comment {comment!r}")


@pytest.mark.slurm
@pytest.mark.timeout(1200)
def test_tiny_workflow_through_slurm_equals_local_run(slurm_cluster, tiny_run, tiny_config, tmp_path, capsys):
    """The tiny workflow (one system, stage 1) through sbatch, with a training job scancelled.

    Every job but the localrules goes through Slurm (checked against squeue's and the job
    completion log's records); GPU rules get a (fake) GPU; the shard caches are one job array;
    the cancelled training job is retried by Snakemake and resumes from its epoch checkpoint;
    the results equal those of the local run of the same config.
    """
    workdir = tmp_path / "wd"
    workdir.mkdir()
    one_system = tmp_path / "one_system.yaml"
    one_system.write_text("systems: [Ba+Ltrp]\n")
    cmd = [str(SNAKEMAKE), "--profile", "slurm", "--workflow-profile", str(_node_profile(tmp_path)),
           "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(tiny_config), str(one_system), "--nocolor", "--verbose",
           # this Slurm has no accounting database: job states come from squeue
           "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1",
           "--slurm-keep-successful-logs"]
    seen: dict[str, dict[str, str]] = {}
    ckpt = workdir / "results/Ba+Ltrp/seed0/stage1/model.pt.ckpt"
    cancelled: list[str] = []
    start = time.monotonic()
    log_path = tmp_path / "snakemake.log"
    with open(log_path, "w") as log:
        run = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, text=True)
        stop = threading.Event()

        def poll():  # finished jobs leave squeue after MinJobAge (300 s): record them while running
            while not stop.wait(0.5):
                jobs = _squeue(workdir)
                seen.update(jobs)
                if not cancelled and ckpt.exists():  # crash test: scancel training after epoch 1
                    for job, rec in jobs.items():
                        if rec["Comment"].startswith("rule_train_embedding_") and rec["State"] == "RUNNING":
                            subprocess.run(["scancel", job], check=True, timeout=30)
                            cancelled.append(job)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        try:
            rc = run.wait(timeout=1100)
        finally:
            stop.set()
            poller.join()
            if run.poll() is None:
                run.kill()
    wall = time.monotonic() - start
    seen.update(_squeue(workdir))
    out = log_path.read_text()
    assert rc == 0, out[-6000:]

    # Slurm's own record: every job of this run COMPLETED, except the training job we cancelled
    assert seen, "squeue lists no job of this run"
    assert len(cancelled) == 1, f"the training job was not cancelled mid-way: {cancelled}"
    assert seen[cancelled[0]]["State"] == "CANCELLED", seen[cancelled[0]]
    assert {r["State"] for j, r in seen.items() if j != cancelled[0]} == {"COMPLETED"}, seen
    n_plain = len(re.findall(r"has been submitted with SLURM jobid \d+", out))
    n_tasks = len(re.findall(r"Registered array job task: external_jobid=\d+_\d+", out))
    assert len(seen) == n_plain + n_tasks, (len(seen), n_plain, n_tasks)
    jobcomp = Path("/var/log/slurm/jobcomp.log").read_text().splitlines()
    completed = [line for line in jobcomp if f"WorkDir={workdir} " in line and "JobState=COMPLETED" in line]
    assert len(completed) == len(seen) - 1
    assert any(f"JobId={cancelled[0]} " in line and "JobState=CANCELLED" in line for line in jobcomp)
    # the retry (retries: 2 in the profile) resumed training from the epoch checkpoint
    report = json.loads((workdir / "results/Ba+Ltrp/seed0/stage1/train_report.json").read_text())
    assert report["resumed_from_epoch"] >= 1 and report["device"] == "cpu", report

    # every job except the localrules ran through sbatch; GPU rules got a GPU from Slurm
    finished = re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", out)
    known = set(finished)
    groups = set(re.findall(r"Group job (\w+) \(jobs in", out))
    via_slurm: list[str] = []
    for job, rec in seen.items():
        if job in cancelled:
            continue
        rules = _rules_of(rec["Comment"], known, groups)
        via_slurm += rules
        gpu = set(rules) & set(GPU_RULES)
        assert (rec["tres-per-job"] == "gres:gpu:1") == bool(gpu), rec
    assert sorted(via_slurm) == sorted(r for r in finished if r not in LOCAL_RULES), (via_slurm, finished)
    arrays = {r["ArrayJobID"] for r in seen.values() if r["ArrayTaskID"] not in ("N/A", "")}
    assert arrays, "no job array was submitted (cache_external_shard)"

    # what the profile made the plugin ask for
    sbatch = re.findall(r"^(?:sbatch call|call with array): (sbatch .*?) --wrap=", out, re.M)
    train = next(c for c in sbatch if "--comment rule_train_embedding_" in c)
    cpus = min(8, os.cpu_count() or 1)
    assert "--gpus=1" in train and f"--cpus-per-gpu={cpus}" in train and "-t 720" in train
    array = next(c for c in sbatch if "--comment rule_cache_external_shard" in c)
    assert "--array=1-2" in array

    # the same results as the local run of the same config: scores up to float32 rounding (a
    # Slurm job's core count changes the BLAS summation order), metrics exactly
    stage = "results/Ba+Ltrp/seed0/stage1"
    pd.testing.assert_frame_equal(pd.read_parquet(workdir / stage / "test_scores.parquet"),
                                  pd.read_parquet(tiny_run / stage / "test_scores.parquet"),
                                  check_exact=False, rtol=0, atol=1e-6)
    pd.testing.assert_frame_equal(pd.read_parquet(workdir / stage / "metrics.parquet"),
                                  pd.read_parquet(tiny_run / stage / "metrics.parquet"), check_exact=True)
    with capsys.disabled():
        print(f"\n[slurm] {len(seen)} Slurm jobs ({n_plain} sbatch submissions, {n_tasks} array tasks in "
              f"{len(arrays)} arrays; 1 training job scancelled after epoch {report['resumed_from_epoch']}, "
              f"retried and resumed), {len(finished)} Snakemake jobs, {wall:.0f} s wall time")
        print(f"[slurm] GPU training job: {re.sub(r' +', ' ', train)}")
        print(f"[slurm] shard array job: {re.sub(r' +', ' ', array)}")


# --- what a job was given: device and CPUs (asdflow.runtime) ----------------------------------


def test_device_follows_what_the_job_was_given(monkeypatch):
    import torch

    from asdflow.runtime import select_device, slurm_gpus

    assert slurm_gpus({}) is None
    assert slurm_gpus({"SLURM_JOB_ID": "7"}) == 0
    assert slurm_gpus({"SLURM_JOB_ID": "7", "SLURM_GPUS_ON_NODE": "2"}) == 2
    assert slurm_gpus({"SLURM_JOB_ID": "7", "SLURM_JOB_GPUS": "0,3"}) == 2
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("auto", {}).type == "cuda"
    assert select_device("auto", {"SLURM_JOB_ID": "7", "SLURM_GPUS_ON_NODE": "1"}).type == "cuda"
    assert select_device("auto", {"SLURM_JOB_ID": "7"}).type == "cpu"  # CPU job on a GPU node
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("auto", {"SLURM_JOB_ID": "7", "SLURM_GPUS_ON_NODE": "1"}).type == "cpu"
    with pytest.raises(RuntimeError, match="CUDA_VISIBLE_DEVICES=''"):
        select_device("cuda", {"CUDA_VISIBLE_DEVICES": ""})
    with pytest.raises(ValueError, match="not a torch device"):
        select_device("gpu0", {})
    assert select_device("cpu", {}).type == "cpu"


def test_cpus_follow_what_the_job_was_given(monkeypatch):
    import torch

    from asdflow.runtime import job_cpus, use_job_cpus

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5})
    assert job_cpus(None, {}) == 6
    assert job_cpus(4, {}) == 4
    assert job_cpus(16, {}) == 6  # never more than the CPUs this process may use
    assert job_cpus(8, {"SLURM_CPUS_PER_TASK": "3"}) == 3
    assert job_cpus(8, {"SLURM_JOB_ID": "1", "SLURM_CPUS_PER_GPU": "2", "SLURM_GPUS_ON_NODE": "2"}) == 4
    assert job_cpus(None, {"SLURM_CPUS_PER_TASK": "garbage"}) == 6
    with pytest.raises(ValueError, match="threads must be >= 1"):
        job_cpus(0, {})
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(5)
        assert use_job_cpus(None, {"SLURM_CPUS_PER_TASK": "2"}) == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


_TOY_SHARDS = """
rule all:
    input:
        expand("out/{i}.txt", i=range(6)),


rule score_external_shard:
    output:
        "out/{i}.txt",
    log:
        "logs/{i}.log",
    resources:
        mem_mb=100,
        runtime=5,
    shell:
        "echo $SLURM_ARRAY_JOB_ID $SLURM_ARRAY_TASK_ID > {output} 2> {log}"
"""


@pytest.mark.slurm
@pytest.mark.timeout(400)
def test_profile_submits_a_whole_wave_of_shards_as_one_array(slurm_cluster, tmp_path):
    """The profile's job limits never cut a wave of ready shard jobs (plugin bug #473 hangs)."""
    (tmp_path / "Snakefile").write_text(_TOY_SHARDS)
    cmd = [str(SNAKEMAKE), "--profile", str(REPO / "profiles" / "slurm"), "--workflow-profile", "none",
           "--snakefile", str(tmp_path / "Snakefile"), "--directory", str(tmp_path), "--nocolor",
           "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the array run hung: {(exc.stderr or b'')[-3000:]!r}")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert re.search(r"Submitted array job with Snakemake IDs [\d,]+ and SLURM job ID \d+\. "
                     r"The individual task IDs are 1-6\.", out), out[-4000:]
    tasks = sorted(int((tmp_path / f"out/{i}.txt").read_text().split()[1]) for i in range(6))
    assert tasks == [1, 2, 3, 4, 5, 6]
