"""External-pool scoring of one shard: embedding + FAISS nearest machine equals brute force."""

import numpy as np
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
