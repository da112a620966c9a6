"""Adapter for rule pseudolabels: k-means pseudo-labels of the training clips + their quality."""

import numpy as np

from asdflow.pseudo import label_quality, pseudo_labels
from asdflow.schemas import read_table, write_table
from asdflow.scoring import stack_embeddings
from asdflow.workflow import step_logging

with step_logging(snakemake.log[0], "pseudolabels") as log:  # noqa: F821
    inp, p, out = snakemake.input, snakemake.params, snakemake.output  # noqa: F821
    train = read_table(inp.embeddings, "embeddings").reset_index(drop=True)
    manifest = read_table(inp.manifest, "dcase_manifest").set_index("clip_id").loc[train["clip_id"]]
    attr = None
    if p.labels == "machine_attr":
        attr = (manifest["machine"] + "_sec" + manifest["section"] + "_" + manifest["attr_string"]).to_numpy()
    pl = pseudo_labels(stack_embeddings(train), train["machine"].to_numpy(), train["domain"].to_numpy(),
                       seed=int(snakemake.wildcards.seed), attr_labels=attr, **p.options)  # noqa: F821
    table = train[["clip_id", "machine", "domain"]].assign(pl_cluster=pl["pl_cluster"].to_numpy(),
                                                           label=pl["label"].to_numpy())
    write_table(table, out.labels, "pseudolabels")
    # quality against the true attributes where known (synthetic data, or labeled data run unlabeled)
    pairs = manifest["attributes"].where(manifest["attributes"].map(len) > 0, manifest["hidden_attributes"])
    truth = manifest["machine"].to_numpy() + "|" + manifest["domain"].to_numpy() + "|" + pairs.map(
        lambda ps: ",".join(f"{a['name']}={a['value']}" for a in ps)).to_numpy()
    known = pairs.map(len).to_numpy() > 0
    quality = label_quality(table["label"].to_numpy()[known], truth[known], table["machine"].to_numpy()[known])
    quality.to_csv(out.quality, index=False)
    log.info("%d pseudo-labels over %d classes; quality:\n%s", len(table), table["label"].nunique(),
             quality.to_string(index=False))
