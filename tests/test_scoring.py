"""Representatives, −max-cosine scores, per-machine scoring and FAISS search vs brute force."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from asdflow.scoring import (
    anomaly_scores,
    build_index,
    per_machine_scores,
    representatives,
    score_by_machine,
    search_nearest_machine,
)

D = 12


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute_scores(test, centres):
    """−max_j <z/|z|, c_j>, one test row and one centre at a time."""
    out = []
    for z in test:
        zn = z / np.linalg.norm(z)
        out.append(-max(float(np.dot(zn, c)) for c in centres))
    return np.array(out)


def test_representatives_k_capped_and_target_all():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(8, D)).astype(np.float32)
    dom = np.array(["source"] * 5 + ["target"] * 3)
    c, meta = representatives(emb, dom, k_source=16, target_mode="all", seed=0)
    assert c.shape == (8, D)  # 5 (k capped at 5 source clips) + 3 target samples
    assert meta["kind"].tolist() == ["source_kmeans"] * 5 + ["target_sample"] * 3
    assert meta["n_members"].sum() == 8
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1.0, atol=1e-5)
    # target samples are the (normalised) target clips themselves
    np.testing.assert_allclose(c[5:], _unit(emb[5:]), atol=1e-6)


def test_representatives_kmeans_target_and_renormalize():
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(60, D)).astype(np.float32)
    dom = np.array(["source"] * 50 + ["target"] * 10)
    c, meta = representatives(emb, dom, k_source=4, target_mode="kmeans", k_target=3, seed=0)
    assert (meta["kind"] == "source_kmeans").sum() == 4 and (meta["kind"] == "target_kmeans").sum() == 3
    assert meta.loc[meta.kind == "source_kmeans", "n_members"].sum() == 50
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1.0, atol=1e-5)
    raw, _ = representatives(emb, dom, k_source=4, target_mode="kmeans", k_target=3, seed=0,
                             renormalize=False)
    assert (np.linalg.norm(raw, axis=1) < 0.999).all()  # means of unit vectors: inside the ball
    np.testing.assert_allclose(_unit(raw), c, atol=1e-5)  # same clustering, only the norm differs
    again, _ = representatives(emb, dom, k_source=4, target_mode="kmeans", k_target=3, seed=0)
    np.testing.assert_array_equal(c, again)  # deterministic given the seed


def test_anomaly_scores_equal_brute_force():
    rng = np.random.default_rng(2)
    train = rng.normal(size=(40, D)).astype(np.float32)
    c, _ = representatives(train, np.array(["source"] * 35 + ["target"] * 5), k_source=6)
    test = rng.normal(size=(23, D)).astype(np.float32) * 3.0
    got = anomaly_scores(test, c, batch_size=4)  # several blocks
    np.testing.assert_allclose(got, _brute_scores(test, c), atol=1e-5)
    assert ((got >= -1 - 1e-6) & (got <= 1 + 1e-6)).all()
    # a test clip equal to a target training clip scores -1 (its own representative)
    assert anomaly_scores(train[-1:] * 7, c)[0] == pytest.approx(-1.0, abs=1e-5)


def _frame(emb, machine, domain, **cols):
    return pd.DataFrame({"machine": machine, "domain": domain, "embedding": list(emb), **cols})


def test_score_by_machine_excludes_external_rows():
    rng = np.random.default_rng(3)
    tr_a, tr_b = rng.normal(size=(20, D)), rng.normal(size=(20, D)) + 2.0
    te = rng.normal(size=(6, D))
    dom = ["source"] * 17 + ["target"] * 3
    train = pd.concat([
        _frame(tr_a, "a", dom, section="00", is_external=False),
        _frame(tr_b, "b", dom, section="00", is_external=False),
        # external clips identical to the test clips: if used, test scores would be -1
        _frame(te, "a", "source", section="00", is_external=True),
    ], ignore_index=True)
    test = _frame(te, "a", "source", section="00", clip_id=[f"c{i}" for i in range(6)])
    test = pd.concat([test, _frame(te[:2], "b", "target", section="00", clip_id=["d0", "d1"])],
                     ignore_index=True)
    scores, reps = score_by_machine(train, test, k_source=4, seed=0)
    assert "embedding" not in scores.columns and scores["clip_id"].tolist()[-1] == "d1"
    assert set(reps["machine"]) == {"a", "b"} and (reps["section"] == "*").all()
    assert reps.groupby("machine").size().to_dict() == {"a": 4 + 3, "b": 4 + 3}
    ca, _ = representatives(tr_a, np.array(dom), k_source=4, seed=0)
    cb, _ = representatives(tr_b, np.array(dom), k_source=4, seed=0)
    np.testing.assert_allclose(scores["score"].to_numpy()[:6], _brute_scores(te, ca), atol=1e-5)
    np.testing.assert_allclose(scores["score"].to_numpy()[6:], _brute_scores(te[:2], cb), atol=1e-5)
    assert (scores["score"] > -0.999).all()


def test_score_by_machine_per_section_and_unknown_machine():
    rng = np.random.default_rng(4)
    train = pd.concat([_frame(rng.normal(size=(6, D)), "a", "source", section="00"),
                       _frame(rng.normal(size=(5, D)), "a", "source", section="01")], ignore_index=True)
    test = pd.concat([_frame(rng.normal(size=(3, D)), "a", "source", section="01"),
                      _frame(rng.normal(size=(2, D)), "zzz", "source", section="00")], ignore_index=True)
    scores, reps = score_by_machine(train, test, per_section=True, k_source=16)
    assert reps.groupby("section").size().to_dict() == {"00": 6, "01": 5}  # k capped per section
    c01 = np.stack(reps.loc[reps.section == "01", "embedding"].to_list())
    np.testing.assert_allclose(scores["score"].to_numpy()[:3],
                               _brute_scores(np.stack(test["embedding"][:3]), c01), atol=1e-5)
    assert scores["score"].isna().tolist() == [False] * 3 + [True] * 2


@pytest.fixture
def centres_three_machines():
    rng = np.random.default_rng(5)
    machines = np.repeat(["fan", "pump", "valve"], [7, 5, 9])
    centres = rng.normal(size=(len(machines), D)).astype(np.float32)
    centres[machines == "pump"] += 1.5
    queries = rng.normal(size=(50, D)).astype(np.float32)
    return _unit(centres), machines, queries


def test_faiss_search_equals_brute_force(centres_three_machines):
    centres, machines, queries = centres_three_machines
    index = build_index(centres, machines, use_gpu="auto")
    res = search_nearest_machine(index, machines, queries, k=1, batch_size=16)
    sims = _unit(queries) @ centres.T  # brute force
    best = sims.argmax(axis=1)
    assert res["machine"].tolist() == machines[best].tolist()
    np.testing.assert_allclose(res["similarity"], sims.max(axis=1), atol=1e-5)
    # score = -max similarity over the nearest machine's own representatives
    own = np.array([sims[i, machines == m].max() for i, m in enumerate(res["machine"])])
    np.testing.assert_allclose(res["score"], -own, atol=1e-5)
    res3, pm = search_nearest_machine(index, machines, queries, k=3, per_machine=True)
    assert res3["machine"].tolist() == res["machine"].tolist()
    np.testing.assert_array_equal(np.stack(res3["machine_topk"]), machines[np.argsort(-sims, axis=1)[:, :3]])
    assert list(pm.columns) == ["fan", "pump", "valve"]
    for m in pm.columns:
        np.testing.assert_allclose(pm[m], -sims[:, machines == m].max(axis=1), atol=1e-5)
    # consistent with anomaly_scores on one machine's representatives
    np.testing.assert_allclose(pm["valve"], anomaly_scores(queries, centres[machines == "valve"]), atol=1e-5)


def test_per_machine_scores_blocks(centres_three_machines):
    centres, machines, queries = centres_three_machines
    index = build_index(centres, use_gpu=False)
    full = per_machine_scores(index, machines, queries)
    small = per_machine_scores(index, machines, queries, batch_size=7)
    pd.testing.assert_frame_equal(full, small)


def test_build_index_unnormalized_matches_code_score():
    rng = np.random.default_rng(6)
    raw = rng.normal(size=(5, D)).astype(np.float32) * 0.5
    machines = np.array(["a"] * 5)
    q = rng.normal(size=(9, D)).astype(np.float32)
    idx = build_index(raw, machines, use_gpu=False, normalize=False)
    res = search_nearest_machine(idx, machines, q)
    # reference code: score = min_j (1 - <q_hat, c_j>) = 1 + (-max dot)
    code = (1 - _unit(q) @ raw.T).min(axis=1)
    np.testing.assert_allclose(res["score"] + 1, code, atol=1e-5)
    np.testing.assert_allclose(res["score"], anomaly_scores(q, raw), atol=1e-5)
