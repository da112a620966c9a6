# Stages m >= 2 (seed 000 §4.3): the stage m-1 model scores the external pool (one job per
# shard, FAISS search), selects pseudo-anomalous clips per machine type, and its k-means
# pseudo-labels relabel the original clips; stage m trains from scratch on that trainset.
# Artifacts: results/<system>/seed<k>/stage<m>/{external_scores/,selection*,pseudolabels*,trainset}


rule score_external_shard:
    """Embed one pool shard with the stage m-1 model; nearest machine type and its score."""
    input:
        model=previous("model.pt"),
        representatives=previous("representatives.parquet"),
        manifest="results/manifests/external/shard-{shard}.parquet",
        cache=external_shard_cache,  # [] with external_pool.cache: false (decode the files)
    output:
        "results/{system}/seed{seed}/stage{stage}/external_scores/shard-{shard}.parquet",
    log:
        "logs/score_external_shard/{system}/seed{seed}/stage{stage}/{shard}.log",
    benchmark:
        "benchmarks/score_external_shard/{system}/seed{seed}/stage{stage}/{shard}.tsv"
    wildcard_constraints:
        system=systems_with_backend("embedding"),
    conda:
        "../envs/asdflow-gpu.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb(8000),
        runtime=runtime_min(120),
        gpu=GPU_JOB_GPUS,
    params:
        inference=config["inference"],  # batch size per device, inference copy of the model
        renormalize=config["scoring"]["renormalize"],
        use_cache=config["external_pool"]["cache"],
        audio=audio_spec_params(),  # decoding spec when there is no cache
        amp=True,  # bfloat16 autocast on CUDA (ignored on CPU)
        code=CODE_SCORING + CODE_MODEL + CODE_IO,
    script:
        "../workflow_scripts/score_external_shard.py"


rule select_external:
    """Per machine: threshold = max training score; keep the N_max lowest-scoring pool clips."""
    input:
        shards=external_score_shards,
        train_scores=previous("train_scores.parquet"),
        pool_truth=pool_truth,  # built-in pool only: which clips are machine-like
    output:
        selection="results/{system}/seed{seed}/stage{stage}/selection.parquet",
        classes="results/{system}/seed{seed}/stage{stage}/selection_classes.csv",
        audit=report(
            "results/{system}/seed{seed}/stage{stage}/selection_audit.csv",
            caption="../report/selection.rst",
            category="4. External-data selection",
            labels={"system": "{system}", "seed": "{seed}", "stage": "{stage}"},
        ),
    log:
        "logs/select_external/{system}/seed{seed}/stage{stage}.log",
    group:
        "trainset"
    conda:
        "../envs/asdflow-cpu.yaml"
    resources:
        mem_mb=mem_mb(4000),
        runtime=runtime_min(30),
    params:
        mode=lambda wc: recipe(wc).external,
        n_max=lambda wc: recipe(wc).n_max,
        label_mode=config["selection"]["label_mode"],
        inclusive=config["selection"]["inclusive"],
        code=CODE_SELECT,
    script:
        "../workflow_scripts/select_external.py"


rule embed_beats:
    """Frozen BEATs features (mean-pooled, 768-d for BEATs_iter3) of every DCASE training clip,
    for pseudo-labels with features beats (seed 003 §2.2.3). Computed once per run."""
    input:
        checkpoint=beats_checkpoint(),
        manifest="results/manifests/dcase.parquet",
        cache="results/cache/dcase.npy",
    output:
        BEATS_FEATURES,
    log:
        "logs/embed_beats.log",
    benchmark:
        "benchmarks/embed_beats.tsv"
    conda:
        "../envs/asdflow-gpu.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb(8000),
        runtime=runtime_min(120),
        gpu=GPU_JOB_GPUS,
    params:
        checkpoint=config["beats"]["checkpoint"],
        inference=config["inference"],
        clip_seconds=config["audio"]["clip_seconds"],
        code=CODE_MODEL,
    script:
        "../workflow_scripts/embed_beats.py"


rule pseudolabels:
    """k-means per machine x domain (kmeans) or PCA + GMM per machine with BIC (gmm_bic) on the
    stage m-1 training embeddings or frozen BEATs features (features), or (pseudo_labels:
    oracle) the true attribute combination per machine x domain."""
    input:
        embeddings=pseudolabel_embeddings,
        manifest="results/manifests/dcase.parquet",
    output:
        labels="results/{system}/seed{seed}/stage{stage}/pseudolabels.parquet",
        quality=report(
            "results/{system}/seed{seed}/stage{stage}/pseudolabel_quality.csv",
            caption="../report/pseudolabels.rst",
            category="5. Pseudo-labels",
            labels={"system": "{system}", "seed": "{seed}", "stage": "{stage}"},
        ),
    log:
        "logs/pseudolabels/{system}/seed{seed}/stage{stage}.log",
    group:
        "trainset"
    conda:
        "../envs/asdflow-cpu.yaml"
    resources:
        mem_mb=mem_mb(4000),
        runtime=runtime_min(30),
    params:
        method=pseudo_label_method,  # kmeans | gmm_bic | oracle (true attributes)
        features=pseudo_label_features,  # stage | beats (None: oracle)
        options=config["pseudo_labels"],
        labels=lambda wc: recipe(wc).labels,
        code=CODE_SCORING + CODE_LABELS,
    script:
        "../workflow_scripts/pseudolabels.py"


rule cache_selected_external:
    """external_pool.cache: false: decode only the selected pool clips, for training."""
    input:
        selection="results/{system}/seed{seed}/stage{stage}/selection.parquet",
        ext_manifests=expand(
            "results/manifests/external/shard-{shard}.parquet", shard=SHARDS
        ),
    output:
        manifest="results/{system}/seed{seed}/stage{stage}/selected_external.parquet",
        npy="results/{system}/seed{seed}/stage{stage}/selected_audio.npy",
        index="results/{system}/seed{seed}/stage{stage}/selected_audio.index.parquet",
        spec="results/{system}/seed{seed}/stage{stage}/selected_audio.spec.json",
        report="results/{system}/seed{seed}/stage{stage}/selected_audio.report.json",
    log:
        "logs/cache_selected_external/{system}/seed{seed}/stage{stage}.log",
    wildcard_constraints:
        system=systems_with_backend("embedding"),
    group:
        "trainset"  # between select_external and trainset_stage_m, which share this group
    conda:
        "../envs/asdflow-cpu.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb(8000),
        runtime=runtime_min(120),
    params:
        audio=audio_spec_params(),
        code=CODE_IO + CODE_SELECT,
    script:
        "../workflow_scripts/cache_selected_external.py"


rule trainset_stage_m:
    """Original clips (pseudo-labelled) + selected external clips with machine_mid labels."""
    input:
        unpack(stage_trainset_inputs),
    output:
        "results/{system}/seed{seed}/stage{stage}/trainset.parquet",
    log:
        "logs/trainset/{system}/seed{seed}/stage{stage}.log",
    wildcard_constraints:
        system=systems_with_backend("embedding"),
        stage=r"[2-9]|[1-9]\d+",
    group:
        "trainset"
    conda:
        "../envs/asdflow-cpu.yaml"
    resources:
        mem_mb=mem_mb(4000),
        runtime=runtime_min(30),
    params:
        labels=lambda wc: recipe(wc).labels,
        cache_npy="results/cache/dcase.npy",
        code=CODE_SCORING + CODE_LABELS,
    script:
        "../workflow_scripts/trainset_stage_m.py"
