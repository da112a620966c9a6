"""What a job was given to run on: the device (CUDA or CPU) and the number of CPUs.

A Snakemake job runs on a laptop, a workstation with GPUs, or a Slurm allocation. The code
uses what the job was given, never more:

- **device** (:func:`select_device`): ``auto`` means CUDA when this process sees a CUDA device
  (``CUDA_VISIBLE_DEVICES``, set by Slurm for ``--gpus`` jobs, is respected by CUDA itself), but
  CPU inside a Slurm job that was allocated no GPU, so that a CPU job on a GPU node without
  device cgroups does not take a GPU that another job was given;
- **CPUs** (:func:`job_cpus`, :func:`use_job_cpus`): the threads Snakemake gave the job, capped
  by the CPUs this process may run on (its affinity mask) and by the Slurm allocation
  (``SLURM_CPUS_PER_TASK``, or ``SLURM_CPUS_PER_GPU`` x GPUs for ``--cpus-per-gpu`` jobs).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import torch

__all__ = ["select_device", "job_cpus", "use_job_cpus", "slurm_gpus"]

log = logging.getLogger(__name__)


def _positive_int(env: Mapping[str, str], key: str) -> int | None:
    value = env.get(key, "").strip()
    # Slurm writes e.g. "4" or "4(x2)" (per-node counts); the first number is this node's
    head = value.split("(", 1)[0].split(",", 1)[0]
    return int(head) if head.isdigit() and int(head) > 0 else None


def slurm_gpus(env: Mapping[str, str] | None = None) -> int | None:
    """GPUs of the Slurm job this process runs in; ``None`` outside Slurm, 0 for a CPU job."""
    env = os.environ if env is None else env
    if not env.get("SLURM_JOB_ID"):
        return None
    n = _positive_int(env, "SLURM_GPUS_ON_NODE")
    if n is not None:
        return n
    ids = env.get("SLURM_JOB_GPUS") or env.get("SLURM_STEP_GPUS") or ""
    return len([i for i in ids.split(",") if i.strip()])


def select_device(requested: str = "auto", env: Mapping[str, str] | None = None) -> torch.device:
    """The torch device for ``requested`` (``auto``, ``cpu``, ``cuda``, ``cuda:1``, ...).

    ``auto``: CUDA when a device is visible and the job was given one, else CPU. An explicit
    ``cuda`` request without a visible device is an error (not a silent CPU fallback).
    """
    env = os.environ if env is None else env
    if requested == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        if slurm_gpus(env) == 0:
            log.info("Slurm job %s was allocated no GPU: running on CPU", env.get("SLURM_JOB_ID"))
            return torch.device("cpu")
        return torch.device("cuda")
    try:
        dev = torch.device(requested)
    except RuntimeError as exc:
        raise ValueError(f"device {requested!r}: not a torch device (use auto, cpu or cuda[:N])") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        visible = env.get("CUDA_VISIBLE_DEVICES")
        raise RuntimeError(
            f"device {requested!r} requested but no CUDA device is visible"
            + (f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else "")
        )
    return dev


def job_cpus(requested: int | None = None, env: Mapping[str, str] | None = None) -> int:
    """CPUs this job may use: ``requested`` (Snakemake's threads) capped by affinity and Slurm.

    Without ``requested`` the allocation itself is the answer (all CPUs this process may use).
    """
    env = os.environ if env is None else env
    try:
        limits = [len(os.sched_getaffinity(0))]
    except (AttributeError, OSError):  # not Linux
        limits = [os.cpu_count() or 1]
    per_task = _positive_int(env, "SLURM_CPUS_PER_TASK")
    per_gpu = _positive_int(env, "SLURM_CPUS_PER_GPU")
    if per_task is not None:
        limits.append(per_task)
    elif per_gpu is not None:
        limits.append(per_gpu * max(1, slurm_gpus(env) or 1))
    if requested is not None:
        if requested < 1:
            raise ValueError(f"threads must be >= 1, got {requested}")
        limits.append(requested)
    return max(1, min(limits))


def use_job_cpus(requested: int | None = None, env: Mapping[str, str] | None = None) -> int:
    """Set torch's intra-op threads to the job's CPUs and return that number.

    ``requested`` defaults to torch's current thread count (the workflow adapters set it from
    Snakemake's ``threads``), so this only ever lowers it to what the job was given.
    """
    n = job_cpus(torch.get_num_threads() if requested is None else requested, env)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
