# Per-stage steps of every system. Embedding systems: trainset -> model -> embeddings_{train,test}
# -> representatives + train_scores -> test_scores -> metrics. Frame baselines (gmm, autoencoder, cae_svdd,
# serial_oe): baseline.pkl -> train_scores + test_scores -> metrics. Ensembles: their members' scores ->
# train_scores + test_scores (+ ensemble.json) -> metrics.
# Artifacts: results/<system>/seed<k>/stage<m>/...  Backends are chosen by the system's recipe
# (wildcard constraints below), so the summary and evaluation rules treat every system alike.


rule trainset_stage1:
    """Original training clips with the label column of the system's label condition."""
    input:
        manifest="results/manifests/dcase.parquet",
        cache_index="results/cache/dcase.index.parquet",
    output:
        "results/{system}/seed{seed}/stage1/trainset.parquet",
    log:
        "logs/trainset/{system}/seed{seed}/stage1.log",
    wildcard_constraints:
        system=systems_with_backend("embedding"),
    group:
        "trainset"
    conda:
        "../envs/asdflow-cpu.yaml"
    resources:
        mem_mb=mem_mb(2000),
        runtime=runtime_min(15),
    params:
        labels=lambda wc: recipe(wc).labels,
        cache_npy="results/cache/dcase.npy",
        code=CODE_SCORING + CODE_LABELS,
    script:
        "../workflow_scripts/trainset_stage1.py"


rule train_embedding:
    """Train the system's net on its trainset (checkpointed every epoch, resumable)."""
    input:
        trainset="results/{system}/seed{seed}/stage{stage}/trainset.parquet",
        caches=training_caches,
        beats=beats_checkpoint,  # network BEATs only: the checkpoint it loads
    output:
        model="results/{system}/seed{seed}/stage{stage}/model.pt",
        report="results/{system}/seed{seed}/stage{stage}/train_report.json",
    log:
        "logs/train_embedding/{system}/seed{seed}/stage{stage}.log",
    benchmark:
        "benchmarks/train_embedding/{system}/seed{seed}/stage{stage}.tsv"
    wildcard_constraints:
        system=systems_with_backend("embedding"),
    conda:
        "../envs/asdflow-gpu.yaml"
    threads: train_threads
    resources:
        mem_mb=mem_mb(8000),
        runtime=runtime_min(720),
        gpu=GPU_JOB_GPUS,
    params:
        train=train_options,
        audio=audio_spec_params(),
        code=CODE_MODEL,
    script:
        "../workflow_scripts/train_embedding.py"


# stage1_from: the system's stage-1 model is its base system's (same trainset and training),
# copied instead of retrained; everything downstream stays in the system's own folder.
ruleorder: reuse_stage1_model > train_embedding


rule reuse_stage1_model:
    """Copy the stage-1 model of the system's stage1_from base (train_report gets reused_from)."""
    input:
        model=stage1_base("model.pt"),
        report=stage1_base("train_report.json"),
    output:
        model="results/{system}/seed{seed}/stage1/model.pt",
        report="results/{system}/seed{seed}/stage1/train_report.json",
    log:
        "logs/reuse_stage1_model/{system}/seed{seed}/stage1.log",
    wildcard_constraints:
        system=systems_reusing_stage1(),
    conda:
        "../envs/asdflow-cpu.yaml"
    params:
        base=lambda wc: STAGE1_FROM[wc.system],
        code=CODE_SCORING,
    script:
        "../workflow_scripts/reuse_stage1_model.py"


rule embed_dcase:
    """Embeddings of every DCASE clip with the stage's model, one table per split."""
    input:
        model="results/{system}/seed{seed}/stage{stage}/model.pt",
        manifest="results/manifests/dcase.parquet",
        cache="results/cache/dcase.npy",
    output:
        train="results/{system}/seed{seed}/stage{stage}/embeddings_train.parquet",
        test="results/{system}/seed{seed}/stage{stage}/embeddings_test.parquet",
    log:
        "logs/embed_dcase/{system}/seed{seed}/stage{stage}.log",
    benchmark:
        "benchmarks/embed_dcase/{system}/seed{seed}/stage{stage}.tsv"
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
        clip_seconds=config["audio"]["clip_seconds"],
        code=CODE_MODEL,
    script:
        "../workflow_scripts/embed_dcase.py"


rule representatives:
    """k-means representatives of the original training clips; their -max cosine scores."""
    input:
        embeddings="results/{system}/seed{seed}/stage{stage}/embeddings_train.parquet",
        trainset="results/{system}/seed{seed}/stage{stage}/trainset.parquet",
        manifest="results/manifests/dcase.parquet",
    output:
        representatives="results/{system}/seed{seed}/stage{stage}/representatives.parquet",
        train_scores="results/{system}/seed{seed}/stage{stage}/train_scores.parquet",
    log:
        "logs/representatives/{system}/seed{seed}/stage{stage}.log",
    wildcard_constraints:
        system=systems_with_backend("embedding"),
    group:
        "score"
    conda:
        "../envs/asdflow-cpu.yaml"
    resources:
        mem_mb=mem_mb(4000),
        runtime=runtime_min(30),
    params:
        # the paper's scoring options only: a change of scoring.backends (or a further back-end's
        # options) reruns score_backends, never the representatives and what follows them
        scoring={
            k: config["scoring"][k]
            for k in REPRESENTATIVE_OPTIONS
            if k in config["scoring"]
        },
        code=CODE_SCORING,
    script:
        "../workflow_scripts/representatives.py"


rule score_test:
    """Anomaly score of every test clip: -max cosine similarity to the representatives."""
    input:
        embeddings="results/{system}/seed{seed}/stage{stage}/embeddings_test.parquet",
        representatives="results/{system}/seed{seed}/stage{stage}/representatives.parquet",
        manifest="results/manifests/dcase.parquet",
    output:
        "results/{system}/seed{seed}/stage{stage}/test_scores.parquet",
    log:
        "logs/score_test/{system}/seed{seed}/stage{stage}.log",
    wildcard_constraints:
        system=systems_with_backend("embedding"),
    group:
        "score"
    conda:
        "../envs/asdflow-cpu.yaml"
    resources:
        mem_mb=mem_mb(4000),
        runtime=runtime_min(30),
    params:
        code=CODE_SCORING,
    script:
        "../workflow_scripts/score_test.py"


rule score_backends:
    """The stage's embeddings scored by every further back-end of scoring.backends (knn,
    smote_knn, rescaled_knn, gmm): one job, no re-embedding."""
    input:
        embeddings_train="results/{system}/seed{seed}/stage{stage}/embeddings_train.parquet",
        embeddings_test="results/{system}/seed{seed}/stage{stage}/embeddings_test.parquet",
        trainset="results/{system}/seed{seed}/stage{stage}/trainset.parquet",
        manifest="results/manifests/dcase.parquet",
    output:
        train=expand(
            "results/{{system}}/seed{{seed}}/stage{{stage}}/backends/{backend}/train_scores.parquet",
            backend=EXTRA_BACKENDS,
        ),
        test=expand(
            "results/{{system}}/seed{{seed}}/stage{{stage}}/backends/{backend}/test_scores.parquet",
            backend=EXTRA_BACKENDS,
        ),
    log:
        "logs/score_backends/{system}/seed{seed}/stage{stage}.log",
    wildcard_constraints:
        system=systems_with_backend("embedding"),
    # no group: bundled with the score group, a stage's back-end jobs would ask one Slurm job
    # for the sum of their cores (more than a small node has)
    conda:
        "../envs/asdflow-cpu.yaml"
    resources:
        mem_mb=mem_mb(4000),
        runtime=runtime_min(30),
    params:
        backends=EXTRA_BACKENDS,
        options={b: config["scoring"].get(b, {}) for b in EXTRA_BACKENDS},
        per_section=config["scoring"]["per_section"],
        code=CODE_SCORING + CODE_BACKENDS,
    script:
        "../workflow_scripts/score_backends.py"


rule evaluate_backend:
    """Official metrics of one further scoring back-end (same script as evaluate)."""
    input:
        train_scores="results/{system}/seed{seed}/stage{stage}/backends/{backend}/train_scores.parquet",
        test_scores="results/{system}/seed{seed}/stage{stage}/backends/{backend}/test_scores.parquet",
    output:
        metrics="results/{system}/seed{seed}/stage{stage}/backends/{backend}/metrics.parquet",
        summary="results/{system}/seed{seed}/stage{stage}/backends/{backend}/metrics_summary.json",
        submission=directory(
            "results/{system}/seed{seed}/stage{stage}/backends/{backend}/submission"
        ),
    log:
        "logs/evaluate/{system}/seed{seed}/stage{stage}/{backend}.log",
    # no group: bundled with the score group, a stage's back-end jobs would ask one Slurm job
    # for the sum of their cores (more than a small node has)
    conda:
        "../envs/asdflow-cpu.yaml"
    resources:
        mem_mb=mem_mb(2000),
        runtime=runtime_min(15),
    params:
        evaluation=config["evaluation"],
        code=CODE_SCORING,
    script:
        "../workflow_scripts/evaluate.py"


rule fit_baseline:
    """A frame baseline (GMM, DCASE autoencoder, CAE-DANN-SVDD, Serial-OE) fitted on the training clips."""
    input:
        manifest="results/manifests/dcase.parquet",
        cache="results/cache/dcase.npy",
        # files the backend's options name (serial_oe: anomalies list, pretrained weights)
        files=lambda wc: recipe(wc).baseline_files(config, synth_dir()),
    output:
        "results/{system}/seed{seed}/stage1/baseline.pkl",
    log:
        "logs/fit_baseline/{system}/seed{seed}/stage1.log",
    benchmark:
        "benchmarks/fit_baseline/{system}/seed{seed}/stage1.tsv"
    wildcard_constraints:
        system=systems_with_backend(*BASELINE_BACKENDS),
    conda:
        "../envs/asdflow-cpu.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb(8000),
        runtime=runtime_min(240),
    params:
        backend=lambda wc: recipe(wc).backend,
        options=lambda wc: recipe(wc).baseline_options(config, synth_dir()),
        sample_rate=config["audio"]["sample_rate"],
        code=CODE_SCORING,
    script:
        "../workflow_scripts/fit_baseline.py"


rule score_baseline:
    """Scores of every DCASE clip (train and test) by a fitted frame baseline."""
    input:
        model="results/{system}/seed{seed}/stage1/baseline.pkl",
        manifest="results/manifests/dcase.parquet",
        cache="results/cache/dcase.npy",
    output:
        train_scores="results/{system}/seed{seed}/stage1/train_scores.parquet",
        test_scores="results/{system}/seed{seed}/stage1/test_scores.parquet",
    log:
        "logs/score_baseline/{system}/seed{seed}/stage1.log",
    wildcard_constraints:
        system=systems_with_backend(*BASELINE_BACKENDS),
    group:
        "score"
    conda:
        "../envs/asdflow-cpu.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb(8000),
        runtime=runtime_min(120),
    params:
        backend=lambda wc: recipe(wc).backend,
        code=CODE_SCORING,
    script:
        "../workflow_scripts/score_baseline.py"


rule score_ensemble:
    """An ensemble system's train and test scores: its members' scores (other systems,
    stages, back-ends) aligned by clip and combined per machine type (zsum or rank)."""
    input:
        train=ensemble_member_scores("train"),
        test=ensemble_member_scores("test"),
    output:
        train_scores="results/{system}/seed{seed}/stage1/train_scores.parquet",
        test_scores="results/{system}/seed{seed}/stage1/test_scores.parquet",
        report="results/{system}/seed{seed}/stage1/ensemble.json",
    log:
        "logs/score_ensemble/{system}/seed{seed}/stage1.log",
    wildcard_constraints:
        system=systems_with_backend("ensemble"),
    group:
        "score"
    conda:
        "../envs/asdflow-cpu.yaml"
    resources:
        mem_mb=mem_mb(2000),
        runtime=runtime_min(15),
    params:
        # canonical <system>/stage<m>@<backend>, in the order of the inputs
        members=lambda wc: [m.spec for m in ENSEMBLE_MEMBERS[wc.system]],
        combine=lambda wc: recipe(wc).combine,
        weights=lambda wc: recipe(wc).weights,
        per_section=lambda wc: recipe(wc).per_section,
        code=CODE_SCORING + CODE_ENSEMBLE,
    script:
        "../workflow_scripts/score_ensemble.py"


rule evaluate:
    """Official DCASE metrics, summary scores and submission CSVs of any system."""
    input:
        train_scores="results/{system}/seed{seed}/stage{stage}/train_scores.parquet",
        test_scores="results/{system}/seed{seed}/stage{stage}/test_scores.parquet",
    output:
        metrics="results/{system}/seed{seed}/stage{stage}/metrics.parquet",
        summary="results/{system}/seed{seed}/stage{stage}/metrics_summary.json",
        submission=directory("results/{system}/seed{seed}/stage{stage}/submission"),
    log:
        "logs/evaluate/{system}/seed{seed}/stage{stage}.log",
    group:
        "score"
    conda:
        "../envs/asdflow-cpu.yaml"
    resources:
        mem_mb=mem_mb(2000),
        runtime=runtime_min(15),
    params:
        # max_fpr, threshold, threshold_q and rules (dcase2020 | dcase2021 | dcase2022+ | auto):
        # a change reruns this rule and what reads its outputs, nothing upstream
        evaluation=config["evaluation"],
        code=CODE_SCORING,
    script:
        "../workflow_scripts/evaluate.py"


rule summary_table:
    """Long-form metrics of every system x seed x stage and a Markdown results table."""
    input:
        metrics=stage_targets("metrics.parquet") + backend_targets("metrics.parquet"),
        summaries=stage_targets("metrics_summary.json")
        + backend_targets("metrics_summary.json"),
        # stages >= 2 diagnostics of the systems that have them (none: empty lists)
        quality=stage_diagnostics(
            "pseudolabel_quality.csv", lambda r: bool(r.pseudo_labels)
        ),
        audits=stage_diagnostics("selection_audit.csv", lambda r: r.uses_external),
    output:
        csv=report(
            "results/summary/metrics.csv",
            caption="../report/summary.rst",
            category="1. Results",
            labels={"table": "long-form metrics"},
        ),
        parquet="results/summary/metrics.parquet",
        aggregate="results/summary/aggregate.csv",
        table2=report(
            "results/summary/table2.csv",
            caption="../report/summary.rst",
            category="1. Results",
            labels={"table": "Table 2 shape: official score"},
        ),
        table_a1=report(
            "results/summary/table_a1.csv",
            caption="../report/summary.rst",
            category="1. Results",
            labels={"table": "Table A.1 shape: AUC by domain"},
        ),
        ladder=report(
            "results/summary/ladder.csv",
            caption="../report/summary.rst",
            category="1. Results",
            labels={"table": "ladder: scores and stage diagnostics"},
        ),
        md="results/summary/table.md",
    log:
        "logs/summary_table.log",
    conda:
        "../envs/asdflow-cpu.yaml"
    params:
        systems=config["systems"],
        seeds=config["seeds"],
        conditions=label_conditions(),
        # system -> its default scoring (kmeans_cos or the frame baseline); further back-ends'
        # runs appear as <system>@<backend>
        backends=backend_of_runs(),
        code=CODE_REPORT,
    script:
        "../workflow_scripts/summary_table.py"
