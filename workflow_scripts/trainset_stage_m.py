"""Adapter for rule trainset_stage_m: stage m >= 2 training set from the stage m-1 outputs."""

from asdflow.schemas import read_table, write_table
from asdflow.systems import build_stage_trainset
from asdflow.workflow import step_logging

with step_logging(snakemake.log[0], "trainset_stage_m") as log:  # noqa: F821
    inp, p = snakemake.input, snakemake.params  # noqa: F821
    pl = read_table(inp.pseudolabels, "pseudolabels") if "pseudolabels" in inp.keys() else None
    sel, shards = None, None
    if "selection" in inp.keys():
        sel = read_table(inp.selection, "selection")
        shards = [(read_table(m, "external_manifest"), c) for m, c in zip(inp.ext_manifests, inp.ext_caches)]
    trainset = build_stage_trainset(read_table(inp.manifest, "dcase_manifest"), p.cache_npy, p.labels,
                                    pseudolabels=pl, selection=sel, external_shards=shards)
    write_table(trainset, snakemake.output[0], "trainset")  # noqa: F821
    log.info("%d clips (%d external), %d classes", len(trainset), int(trainset["is_external"].sum()),
             trainset["label"].nunique())
