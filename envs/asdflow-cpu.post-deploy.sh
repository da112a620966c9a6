#!/usr/bin/env bash
# Run by Snakemake (--sdm conda) inside the new environment, right after creating it: install
# the asdflow package (no deps: the environment file pins them) from the checkout this workflow
# runs from. Snakemake runs this script from its working directory, which is the repository
# root when Snakemake is started there (as the README says); elsewhere set ASDFLOW_SRC to it.
set -euo pipefail
src="${ASDFLOW_SRC:-$PWD}"
if ! grep -qs '^name = "asdflow"' "$src/pyproject.toml"; then
    echo "asdflow post-deploy: $src/pyproject.toml is not asdflow's; run Snakemake from the" \
        "repository root or set ASDFLOW_SRC to the checkout" >&2
    exit 1
fi
python -m pip install --no-deps --no-build-isolation -e "$src"
