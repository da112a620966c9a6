# Per-stage steps of every system: trainset -> model -> embeddings -> scores -> metrics.
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
    conda:
        "../envs/asdflow-cpu.yaml"
    params:
        labels=lambda wc: recipe(wc).labels,
        cache_npy="results/cache/dcase.npy",
        code=CODE_SCORING,
    script:
        "../workflow_scripts/trainset.py"


rule train_embedding:
    """Train the system's net on its trainset (checkpointed every epoch, resumable)."""
    input:
        trainset="results/{system}/seed{seed}/stage{stage}/trainset.parquet",
        caches=training_caches,
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
        "../envs/asdflow-cpu.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=720,
    params:
        train=train_options,
        audio=audio_spec_params(),
        code=CODE_MODEL,
    script:
        "../workflow_scripts/train_embedding.py"


rule embed_dcase:
    """Embeddings of every DCASE clip (train and test) with the stage's model."""
    input:
        model="results/{system}/seed{seed}/stage{stage}/model.pt",
        manifest="results/manifests/dcase.parquet",
        cache="results/cache/dcase.npy",
    output:
        "results/{system}/seed{seed}/stage{stage}/embeddings.parquet",
    log:
        "logs/embed_dcase/{system}/seed{seed}/stage{stage}.log",
    wildcard_constraints:
        system=systems_with_backend("embedding"),
    conda:
        "../envs/asdflow-cpu.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        batch_size=64,
        code=CODE_MODEL,
    script:
        "../workflow_scripts/embed_dcase.py"


rule score_embeddings:
    """Representatives of the original training clips; score = -max cosine similarity."""
    input:
        embeddings="results/{system}/seed{seed}/stage{stage}/embeddings.parquet",
        trainset="results/{system}/seed{seed}/stage{stage}/trainset.parquet",
        manifest="results/manifests/dcase.parquet",
    output:
        scores="results/{system}/seed{seed}/stage{stage}/scores.parquet",
        representatives="results/{system}/seed{seed}/stage{stage}/representatives.parquet",
    log:
        "logs/score_embeddings/{system}/seed{seed}/stage{stage}.log",
    wildcard_constraints:
        system=systems_with_backend("embedding"),
    conda:
        "../envs/asdflow-cpu.yaml"
    params:
        scoring=config["scoring"],
        code=CODE_SCORING,
    script:
        "../workflow_scripts/score_embeddings.py"


rule score_gmm:
    """GMM baseline: log-mel frames, one GMM per machine type, score = -mean log-likelihood."""
    input:
        manifest="results/manifests/dcase.parquet",
        cache="results/cache/dcase.npy",
    output:
        scores="results/{system}/seed{seed}/stage1/scores.parquet",
    log:
        "logs/score_gmm/{system}/seed{seed}/stage1.log",
    wildcard_constraints:
        system=systems_with_backend("gmm"),
    conda:
        "../envs/asdflow-cpu.yaml"
    params:
        gmm=config["gmm"],
        sample_rate=config["audio"]["sample_rate"],
        code=CODE_SCORING,
    script:
        "../workflow_scripts/score_gmm.py"


rule evaluate:
    """Official DCASE metrics, summary scores and submission CSVs of any system."""
    input:
        scores="results/{system}/seed{seed}/stage{stage}/scores.parquet",
    output:
        metrics="results/{system}/seed{seed}/stage{stage}/metrics.parquet",
        summary="results/{system}/seed{seed}/stage{stage}/metrics_summary.json",
        submission=directory("results/{system}/seed{seed}/stage{stage}/submission"),
    log:
        "logs/evaluate/{system}/seed{seed}/stage{stage}.log",
    conda:
        "../envs/asdflow-cpu.yaml"
    params:
        evaluation=config["evaluation"],
        code=CODE_SCORING,
    script:
        "../workflow_scripts/evaluate.py"


rule summary_table:
    """Long-form metrics of every system x seed x stage and a Markdown results table."""
    input:
        metrics=stage_targets("metrics.parquet"),
        summaries=stage_targets("metrics_summary.json"),
    output:
        csv="results/summary/metrics.csv",
        md="results/summary/table.md",
    log:
        "logs/summary_table.log",
    conda:
        "../envs/asdflow-cpu.yaml"
    params:
        systems=config["systems"],
        seeds=config["seeds"],
    script:
        "../workflow_scripts/summary_table.py"
