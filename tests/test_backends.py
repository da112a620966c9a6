"""Scoring back-ends on one embedding pass (issue 13): kNN (seed 003), SMOTE-kNN, rescaled kNN,
GMM; checked on constructed embeddings where the answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from asdflow.backends import (get_scoring_backend, gmm_scores, knn_scores, rescaled_knn_scores, score_backends,
                              smote_knn_scores)


def _unit(v):
    v = np.asarray(v, float)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_knn_is_the_min_over_domains_of_the_cosine_distance():
    train = _unit([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0]])
    is_target = np.array([False, False, True])
    q = _unit([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    s = knn_scores(train, is_target, q)
    assert s[0] == pytest.approx(0.0, abs=1e-12) and s[1] == pytest.approx(0.0, abs=1e-12)  # nearest domain wins
    assert s[2] == pytest.approx(1.0)  # orthogonal to everything: 1 - cos = 1
    # k = 2 in the source domain: mean of the two distances
    s2 = knn_scores(train, is_target, q[:1], k_source=2)
    assert s2[0] == pytest.approx(np.mean([0.0, 1 - _unit([0.9, 0.1, 0]) @ np.array([1, 0, 0])]), abs=1e-12)


def test_leave_one_out_training_scores():
    train = _unit([[1, 0], [0.8, 0.6], [0, 1]])
    dom = np.zeros(3, bool)
    loo = knn_scores(train, dom, train, np.arange(3))
    assert (loo > 0).all()  # a clip is not its own neighbour
    assert loo[0] == pytest.approx(1 - train[0] @ train[1])


def test_smote_adds_target_neighbours_up_to_the_ratio():
    rng = np.random.default_rng(0)
    src = _unit(rng.normal(size=(100, 8)) + [3, 0, 0, 0, 0, 0, 0, 0])
    tgt = _unit(rng.normal(size=(4, 8)) + [0, 3, 0, 0, 0, 0, 0, 0])
    train, is_t = np.concatenate([src, tgt]), np.array([False] * 100 + [True] * 4)
    q = _unit(rng.normal(size=(20, 8)) + [0, 3, 0, 0, 0, 0, 0, 0])  # target-like normals
    plain, smote = knn_scores(train, is_t, q), smote_knn_scores(train, is_t, q, smote_ratio=0.2, smote_neighbors=2)
    assert np.all(smote <= plain + 1e-12) and smote.mean() < plain.mean()  # denser target domain
    # already balanced enough: nothing to oversample, identical to knn
    assert np.allclose(smote_knn_scores(train, is_t, q, smote_ratio=0.03), plain)


def test_rescaled_knn_divides_by_the_neighbours_local_scale():
    # a tight source cluster and a loose target cluster; a query as far from each cluster's
    # nearest member as that cluster is wide scores about 1 either way (balanced domains)
    train = _unit([[1, 0.00], [1, 0.01], [1, -0.01], [0, 1], [0.3, 1], [-0.3, 1]])
    dom = np.array([0, 0, 0, 1, 1, 1], bool)
    dd = 1 - train @ train.T
    np.fill_diagonal(dd, np.inf)
    scale = np.sort(dd, axis=1)[:, :2].mean(1)
    q = _unit([[1, 0.02], [0.6, 1]])
    s = rescaled_knn_scores(train, dom, q, k=1, k_ref=2)
    expect = ((1 - q @ train.T) / scale[None]).min(1)
    assert np.allclose(s, expect)


def test_gmm_scores_outliers_higher():
    rng = np.random.default_rng(1)
    train = _unit(rng.normal(size=(200, 4)) * 0.1 + [1, 0, 0, 0])
    q = _unit(np.array([[1, 0, 0, 0], [0, 0, 0, 1]], float))
    s = gmm_scores(train, np.zeros(200, bool), q, n_components=2, seed=0)
    assert s[1] > s[0] and np.isfinite(s).all()


def _emb_table(rows):
    return pd.DataFrame([{"clip_id": c, "dataset": "dev_data", "machine": m, "section": "00", "domain": d,
                          "split": sp, "label": lab, "embedding": np.asarray(e, np.float32)}
                         for c, m, d, sp, lab, e in rows])


def test_score_backends_one_pass_all_backends_external_clips_excluded():
    rng = np.random.default_rng(0)
    rows = [(f"tr{i}", "fan", "source" if i < 12 else "target", "train", "normal", rng.normal(size=6) + [4, 0, 0, 0, 0, 0])
            for i in range(15)]
    rows.append(("ext0", "fan", "source", "train", "normal", [0, 0, 0, 0, 0, 9]))  # an external clip (not original)
    train = _emb_table(rows)
    test = _emb_table([("te0", "fan", "source", "test", "normal", [4, 0, 0, 0, 0, 0]),
                       ("te1", "fan", "source", "test", "anomaly", [0, 0, 0, 0, 0, 9]),
                       ("te2", "pump", "source", "test", "normal", [1, 0, 0, 0, 0, 0])])
    original = [f"tr{i}" for i in range(15)]
    out = score_backends(train, test, original, ["knn", "smote_knn", "rescaled_knn", "gmm"],
                         {"gmm": {"n_components": 1}}, seed=0)
    assert set(out) == {"knn", "smote_knn", "rescaled_knn", "gmm"}
    for b, (tr, te) in out.items():
        assert list(te["clip_id"]) == ["te0", "te1"]  # pump: no training clips, left out (logged)
        s = te.set_index("clip_id")["score"]
        assert s["te1"] > s["te0"], b  # the external clip defines no normality: te1 stays anomalous
        assert "embedding" not in tr.columns and tr["score"].notna().all()
    with pytest.raises(ValueError, match="unknown options"):
        score_backends(train, test, original, ["knn"], {"knn": {"k": 3}})
    with pytest.raises(KeyError, match="unknown scoring backend"):
        get_scoring_backend("svm")


def test_gmm_is_fitted_once_per_reference_and_scores_unchanged(monkeypatch):
    # score_backends scores the training clips, then the test clips, against one reference:
    # the second call reuses the fit; the scores equal a fresh fit's
    from sklearn.mixture import GaussianMixture

    import asdflow.backends as be

    rng = np.random.default_rng(0)
    train, q1, q2 = rng.normal(size=(60, 6)), rng.normal(size=(10, 6)), rng.normal(size=(12, 6))
    fits = []
    real_fit = GaussianMixture.fit
    monkeypatch.setattr(GaussianMixture, "fit", lambda self, x, y=None: fits.append(len(x)) or real_fit(self, x))
    be._GMM_FIT.clear()
    s1 = be.gmm_scores(train, np.zeros(60, bool), q1, n_components=2, seed=0)
    s2 = be.gmm_scores(train, np.zeros(60, bool), q2, n_components=2, seed=0)
    assert fits == [60]
    be.gmm_scores(train[:50], np.zeros(50, bool), q1, n_components=2, seed=0)  # other data: a new fit
    assert fits == [60, 50]
    be._GMM_FIT.clear()
    np.testing.assert_allclose(be.gmm_scores(train, np.zeros(60, bool), q2, n_components=2, seed=0), s2)
    assert s1.shape == (10,)
