"""Adapter for rule select_external: machine-specific thresholds, N_max lowest-scoring clips."""

from asdflow.schemas import read_table, write_table
import pandas as pd

from asdflow.select import machine_thresholds, select_external
from asdflow.workflow import step_logging

with step_logging(snakemake.log[0], "select_external") as log:  # noqa: F821
    inp, p, out = snakemake.input, snakemake.params, snakemake.output  # noqa: F821
    prev = read_table(inp.scores, "scores")
    thresholds = machine_thresholds(prev[prev["split"] == "train"])
    pool = pd.concat([read_table(s, "external_scores") for s in inp.shards], ignore_index=True)
    selected, audit = select_external(pool, thresholds, n_max=p.n_max, mode=p.mode, label_mode=p.label_mode,
                                      inclusive=p.inclusive, seed=int(snakemake.wildcards.seed))  # noqa: F821
    write_table(selected, out.selection, "selection")
    audit.to_csv(out.audit, index=False)
    log.info("selected %d external clips\n%s", len(selected), audit.to_string(index=False))
