"""Conda environments for clusters pin the same versions as pyproject.toml.

Conda channels cannot be reached here, so the env files are parsed, not built.
"""

import re
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
