"""Adapter for rule select_external: machine-specific thresholds, N_max lowest-scoring clips."""

from asdflow.schemas import read_table, write_table
from asdflow.select import (audit_with_machine_like, machine_thresholds, read_pool_truth, select_from_shards,
                            selection_classes)
from asdflow.workflow import step_logging

with step_logging(snakemake.log[0], "select_external") as log:  # noqa: F821
    inp, p, out = snakemake.input, snakemake.params, snakemake.output  # noqa: F821
    thresholds = machine_thresholds(read_table(inp.train_scores, "scores"))
    # shard by shard, bounded top-k merge per machine: the pool is never concatenated
    selected, audit = select_from_shards(inp.shards, thresholds, n_max=p.n_max, mode=p.mode,
                                         label_mode=p.label_mode, inclusive=p.inclusive,
                                         seed=int(snakemake.wildcards.seed))  # noqa: F821
    write_table(selected, out.selection, "selection")
    # built-in pool only: which selected clips come from machine-like classes
    machine_like = read_pool_truth(inp.pool_truth[0]) if inp.pool_truth else None
    audit = audit_with_machine_like(audit, selected, machine_like)
    audit.to_csv(out.audit, index=False)
    selection_classes(selected).to_csv(out.classes, index=False)
    log.info("selected %d external clips\n%s", len(selected), audit.to_string(index=False))
