"""Adapter for rule pseudolabels: k-means, GMM-BIC or oracle pseudo-labels of the training clips + their quality."""

from asdflow.data import machine_attr_labels, true_attr_string
from asdflow.pseudo import gmm_bic_labels, label_quality, oracle_labels, pseudo_labels
from asdflow.schemas import read_table, write_table
from asdflow.scoring import stack_embeddings
from asdflow.workflow import step_logging

with step_logging(snakemake.log[0], "pseudolabels") as log:  # noqa: F821
    inp, p, out = snakemake.input, snakemake.params, snakemake.output  # noqa: F821
    train = read_table(inp.embeddings, "embeddings").reset_index(drop=True)
    manifest = read_table(inp.manifest, "dcase_manifest").set_index("clip_id").loc[train["clip_id"]].reset_index()
    attr_series = true_attr_string(manifest)  # visible or hidden: diagnostics and labeled systems
    true_attr = attr_series.to_numpy()
    machines, domains = train["machine"].to_numpy(), train["domain"].to_numpy()
    if p.method == "oracle":
        pl = oracle_labels(machines, domains, true_attr)
    else:
        attr = machine_attr_labels(manifest, attr_series).to_numpy() if p.labels == "machine_attr" else None
        seed = int(snakemake.wildcards.seed)  # noqa: F821
        if p.method == "gmm_bic":
            pl, chosen = gmm_bic_labels(stack_embeddings(train), machines, seed=seed, attr_labels=attr,
                                        **p.options["gmm_bic"])
            log.info("gmm_bic component counts: %s", {m: c["n_components"] for m, c in chosen.items()})
        else:
            kmeans = {k: p.options[k] for k in ("k_source", "k_target", "assign")}
            pl = pseudo_labels(stack_embeddings(train), machines, domains, seed=seed, attr_labels=attr, **kmeans)
    table = train[["clip_id", "machine", "domain"]].assign(pl_cluster=pl["pl_cluster"].to_numpy(),
                                                           label=pl["label"].to_numpy())
    write_table(table, out.labels, "pseudolabels")
    # quality against the true attribute combinations per machine x domain, where known
    truth = machines.astype(str) + "|" + domains.astype(str) + "|" + true_attr.astype(str)
    known = true_attr != ""
    quality = label_quality(table["label"].to_numpy()[known], truth[known], machines[known], domains[known])
    quality.to_csv(out.quality, index=False)
    log.info("%s on %s features: %d pseudo-labels over %d classes; quality:\n%s", p.method, p.features, len(table),
             table["label"].nunique(),
             quality.to_string(index=False))
