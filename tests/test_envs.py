"""Conda environments for clusters pin the same versions as pyproject.toml.

Conda channels cannot be reached here, so the env files are parsed, not built.
"""

import re
import subprocess
import tomllib

import pytest
import yaml

from conftest import REPO

# pip name in pyproject -> conda-forge name(s) in the env files
CONDA_NAME = {
    "torch": {"cpu": "pytorch-cpu", "gpu": "pytorch-gpu"},
    "soundfile": "pysoundfile",
    "faiss-cpu": {"cpu": "faiss-cpu", "gpu": "faiss-gpu"},
    "matplotlib": "matplotlib-base",
}
NOT_IN_ENV = {"snakemake", "snakemake-executor-plugin-slurm"}  # run by the driver, not inside jobs


def _pyproject_pins():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return dict(re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", d).groups() for d in deps)


def _env_pins(flavour):
    env = yaml.safe_load((REPO / "envs" / f"asdflow-{flavour}.yaml").read_text())
    assert env["channels"] == ["conda-forge", "nodefaults"]
    pins = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for pip_dep in dep["pip"]:
                name, ver = pip_dep.split("==")
                pins[name] = ver
        else:
            m = re.fullmatch(r"(\S+)\s*=\s*(\S+)", dep)
            if m:
                pins[m.group(1)] = m.group(2)
    return pins


@pytest.mark.parametrize("flavour", ["cpu", "gpu"])
def test_env_pins_match_pyproject(flavour):
    env = _env_pins(flavour)
    for name, version in _pyproject_pins().items():
        if name in NOT_IN_ENV:
            continue
        conda = CONDA_NAME.get(name, name)
        if isinstance(conda, dict):
            conda = conda[flavour]
        assert conda in env, f"envs/asdflow-{flavour}.yaml lacks {conda} (pyproject pins {name}=={version})"
        assert env[conda] == version, f"{conda}: env pins {env[conda]}, pyproject {version}"
    assert env["python"] == "3.11"


def test_gpu_env_has_cuda_builds():
    env = _env_pins("gpu")
    assert "pytorch-gpu" in env and "faiss-gpu" in env and "cuda-version" in env


def _rule_blocks():
    """(file, rule name, block text) of every rule in rules/*.smk and the Snakefile."""
    for path in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]:
        text = path.read_text()
        for m in re.finditer(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", text, re.M):
            yield path, m.group(1), m.group(2)


def test_every_rule_that_runs_code_names_a_conda_env():
    checked = 0
    for path, rule, block in _rule_blocks():
        if not re.search(r"^    (script|shell|run|notebook|wrapper):", block, re.M):
            continue
        m = re.search(r'^    conda:\n\s+"([^"]+)"', block, re.M)
        assert m, f"{path.name}: rule {rule} runs code but names no conda env"
        env = (path.parent / m.group(1)).resolve() if path.parent.name == "rules" else (REPO / m.group(1))
        assert env.parent == REPO / "envs" and env.exists(), f"{path.name}: rule {rule}: {m.group(1)} not in envs/"
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize("flavour", ["cpu", "gpu"])
def test_post_deploy_installs_our_package_from_the_checkout(flavour, tmp_path):
    script = REPO / "envs" / f"asdflow-{flavour}.post-deploy.sh"
    bindir, calls = tmp_path / "bin", tmp_path / "calls"
    bindir.mkdir()
    (bindir / "python").write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\n')
    (bindir / "python").chmod(0o755)
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    ok = subprocess.run(["bash", str(script)], cwd=REPO, env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert calls.read_text().split() == ["-m", "pip", "install", "--no-deps", "--no-build-isolation", "-e", str(REPO)]
    elsewhere = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert elsewhere.returncode != 0 and "ASDFLOW_SRC" in elsewhere.stderr
    via_env = subprocess.run(["bash", str(script)], cwd=tmp_path, env={**env, "ASDFLOW_SRC": str(REPO)},
                             capture_output=True, text=True)
    assert via_env.returncode == 0, via_env.stderr
