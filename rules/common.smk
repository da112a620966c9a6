# Shared helpers: config validation, data-source resolution, shard ids, target lists.
# Every value a step depends on goes through its params, so a change reruns what it should.
import re
from pathlib import Path

from snakemake.utils import validate

import asdflow
from asdflow.backends import DEFAULT_BACKEND
from asdflow.configcheck import check_config
from asdflow.ensemble import ensemble_base_systems, ensembles_in_run, resolve_members
from asdflow.recipes import (
    BACKENDS,
    REPRESENTATIVE_OPTIONS,
    SystemRecipe,
    check_stage1_reuse,
)

# `--config seeds='[0,1,2]'` arrives as strings in Snakemake 9: accept whole numbers written as text
if isinstance(config.get("seeds"), list):
    config["seeds"] = [
        int(s) if isinstance(s, str) and s.strip().isdigit() else s
        for s in config["seeds"]
    ]
# one short message per invalid key or missing input path, naming the file it was set in, before
# Snakemake's validation (which fills the defaults but dumps the whole schema on an error)
_cli_configfiles = [str(f) for f in workflow.config_settings.configfiles]
check_config(
    config,
    Path(workflow.basedir) / "schemas" / "config.schema.yaml",
    configfiles=[f for f in map(str, workflow.configfiles) if f not in _cli_configfiles]
    + _cli_configfiles,
    cli_config=workflow.config_settings.config,
)
validate(config, schema="../schemas/config.schema.yaml")

# Code versions: a step reruns when the package code it depends on changes.
CODE_SYNTH = asdflow.code_version("synth")
CODE_IO = asdflow.code_version("io", "schemas.py")
CODE_MODEL = asdflow.code_version("nets", "losses", "train.py", "data.py", "embed.py")
CODE_SELECT = asdflow.code_version("select.py", "schemas.py")
CODE_REPORT = asdflow.code_version("report.py", "summary.py", "scoring.py")
CODE_SCORING = asdflow.code_version(
    "scoring.py", "systems.py", "baselines", "metrics.py"
)
# the label columns of trainsets and pseudo-labels (true attributes, oracle, k-means)
CODE_LABELS = asdflow.code_version("data.py", "pseudo.py", "recipes.py")
# the further scoring back-ends (score_backends)
CODE_BACKENDS = asdflow.code_version("backends.py")
# score ensembles (score_ensemble): its own version, so that other scoring steps do not rerun
CODE_ENSEMBLE = asdflow.code_version("ensemble.py", "schemas.py")
SYNTH_DIR = (
    f"results/data/synth/{config['synth']['preset']}-seed{config['synth']['seed']}"
)
SYNTH_SUMMARY = f"{SYNTH_DIR}/synth_summary.json"
N_SHARDS = config["external_pool"]["n_shards"]
SHARDS = [f"{i:04d}" for i in range(N_SHARDS)]


def uses_synthetic_dcase():
    return config["dcase_root"] is None


def external_kind():
    """None, "synthetic", "audioset" (segments given) or "folder" (plain audio folder)."""
    ext = config["external"]
    if ext is None or ext == "synthetic":
        return ext
    return "audioset" if ext.get("segments") else "folder"


def synth_input(wildcards=None):
    """The synthetic data summary when a step reads built-in data, else nothing."""
    if uses_synthetic_dcase() or external_kind() == "synthetic":
        return [SYNTH_SUMMARY]
    return []


def synth_dir():
    """The built-in data's folder when the run reads them (a backend's `synthetic` file option), else None."""
    return SYNTH_DIR if uses_synthetic_dcase() else None


def dcase_root():
    return f"{SYNTH_DIR}/dcase" if uses_synthetic_dcase() else config["dcase_root"]


def eval_ground_truth():
    if uses_synthetic_dcase():
        return None  # the synthetic set has no eval_data
    return config["eval_ground_truth"]


def external_params():
    """Everything the external-manifest step needs, as plain data (tracked as params)."""
    kind = external_kind()
    if kind is None:
        return {"kind": None}
    if kind == "synthetic":
        return {"kind": kind, "synth_dir": SYNTH_DIR}
    return {"kind": kind, **config["external"]}


def audio_spec_params():
    a = config["audio"]
    return {k: a[k] for k in ("sample_rate", "clip_seconds", "length_policy", "crop")}


def external_shards(pattern):
    """Paths of one per-shard artifact, or [] when there is no external pool."""
    if external_kind() is None:
        return []
    return expand(pattern, shard=SHARDS)


def final_targets():
    targets = [
        "results/manifests/dcase.parquet",
        "results/cache/dcase.npy",
        "results/summary/data.md",
        "results/summary/table.md",
        "results/summary/auc_by_stage.png",
    ]
    targets += stage_targets("report/roc.png")
    targets += stage_targets("report/embeddings_2d.png", backend="embedding")
    if config["external_pool"]["cache"]:
        targets += external_shards("results/cache/external/shard-{shard}.npy")
    return targets


# --- systems -----------------------------------------------------------------------------
SYSTEM_DEFS = config["system_definitions"]
for _name in config["systems"]:
    if _name not in SYSTEM_DEFS:
        raise ValueError(
            f"config: system {_name!r} is not in system_definitions ({sorted(SYSTEM_DEFS)})"
        )


# stage1_from: a system's stage-1 model is copied from a base system whose stage-1 training is
# the same (labels, network, train options); anything else is an error here, at parse time.
STAGE1_FROM = check_stage1_reuse(SYSTEM_DEFS, config["train"])


_beats_systems = [
    n
    for n in config["systems"]
    if SystemRecipe.from_config(n, SYSTEM_DEFS).needs_beats(
        config["pseudo_labels"]["features"]
    )
]
if _beats_systems and not config["beats"]["checkpoint"]:
    raise ValueError(
        f"config: systems {_beats_systems} use the frozen BEATs front-end (network BEATs or "
        "pseudo-label features beats) but beats.checkpoint is not set: give the path of a BEATs "
        "checkpoint file (e.g. BEATs_iter3.pt from the BEATs authors; the workflow cannot download it)"
    )

BASELINE_BACKENDS = [b for b in BACKENDS if b not in ("embedding", "ensemble")]
# scoring back-ends of embedding systems beyond the paper's (scoring.backends), plus the own
# scoring back-end of every requested system that names one (DCASE2025-Spec: smote_knn)
EXTRA_BACKENDS = [b for b in config["scoring"]["backends"] if b != DEFAULT_BACKEND]
for _name in config["systems"]:
    _own = SystemRecipe.from_config(_name, SYSTEM_DEFS).scoring
    if _own and _own not in EXTRA_BACKENDS:
        EXTRA_BACKENDS.append(_own)


# ensembles: every member resolved to <system>/stage<m>@<backend> (configcheck has already
# reported bad members with the file that set them; this raises for anything it let through)
# (the scoring back-ends only for the ensembles this run computes)
_RUN_ENSEMBLES = ensembles_in_run(SYSTEM_DEFS, config["systems"])
ENSEMBLE_MEMBERS = {
    n: resolve_members(
        n, SYSTEM_DEFS, config["scoring"]["backends"] if n in _RUN_ENSEMBLES else None
    )
    for n, d in SYSTEM_DEFS.items()
    if d["backend"] == "ensemble"
}


def ensemble_member_scores(split):
    """Input function: the members' {split}_scores.parquet of an ensemble, same seed."""

    def get(wildcards):
        return [
            m.scores_path(wildcards.seed, split)
            for m in ENSEMBLE_MEMBERS[wildcards.system]
        ]

    return get


def systems_with_backend(*backends):
    """Regex alternation of the defined systems with one of these backends (wildcard_constraints)."""
    names = [n for n, d in SYSTEM_DEFS.items() if d["backend"] in backends]
    return "|".join(map(re.escape, names)) or "(?!)"


def systems_reusing_stage1():
    """Regex alternation of the systems whose stage-1 model comes from stage1_from."""
    return "|".join(map(re.escape, STAGE1_FROM)) or "(?!)"


def stage1_base(artifact):
    """Input function: an artifact of the stage1_from system's stage 1, same seed."""

    def get(wildcards):
        return (
            f"{stage_dir(STAGE1_FROM[wildcards.system], wildcards.seed, 1)}/{artifact}"
        )

    return get


def recipe(wildcards):
    return SystemRecipe.from_config(wildcards.system, SYSTEM_DEFS)


def train_options(wildcards):
    return recipe(wildcards).train_options(
        config["train"], int(wildcards.seed), beats=config["beats"]
    )


def pseudo_label_features(wildcards):
    """stage | beats (None without clustered pseudo-labels): what the clustering runs on."""
    return recipe(wildcards).resolved_pseudo_label_features(
        config["pseudo_labels"]["features"]
    )


BEATS_FEATURES = "results/features/beats/embeddings_train.parquet"


def pseudolabel_embeddings(wildcards):
    """The embeddings the pseudo-labels cluster: the previous stage's, or frozen BEATs features."""
    if pseudo_label_features(wildcards) == "beats":
        return BEATS_FEATURES
    return previous("embeddings_train.parquet")(wildcards)


def beats_checkpoint(wildcards=None):
    """The BEATs checkpoint file as an input of the jobs that load it (BEATs systems)."""
    if wildcards is not None and not recipe(wildcards).uses_beats:
        return []
    ckpt = config["beats"]["checkpoint"]
    return [str(ckpt)] if ckpt else []


def train_threads(wildcards):
    """CPU threads of a training job: config train_threads.stage1 for stage 1 (independent
    trainings that run side by side), .later for the chained later stages."""
    key = "stage1" if int(wildcards.stage) == 1 else "later"
    return int(config["train_threads"][key])


def label_mode(name):
    """machine (unlabeled) or machine_attr (labeled); an ensemble is labeled when one of the
    systems it reads is."""
    if recipe_of(name).backend != "ensemble":
        return recipe_of(name).labels
    bases = ensemble_base_systems(name, SYSTEM_DEFS)
    labeled = any(recipe_of(b).labels == "machine_attr" for b in bases)
    return "machine_attr" if labeled else "machine"


def label_conditions():
    """System -> its label mode (machine = unlabeled, machine_attr = labeled) for the tables."""
    return {s: label_mode(s) for s in config["systems"]}


def pseudo_label_method(wildcards):
    """The system's clustering: pseudo_labels true -> pseudo_labels.method; kmeans, gmm_bic or
    oracle when the system names one."""
    return recipe(wildcards).resolved_pseudo_label_method(
        config["pseudo_labels"]["method"]
    )


def recipe_of(name):
    return SystemRecipe.from_config(name, SYSTEM_DEFS)


def systems_using_external():
    """The requested systems that train on external data (an empty pool is an error for them)."""
    return sorted(s for s in config["systems"] if recipe_of(s).uses_external)


def stage_dir(system, seed, stage):
    return f"results/{system}/seed{seed}/stage{stage}"


def stage_targets(artifact, backend=None):
    """One artifact for every selected system x seed x stage (1..the system's stages), of the
    systems with that backend when given."""
    out = []
    for name in config["systems"]:
        if backend is not None and recipe_of(name).backend != backend:
            continue
        stages = recipe_of(name).stages
        out += [
            f"{stage_dir(name, k, m)}/{artifact}"
            for k in config["seeds"]
            for m in range(1, stages + 1)
        ]
    return out


def backend_targets(artifact):
    """One artifact per embedding system x seed x stage x further scoring back-end."""
    return [
        f"{d.rsplit('/', 1)[0]}/backends/{b}/{artifact}"
        for d in stage_targets(artifact, backend="embedding")
        for b in EXTRA_BACKENDS
    ]


def backend_of_run(name):
    r = recipe_of(name)
    if r.backend == "embedding":
        return DEFAULT_BACKEND
    return f"ensemble:{r.combine}" if r.backend == "ensemble" else r.backend


def backend_of_runs():
    """System -> the name of its default scoring (summary's backend column; ensemble:<combine>
    for ensembles)."""
    return {s: backend_of_run(s) for s in config["systems"]}


def previous(artifact):
    """Input function: an artifact of stage m-1 of the same system and seed."""

    def get(wildcards):
        return f"{stage_dir(wildcards.system, wildcards.seed, int(wildcards.stage) - 1)}/{artifact}"

    return get


def external_shard_cache(wildcards):
    """A pool shard's decoded-audio cache, or nothing when external_pool.cache is false (then
    every stage decodes the shard's audio files again)."""
    if not config["external_pool"]["cache"]:
        return []
    return f"results/cache/external/shard-{wildcards.shard}.npy"


def external_score_shards(wildcards):
    return expand(
        "{d}/external_scores/shard-{shard}.parquet",
        d=stage_dir(wildcards.system, wildcards.seed, wildcards.stage),
        shard=SHARDS,
    )


def stage_trainset_inputs(wildcards):
    """Inputs of a stage >= 2 training set, following the system's recipe."""
    r = recipe(wildcards)
    d = stage_dir(wildcards.system, wildcards.seed, wildcards.stage)
    inputs = {
        "manifest": "results/manifests/dcase.parquet",
        "cache_index": "results/cache/dcase.index.parquet",
    }
    if r.pseudo_labels:
        inputs["pseudolabels"] = f"{d}/pseudolabels.parquet"
    if r.uses_external:
        inputs["selection"] = f"{d}/selection.parquet"
        if config["external_pool"]["cache"]:
            inputs["ext_manifests"] = expand(
                "results/manifests/external/shard-{shard}.parquet", shard=SHARDS
            )
            inputs["ext_caches"] = expand(
                "results/cache/external/shard-{shard}.npy", shard=SHARDS
            )
        else:  # no pool cache: only the selected clips are decoded (cache_selected_external)
            inputs["ext_manifests"] = [f"{d}/selected_external.parquet"]
            inputs["ext_caches"] = [f"{d}/selected_audio.npy"]
    return inputs


def training_caches(wildcards):
    """Audio caches a training job reads: DCASE, plus the pool shards with external data."""
    caches = ["results/cache/dcase.npy"]
    if int(wildcards.stage) > 1 and recipe(wildcards).uses_external:
        if config["external_pool"]["cache"]:
            caches += expand("results/cache/external/shard-{shard}.npy", shard=SHARDS)
        else:
            d = stage_dir(wildcards.system, wildcards.seed, wildcards.stage)
            caches.append(f"{d}/selected_audio.npy")
    return caches


def pool_truth(wildcards=None):
    """The built-in pool's per-clip truth (category, machine_like) when the external pool is the
    synthetic one, else nothing (real pools: no machine-like share)."""
    if external_kind() == "synthetic":
        return [f"{SYNTH_DIR}/audioset/pool_truth.csv"]
    return []


def stage_diagnostics(artifact, need):
    """Per-stage diagnostics of the selected systems (stages >= 2 whose recipe has them, e.g.
    pseudolabel_quality.csv of systems with pseudo-labels): summary_table input."""

    def get(wildcards=None):
        out = []
        for name in config["systems"]:
            r = recipe_of(name)
            if r.backend != "embedding" or not need(r):
                continue
            out += [
                f"{stage_dir(name, k, m)}/{artifact}"
                for k in config["seeds"]
                for m in range(2, r.stages + 1)
            ]
        return out

    return get
