"""Tests of asdflow.io.external: AudioSet segments/labels, audio lookup, shards, plain folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asdflow.io.external import (
    ExternalPoolError,
    assign_shards,
    build_audio_index,
    check_pool_usable,
    read_class_labels,
    read_segments_csv,
    scan_audioset,
    scan_plain_folder,
    shard_of,
    write_external_manifest,
)
from asdflow.schemas import read_table

HEADER = (
    "# Segments csv created Sun Mar  5 10:54:31 2017\n"
    "# num_ytids=22160, num_segs=22160, num_unique_labels=527, num_positive_labels=52882\n"
    "# YTID, start_seconds, end_seconds, positive_labels\n"
)


def _audio(path: Path, seconds: float = 0.3, sr: int = 16000, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.zeros(int(seconds * sr), dtype="float32"), sr, format=fmt)
    return path


# --------------------------------------------------------------------------- readers


def test_read_segments_official_format(tmp_path):
    p = tmp_path / "balanced_train_segments.csv"
    p.write_text(
        HEADER + '--aBcDeF12g, 30.000, 40.000, "/m/07yv9,/m/0k4j"\n'
        '-X9yZw_3kLm, 0.000, 10.000, "/m/02mk9"\n'
        "\n"
        'badStartXXX, abc, 10.000, "/m/02mk9"\n'
        "tooFewField, 1.000\n"
        'unbalancedQ, 0.000, 10.000, "/m/02mk9\n'
        'noLabelsXXX, 0.000, 10.000, ""\n'
        "unquoted_ok, 1.500, 9.000, /m/0k4j,/m/07yv9\n"
    )
    df, skipped = read_segments_csv(p)
    assert list(df.columns) == ["ytid", "start_seconds", "end_seconds", "label_mids"]
    assert list(df.ytid) == ["--aBcDeF12g", "-X9yZw_3kLm", "unquoted_ok"]
    assert list(df.label_mids[0]) == ["/m/07yv9", "/m/0k4j"]
    assert list(df.label_mids[2]) == ["/m/0k4j", "/m/07yv9"]
    assert df.start_seconds.tolist() == [30.0, 0.0, 1.5] and df.end_seconds.dtype == "float64"
    assert [s["line"] for s in skipped] == [7, 8, 9, 10]
    assert all(s["file"] == str(p) and s["reason"] for s in skipped)


def test_read_segments_part_file_placeholders(tmp_path):
    p = tmp_path / "unbalanced_train_segments_part00.csv"
    p.write_text('empty\nempty\nempty\nabcdefghijk, 10.000, 20.000, "/m/0k4j"\n')
    df, skipped = read_segments_csv(p)
    assert list(df.ytid) == ["abcdefghijk"] and skipped == []


def test_read_segments_missing_file(tmp_path):
    with pytest.raises(ExternalPoolError, match="not found"):
        read_segments_csv(tmp_path / "nope.csv")


def test_read_class_labels_both_styles(tmp_path):
    official = tmp_path / "official.csv"
    official.write_text(
        'index,mid,display_name\n0,/m/09x0r,"Speech"\n1,/m/05zppz,"Male speech, man speaking"\n343,/m/02mk9,"Engine"\n'
    )
    under = tmp_path / "underscore.csv"
    under.write_text(
        "index,mid,display_name\n0,/m/09x0r,Speech\n1,/m/05zppz,Male_speech,_man_speaking\n343,/m/02mk9,Engine\n"
    )
    want = {"/m/09x0r": "Speech", "/m/05zppz": "Male speech, man speaking", "/m/02mk9": "Engine"}
    assert read_class_labels(official) == want
    assert read_class_labels(under) == want


# --------------------------------------------------------------------------- audioset pool


@pytest.fixture()
def pool(tmp_path):
    labels = tmp_path / "class_labels_indices.csv"
    labels.write_text('index,mid,display_name\n0,/m/02mk9,"Engine"\n1,/m/0k4j,"Car"\n2,/m/07yv9,"Vehicle"\n')
    seg_a = tmp_path / "meta" / "balanced_train_segments.csv"
    seg_a.parent.mkdir()
    seg_a.write_text(
        HEADER
        + '--aBcDeF12g, 30.000, 40.000, "/m/07yv9,/m/0k4j"\n'  # Y-prefixed wav
        + 'plainStem01, 0.000, 10.000, "/m/02mk9"\n'  # plain stem flac, nested
        + 'withStart01, 20.000, 30.000, "/m/0k4j,/m/zzzz"\n'  # <ytid>_<start>, unknown mid
        + 'withStartE1, 5.000, 15.000, "/m/02mk9"\n'  # <ytid>_<start>_<end>
        + 'missingClip, 0.000, 10.000, "/m/02mk9"\n'  # no audio
        + 'brokenAudio, 0.000, 10.000, "/m/02mk9"\n'  # unreadable
        + "malformed\n"
    )
    seg_b = tmp_path / "meta" / "eval_segments.csv"
    seg_b.write_text(
        HEADER
        + 'plainStem01, 0.000, 10.000, "/m/0k4j"\n'  # duplicate of a row in seg_a
        + 'evalClip001, 0.000, 10.000, "/m/0k4j"\n'
        + 'evalClip002, 0.000, 10.000, "/m/0k4j"\n'
        + 'missingTwo1, 0.000, 10.000, "/m/0k4j"\n'
    )
    d1 = tmp_path / "audios" / "balanced"
    d2 = tmp_path / "audios2"
    _audio(d1 / "Y--aBcDeF12g.wav")
    _audio(d2 / "deep" / "er" / "plainStem01.flac", fmt="FLAC")
    _audio(d2 / "withStart01_20.000.wav")
    _audio(d2 / "withStartE1_5_15.wav")
    (d1 / "YbrokenAudio.wav").write_bytes(b"RIFF....garbage")
    _audio(d1 / "YevalClip001.wav", sr=32000)
    _audio(d2 / "evalClip002.ogg", fmt="OGG")
    _audio(d1 / "Yunlisted123.wav")  # audio without a segments row: ignored
    return {"segments": [seg_a, seg_b], "labels": labels, "audio_dirs": [d1, d2]}


def _all(shards):
    import pandas as pd

    return pd.concat(shards, ignore_index=True)


def test_scan_audioset_rows_missing_duplicates(pool):
    shards, rep = scan_audioset(pool["segments"], pool["labels"], pool["audio_dirs"], n_shards=2)
    df = _all(shards)
    assert sorted(df.ytid) == sorted(
        ["--aBcDeF12g", "plainStem01", "withStart01", "withStartE1", "evalClip001", "evalClip002"]
    )
    assert df.clip_id.is_unique and all(c == "ext/" + y for c, y in zip(df.clip_id, df.ytid))
    r = df.set_index("ytid")
    assert r.loc["plainStem01", "path"].endswith("plainStem01.flac")
    assert r.loc["plainStem01", "segments_file"] == str(pool["segments"][0])  # first file wins
    assert list(r.loc["plainStem01", "label_mids"]) == ["/m/02mk9"]
    assert r.loc["withStart01", "path"].endswith("withStart01_20.000.wav")
    assert r.loc["withStartE1", "path"].endswith("withStartE1_5_15.wav")
    assert r.loc["evalClip002", "path"].endswith(".ogg")
    assert r.loc["evalClip001", "sample_rate"] == 32000
    assert r.loc["--aBcDeF12g", "duration"] == pytest.approx(0.3)
    assert list(r.loc["--aBcDeF12g", "label_names"]) == ["Vehicle", "Car"]
    assert list(r.loc["withStart01", "label_names"]) == ["Car", "/m/zzzz"]
    assert r.loc["--aBcDeF12g", "start_seconds"] == 30.0
    # report
    assert rep["n_missing"] == 2
    assert {(m["ytid"], Path(m["segments_file"]).name) for m in rep["missing"]} == {
        ("missingClip", "balanced_train_segments.csv"),
        ("missingTwo1", "eval_segments.csv"),
    }
    assert rep["n_unreadable"] == 1 and rep["unreadable"][0]["path"].endswith("YbrokenAudio.wav")
    assert rep["n_duplicates"] == 1 and rep["duplicates"][0]["ytid"] == "plainStem01"
    assert rep["unknown_mids"] == {"/m/zzzz": 1} and rep["n_unknown_mids"] == 1
    assert rep["n_skipped_rows"] == 1 and rep["skipped_rows"][0]["line"] == 10
    assert rep["n_rows"] == 6 and rep["n_shards"] == 2 and sum(rep["shard_sizes"]) == 6
    assert rep["audio_index"]["n_files"] == 8
    json.dumps(rep)


def test_label_mode_first_vs_all(pool):
    args = (pool["segments"], pool["labels"], pool["audio_dirs"])
    first = _all(scan_audioset(*args, n_shards=1, label_mode="first", probe_audio=False)[0]).set_index("ytid")
    every = _all(scan_audioset(*args, n_shards=1, label_mode="all", probe_audio=False)[0]).set_index("ytid")
    assert list(first.loc["--aBcDeF12g", "label_mids"]) == ["/m/07yv9"]
    assert list(first.loc["--aBcDeF12g", "label_names"]) == ["Vehicle"]
    assert list(every.loc["--aBcDeF12g", "label_mids"]) == ["/m/07yv9", "/m/0k4j"]
    with pytest.raises(ValueError, match="label_mode"):
        scan_audioset(*args, n_shards=1, label_mode="some")


def test_probe_audio_false(pool):
    shards, rep = scan_audioset(pool["segments"], pool["labels"], pool["audio_dirs"], n_shards=3, probe_audio=False)
    df = _all(shards)
    assert len(df) == 7  # the unreadable file is not detected without probing
    assert df.duration.isna().all() and (df.sample_rate == -1).all() and (df.channels == -1).all()
    assert rep["n_unreadable"] == 0


def test_shards_stable_and_deterministic(pool):
    args = (pool["segments"], pool["labels"], pool["audio_dirs"])
    a, _ = scan_audioset(*args, n_shards=4)
    b, _ = scan_audioset(
        list(reversed(pool["segments"])), pool["labels"], list(reversed(pool["audio_dirs"])), n_shards=4
    )
    assert [list(s.clip_id) for s in a] == [list(s.clip_id) for s in b]
    for i, s in enumerate(a):
        assert (s.shard == i).all() and list(s.clip_id) == sorted(s.clip_id)
        assert all(shard_of(c, 4) == i for c in s.clip_id)


def test_empty_shards_allowed_but_warned(pool):
    shards, rep = scan_audioset(pool["segments"], pool["labels"], pool["audio_dirs"], n_shards=64)
    assert len(shards) == 64 and sum(len(s) for s in shards) == rep["n_rows"] == 6
    assert any("shards are empty" in w for w in rep["warnings"])


@pytest.mark.parametrize("n,k", [(0, 3), (1, 1), (10, 4), (11, 3), (100, 7)])
def test_assign_shards_sizes(n, k):
    import pandas as pd

    df = pd.DataFrame({"clip_id": [f"ext/{i:04d}" for i in np.random.default_rng(0).permutation(n)]})
    shards = assign_shards(df, k)
    sizes = [len(s) for s in shards]
    assert len(shards) == k and sum(sizes) == n
    assert sorted(c for s in shards for c in s.clip_id) == sorted(df.clip_id)


def test_shards_balanced_in_expectation():
    import pandas as pd

    df = pd.DataFrame({"clip_id": [f"ext/Y{i:07d}" for i in range(40_000)]})
    sizes = np.array([len(s) for s in assign_shards(df, 8)])
    assert np.abs(sizes - 5000).max() < 5 * np.sqrt(5000 * 7 / 8), sizes  # binomial spread, 5 sd


def test_a_growing_pool_changes_only_the_shards_that_receive_clips():
    """1 % more clips: the shards without a new clip are unchanged row for row (their manifests
    are rewritten identically, so nothing downstream of them reruns)."""
    import pandas as pd

    old = pd.DataFrame({"clip_id": [f"ext/Y{i:06d}" for i in range(0, 4000, 2)]})
    new = pd.concat([old, pd.DataFrame({"clip_id": [f"ext/Y{i:06d}" for i in range(1, 41, 2)]})])  # +1 %
    a, b = assign_shards(old, 50), assign_shards(new, 50)
    changed = [i for i in range(50) if list(a[i].clip_id) != list(b[i].clip_id)]
    receiving = {shard_of(f"ext/Y{i:06d}", 50) for i in range(1, 41, 2)}
    assert set(changed) == receiving and len(changed) < 50 // 2


def test_audioset_bad_folders(pool, tmp_path):
    with pytest.raises(ExternalPoolError, match="not found"):
        scan_audioset(pool["segments"], pool["labels"], [tmp_path / "nope"], n_shards=1)
    (tmp_path / "empty_audio").mkdir()
    with pytest.raises(ExternalPoolError, match="no audio files"):
        scan_audioset(pool["segments"], pool["labels"], [tmp_path / "empty_audio"], n_shards=1)


def test_build_audio_index_lookup(tmp_path):
    _audio(tmp_path / "a" / "Yabc.wav")
    _audio(tmp_path / "b" / "abc.wav")  # Y-prefixed wins
    _audio(tmp_path / "b" / "xyz_10.wav")
    _audio(tmp_path / "b" / "xyz_30.wav")
    idx = build_audio_index([tmp_path / "a", tmp_path / "b"])
    assert idx.lookup("abc").endswith("Yabc.wav")
    assert idx.lookup("xyz", 30.0).endswith("xyz_30.wav")
    assert idx.lookup("xyz", 10.0).endswith("xyz_10.wav")
    assert idx.lookup("nothere") is None


# --------------------------------------------------------------------------- plain folder pool


def test_scan_plain_folder(tmp_path):
    d = tmp_path / "pool"
    _audio(d / "a.wav")
    _audio(d / "sub" / "b.flac", fmt="FLAC")
    _audio(d / "sub" / "c.wav")
    _audio(d / "other" / "a.wav")  # same stem again
    (d / "sub" / "bad.wav").write_bytes(b"nope")
    labels = tmp_path / "labels.csv"
    labels.write_text("file,labels\na.wav,/m/02mk9;/m/0k4j\nb,/m/0k4j\nghost.wav,/m/0k4j\nbroken\n")
    shards, rep = scan_plain_folder([d], labels, n_shards=2)
    df = _all(shards).set_index("clip_id")
    assert sorted(df.index) == ["ext/a", "ext/a#1", "ext/b", "ext/c"]
    assert list(df.loc["ext/a", "label_mids"]) == ["/m/02mk9", "/m/0k4j"]
    assert list(df.loc["ext/b", "label_mids"]) == ["/m/0k4j"]
    assert list(df.loc["ext/c", "label_mids"]) == []
    assert df.loc["ext/c", "segments_file"] == str(labels)
    assert np.isnan(df.loc["ext/a", "start_seconds"])
    assert rep["n_unlabeled"] == 1 and rep["n_unreadable"] == 1
    assert rep["labels_without_audio"] == ["ghost.wav"] and rep["n_skipped_rows"] == 1
    assert rep["n_stem_collisions"] == 1 and sum(rep["shard_sizes"]) == 4
    # without labels
    shards, rep = scan_plain_folder([d], None, n_shards=1, probe_audio=False)
    assert len(shards[0]) == 5 and rep["n_unlabeled"] == 5


def test_external_manifest_round_trip(pool, tmp_path):
    shards, rep = scan_audioset(pool["segments"], pool["labels"], pool["audio_dirs"], n_shards=8)
    outs = [tmp_path / "ext" / f"shard-{i:04d}.parquet" for i in range(8)]
    write_external_manifest(shards, rep, outs, tmp_path / "ext.report.json")
    back = [read_table(p, "external_manifest") for p in outs]
    assert [len(b) for b in back] == [len(s) for s in shards]
    i = next(i for i, s in enumerate(shards) if len(s))
    b0 = back[i].iloc[0]
    assert b0.clip_id == shards[i].clip_id[0] and list(b0.label_mids) == list(shards[i].label_mids[0])
    assert json.loads((tmp_path / "ext.report.json").read_text())["n_rows"] == 6
    with pytest.raises(ValueError, match="output paths"):
        write_external_manifest(shards, rep, outs[:2], tmp_path / "x.json")


def test_pool_matching_no_row_is_an_error_when_a_system_needs_it(pool, tmp_path):
    """Audio that matches none of the CSV rows: 0 usable clips. Systems that train on external
    data must not silently run without any; otherwise the report carries a warning."""
    other = tmp_path / "unrelated_audio"
    _audio(other / "Ysomethingelse.wav")
    shards, rep = scan_audioset(pool["segments"], pool["labels"], [other], n_shards=2)
    assert rep["n_rows"] == 0
    with pytest.raises(ExternalPoolError, match=r"0 usable clips .*systems \['Ps\+Ex'\] train on external data"):
        check_pool_usable(rep, ["Ps+Ex"])
    msg = check_pool_usable(rep, [])
    assert msg is not None and "0 usable clips" in msg and "1 audio files found" in msg
    assert msg in rep["warnings"]
    # a usable pool passes silently
    _, ok = scan_audioset(pool["segments"], pool["labels"], pool["audio_dirs"], n_shards=2)
    assert check_pool_usable(ok, ["Ps+Ex"]) is None
