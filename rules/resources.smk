# Portable resources of the rules: memory and runtime that grow with the retry attempt, GPUs.
# These are the defaults for any executor. Cluster-specific values (account, partition, GPU
# model, CPUs per GPU, larger memory) belong in the profiles: profiles/slurm/config.yaml
# (global) and profiles/default/config.yaml (per rule, auto-loaded next to the Snakefile).

# GPUs a training, embedding or external-scoring job asks for (Slurm: --gpus=1). Locally the
# value only limits concurrency when --resources gpu=N is given; on a CPU-only cluster set
# `--set-resources train_embedding:gpu=0` (and the same for embed_dcase, score_external_shard).
GPU_JOB_GPUS = 1


def mem_mb(base_mb):
    """mem_mb resource: ``base_mb`` on the first attempt, ``attempt`` times that on retries."""

    def get(wildcards, attempt):
        return int(base_mb) * attempt

    return get


def runtime_min(base_minutes):
    """runtime resource (minutes): ``base_minutes``, ``attempt`` times that on retries."""

    def get(wildcards, attempt):
        return int(base_minutes) * attempt

    return get


# Small aggregation steps (seconds, no torch) run in the Snakemake process itself, also under
# Slurm: a queue wait for them would cost more than the step (reuse_stage1_model: a file copy).
localrules:
    data_summary,
    reuse_stage1_model,
    summary_table,
    plot_auc_by_stage,
