"""Crash-safe resume at workflow level (issue 5 item 4), with the real Snakemake CLI.

A training job is killed with SIGKILL in its second epoch (after the first epoch's checkpoint
was written). The run fails without leaving a model or report that looks complete; rerunning
the same command resumes training from the checkpoint (not from scratch) and ends with the
same metrics as the uninterrupted run of the session's tiny workflow (same config and seed).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, SNAKEMAKE

SYSTEM = "Ba+Ltrp"
STAGE = f"results/{SYSTEM}/seed0/stage1"


def _command(workdir: Path, configfiles: list[Path]) -> list[str]:
    return [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--cores", "2", "--nocolor", "--configfile", *map(str, configfiles),
            "--", f"{STAGE}/metrics.parquet"]


def _training_pids(workdir: Path) -> list[int]:
    """Processes running the train_embedding script with ``workdir`` as working directory."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if "train_embedding.py" in cmdline and Path(cwd) == workdir:
            pids.append(int(proc.name))
    return pids


def _kill_training_after_first_checkpoint(cmd: list[str], workdir: Path, timeout: float = 300) -> tuple[int, str]:
    ckpt = workdir / STAGE / "model.pt.ckpt"
    log_path = workdir / "snakemake-first-run.log"
    with open(log_path, "w") as log:
        run = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
        killed = []
        deadline = time.monotonic() + timeout
        try:
            while run.poll() is None and time.monotonic() < deadline:
                if ckpt.exists():
                    killed = _training_pids(workdir)
                    for pid in killed:
                        os.kill(pid, signal.SIGKILL)
                    if killed:
                        break
                time.sleep(0.05)
            rc = run.wait(timeout=120)
        finally:
            if run.poll() is None:
                run.kill()
    out = log_path.read_text()
    assert killed, f"no training process was seen with a checkpoint to kill:\n{out[-3000:]}"
    return rc, out


def test_killed_training_resumes_from_checkpoint(tmp_path, tiny_config, tiny_run):
    # a copy of the finished tiny run (mtimes and Snakemake's metadata kept) without the outputs of
    # one model's training and of what depends on it: only those steps run again
    workdir = tmp_path / "run"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    for path in (workdir / STAGE).iterdir():
        if path.name != "trainset.parquet":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    cmd = _command(workdir, [tiny_config])
    epochs = json.loads((tiny_run / STAGE / "train_report.json").read_text())["epochs"]
    assert epochs >= 2, "the tiny config must train at least 2 epochs for this test"

    rc, out = _kill_training_after_first_checkpoint(cmd, workdir)
    assert rc != 0, out[-3000:]
    assert "Error in rule train_embedding" in out, out[-3000:]
    # nothing that looks complete: no model, no report; the epoch checkpoint is kept
    assert not (workdir / STAGE / "model.pt").exists()
    assert not (workdir / STAGE / "train_report.json").exists()
    assert (workdir / STAGE / "model.pt.ckpt").exists()
    dry = subprocess.run([*cmd[:-2], "-n", "--", cmd[-1]], capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0 and "train_embedding" in dry.stdout, dry.stdout[-3000:] + dry.stderr[-3000:]

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-5000:]
    report = json.loads((workdir / STAGE / "train_report.json").read_text())
    assert 1 <= report["resumed_from_epoch"] < epochs, report
    assert len(report["history"]) == epochs
    train_log = (workdir / f"logs/train_embedding/{SYSTEM}/seed0/stage1.log").read_text()
    assert f"after epoch {report['resumed_from_epoch']}" in train_log and "resuming from" in train_log
    assert f"epoch 1/{epochs}:" not in train_log, "the rerun trained epoch 1 again (not resumed)"
    assert not (workdir / STAGE / "model.pt.ckpt").exists(), "checkpoint left behind after completion"

    # same final result as the uninterrupted run (same config, seed, device, threads), up to float
    # rounding: oneDNN may pick other convolution kernels in a fresh process (seen: scores differing
    # by ~1e-6 between otherwise identical runs); a resume from a wrong state differs by far more
    for table in ("test_scores.parquet", "metrics.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(workdir / STAGE / table),
                                      pd.read_parquet(tiny_run / STAGE / table), check_exact=False, rtol=1e-5,
                                      atol=1e-5)
    resumed = [h["loss"] for h in report["history"]]
    full = [h["loss"] for h in json.loads((tiny_run / STAGE / "train_report.json").read_text())["history"]]
    assert resumed == pytest.approx(full, rel=1e-5)
