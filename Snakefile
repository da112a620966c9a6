# asdflow: unlabeled anomalous sound detection as a Snakemake workflow.
# Entry point only: configuration, includes and the default target. Rules live in rules/*.smk,
# their Python adapters in workflow_scripts/, the logic in the asdflow package (src/asdflow/).
import os

from snakemake.utils import min_version

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/resources.smk"


wildcard_constraints:
    shard=r"\d{4}",
    seed=r"\d+",
    stage=r"\d+",


include: "rules/data.smk"
include: "rules/stage.smk"
include: "rules/iterate.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        final_targets(),
