"""Schemas of the tabular artifacts (parquet) that flow between workflow steps.

Every artifact table has one pyarrow schema here. Writers call :func:`write_table`, readers call
:func:`read_table`; both check the columns and types, so a step that receives a malformed
artifact fails with a message naming the file and the column instead of deep inside pandas.

Every column carries its meaning as field metadata (``{"description": ...}``); written files
keep it, :func:`describe` returns it, ``asdflow inspect`` prints it and ``docs/artifacts.md``
is generated from it. Schema checks compare names and types only, never metadata, so files
written before the descriptions existed read as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "SCHEMAS",
    "SchemaError",
    "describe",
    "field_description",
    "read_table",
    "validate_frame",
    "write_table",
]


class SchemaError(ValueError):
    """An artifact table does not match its documented schema."""


_STR = pa.string()
_ATTRS = pa.list_(pa.struct([("name", _STR), ("value", _STR)]))
#: Field-metadata key of a column's meaning.
DESCRIPTION = b"description"


def _col(name: str, type_: pa.DataType, description: str) -> pa.Field:
    """A schema field with its meaning as metadata."""
    return pa.field(name, type_, metadata={DESCRIPTION: description.encode("utf-8")})


#: One row per DCASE clip (``manifests/dcase.parquet``).
DCASE_MANIFEST = pa.schema(
    [
        _col("clip_id", _STR, "unique: <dataset>/<machine>/<split>/<file stem>"),
        _col("path", _STR, "absolute path of the audio file"),
        _col("dataset", _STR, "dev_data | eval_data"),
        _col("machine", _STR, "machine type, case kept (ToyCar, fan, ...)"),
        _col("section", _STR, 'two-digit section id ("00"); 2020 machine id for id_XX names'),
        _col("domain", _STR, "source | target | unknown"),
        _col("split", _STR, "train | test | supplemental"),
        _col("label", _STR, "normal | anomaly | unknown"),
        _col("file_index", _STR, 'index token of the file name, as written ("0001")'),
        _col("name_pattern", _STR, "which file-name pattern matched (see io.dcase.PATTERNS)"),
        _col("attr_tail", _STR, 'attribute tail of the file name, opaque ("" when none)'),
        _col("attributes", _ATTRS, "visible attribute pairs (name, value) ([] with hide_attributes)"),
        _col("hidden_attributes", _ATTRS,
             "the pairs withheld by hide_attributes (labeled systems, diagnostics)"),
        _col("attr_string", _STR, 'canonical "k1=v1,k2=v2" of `attributes` ("" when none)'),
        _col("duration", pa.float64(), "seconds, from the file header"),
        _col("sample_rate", pa.int64(), "of the file on disk (Hz)"),
        _col("channels", pa.int64(), "of the file on disk"),
    ]
)

#: One row per external clip, one file per shard (``manifests/external/shard-XXXX.parquet``).
EXTERNAL_MANIFEST = pa.schema(
    [
        _col("clip_id", _STR, '"ext/<ytid or stem>", unique over the pool'),
        _col("ytid", _STR, "YouTube id (AudioSet) or file stem (plain folder pool)"),
        _col("path", _STR, "absolute path of the audio file"),
        _col("start_seconds", pa.float64(), "segment start in the source video; NaN when unknown"),
        _col("end_seconds", pa.float64(), "segment end in the source video; NaN when unknown"),
        _col("label_mids", pa.list_(_STR), "all positive labels (AudioSet mids), in file order"),
        _col("label_names", pa.list_(_STR), "display names of label_mids"),
        _col("segments_file", _STR, "which segments/labels CSV the row came from"),
        _col("shard", pa.int64(), "shard the clip belongs to (stable hash of clip_id)"),
        _col("duration", pa.float64(), "seconds, from the file header"),
        _col("sample_rate", pa.int64(), "of the file on disk (Hz)"),
        _col("channels", pa.int64(), "of the file on disk"),
    ]
)

#: Index of a decoded-audio cache: row `row` of the int16 array file holds clip `clip_id`.
AUDIO_CACHE_INDEX = pa.schema(
    [
        _col("clip_id", _STR, "the clip (as in its manifest)"),
        _col("row", pa.int64(), "row of the int16 array file (.npy) that holds the clip"),
        _col("orig_samples", pa.int64(), "samples after resampling, before the length policy"),
        _col("status", _STR, "ok | failed (row is zeros; reason in `error`)"),
        _col("error", _STR, 'why decoding failed ("" when ok)'),
    ]
)

#: The clips a model trains on (``<system>/seed<k>/stage<m>/trainset.parquet``).
TRAINSET = pa.schema(
    [
        _col("clip_id", _STR, "the clip (DCASE or external manifest id)"),
        _col("machine", _STR,
             "machine type the clip belongs to (or was selected for, external clips)"),
        _col("section", _STR, "section id of the clip (DCASE clips)"),
        _col("domain", _STR, "source | target (DCASE clips)"),
        _col("label", _STR,
             "the class the losses train on: machine, machine_attr, machine_mid, ..."),
        _col("is_external", pa.bool_(), "true for a selected external-pool clip"),
        _col("cache_path", _STR, "decoded-audio cache holding the clip"),
        _col("cache_row", pa.int64(), "row of the clip in that cache"),
    ]
)

#: Embeddings of DCASE clips, one file per split (``.../stage<m>/embeddings_{train,test}.parquet``).
EMBEDDINGS = pa.schema(
    [
        _col("clip_id", _STR, "the DCASE clip"),
        _col("dataset", _STR, "dev_data | eval_data"),
        _col("machine", _STR, "machine type"),
        _col("section", _STR, "section id"),
        _col("domain", _STR, "source | target | unknown"),
        _col("split", _STR, "train | test (one split per file)"),
        _col("label", _STR, "normal | anomaly | unknown (ground truth, not the training class)"),
        _col("embedding", pa.list_(pa.float32()), "the model's embedding of the clip"),
    ]
)

#: Representative vectors per machine type (``.../stage<m>/representatives.parquet``).
REPRESENTATIVES = pa.schema(
    [
        _col("machine", _STR, "machine type the representative belongs to"),
        _col("section", _STR, '"*" when representatives are pooled over sections'),
        _col("kind", _STR, "source_kmeans | target_sample | target_kmeans"),
        _col("n_members", pa.int64(), "training clips the representative stands for"),
        _col("embedding", pa.list_(pa.float32()), "the representative vector"),
    ]
)

#: Anomaly scores (``.../stage<m>/train_scores.parquet``, ``test_scores.parquet``); higher = more anomalous.
SCORES = pa.schema(
    [
        _col("clip_id", _STR, "the DCASE clip"),
        _col("file_name", _STR, "basename, as written to the DCASE submission files"),
        _col("dataset", _STR, "dev_data | eval_data"),
        _col("machine", _STR, "machine type"),
        _col("section", _STR, "section id"),
        _col("domain", _STR, "source | target | unknown"),
        _col("split", _STR, "train | test (train scores feed thresholds)"),
        _col("label", _STR, "normal | anomaly | unknown (ground truth)"),
        _col("score", pa.float64(), "anomaly score; higher = more anomalous"),
    ]
)

#: AUC / pAUC per dataset × machine × section × domain (``.../stage<m>/metrics.parquet``).
METRICS = pa.schema(
    [
        _col("dataset", _STR, "dev_data | eval_data"),
        _col("machine", _STR, "machine type"),
        _col("section", _STR, "section id"),
        _col("domain", _STR, "source | target (2020 rules: the one domain of the data)"),
        _col("auc", pa.float64(), "AUC under evaluation.rules: 2022+ = that domain's normals vs the anomalies of both "
             "domains; 2021 = that domain's clips only; 2020 = all clips of the machine id"),
        _col("pauc", pa.float64(), "official pAUC (max_fpr 0.1): 2022+ and 2020 = all clips of the section; 2021 = that "
             "domain's clips only"),
        _col("pauc_domain", pa.float64(), "that domain's clips only (reference code's report)"),
        _col("n_normal", pa.int64(), "normal test clips behind auc"),
        _col("n_anomaly", pa.int64(), "anomalous test clips behind auc (2022+: of both domains)"),
    ]
)

#: Pool clips scored by a stage's model (``.../stage<m>/external_scores/shard-XXXX.parquet``).
EXTERNAL_SCORES = pa.schema(
    [
        _col("clip_id", _STR, "the external-pool clip"),
        _col("label_mids", pa.list_(_STR), "its positive labels (AudioSet mids)"),
        _col("label_names", pa.list_(_STR), "display names of label_mids"),
        _col("machine", _STR, "machine type of the most similar representative"),
        _col("similarity", pa.float64(), "cosine similarity to that representative"),
        _col("score", pa.float64(), "−max cosine to that machine's representatives"),
    ]
)

#: External clips added to a stage's training set (``.../stage<m>/selection.parquet``).
SELECTION = pa.schema(
    [
        _col("clip_id", _STR, "the selected external-pool clip"),
        _col("machine", _STR, "machine type it was selected for"),
        _col("score", pa.float64(), "its score for that machine (below the machine's threshold)"),
        _col("label", _STR, "<machine>_<mid>"),
        _col("label_name", _STR, 'display name(s) of the label\'s class ("" when unknown)'),
        _col("rank", pa.int64(), "rank within the machine type's selection (0 = lowest score)"),
    ]
)

#: Pseudo-labels of the original training clips (``.../stage<m>/pseudolabels.parquet``).
PSEUDOLABELS = pa.schema(
    [
        _col("clip_id", _STR, "the DCASE training clip"),
        _col("machine", _STR, "machine type"),
        _col("domain", _STR, "source | target"),
        _col("pl_cluster", pa.int64(),
             "cluster j of the machine type: source 0..k_so−1, target from k_so (oracle: attribute combination)"),
        _col("label", _STR,
             "<machine>_pl<j> (unlabeled) or <machine_attr>_pl<j> (labeled); oracle: <machine>_<domain>_<attributes>"),
    ]
)

SCHEMAS: Mapping[str, pa.Schema] = {
    "dcase_manifest": DCASE_MANIFEST,
    "external_manifest": EXTERNAL_MANIFEST,
    "audio_cache_index": AUDIO_CACHE_INDEX,
    "trainset": TRAINSET,
    "embeddings": EMBEDDINGS,
    "representatives": REPRESENTATIVES,
    "scores": SCORES,
    "metrics": METRICS,
    "external_scores": EXTERNAL_SCORES,
    "selection": SELECTION,
    "pseudolabels": PSEUDOLABELS,
}


def _schema(kind: str | pa.Schema) -> pa.Schema:
    if isinstance(kind, pa.Schema):
        return kind
    try:
        return SCHEMAS[kind]
    except KeyError:
        raise KeyError(f"unknown artifact kind {kind!r}; known: {sorted(SCHEMAS)}") from None


def field_description(field: pa.Field) -> str:
    """The meaning of a schema field ("" when it has none)."""
    meta = field.metadata or {}
    return meta.get(DESCRIPTION, b"").decode("utf-8")


def describe(kind: str | pa.Schema) -> dict[str, str]:
    """Column name -> meaning of an artifact kind, in column order."""
    return {f.name: field_description(f) for f in _schema(kind)}


def validate_frame(df: pd.DataFrame, kind: str | pa.Schema, where: str = "table") -> pa.Table:
    """Convert ``df`` to an Arrow table with exactly the schema of ``kind`` (column order too).

    Extra columns are an error, as are missing ones and values that do not convert.
    """
    schema = _schema(kind)
    missing = [n for n in schema.names if n not in df.columns]
    extra = [c for c in df.columns if c not in schema.names]
    if missing or extra:
        raise SchemaError(f"{where}: columns do not match schema: missing {missing}, unexpected {extra}")
    try:
        table = pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        raise SchemaError(f"{where}: values do not fit the schema: {exc}") from exc
    # No pandas metadata: the Arrow schema alone says what the columns are, so a frame with
    # Arrow-backed columns (read_table(..., arrow_dtypes=True)) reads back like any other.
    # The fields keep their descriptions (field metadata), so written files carry them.
    return table.replace_schema_metadata(schema.metadata)


def write_table(df: pd.DataFrame, path: str | Path, kind: str | pa.Schema) -> Path:
    """Validate ``df`` against ``kind`` and write it atomically as parquet."""
    path = Path(path)
    table = validate_frame(df, kind, where=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


def read_table(path: str | Path, kind: str | pa.Schema, columns: list[str] | None = None, *,
               arrow_dtypes: bool = False) -> pd.DataFrame:
    """Read a parquet artifact and check that it has the schema of ``kind``.

    Names and types are compared, not field metadata (files written without descriptions are
    fine). ``columns`` reads only those. ``arrow_dtypes`` keeps the values in Arrow memory
    (``pd.ArrowDtype`` columns) instead of one Python object per string and per list: a
    100k-row pool manifest then takes 28 MiB instead of 111 MiB (for jobs whose memory must not
    grow with their table, e.g. the shard-scoring jobs).
    """
    path = Path(path)
    schema = _schema(kind)
    if not path.exists():
        raise FileNotFoundError(f"{path}: artifact not found")
    try:
        file_schema = pq.read_schema(path)
    except pa.ArrowException as exc:
        raise SchemaError(f"{path}: not a readable parquet file: {exc}") from exc
    for field in schema:
        if field.name not in file_schema.names:
            raise SchemaError(f"{path}: missing column {field.name!r}")
        got = file_schema.field(field.name).type
        if not got.equals(field.type):
            raise SchemaError(f"{path}: column {field.name!r} has type {got}, expected {field.type}")
    table = pq.read_table(path, columns=columns)
    return table.to_pandas(types_mapper=pd.ArrowDtype) if arrow_dtypes else table.to_pandas()
