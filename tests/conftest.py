"""Shared fixtures: repository paths and one tiny end-to-end workflow run per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def run_snakemake(workdir: Path, *args: str, configfiles: list[Path] | None = None,
                  timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the real workflow CLI in ``workdir`` (outputs land in ``workdir/results``)."""
    cmd = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--cores", "2", "--nocolor"]
    if configfiles:
        cmd += ["--configfile", *map(str, configfiles)]
    cmd += list(args)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a module's small CPU trainings (restored afterwards)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_config() -> Path:
    return REPO / "tests" / "configs" / "tiny.yaml"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_config) -> Path:
    """Working directory of one complete run of the default target on the tiny config."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    proc = run_snakemake(workdir, configfiles=[tiny_config])
    if proc.returncode != 0:
        pytest.fail(f"snakemake failed (rc {proc.returncode}):\n{proc.stderr[-6000:]}")
    return workdir
