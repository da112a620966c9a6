#!/usr/bin/env bash
# Run by Snakemake after creating the environment: install the asdflow package (no deps: the
# environment file pins them) from the checkout this workflow runs in.
set -euo pipefail
pip install --no-deps --no-build-isolation -e "${SNAKEMAKE_WORKFLOW_DIR:-$PWD}"
