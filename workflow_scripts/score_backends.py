"""Adapter for rule score_backends: every further scoring back-end on the stage's embeddings."""

from asdflow.backends import score_backends
from asdflow.schemas import read_table, write_table
from asdflow.systems import with_file_names
from asdflow.workflow import step_logging

with step_logging(snakemake.log[0], "score_backends") as log:  # noqa: F821
    inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
    trainset = read_table(inp.trainset, "trainset")
    manifest = read_table(inp.manifest, "dcase_manifest")
    scored = score_backends(
        read_table(inp.embeddings_train, "embeddings"), read_table(inp.embeddings_test, "embeddings"),
        trainset.loc[~trainset["is_external"], "clip_id"], p.backends, p.options,
        per_section=p.per_section, seed=int(snakemake.wildcards.seed),  # noqa: F821
    )
    for backend, train_path, test_path in zip(p.backends, out.train, out.test):
        train, test = scored[backend]
        write_table(with_file_names(train, manifest), train_path, "scores")
        write_table(with_file_names(test, manifest), test_path, "scores")
        log.info("%s: %d train, %d test clips scored", backend, len(train), len(test))
