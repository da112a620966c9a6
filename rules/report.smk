# Figures and tables of the HTML report (`snakemake --report report.zip`): AUC by stage, ROC
# curves and 2-D embedding maps per stage; the summary tables, selection audits and pseudo-label
# quality tables are marked report() where their rules write them.
# Artifacts: results/summary/auc_by_stage.png, results/<system>/seed<k>/stage<m>/report/*.png


rule plot_auc_by_stage:
    """Per machine type and domain: AUC against the stage for every system."""
    input:
        "results/summary/metrics.parquet",
    output:
        report(
            "results/summary/auc_by_stage.png",
            caption="../report/auc_by_stage.rst",
            category="1. Results",
        ),
    log:
        "logs/plot_auc_by_stage.log",
    conda:
        "../envs/asdflow-cpu.yaml"
    params:
        code=CODE_REPORT,
    script:
        "../workflow_scripts/plot_auc_by_stage.py"


rule plot_roc:
    """ROC curves of a stage's test scores, per machine type and domain."""
    input:
        "results/{system}/seed{seed}/stage{stage}/test_scores.parquet",
    output:
        report(
            "results/{system}/seed{seed}/stage{stage}/report/roc.png",
            caption="../report/roc.rst",
            category="2. ROC curves",
            subcategory="{system}",
            labels={"system": "{system}", "seed": "{seed}", "stage": "{stage}"},
        ),
    log:
        "logs/plot_roc/{system}/seed{seed}/stage{stage}.log",
    group:
        "score"
    conda:
        "../envs/asdflow-cpu.yaml"
    resources:
        mem_mb=mem_mb(2000),
        runtime=runtime_min(15),
    params:
        code=CODE_REPORT,
    script:
        "../workflow_scripts/plot_roc.py"


rule plot_embeddings:
    """2-D PCA map of a stage's train and test embeddings."""
    input:
        train="results/{system}/seed{seed}/stage{stage}/embeddings_train.parquet",
        test="results/{system}/seed{seed}/stage{stage}/embeddings_test.parquet",
    output:
        report(
            "results/{system}/seed{seed}/stage{stage}/report/embeddings_2d.png",
            caption="../report/embeddings_2d.rst",
            category="3. Embeddings",
            subcategory="{system}",
            labels={"system": "{system}", "seed": "{seed}", "stage": "{stage}"},
        ),
    log:
        "logs/plot_embeddings/{system}/seed{seed}/stage{stage}.log",
    wildcard_constraints:
        system=systems_with_backend("embedding"),
    conda:
        "../envs/asdflow-cpu.yaml"
    resources:
        mem_mb=mem_mb(4000),
        runtime=runtime_min(30),
    params:
        code=CODE_REPORT,
    script:
        "../workflow_scripts/plot_embeddings.py"
