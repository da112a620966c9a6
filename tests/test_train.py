"""Training loop: labels from the trainset table, determinism, resume after a kill, embedding."""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

import asdflow.train as train_mod
from asdflow.embed import embed_waves
from asdflow.io.audio import AudioSpec
from asdflow.io.cache import build_cache
from asdflow.train import TrainConfig, load_model, train_model

SPEC = AudioSpec(sample_rate=16000, clip_seconds=0.5)
NET = {"emb_dim": 8, "base_channels": 4, "spectrum_channels": 8}


@pytest.fixture(scope="module")
def trainset(tmp_path_factory):
    d = tmp_path_factory.mktemp("train")
    rng = np.random.default_rng(0)
    t = np.arange(SPEC.n_samples) / SPEC.sample_rate
    rows = []
    for machine, f0 in (("fan", 300.0), ("pump", 900.0)):
        for i in range(8):
            x = 0.3 * np.sin(2 * np.pi * f0 * (1 + 0.02 * i) * t) + 0.05 * rng.standard_normal(len(t))
            p = d / f"{machine}_{i}.wav"
            sf.write(p, x.astype(np.float32), 16000)
            rows.append({"clip_id": f"{machine}/{i}", "path": str(p), "machine": machine, "section": "00",
                         "domain": "target" if i == 7 else "source", "label": f"{machine}_pl{i % 2}"})
    df = pd.DataFrame(rows)
    build_cache(df["clip_id"].tolist(), df["path"].tolist(), d / "c.npy", SPEC, progress=False)
    return df.assign(is_external=False, cache_path=str(d / "c.npy"), cache_row=np.arange(len(df)))


def _cfg(**kw):
    base = dict(network="Ba", net=NET, epochs=2, batch_size=8, n_subclusters=2, seed=3, device="cpu")
    base.update(kw)
    return TrainConfig.from_dict(base)


def _weights(path):
    return torch.load(path, weights_only=False)["model"]


def test_trains_on_the_label_column_and_is_deterministic(trainset, tmp_path):
    rep = train_model(trainset, _cfg(), tmp_path / "a.pt", n_samples=SPEC.n_samples, progress=False)
    assert rep["n_classes"] == 4 and len(rep["history"]) == 2  # fan_pl0, fan_pl1, pump_pl0, pump_pl1
    assert rep["history"][0]["trp"] > 0  # triplet term active by default
    state = torch.load(tmp_path / "a.pt", weights_only=False)
    assert state["classes"] == ["fan_pl0", "fan_pl1", "pump_pl0", "pump_pl1"]
    assert not (tmp_path / "a.pt.ckpt").exists()
    train_model(trainset, _cfg(), tmp_path / "b.pt", n_samples=SPEC.n_samples, progress=False)
    for k, v in _weights(tmp_path / "a.pt").items():
        torch.testing.assert_close(v, _weights(tmp_path / "b.pt")[k], rtol=0, atol=0)


def test_resume_after_kill_equals_uninterrupted_run(trainset, tmp_path, monkeypatch):
    train_model(trainset, _cfg(), tmp_path / "full.pt", n_samples=SPEC.n_samples, progress=False)
    real_save = train_mod._atomic_save
    calls = {"n": 0}

    def killed_after_first_epoch(obj, path):
        calls["n"] += 1
        if calls["n"] == 2:  # the checkpoint of epoch 2 never gets written
            raise KeyboardInterrupt("killed")
        real_save(obj, path)

    monkeypatch.setattr(train_mod, "_atomic_save", killed_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_model(trainset, _cfg(), tmp_path / "resumed.pt", n_samples=SPEC.n_samples, progress=False)
    assert not (tmp_path / "resumed.pt").exists() and (tmp_path / "resumed.pt.ckpt").exists()
    monkeypatch.setattr(train_mod, "_atomic_save", real_save)
    rep = train_model(trainset, _cfg(), tmp_path / "resumed.pt", n_samples=SPEC.n_samples, progress=False)
    assert [h["epoch"] for h in rep["history"]] == [1, 2]
    for k, v in _weights(tmp_path / "full.pt").items():
        torch.testing.assert_close(v, _weights(tmp_path / "resumed.pt")[k], rtol=0, atol=0)


def test_plain_baseline_without_triplet_and_embedding(trainset, tmp_path):
    cfg = _cfg(triplet={"enabled": False}, epochs=1)
    assert cfg.effective_mixup_prob == 1.0 and _cfg().effective_mixup_prob == 0.5
    rep = train_model(trainset, cfg, tmp_path / "m.pt", n_samples=SPEC.n_samples, progress=False)
    assert rep["history"][0]["trp"] == 0.0
    model, meta = load_model(tmp_path / "m.pt", device="cpu")
    emb = embed_waves(model, trainset["cache_path"].tolist(), trainset["cache_row"].tolist(), batch_size=5,
                      progress=False)
    assert emb.shape == (16, 24) and np.isfinite(emb).all()
    again = embed_waves(model, trainset["cache_path"].tolist(), trainset["cache_row"].tolist(), batch_size=16,
                        progress=False)
    np.testing.assert_allclose(emb, again, atol=1e-5)  # batching does not change embeddings (eval mode)


def test_bad_options_are_rejected(trainset, tmp_path):
    with pytest.raises(ValueError, match="unknown training options"):
        TrainConfig.from_dict({"epochz": 3})
    with pytest.raises(ValueError, match="empty"):
        train_model(trainset.iloc[:0], _cfg(), tmp_path / "x.pt", n_samples=SPEC.n_samples, progress=False)


def test_epoch_order_shuffle_and_domain_batches():
    g = torch.Generator().manual_seed(0)
    is_target = torch.tensor([False] * 40 + [True] * 5)
    order, steps = train_mod.epoch_order(is_target, 10, g)
    assert steps == 4 and sorted(order.tolist()) == list(range(45))  # a permutation, 4 full batches
    order, steps = train_mod.epoch_order(is_target, 10, g, sampler="domain", target_share=0.2)
    assert steps == 5 and len(order) == 50  # 40 source clips / 8 per batch
    batches = order.view(steps, 10)
    assert (is_target[batches].sum(1) == 2).all()  # 2 target clips in every batch (drawn with replacement)
    src = batches[~is_target[batches]]
    assert sorted(src.tolist()) == list(range(40))  # every source clip exactly once
    no_target = torch.zeros(20, dtype=torch.bool)
    order, steps = train_mod.epoch_order(no_target, 8, g, sampler="domain")
    assert steps == 2 and sorted(order.tolist()) == list(range(20))  # falls back to shuffling


def test_triplet_anchors_option(trainset, tmp_path):
    full = train_model(trainset, _cfg(epochs=1), tmp_path / "all.pt", n_samples=SPEC.n_samples, progress=False)
    big = train_model(trainset, _cfg(epochs=1, triplet={"anchors": 64}), tmp_path / "big.pt",
                      n_samples=SPEC.n_samples, progress=False)
    for k, v in _weights(tmp_path / "all.pt").items():  # anchors >= batch size = every clip an anchor
        torch.testing.assert_close(v, _weights(tmp_path / "big.pt")[k], rtol=0, atol=0)
    assert big["history"][0]["loss"] == full["history"][0]["loss"]
    few = train_model(trainset, _cfg(epochs=1, triplet={"anchors": 2}), tmp_path / "few.pt",
                      n_samples=SPEC.n_samples, progress=False)
    assert few["history"][0]["trp"] > 0 and few["history"][0]["loss"] != full["history"][0]["loss"]
    with pytest.raises(ValueError, match="anchors"):
        _cfg(triplet={"anchors": 0})
    with pytest.raises(ValueError, match="sampler"):
        _cfg(sampler="balanced")
    dom = train_model(trainset, _cfg(epochs=1, sampler="domain", target_share=0.25), tmp_path / "dom.pt",
                      n_samples=SPEC.n_samples, progress=False)
    assert np.isfinite(dom["history"][0]["loss"])


# Loss histories of SSL-off runs, recorded on this fixture with the training loop as it was
# before seed 002's StatEx/FeatEx were added: SSL off must leave the loop's random draws and
# arithmetic unchanged (the tolerance only absorbs BLAS rounding on other CPUs).
LOSSES_BEFORE_SSL = {
    ("Ba", False): [6.230674982070923, 6.354877471923828],
    ("Wilkinghoff", False): [4.502321004867554, 4.807408571243286],
    ("Wilkinghoff", True): [5.26187801361084, 4.7933361530303955],
}


def test_training_without_ssl_is_unchanged(trainset, tmp_path, monkeypatch):
    def no_ssl(*args, **kwargs):
        raise AssertionError("ssl_forward called with SSL off")

    monkeypatch.setattr(train_mod, "ssl_forward", no_ssl)
    for (net, trip), losses in LOSSES_BEFORE_SSL.items():
        rep = train_model(trainset, _cfg(network=net, triplet={"enabled": trip}), tmp_path / f"{net}{trip}.pt",
                          n_samples=SPEC.n_samples, progress=False)
        assert [h["loss"] for h in rep["history"]] == pytest.approx(losses, rel=1e-4, abs=0)
        assert set(rep["history"][0]) == {"loss", "ss", "trp", "epoch", "seconds"}
        assert "ssl_head" not in torch.load(tmp_path / f"{net}{trip}.pt", weights_only=False)
    off = _cfg(network="Wilkinghoff", triplet={"enabled": False}, ssl={"statex": False, "featex": False})
    train_model(trainset, off, tmp_path / "off.pt", n_samples=SPEC.n_samples, progress=False)
    for k, v in _weights(tmp_path / "WilkinghoffFalse.pt").items():
        torch.testing.assert_close(v, _weights(tmp_path / "off.pt")[k], rtol=0, atol=0)


def _ssl_cfg(**ssl):
    return _cfg(network="Wilkinghoff", triplet={"enabled": False}, ssl=ssl)


def test_ssl_options_reach_the_loop_and_training_is_deterministic_and_resumable(trainset, tmp_path, monkeypatch):
    calls = []
    real_forward = train_mod.ssl_forward

    def spy(net, wave, target, **kw):
        calls.append({**kw, "n": len(wave), "targets": target.shape[1]})
        return real_forward(net, wave, target, **kw)

    monkeypatch.setattr(train_mod, "ssl_forward", spy)
    cfg = _ssl_cfg(statex=True, featex=True, prob=0.25)
    assert cfg.effective_mixup_prob == 0.5
    rep = train_model(trainset, cfg, tmp_path / "a.pt", n_samples=SPEC.n_samples, progress=False)
    assert len(calls) == 4  # 2 epochs x 2 batches of 8
    assert {(c["use_statex"], c["use_featex"], c["prob"], c["variant"], c["n"], c["targets"]) for c in calls} == {
        (True, True, 0.25, "paper", 8, 4)}
    assert all(h["ssl"] > 0 and h["loss"] == pytest.approx(h["ss"] + h["ssl"]) for h in rep["history"])
    state = torch.load(tmp_path / "a.pt", weights_only=False)
    assert state["ssl_head"]["head.centres"].shape == (16, 9 * 4 * 2)  # 256-d tiny: 2 x 8; 9 N classes x 2 sub
    monkeypatch.setattr(train_mod, "ssl_forward", real_forward)
    # resume after a kill: the SSL head's centres are checkpointed with the rest
    real_save = train_mod._atomic_save
    n_saves = {"n": 0}

    def killed_after_first_epoch(obj, path):
        n_saves["n"] += 1
        if n_saves["n"] == 2:
            raise KeyboardInterrupt("killed")
        real_save(obj, path)

    monkeypatch.setattr(train_mod, "_atomic_save", killed_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_model(trainset, cfg, tmp_path / "b.pt", n_samples=SPEC.n_samples, progress=False)
    monkeypatch.setattr(train_mod, "_atomic_save", real_save)
    assert "ssl_head" in torch.load(tmp_path / "b.pt.ckpt", weights_only=False)
    again = train_model(trainset, cfg, tmp_path / "b.pt", n_samples=SPEC.n_samples, progress=False)
    assert again["resumed_from_epoch"] == 1
    other = torch.load(tmp_path / "b.pt", weights_only=False)
    for part in ("model", "ssl_head"):
        for k, v in state[part].items():
            torch.testing.assert_close(v, other[part][k], rtol=0, atol=0)
    model, meta = load_model(tmp_path / "b.pt", device="cpu")  # inference does not need the SSL head
    assert meta["config"]["ssl"]["featex"] and model.emb_dim == 16


def test_ssl_variants_in_training(trainset, tmp_path):
    code = train_model(trainset, _ssl_cfg(statex=True, variant="code"), tmp_path / "c.pt", n_samples=SPEC.n_samples,
                       progress=False)
    assert all(h["ssl"] == 0.0 for h in code["history"])  # the code's StatEx head has loss weight 0
    assert "ssl_head" not in torch.load(tmp_path / "c.pt", weights_only=False)
    paper = train_model(trainset, _ssl_cfg(statex=True), tmp_path / "p.pt", n_samples=SPEC.n_samples,
                        progress=False)
    assert all(h["ssl"] > 0 for h in paper["history"])
    feat = train_model(trainset, _ssl_cfg(featex=True), tmp_path / "f.pt", n_samples=SPEC.n_samples,
                       progress=False)
    assert torch.load(tmp_path / "f.pt", weights_only=False)["ssl_head"]["head.centres"].shape == (16, 3 * 4 * 2)
    assert all(np.isfinite(h["loss"]) for h in feat["history"])
    with pytest.raises(ValueError, match="Wilkinghoff"):
        _cfg(network="Ba", ssl={"featex": True})


def test_subcluster_cap_follows_the_classes_clip_counts(trainset, tmp_path, monkeypatch):
    """n_subclusters_cap: clips gives each class at most one sub-cluster per training clip (the
    fixture's four classes have 4 clips each). Where no class is that small the head is the plain
    one (tests/test_losses.py)."""
    built = []
    real_build = train_mod._build

    def spy(*args, **kwargs):
        out = real_build(*args, **kwargs)
        built.append(out[1])
        return out

    monkeypatch.setattr(train_mod, "_build", spy)
    rep = train_model(trainset, _cfg(n_subclusters=8, n_subclusters_cap="clips", epochs=1), tmp_path / "c.pt",
                      n_samples=SPEC.n_samples, progress=False)
    assert np.isfinite(rep["history"][0]["loss"])
    for head in [built[-1].cat, *built[-1].branches]:
        assert head.active.view(4, 8).sum(1).tolist() == [4, 4, 4, 4]
