"""Registry of the workflow's artifacts: every path under ``results/``, what it is, which rule writes it.

:data:`ARTIFACTS` lists each artifact path pattern (Snakemake-style wildcards) with the rule(s)
that write it, a one-line meaning, and for tables the schema (:mod:`asdflow.schemas`) or the
column meanings. ``asdflow inspect`` uses it to say what a file is; ``docs/artifacts.md`` is
generated from it and from the schemas by :func:`artifacts_markdown`
(``asdflow docs-artifacts > docs/artifacts.md``; a test fails when the file is out of date).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterator, Mapping

import pyarrow as pa

from asdflow.schemas import SCHEMAS, describe

__all__ = ["ARTIFACTS", "Artifact", "artifacts_markdown", "column_meanings", "format_pattern", "match_artifact"]

#: Regular expression of each wildcard the patterns use.
WILDCARDS: Mapping[str, str] = {
    "system": r"[^/]+",
    "seed": r"\d+",
    "stage": r"\d+",
    "shard": r"\d{4}",
    "preset": r"[^/]+?",
    "synth_seed": r"\d+",
    "machine": r"[^/]+?",
    "section": r"\d+",
    "dataset": r"[^/]+",
    "path": r".+",
    "backend": r"[a-z_]+",
    "kind": r"anomaly_score|decision_result",
}

_WILDCARD = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Artifact:
    """One artifact path pattern (relative to the workflow directory)."""

    pattern: str
    rules: tuple[str, ...]  # the rule(s) that write it (several: chosen per wildcards/recipe)
    meaning: str
    group: str
    schema: str | None = None  # key of asdflow.schemas.SCHEMAS (parquet tables)
    columns: Mapping[str, str] = field(default_factory=dict)  # meanings of a table without schema
    declared: bool = True  # a declared Snakemake output (or a file inside a directory output)
    provenance_of: str | None = None  # undeclared file: the declared output its job also wrote
    header: bool = True  # a CSV table with a header line (submission files have none)

    @cached_property
    def regex(self) -> re.Pattern:
        out, pos = [], 0
        for m in _WILDCARD.finditer(self.pattern):
            out.append(re.escape(self.pattern[pos:m.start()]))
            out.append(f"(?P<{m.group(1)}>{WILDCARDS[m.group(1)]})")
            pos = m.end()
        out.append(re.escape(self.pattern[pos:]))
        return re.compile("".join(out))

    def match(self, relpath: str) -> dict[str, str] | None:
        """The wildcard values when ``relpath`` (posix, relative to the workflow dir) matches."""
        m = self.regex.fullmatch(relpath)
        return m.groupdict() if m else None

    def format(self, **wildcards: str) -> str:
        return format_pattern(self.pattern, wildcards)

    @property
    def file_kind(self) -> str:
        """parquet | npy | json | csv | md | png | pt | pkl | dir | ..."""
        name = self.pattern.rsplit("/", 1)[-1]
        if "." not in name.lstrip("."):
            return "dir" if name != "{path}" else "any"
        return name.rsplit(".", 1)[-1]


def format_pattern(pattern: str, wildcards: Mapping[str, str]) -> str:
    """``pattern`` with its wildcards filled in."""
    return _WILDCARD.sub(lambda m: str(wildcards[m.group(1)]), pattern)


_STAGE = "results/{system}/seed{seed}/stage{stage}"
#: Columns of the long-form metrics (asdflow.summary.collect_metrics).
_LONG_METRICS = {
    "system": "system name", "seed": "seed", "stage": "stage", "split": "dev | eval",
    "machine": "machine type (ALL: overall row)", "section": "section id ('' on ALL rows)",
    "domain": "source | target", "auc": "AUC (ALL rows: harmonic mean over sections)",
    "pauc": "pAUC over both domains (ALL rows: harmonic mean)",
    "pauc_domain": "pAUC of that domain's clips", "official_score": "official score (ALL rows only)"}
_SYNTH = "results/data/synth/{preset}-seed{synth_seed}"

# Order matters: the first matching pattern wins (specific patterns before catch-alls).
ARTIFACTS: tuple[Artifact, ...] = (
    # --- built-in synthetic data -----------------------------------------------------------
    Artifact(f"{_SYNTH}/synth_summary.json", ("synth_data",),
             "summary of the built-in synthetic data: generator config, counts, the DCASE-layout root, "
             "the pool's segment lists, labels and audio folders", "data"),
    Artifact(f"{_SYNTH}/audioset/pool_truth.csv", ("synth_data",),
             "category of every synthetic pool clip (selection audits: machine-like share)", "data",
             columns={"ytid": "pool clip id (clip_id is ext/<ytid>)", "file_name": "audio file name",
                      "category": "sound category the clip was generated as",
                      "machine_like": "true for machine-like categories"}),
    Artifact(f"{_SYNTH}/dcase/truth.csv", ("synth_data",),
             "what every synthetic DCASE clip really is (tests and analyses; not read by the workflow)", "data",
             declared=False, provenance_of=f"{_SYNTH}/synth_summary.json",
             columns={"dataset": "dev_data | eval_data", "machine": "machine type", "split": "train | test",
                      "file_name": "audio file name", "domain": "source | target",
                      "label": "normal | anomaly", "anomaly_kind": "kind of the injected anomaly (none)",
                      "attributes": "attribute tail of the file name", "snr_db": "signal-to-noise ratio (dB)"}),
    Artifact(f"{_SYNTH}/train_anomalies.csv", ("synth_data",),
             "a few anomalous training clips per machine type, outside the DCASE tree (train_anomalies/); "
             "columns machine, path (relative to this list), anomaly_kind; read only by systems given "
             "them (serial_oe anomalies: synthetic)", "data"),
    Artifact(f"{_SYNTH}/{{path}}", ("synth_data",),
             "the synthetic data themselves: DCASE-layout dev set (dcase/: WAV clips, attributes_XX.csv), "
             "AudioSet-layout pool (audioset/: WAV clips, segment lists, class_labels_indices.csv) and "
             "the anomalous training clips (train_anomalies/); "
             "written next to synth_summary.json (not declared outputs)", "data",
             declared=False, provenance_of=f"{_SYNTH}/synth_summary.json"),
    # --- manifests -------------------------------------------------------------------------
    Artifact("results/manifests/dcase.parquet", ("dcase_manifest",),
             "one row per DCASE clip: path, machine, section, domain, split, label, attributes", "data",
             schema="dcase_manifest"),
    Artifact("results/manifests/dcase.report.json", ("dcase_manifest",),
             "DCASE ingestion report: files seen, rows, skipped files with reasons, name patterns, "
             "attribute sources, warnings", "data"),
    Artifact("results/manifests/external/shard-{shard}.parquet", ("external_manifest",),
             "one row per external-pool clip of the shard (path, segment, AudioSet labels)", "data",
             schema="external_manifest"),
    Artifact("results/manifests/external.report.json", ("external_manifest",),
             "external-pool ingestion report: rows per shard, missing/unreadable/duplicate clips, "
             "unknown label ids, segment lists read", "data"),
    # --- decoded-audio caches --------------------------------------------------------------
    Artifact("results/cache/dcase.npy", ("cache_dcase_audio",),
             "decoded DCASE audio: int16 array [clips, samples] (resampled, mono, fixed length; "
             "a failed clip is a zero row)", "cache"),
    Artifact("results/cache/dcase.index.parquet", ("cache_dcase_audio",),
             "row of every DCASE clip in dcase.npy and its decoding status", "cache",
             schema="audio_cache_index"),
    Artifact("results/cache/dcase.spec.json", ("cache_dcase_audio",),
             "the audio spec the cache was built with (sample_rate, clip_seconds, length_policy, crop)", "cache"),
    Artifact("results/cache/dcase.report.json", ("cache_dcase_audio",),
             "cache build report: clips ok/failed (with errors), clipped samples, bytes, speed", "cache"),
    Artifact("results/cache/external/shard-{shard}.npy", ("cache_external_shard",),
             "decoded audio of one external-pool shard: int16 array [clips, samples]", "cache"),
    Artifact("results/cache/external/shard-{shard}.index.parquet", ("cache_external_shard",),
             "row of every clip of the shard in its .npy and its decoding status", "cache",
             schema="audio_cache_index"),
    Artifact("results/cache/external/shard-{shard}.spec.json", ("cache_external_shard",),
             "the audio spec the shard cache was built with", "cache"),
    Artifact("results/cache/external/shard-{shard}.report.json", ("cache_external_shard",),
             "shard cache build report: clips ok/failed (with errors), bytes, speed", "cache"),
    # --- per system x seed x stage ---------------------------------------------------------
    Artifact(f"{_STAGE}/trainset.parquet", ("trainset_stage1", "trainset_stage_m"),
             "the clips the stage's model trains on, with their training class and cache row "
             "(stage 1: original clips; stages >= 2: pseudo-labelled clips + selected pool clips)", "stage",
             schema="trainset"),
    Artifact(f"{_STAGE}/model.pt", ("train_embedding", "reuse_stage1_model"),
             "trained embedding net (torch checkpoint: weights, loss state, classes, train config, "
             "n_samples, sample_rate, history); stage1_from systems copy their base system's", "stage"),
    Artifact(f"{_STAGE}/model.pt.ckpt", ("train_embedding",),
             "per-epoch training checkpoint (resume after a kill); removed when training finishes", "stage",
             declared=False, provenance_of=f"{_STAGE}/model.pt"),
    Artifact(f"{_STAGE}/train_report.json", ("train_embedding", "reuse_stage1_model"),
             "training report: clips, classes, epochs, loss history, seconds per epoch, device, "
             "resumed_from_epoch (reused_from for a copied stage-1 model)", "stage"),
    Artifact(f"{_STAGE}/embeddings_train.parquet", ("embed_dcase",),
             "embedding of every DCASE training clip by the stage's model", "stage", schema="embeddings"),
    Artifact(f"{_STAGE}/embeddings_test.parquet", ("embed_dcase",),
             "embedding of every DCASE test clip by the stage's model", "stage", schema="embeddings"),
    Artifact(f"{_STAGE}/representatives.parquet", ("representatives",),
             "representative vectors per machine type (k-means of source training clips, target clips)",
             "stage", schema="representatives"),
    Artifact(f"{_STAGE}/train_scores.parquet", ("representatives", "score_baseline", "score_ensemble"),
             "anomaly score of every training clip (thresholds, external selection)", "stage", schema="scores"),
    Artifact(f"{_STAGE}/test_scores.parquet", ("score_test", "score_baseline", "score_ensemble"),
             "anomaly score of every test clip", "stage", schema="scores"),
    Artifact(f"{_STAGE}/ensemble.json", ("score_ensemble",),
             "an ensemble system's combination: members (<system>/stage<m>@<backend>) and their score files, "
             "combine (zsum | rank), weights, per_section, and per member x machine type (x section) the "
             "count, mean and sd of its training scores and whether it was left out (zero sd)", "stage"),
    Artifact(f"{_STAGE}/baseline.pkl", ("fit_baseline",),
             "fitted frame baseline (GMM, DCASE autoencoder: one model per machine type; CAE-DANN-SVDD; "
             "Serial-OE: extractor per machine type + GMMs per section) (pickle)", "stage"),
    Artifact(f"{_STAGE}/metrics.parquet", ("evaluate",),
             "AUC and pAUC per dataset x machine x section x domain (docs/formats.md §2.2)", "stage",
             schema="metrics"),
    Artifact(f"{_STAGE}/metrics_summary.json", ("evaluate",),
             "per dataset: official score, harmonic/arithmetic means of AUC and pAUC, per-machine scores; "
             "decision thresholds; number of submission files", "stage"),
    Artifact(f"{_STAGE}/submission", ("evaluate",),
             "DCASE submission folder: <dataset>/anomaly_score_* and decision_result_* CSVs", "stage"),
    Artifact(f"{_STAGE}/submission/.snakemake_timestamp", ("evaluate",),
             "Snakemake's completion marker of the submission folder", "stage"),
    Artifact(f"{_STAGE}/submission/{{dataset}}/anomaly_score_{{machine}}_section_{{section}}_test.csv",
             ("evaluate",), "submission file: anomaly score per test clip (docs/formats.md §2.1)", "stage",
             columns={"file_name": "base name of the test clip", "score": "anomaly score, higher = more anomalous"},
             header=False),
    Artifact(f"{_STAGE}/submission/{{dataset}}/decision_result_{{machine}}_section_{{section}}_test.csv",
             ("evaluate",), "submission file: 0/1 anomaly decision per test clip (docs/formats.md §2.1)", "stage",
             columns={"file_name": "base name of the test clip", "decision": "1 = anomaly, 0 = normal"},
             header=False),
    # --- further scoring back-ends of an embedding stage (scoring.backends) -------------------
    Artifact(f"{_STAGE}/backends/{{backend}}/train_scores.parquet", ("score_backends",),
             "training clips scored by a further back-end (knn, smote_knn, rescaled_knn, gmm; leave-one-out "
             "for the kNN ones)", "stage", schema="scores"),
    Artifact(f"{_STAGE}/backends/{{backend}}/test_scores.parquet", ("score_backends",),
             "test clips scored by a further back-end, from the stage's embeddings", "stage", schema="scores"),
    Artifact(f"{_STAGE}/backends/{{backend}}/metrics.parquet", ("evaluate_backend",),
             "AUC and pAUC of that back-end's scores (summary system <system>@<backend>)", "stage",
             schema="metrics"),
    Artifact(f"{_STAGE}/backends/{{backend}}/metrics_summary.json", ("evaluate_backend",),
             "that back-end's official score and means, as metrics_summary.json of the stage", "stage"),
    Artifact(f"{_STAGE}/backends/{{backend}}/submission", ("evaluate_backend",),
             "DCASE submission folder of that back-end's scores", "stage"),
    Artifact(f"{_STAGE}/backends/{{backend}}/submission/.snakemake_timestamp", ("evaluate_backend",),
             "Snakemake's completion marker of the submission folder", "stage"),
    Artifact(f"{_STAGE}/backends/{{backend}}/submission/{{dataset}}/{{kind}}_{{machine}}_section_{{section}}_test.csv",
             ("evaluate_backend",), "submission file (anomaly_score_* or decision_result_*) of that back-end",
             "stage", header=False),
    # --- stages >= 2 ------------------------------------------------------------------------
    Artifact(f"{_STAGE}/external_scores/shard-{{shard}}.parquet", ("score_external_shard",),
             "every pool clip of the shard scored by the stage m-1 model: nearest machine type and score",
             "iterate", schema="external_scores"),
    Artifact(f"{_STAGE}/selection.parquet", ("select_external",),
             "pool clips added to the stage's training set (per machine: below its threshold, at most n_max)",
             "iterate", schema="selection"),
    Artifact(f"{_STAGE}/selection_classes.csv", ("select_external",),
             "class histogram of the selection per machine type", "iterate",
             columns={"machine": "machine type", "mid": "class (label without the <machine>_ prefix)",
                      "display_name": "display name of the class", "count": "selected clips"}),
    Artifact(f"{_STAGE}/selection_audit.csv", ("select_external",),
             "selection audit per machine type and ALL: threshold, candidates, selected, machine-like share",
             "iterate",
             columns={"machine": "machine type (ALL: sums)", "threshold": "max training score of the stage m-1 model",
                      "n_assigned": "pool clips whose nearest machine type it is",
                      "n_out": "of those, scored below the threshold", "n_ex": "selected: min(n_out, n_max)",
                      "n_max": "selection cap per machine type", "mode": "score | random (ablation)",
                      "class_histogram": "JSON label -> count of the selection",
                      "n_machine_like": "selected clips from machine-like classes (built-in pool only)",
                      "machine_like_share": "n_machine_like / n_ex (NaN without pool truth)"}),
    Artifact("results/features/beats/embeddings_train.parquet", ("embed_beats",),
             "frozen BEATs features (mean over tokens) of every DCASE training clip, from beats.checkpoint: "
             "what pseudo-labels with features beats cluster (seed 003)", "iterate", schema="embeddings"),
    Artifact(f"{_STAGE}/pseudolabels.parquet", ("pseudolabels",),
             "pseudo-label of every original training clip (k-means or GMM-BIC of stage m-1 embeddings or of "
             "BEATs features, or oracle)",
             "iterate", schema="pseudolabels"),
    Artifact(f"{_STAGE}/pseudolabel_quality.csv", ("pseudolabels",),
             "agreement of the pseudo-labels with the true attributes per machine type (ARI, NMI)", "iterate",
             columns={"machine": "machine type (mean: over machine types)", "n": "clips",
                      "n_clusters": "distinct pseudo-labels", "ari": "adjusted Rand index",
                      "nmi": "normalised mutual information",
                      "ari_chance": "mean ARI of the pseudo-labels permuted within each domain (chance level)",
                      "ari_chance_sd": "s.d. of that permutation ARI"}),
    Artifact(f"{_STAGE}/selected_external.parquet", ("cache_selected_external",),
             "external-manifest rows of the selected clips (external_pool.cache: false)", "iterate",
             schema="external_manifest"),
    Artifact(f"{_STAGE}/selected_audio.npy", ("cache_selected_external",),
             "decoded audio of the selected pool clips only (external_pool.cache: false)", "iterate"),
    Artifact(f"{_STAGE}/selected_audio.index.parquet", ("cache_selected_external",),
             "row of every selected clip in selected_audio.npy and its decoding status", "iterate",
             schema="audio_cache_index"),
    Artifact(f"{_STAGE}/selected_audio.spec.json", ("cache_selected_external",),
             "the audio spec of selected_audio.npy", "iterate"),
    Artifact(f"{_STAGE}/selected_audio.report.json", ("cache_selected_external",),
             "build report of selected_audio.npy", "iterate"),
    # --- summary and report ------------------------------------------------------------------
    Artifact("results/summary/data.md", ("data_summary",),
             "data summary: clip counts per machine/split/domain/label and the skip reports (Markdown)", "summary"),
    Artifact("results/summary/metrics.csv", ("summary_table",),
             "long-form metrics of every system x seed x stage (rows with machine ALL carry the official score)",
             "summary", columns=_LONG_METRICS),
    Artifact("results/summary/metrics.parquet", ("summary_table",),
             "the same long-form metrics as metrics.csv, as parquet", "summary", columns=_LONG_METRICS),
    Artifact("results/summary/aggregate.csv", ("summary_table",),
             "mean, variance and sd over seeds (in %) of the overall scores per system x stage x split",
             "summary", columns={
                 "condition": "w/ label | w/o label", "system": "system name", "stage": "stage",
                 "split": "dev | eval", "metric": "official_score | auc_source | auc_target | pauc",
                 "mean": "mean over seeds (%)", "var": "sample variance (NaN with one seed)",
                 "sd": "sample standard deviation", "n_seeds": "seeds averaged"}),
    Artifact("results/summary/table2.csv", ("summary_table",),
             "Table 2 shape: official score per condition x system x stage (mean ± variance over seeds)",
             "summary"),
    Artifact("results/summary/table_a1.csv", ("summary_table",),
             "Table A.1 shape: AUC by domain per condition x system x stage", "summary"),
    Artifact("results/summary/ladder.csv", ("summary_table",),
             "ladder: scores (mean ± sd) and stage diagnostics (ARI, NMI, N_ex, machine-like share) "
             "per system x stage", "summary"),
    Artifact("results/summary/table.md", ("summary_table",),
             "the results tables in Markdown (what `make demo` / `make ladder` print)", "summary"),
    Artifact("results/summary/auc_by_stage.png", ("plot_auc_by_stage",),
             "figure: AUC against the stage per machine type and domain, every system", "summary"),
    Artifact(f"{_STAGE}/report/roc.png", ("plot_roc",),
             "figure: ROC curves of the stage's test scores per machine type and domain", "summary"),
    Artifact(f"{_STAGE}/report/embeddings_2d.png", ("plot_embeddings",),
             "figure: 2-D PCA map of the stage's train and test embeddings", "summary"),
    # --- transient -----------------------------------------------------------------------------
    Artifact("results/{path}.tmp", (),
             "a file being written (atomic write in progress, or left by a killed job)", "transient",
             declared=False),
)

GROUPS: Mapping[str, str] = {
    "data": "Built-in data and manifests",
    "cache": "Decoded-audio caches",
    "stage": "Per system, seed and stage",
    "iterate": "Stages ≥ 2: external-data selection and pseudo-labels",
    "summary": "Summary tables and figures",
    "transient": "Transient files",
}


def match_artifact(relpath: str) -> tuple[Artifact, dict[str, str]] | None:
    """The first registry entry whose pattern matches ``relpath`` (posix, relative to the
    workflow directory, e.g. ``results/U/seed0/stage1/model.pt``) and its wildcard values."""
    for art in ARTIFACTS:
        wc = art.match(relpath)
        if wc is not None:
            return art, wc
    return None


def column_meanings(art: Artifact) -> dict[str, str]:
    """Column -> meaning of an artifact table (from its schema, else the registry's columns)."""
    return describe(art.schema) if art.schema else dict(art.columns)


# --------------------------------------------------------------------------- documentation


def _cell(text: str) -> str:
    """Prose in a table cell: ``|`` and ``<`` escaped (no column break, no HTML tag)."""
    return str(text).replace("|", "\\|").replace("<", "\\<").replace("\n", " ")


def _type(t: pa.DataType) -> str:
    return str(t).replace("<item: ", "<").replace("element: ", "")


def _schema_users(kind: str) -> list[str]:
    return [a.pattern for a in ARTIFACTS if a.schema == kind]


def _iter_markdown() -> Iterator[str]:
    yield "# Artifacts"
    yield ""
    yield ("Every file the workflow writes under `results/`: its path pattern, what it means, the rule "
           "that writes it and, for tables, the columns. Paths are relative to the workflow directory "
           "(the folder you run Snakemake in, `--directory`); wildcards: `{system}` a system name, "
           "`{seed}` and `{stage}` numbers, `{shard}` four digits, `{preset}`/`{synth_seed}` the "
           "built-in data's `synth` config.")
    yield ""
    yield ("`asdflow inspect PATH` prints the same for one file, with a summary of its contents and its "
           "provenance (rule, params, code version, inputs, log, run time) from Snakemake's metadata; "
           "`--rerun-check` asks Snakemake whether it is up to date with the current config.")
    yield ""
    yield ("This file is generated from `src/asdflow/artifacts.py` and `src/asdflow/schemas.py`: "
           "regenerate it with `.venv/bin/asdflow docs-artifacts > docs/artifacts.md` "
           "(`tests/test_inspect.py` fails when it is out of date).")
    schemas_order = [k for k in SCHEMAS]
    schema_section = {k: f"§{len(GROUPS) + 1}.{i}" for i, k in enumerate(schemas_order, start=1)}
    table_arts = [a for a in ARTIFACTS if not a.schema and a.columns]
    table_section = {a.pattern: f"§{len(GROUPS) + 2}.{i}" for i, a in enumerate(table_arts, start=1)}
    for n, (group, title) in enumerate(GROUPS.items(), start=1):
        yield ""
        yield f"## {n}. {title}"
        yield ""
        yield "| path | written by | columns | meaning |"
        yield "|---|---|---|---|"
        for a in ARTIFACTS:
            if a.group != group:
                continue
            rules = ", ".join(f"`{r}`" for r in a.rules) or "any job"
            if not a.declared:
                rules += " (not a declared output)"
            cols = (f"{schema_section[a.schema]} `{a.schema}`" if a.schema
                    else table_section.get(a.pattern, ""))
            yield f"| `{a.pattern}` | {rules} | {cols} | {_cell(a.meaning)} |"
    yield ""
    yield f"## {len(GROUPS) + 1}. Parquet table schemas"
    yield ""
    yield ("Checked on every write and read (`asdflow.schemas`): names and types must match; the meanings "
           "are stored in the files as field metadata (`description`).")
    for kind in schemas_order:
        schema = SCHEMAS[kind]
        meanings = describe(kind)
        yield ""
        yield f"### {schema_section[kind][1:]} `{kind}`"
        yield ""
        yield "Files: " + ", ".join(f"`{p}`" for p in _schema_users(kind)) + "."
        yield ""
        yield "| column | type | meaning |"
        yield "|---|---|---|"
        for f in schema:
            yield f"| `{f.name}` | `{_type(f.type)}` | {_cell(meanings[f.name])} |"
    yield ""
    yield f"## {len(GROUPS) + 2}. Other tables"
    yield ""
    yield ("CSV (and the summary's parquet copy) written with pandas, not checked against a schema. "
           "The submission files have no header line.")
    for a in table_arts:
        yield ""
        yield f"### {table_section[a.pattern][1:]} `{a.pattern.rsplit('/', 2)[-2]}/{a.pattern.rsplit('/', 1)[-1]}`"
        yield ""
        yield f"File: `{a.pattern}`."
        yield ""
        yield "| column | meaning |"
        yield "|---|---|"
        for name, meaning in a.columns.items():
            yield f"| `{name}` | {_cell(meaning)} |"


def artifacts_markdown() -> str:
    """The text of ``docs/artifacts.md``."""
    return "\n".join(_iter_markdown()) + "\n"
