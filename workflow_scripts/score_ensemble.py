"""Adapter for rule score_ensemble: the members' scores combined into the ensemble's."""

from asdflow.ensemble import combine_scores
from asdflow.schemas import read_table, write_table
from asdflow.workflow import step_logging, write_json

with step_logging(snakemake.log[0], "score_ensemble") as log:  # noqa: F821
    inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
    members = [(spec, read_table(tr, "scores"), read_table(te, "scores"))
               for spec, tr, te in zip(p.members, inp.train, inp.test)]
    result = combine_scores(members, combine=p.combine, weights=p.weights, per_section=p.per_section)
    write_table(result.train, out.train_scores, "scores")
    write_table(result.test, out.test_scores, "scores")
    write_json({**result.report, "member_files": {"train": list(inp.train), "test": list(inp.test)}}, out.report)
    log.info("%s of %s: %d train, %d test clips", p.combine, ", ".join(p.members), len(result.train),
             len(result.test))
