"""Artifact tables: schema checks on write and read, Arrow-backed frames round-trip."""

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from asdflow.schemas import SchemaError, read_table, write_table


def _scores(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"clip_id": [f"ext/Y{i}" for i in range(n)], "label_mids": [["/m/0", "/m/1"]] * n,
                         "label_names": [["a", "b"]] * n, "machine": ["fan"] * n,
                         "similarity": [0.5] * n, "score": [-0.5] * n})


def test_arrow_backed_frames_round_trip_both_ways(tmp_path):
    plain = tmp_path / "plain.parquet"
    write_table(_scores(), plain, "external_scores")
    arrow = read_table(plain, "external_scores", arrow_dtypes=True)
    assert isinstance(arrow["label_mids"].dtype, pd.ArrowDtype)
    again = tmp_path / "again.parquet"
    write_table(arrow, again, "external_scores")  # what a shard job writes from Arrow-backed input
    back = read_table(again, "external_scores")  # and what the selection step reads
    assert back["label_mids"].dtype == object and list(back["label_mids"].iloc[0]) == ["/m/0", "/m/1"]
    pd.testing.assert_frame_equal(back.drop(columns=["label_mids", "label_names"]),
                                  read_table(plain, "external_scores").drop(columns=["label_mids", "label_names"]))
    only = read_table(again, "external_scores", columns=["clip_id", "score"], arrow_dtypes=True)
    assert list(only.columns) == ["clip_id", "score"]


def test_schema_errors_name_the_file_and_the_column(tmp_path):
    with pytest.raises(SchemaError, match="unexpected \\['extra'\\]"):
        write_table(_scores().assign(extra=1), tmp_path / "x.parquet", "external_scores")
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"clip_id": ["a"]}), bad)
    with pytest.raises(SchemaError, match=f"{bad}: missing column 'label_mids'"):
        read_table(bad, "external_scores")
