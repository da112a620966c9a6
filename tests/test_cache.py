"""Decoded-audio cache: round trip, failed clips recorded, spec checks, atomic writes."""

import numpy as np
import pytest
import soundfile as sf

import asdflow.io.cache as cache_mod
from asdflow.io.audio import AudioSpec
from asdflow.io.cache import AudioCache, build_cache, cache_paths

SPEC = AudioSpec(sample_rate=16000, clip_seconds=0.5)


@pytest.fixture
def clips(tmp_path):
    rng = np.random.default_rng(0)
    paths, ids, waves = [], [], []
    for i in range(6):
        x = (0.3 * rng.standard_normal(8000)).astype(np.float32).clip(-1, 1)
        p = tmp_path / f"c{i}.wav"
        sf.write(p, x, 16000, subtype="FLOAT")
        paths.append(str(p)), ids.append(f"clip{i}"), waves.append(x)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    paths.append(str(bad)), ids.append("bad"), waves.append(None)
    return ids, paths, waves


def test_roundtrip_and_failed_clip(clips, tmp_path):
    ids, paths, waves = clips
    report = build_cache(ids, paths, tmp_path / "c.npy", SPEC, progress=False)
    assert report["n"] == 7 and report["n_failed"] == 1 and report["failed"][0]["clip_id"] == "bad"
    assert "bad.wav" in report["failed"][0]["error"]
    cache = AudioCache(tmp_path / "c.npy", expect_spec=SPEC)
    assert len(cache) == 7 and cache.clip_ids == ids
    got = cache.get(ids[:6])
    np.testing.assert_allclose(got, np.stack(waves[:6]), atol=1.0 / 16000)
    assert cache.status["bad"] == "failed"
    assert not cache.get(["bad"]).any()


def test_spec_mismatch_and_unknown_clip(clips, tmp_path):
    ids, paths, _ = clips
    build_cache(ids, paths, tmp_path / "c.npy", SPEC, progress=False)
    with pytest.raises(ValueError, match="rebuild"):
        AudioCache(tmp_path / "c.npy", expect_spec=AudioSpec(sample_rate=16000, clip_seconds=1.0))
    with pytest.raises(KeyError, match="nope"):
        AudioCache(tmp_path / "c.npy").get(["nope"])


def test_interrupted_build_leaves_nothing(clips, tmp_path, monkeypatch):
    ids, paths, _ = clips
    real = cache_mod._decode
    calls = {"n": 0}

    def flaky(args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("killed")
        return real(args)

    monkeypatch.setattr(cache_mod, "_decode", flaky)
    with pytest.raises(RuntimeError, match="killed"):
        build_cache(ids, paths, tmp_path / "c.npy", SPEC, progress=False)
    assert not any(p.exists() for p in cache_paths(tmp_path / "c.npy"))
    assert list(tmp_path.glob("c.npy*")) == []


def test_workers_give_identical_bytes(clips, tmp_path):
    ids, paths, _ = clips
    build_cache(ids, paths, tmp_path / "a.npy", SPEC, num_workers=0, progress=False)
    build_cache(ids, paths, tmp_path / "b.npy", SPEC, num_workers=2, progress=False)
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()


def test_duplicate_ids_rejected(clips, tmp_path):
    ids, paths, _ = clips
    with pytest.raises(ValueError, match="unique"):
        build_cache(ids[:2] + ids[:1], paths[:3], tmp_path / "c.npy", SPEC, progress=False)


def test_quantize_is_the_stored_format_and_row_reads_agree(clips, tmp_path):
    from asdflow.io.cache import dequantize, quantize

    w = np.array([-2.0, -1.0, -0.5, 0.0, 1e-5, 0.5, 1.0, 3.0], dtype=np.float32)
    q = quantize(w)
    assert q.dtype == np.int16 and q.tolist() == [-32767, -32767, -16384, 0, 0, 16384, 32767, 32767]
    np.testing.assert_allclose(dequantize(q), q / 32768.0)
    ids, paths, _ = clips
    build_cache(ids, paths, tmp_path / "c.npy", SPEC, progress=False)
    cache = AudioCache(tmp_path / "c.npy")
    whole = cache.get_rows(np.arange(len(cache)))  # contiguous rows: one slice read
    for rows in ([2, 0], [1], [0, 1, 2], [3, 4, 5, 6], [len(cache) - 1, 0, len(cache) - 1], []):
        np.testing.assert_array_equal(cache.get_rows(rows), whole[rows])
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), cache.read_rows(np.arange(len(cache))))
    with pytest.raises(IndexError, match="c.npy"):
        cache.get_rows([len(cache)])
    import pickle

    np.testing.assert_array_equal(pickle.loads(pickle.dumps(cache)).get_rows([3]), whole[[3]])
    truncated = tmp_path / "t.npy"
    truncated.write_bytes((tmp_path / "c.npy").read_bytes()[:-100])
    for suffix in (".index.parquet", ".spec.json"):
        (tmp_path / f"t{suffix}").write_bytes((tmp_path / f"c{suffix}").read_bytes())
    with pytest.raises(OSError, match="truncated"):
        AudioCache(truncated).get_rows([len(cache) - 1])


@pytest.mark.parametrize("arrow", [False, True])
def test_attach_cache_rows_maps_drops_failed_and_names_unknown_clips(clips, tmp_path, arrow):
    import pandas as pd
    import pyarrow as pa

    from asdflow.data import attach_cache_rows

    ids, paths, _ = clips
    npy = tmp_path / "c.npy"
    build_cache(ids, paths, npy, SPEC, progress=False)
    order = ["clip3", "bad", "clip0", "clip5"]  # any order; "bad" failed to decode
    manifest = pd.DataFrame({"clip_id": order, "x": [3, -1, 0, 5]})
    if arrow:  # as the shard jobs read it (read_table(..., arrow_dtypes=True))
        manifest = manifest.astype({"clip_id": pd.ArrowDtype(pa.string())})
    out = attach_cache_rows(manifest, npy)
    assert list(out["clip_id"]) == ["clip3", "clip0", "clip5"] and out.attrs["n_failed"] == 1
    cache = AudioCache(npy)
    assert list(out["cache_row"]) == [cache.row_of(c) for c in out["clip_id"]]
    assert list(out["x"]) == [3, 0, 5] and set(out["cache_path"]) == {str(npy)}
    with pytest.raises(KeyError, match=r"1 manifest clips are not in the cache \(e.g. 'nope'\)"):
        attach_cache_rows(pd.DataFrame({"clip_id": ["clip1", "nope"]}), npy)
    with pytest.raises(FileNotFoundError, match="none.npy: audio cache not found"):
        attach_cache_rows(manifest, tmp_path / "none.npy")
