"""External-pool scoring of one shard: embedding + FAISS nearest machine equals brute force."""

import numpy as np
import pytest
import pandas as pd
import soundfile as sf
import torch

from asdflow.io.audio import AudioSpec
from asdflow.io.cache import build_cache
from asdflow.nets import build_net
from asdflow.embed import embed_waves
from asdflow.systems import score_external_shard

SPEC = AudioSpec(sample_rate=16000, clip_seconds=0.5)


def test_shard_scores_match_brute_force(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(7):
        p = tmp_path / f"Y{i:011d}.wav"
        sf.write(p, (0.2 * rng.standard_normal(SPEC.n_samples)).astype(np.float32), 16000)
        rows.append({"clip_id": f"ext/{i}", "path": str(p), "label_mids": ["/m/02mk9"], "label_names": ["Engine"]})
    bad = tmp_path / "Ybroken.wav"
    bad.write_bytes(b"junk")
    rows.append({"clip_id": "ext/broken", "path": str(bad), "label_mids": [], "label_names": []})
    shard = pd.DataFrame(rows)
    build_cache(shard["clip_id"].tolist(), shard["path"].tolist(), tmp_path / "s.npy", SPEC, progress=False)
    torch.manual_seed(0)
    model = build_net("Ba", n_samples=SPEC.n_samples, emb_dim=8, base_channels=4, spectrum_channels=8).eval()
    reps = pd.DataFrame({"machine": ["fan"] * 3 + ["pump"] * 2, "section": "*", "kind": "source_kmeans",
                         "n_members": 1, "embedding": list(rng.standard_normal((5, 24)).astype(np.float32))})
    out = score_external_shard(model, shard, tmp_path / "s.npy", reps, progress=False, use_gpu=False)
    assert out.attrs["n_failed"] == 1 and "ext/broken" not in set(out["clip_id"])
    emb = embed_waves(model, [str(tmp_path / "s.npy")] * 7, list(range(7)), progress=False)
    z = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    c = np.stack(reps["embedding"])
    c = c / np.linalg.norm(c, axis=1, keepdims=True)
    sims = z @ c.T
    best = sims.argmax(axis=1)
    assert out["machine"].tolist() == reps["machine"].to_numpy()[best].tolist()
    np.testing.assert_allclose(out["score"], -sims.max(axis=1), atol=1e-5)
    assert out["label_mids"].iloc[0] == ["/m/02mk9"]


def _pool(tmp_path, n=9):
    rng = np.random.default_rng(1)
    rows = []
    for i in range(n):
        p = tmp_path / f"Y{i:011d}.wav"
        sf.write(p, (0.3 * rng.standard_normal(int(SPEC.n_samples * 0.7))).astype(np.float32), 16000)  # tiled
        rows.append({"clip_id": f"ext/{i}", "path": str(p), "label_mids": [f"/m/{i}"], "label_names": ["x"]})
    bad = tmp_path / "Ybroken.wav"
    bad.write_bytes(b"junk")
    rows.insert(4, {"clip_id": "ext/broken", "path": str(bad), "label_mids": [], "label_names": []})
    return pd.DataFrame(rows)


def _model_and_reps():
    torch.manual_seed(0)
    model = build_net("Ba", n_samples=SPEC.n_samples, emb_dim=8, base_channels=4, spectrum_channels=8).eval()
    rng = np.random.default_rng(2)
    reps = pd.DataFrame({"machine": ["fan", "pump", "valve", "fan"], "section": "*", "kind": "source_kmeans",
                         "n_members": 1, "embedding": list(rng.standard_normal((4, 24)).astype(np.float32))})
    return model, reps


def test_no_cache_path_decodes_and_equals_the_cached_scores(tmp_path):
    shard = _pool(tmp_path)
    build_cache(shard["clip_id"].tolist(), shard["path"].tolist(), tmp_path / "s.npy", SPEC, progress=False)
    model, reps = _model_and_reps()
    cached = score_external_shard(model, shard, tmp_path / "s.npy", reps, batch_size=4, progress=False, use_gpu=False)
    decoded = score_external_shard(model, shard, None, reps, audio_spec=SPEC, batch_size=3, progress=False,
                                   use_gpu=False)
    pd.testing.assert_frame_equal(cached, decoded, atol=1e-6)
    assert decoded.attrs["n_failed"] == 1 and "Ybroken.wav" in decoded.attrs["failed"][0]["error"]
    assert decoded["clip_id"].tolist() == [c for c in shard["clip_id"] if c != "ext/broken"]
    with pytest.raises(ValueError, match="audio_spec"):
        score_external_shard(model, shard, None, reps, progress=False, use_gpu=False)


def test_loading_modes_and_batch_sizes_give_the_same_embeddings(tmp_path):
    """Prefetch thread, no prefetch, DataLoader worker processes: same rows, same order."""
    from asdflow.embed import CacheBatches, DecodeBatches, embed_stream

    shard = _pool(tmp_path)
    build_cache(shard["clip_id"].tolist(), shard["path"].tolist(), tmp_path / "s.npy", SPEC, progress=False)
    model, _ = _model_and_reps()
    n = len(shard)
    ref = embed_waves(model, [str(tmp_path / "s.npy")] * n, list(range(n)), batch_size=n, progress=False)
    for batch_size, workers, prefetch in [(1, 0, 0), (4, 0, 2), (3, 2, 2)]:
        got = [b for b in embed_stream(model, CacheBatches([str(tmp_path / "s.npy")] * n, list(range(n)), batch_size),
                                       num_workers=workers, prefetch=prefetch, progress=False)]
        assert [b.start for b in got] == list(range(0, n, batch_size))
        np.testing.assert_allclose(np.concatenate([b.embeddings for b in got]), ref, atol=1e-5)
    dec = list(embed_stream(model, DecodeBatches(shard["path"], SPEC, 4), num_workers=1, progress=False))
    ok = np.concatenate([b.ok for b in dec])
    assert ok.tolist() == [c != "ext/broken" for c in shard["clip_id"]]
    np.testing.assert_allclose(np.concatenate([b.embeddings for b in dec])[ok], ref[ok], atol=1e-5)


def test_prefetch_thread_passes_errors_and_stops_early():
    from asdflow.embed import _prefetched

    def items():
        yield 1
        raise RuntimeError("boom")

    it = _prefetched(items(), 2)
    assert next(it) == 1
    with pytest.raises(RuntimeError, match="boom"):
        next(it)
    endless = _prefetched(iter(range(10**9)), 3)
    assert [next(endless) for _ in range(5)] == [0, 1, 2, 3, 4]
    endless.close()  # the producer thread must stop, not run on
    import threading

    assert not any(t.name == "asdflow-prefetch" for t in threading.enumerate())


def test_workflow_without_pool_cache_decodes_and_scores_the_same(tiny_run, tiny_config, tmp_path):
    """external_pool.cache: false on a copy of the tiny run: no pool cache is built or read, the
    stage-2 pool scores equal the cached run's, and only the selected clips are decoded."""
    import shutil

    from asdflow.io.cache import AudioCache
    from asdflow.schemas import read_table
    from conftest import run_snakemake

    work = tmp_path / "nocache"
    shutil.copytree(tiny_run, work, symlinks=True)
    shutil.rmtree(work / "results" / "cache" / "external")
    s2 = "results/Ba+Ltrp+Ps+Ex/seed0/stage2"
    cfg = tmp_path / "nocache.yaml"
    cfg.write_text("external_pool: {n_shards: 2, cache: false}\n")
    proc = run_snakemake(work, "--forcerun", "score_external_shard", "--", f"{s2}/trainset.parquet",
                         configfiles=[tiny_config, cfg])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cache_external_shard" not in proc.stderr and "cache_selected_external" in proc.stderr
    assert not (work / "results" / "cache" / "external").exists()
    for i in range(2):
        before = read_table(tiny_run / f"{s2}/external_scores/shard-{i:04d}.parquet", "external_scores")
        after = read_table(work / f"{s2}/external_scores/shard-{i:04d}.parquet", "external_scores")
        pd.testing.assert_frame_equal(before, after, atol=1e-5)
    sel = read_table(work / f"{s2}/selection.parquet", "selection")
    trainset = read_table(work / f"{s2}/trainset.parquet", "trainset")
    ext = trainset[trainset["is_external"]]
    assert len(ext) == len(sel) > 0 and set(ext["cache_path"]) == {f"{s2}/selected_audio.npy"}
    assert len(AudioCache(work / s2 / "selected_audio.npy")) == len(sel)
