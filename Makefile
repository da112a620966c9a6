# The two commands of the README. Both create .venv and install the pinned package on first use.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
CORES ?= 2
SNAKEMAKE_ARGS ?=

LADDER_DIR ?= ladder
SEEDS_DIR ?= leaderboard

.PHONY: demo ladder seeds test install lint clean-results

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "installing asdflow and its pinned dependencies into $(VENV) (first run takes a few minutes)"
	$(BIN)/python -m pip install --quiet -e '.[dev]' 2>&1 | { grep -v '^WARNING: Location' || true; }
	@rm -f $(VENV)/.installed-*
	@touch $@

## make demo: run the main workflow on the built-in synthetic data and print the results table
demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --printshellcmds $(SNAKEMAKE_ARGS)
	@echo; for f in results/summary/table.md results/summary/data.md; do if [ -f $$f ]; then cat $$f; break; fi; done

## make ladder: the diagnostic ladder (configs/ladder.yaml: 3 seeds) in $(LADDER_DIR)/, mean ± sd table
ladder: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --directory $(LADDER_DIR) --configfile configs/ladder.yaml $(SNAKEMAKE_ARGS)
	@echo; if [ -f $(LADDER_DIR)/results/summary/table.md ]; then cat $(LADDER_DIR)/results/summary/table.md; fi

## make seeds: the seed-system leaderboard (configs/seeds.yaml: every seed paper's system, 3 seeds) in $(SEEDS_DIR)/
seeds: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --directory $(SEEDS_DIR) --configfile configs/seeds.yaml $(SNAKEMAKE_ARGS)
	@echo; if [ -f $(SEEDS_DIR)/results/summary/table.md ]; then cat $(SEEDS_DIR)/results/summary/table.md; fi

## make test: the test suite (unit tests + an end-to-end run of the real workflow on tiny data)
test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/snakemake --lint --cores 1
	$(BIN)/snakefmt --check Snakefile rules/

clean-results:
	rm -rf results logs benchmarks/*.tsv .snakemake
