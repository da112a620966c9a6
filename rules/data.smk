# Data steps: built-in synthetic data, manifests (DCASE + external pool), decoded-audio caches.
# Artifacts: results/data/synth/..., results/manifests/..., results/cache/...


rule synth_data:
    """Write the built-in synthetic DCASE-layout dev set and AudioSet-layout pool."""
    output:
        summary=SYNTH_SUMMARY,
        pool_truth=f"{SYNTH_DIR}/audioset/pool_truth.csv",  # category of every pool clip
        # a few anomalous training clips outside the DCASE tree (serial_oe anomalies: synthetic)
        train_anomalies=f"{SYNTH_DIR}/train_anomalies.csv",
    log:
        "logs/synth_data.log",
    benchmark:
        "benchmarks/synth_data.tsv"
    conda:
        "../envs/asdflow-cpu.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb(4000),
        runtime=runtime_min(30),
    params:
        preset=config["synth"]["preset"],
        seed=config["synth"]["seed"],
        options=config["synth"]["options"],
        code=CODE_SYNTH,
    script:
        "../workflow_scripts/synth_data.py"


rule dcase_manifest:
    """One row per DCASE clip (path, machine, section, domain, split, label, attributes)."""
    input:
        synth_input,
    output:
        manifest="results/manifests/dcase.parquet",
        report="results/manifests/dcase.report.json",
    log:
        "logs/dcase_manifest.log",
    conda:
        "../envs/asdflow-cpu.yaml"
    resources:
        mem_mb=mem_mb(4000),
        runtime=runtime_min(30),
    params:
        root=dcase_root(),
        datasets=config["datasets"],
        hide_attributes=config["hide_attributes"],
        eval_ground_truth=eval_ground_truth(),
        min_seconds=config["audio"]["min_seconds"],
        code=CODE_IO,
    script:
        "../workflow_scripts/dcase_manifest.py"


rule external_manifest:
    """External pool (AudioSet or plain folder) as n_shards balanced manifest shards."""
    input:
        synth_input,
    output:
        shards=expand("results/manifests/external/shard-{shard}.parquet", shard=SHARDS),
        report="results/manifests/external.report.json",
    log:
        "logs/external_manifest.log",
    conda:
        "../envs/asdflow-cpu.yaml"
    resources:
        mem_mb=mem_mb(8000),
        runtime=runtime_min(60),
    params:
        external=external_params(),
        n_shards=N_SHARDS,
        label_mode=config["external_pool"]["label_mode"],
        required_by=systems_using_external(),
        code=CODE_IO,
    script:
        "../workflow_scripts/external_manifest.py"


rule cache_dcase_audio:
    """Decode every DCASE clip once: resample, mono, fixed length, int16 memmap."""
    input:
        manifest="results/manifests/dcase.parquet",
    output:
        npy="results/cache/dcase.npy",
        index="results/cache/dcase.index.parquet",
        spec="results/cache/dcase.spec.json",
        report="results/cache/dcase.report.json",
    log:
        "logs/cache_dcase_audio.log",
    benchmark:
        "benchmarks/cache_dcase_audio.tsv"
    conda:
        "../envs/asdflow-cpu.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb(4000),
        runtime=runtime_min(60),
    params:
        audio=audio_spec_params(),
        code=CODE_IO,
    script:
        "../workflow_scripts/cache_audio.py"


rule cache_external_shard:
    """Decode one external-pool shard once (later stages read the cache)."""
    input:
        manifest="results/manifests/external/shard-{shard}.parquet",
    output:
        npy="results/cache/external/shard-{shard}.npy",
        index="results/cache/external/shard-{shard}.index.parquet",
        spec="results/cache/external/shard-{shard}.spec.json",
        report="results/cache/external/shard-{shard}.report.json",
    log:
        "logs/cache_external_shard/{shard}.log",
    benchmark:
        "benchmarks/cache_external_shard/{shard}.tsv"
    conda:
        "../envs/asdflow-cpu.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb(4000),
        runtime=runtime_min(120),
    params:
        audio=audio_spec_params(),
        code=CODE_IO,
    script:
        "../workflow_scripts/cache_audio.py"


rule data_summary:
    """Counts per machine/split/domain/label and the skip reports, as Markdown."""
    input:
        manifest="results/manifests/dcase.parquet",
        report="results/manifests/dcase.report.json",
        cache_report="results/cache/dcase.report.json",
        external_report=(
            ["results/manifests/external.report.json"] if external_kind() else []
        ),
    output:
        md="results/summary/data.md",
    log:
        "logs/data_summary.log",
    conda:
        "../envs/asdflow-cpu.yaml"
    script:
        "../workflow_scripts/data_summary.py"
