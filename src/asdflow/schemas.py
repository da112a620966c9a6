"""Schemas of the tabular artifacts (parquet) that flow between workflow steps.

Every artifact table has one pyarrow schema here. Writers call :func:`write_table`, readers call
:func:`read_table`; both check the columns and types, so a step that receives a malformed
artifact fails with a message naming the file and the column instead of deep inside pandas.
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
    "read_table",
    "validate_frame",
    "write_table",
]


class SchemaError(ValueError):
    """An artifact table does not match its documented schema."""


_STR = pa.string()
_ATTRS = pa.list_(pa.struct([("name", _STR), ("value", _STR)]))

#: One row per DCASE clip (``manifests/dcase.parquet``).
DCASE_MANIFEST = pa.schema(
    [
        ("clip_id", _STR),  # unique: <dataset>/<machine>/<split>/<file stem>
        ("path", _STR),  # absolute path of the audio file
        ("dataset", _STR),  # dev_data | eval_data
        ("machine", _STR),  # machine type, case kept (ToyCar, fan, ...)
        ("section", _STR),  # two-digit section id ("00"); 2020 machine id for id_XX names
        ("domain", _STR),  # source | target | unknown
        ("split", _STR),  # train | test | supplemental
        ("label", _STR),  # normal | anomaly | unknown
        ("file_index", _STR),  # index token of the file name, as written ("0001")
        ("name_pattern", _STR),  # which file-name pattern matched (see io.dcase.PATTERNS)
        ("attr_tail", _STR),  # attribute tail of the file name, opaque ("" when none)
        ("attributes", _ATTRS),  # visible attribute pairs ([] with hide_attributes)
        ("hidden_attributes", _ATTRS),  # the pairs withheld by hide_attributes (labeled systems, diagnostics)
        ("attr_string", _STR),  # canonical "k1=v1,k2=v2" of `attributes` ("" when none)
        ("duration", pa.float64()),  # seconds, from the file header
        ("sample_rate", pa.int64()),  # of the file on disk
        ("channels", pa.int64()),
    ]
)

#: One row per external clip, one file per shard (``manifests/external/shard-XXXX.parquet``).
EXTERNAL_MANIFEST = pa.schema(
    [
        ("clip_id", _STR),  # "ext/<ytid or stem>", unique over the pool
        ("ytid", _STR),  # YouTube id (AudioSet) or file stem (plain folder pool)
        ("path", _STR),
        ("start_seconds", pa.float64()),  # NaN when unknown
        ("end_seconds", pa.float64()),
        ("label_mids", pa.list_(_STR)),  # all positive labels, in file order
        ("label_names", pa.list_(_STR)),  # display names of label_mids
        ("segments_file", _STR),  # which segments/labels CSV the row came from
        ("shard", pa.int64()),
        ("duration", pa.float64()),
        ("sample_rate", pa.int64()),
        ("channels", pa.int64()),
    ]
)

#: Index of a decoded-audio cache: row `row` of the int16 array file holds clip `clip_id`.
AUDIO_CACHE_INDEX = pa.schema(
    [
        ("clip_id", _STR),
        ("row", pa.int64()),
        ("orig_samples", pa.int64()),  # samples after resampling, before the length policy
        ("status", _STR),  # ok | failed (row is zeros; reason in `error`)
        ("error", _STR),
    ]
)

#: The clips a model trains on (``<system>/seed<k>/stage<m>/trainset.parquet``).
TRAINSET = pa.schema(
    [
        ("clip_id", _STR),
        ("machine", _STR),  # machine type the clip belongs to (or was selected for, external clips)
        ("section", _STR),
        ("domain", _STR),
        ("label", _STR),  # the class the losses train on: machine, machine_attr, machine_mid, ...
        ("is_external", pa.bool_()),
        ("cache_path", _STR),  # decoded-audio cache holding the clip
        ("cache_row", pa.int64()),
    ]
)

#: Embeddings of DCASE clips, one file per split (``.../stage<m>/embeddings_{train,test}.parquet``).
EMBEDDINGS = pa.schema(
    [
        ("clip_id", _STR),
        ("dataset", _STR),
        ("machine", _STR),
        ("section", _STR),
        ("domain", _STR),
        ("split", _STR),
        ("label", _STR),  # normal | anomaly | unknown (ground truth, not the training class)
        ("embedding", pa.list_(pa.float32())),
    ]
)

#: Representative vectors per machine type (``.../stage<m>/representatives.parquet``).
REPRESENTATIVES = pa.schema(
    [
        ("machine", _STR),
        ("section", _STR),  # "*" when representatives are pooled over sections
        ("kind", _STR),  # source_kmeans | target_sample | target_kmeans
        ("n_members", pa.int64()),
        ("embedding", pa.list_(pa.float32())),
    ]
)

#: Anomaly scores (``.../stage<m>/train_scores.parquet``, ``test_scores.parquet``); higher = more anomalous.
SCORES = pa.schema(
    [
        ("clip_id", _STR),
        ("file_name", _STR),  # basename, as written to the DCASE submission files
        ("dataset", _STR),
        ("machine", _STR),
        ("section", _STR),
        ("domain", _STR),
        ("split", _STR),  # train | test (train scores feed thresholds)
        ("label", _STR),
        ("score", pa.float64()),
    ]
)

#: AUC / pAUC per dataset × machine × section × domain (``.../stage<m>/metrics.parquet``).
METRICS = pa.schema(
    [
        ("dataset", _STR),
        ("machine", _STR),
        ("section", _STR),
        ("domain", _STR),
        ("auc", pa.float64()),
        ("pauc", pa.float64()),  # official: over both domains of the section
        ("pauc_domain", pa.float64()),  # that domain's clips only (reference code's report)
        ("n_normal", pa.int64()),
        ("n_anomaly", pa.int64()),
    ]
)

#: Pool clips scored by a stage's model (``.../stage<m>/external_scores/shard-XXXX.parquet``).
EXTERNAL_SCORES = pa.schema(
    [
        ("clip_id", _STR),
        ("label_mids", pa.list_(_STR)),
        ("label_names", pa.list_(_STR)),
        ("machine", _STR),  # machine type of the most similar representative
        ("similarity", pa.float64()),
        ("score", pa.float64()),  # −max cosine to that machine's representatives
    ]
)

#: External clips added to a stage's training set (``.../stage<m>/selection.parquet``).
SELECTION = pa.schema(
    [
        ("clip_id", _STR),
        ("machine", _STR),
        ("score", pa.float64()),
        ("label", _STR),  # <machine>_<mid>
        ("label_name", _STR),  # display name(s) of the label's class ("" when unknown)
        ("rank", pa.int64()),
    ]
)

#: Pseudo-labels of the original training clips (``.../stage<m>/pseudolabels.parquet``).
PSEUDOLABELS = pa.schema(
    [
        ("clip_id", _STR),
        ("machine", _STR),
        ("domain", _STR),
        ("pl_cluster", pa.int64()),
        ("label", _STR),  # <machine>_pl<j> (unlabeled) or <machine_attr>_pl<j> (labeled)
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
    # Arrow-backed columns (read_table(..., arrow_dtypes=True)) reads back like any other
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

    ``columns`` reads only those. ``arrow_dtypes`` keeps the values in Arrow memory
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
