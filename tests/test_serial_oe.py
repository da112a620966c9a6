"""Seed paper 001: Serial-OE (asdflow.baselines.serial_oe) and the EfficientNet-B0 it uses."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from asdflow.baselines import get_baseline, load_baseline_model, save_baseline_model
from asdflow.baselines.serial_oe import (BalancedBatchSampler, MelFrontEnd, aggregate_upper_half, chunk_starts,
                                         chunk_waves, fit_serial_oe_baseline, htk_mel_filterbank, id_loss,
                                         mixup_batch, read_anomaly_list, score_serial_oe_baseline, type_logits,
                                         type_loss)
from asdflow.nets.efficientnet import EfficientNetB0, load_torchvision_weights, stochastic_depth

SR = 16000
# a tiny Ba extractor, 0.5-s chunks with 0.25-s hop on 1-s clips, few epochs: seconds on a CPU
TINY = dict(extractor="Ba", ba_net={"emb_dim": 8, "base_channels": 4, "spectrum_channels": 8}, chunk_seconds=0.5,
            hop_seconds=0.25, epochs=3, batch_size=8, gmm_reg_covar=1e-3, device="cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --------------------------------------------------------------------------- sampler


def test_sampler_batches_are_half_normal_half_pseudo_and_an_epoch_is_one_pass_over_normals():
    s = BalancedBatchSampler(n_normal=10, n_pseudo=7, n_anomalous=0, batch_size=8, rng=np.random.default_rng(0))
    batches = list(s)
    assert len(batches) == len(s) == math.ceil(10 / 4) == 3
    normal = np.concatenate([b[b < 10] for b in batches])
    assert sorted(normal.tolist()) == list(range(10))  # every normal clip exactly once per epoch
    for b in batches:
        k = int((b < 10).sum())
        assert int(((b >= 10) & (b < 17)).sum()) == k  # as many pseudo-anomalies as normals
    assert [len(b) for b in batches] == [8, 8, 4]  # 4+4, 4+4, then the remaining 2 normals + 2
    # pseudo-anomalies cycle: 7 clips over 10 draws -> each used once or twice, all used
    pseudo = np.concatenate([b[b >= 10] for b in batches])
    assert set(pseudo.tolist()) == set(range(10, 17))
    # a second epoch is again one pass (new order)
    assert sorted(np.concatenate([b[b < 10] for b in s]).tolist()) == list(range(10))


def test_sampler_puts_one_real_anomaly_in_every_batch_when_given():
    s = BalancedBatchSampler(n_normal=12, n_pseudo=20, n_anomalous=3, batch_size=8, rng=np.random.default_rng(1))
    batches = list(s)
    assert len(batches) == 3
    for b in batches:
        n_norm = int((b < 12).sum())
        n_pseudo = int(((b >= 12) & (b < 32)).sum())
        n_anom = int((b >= 32).sum())
        assert n_norm == 4 and n_anom == 1 and n_pseudo == 3  # one pseudo-anomaly replaced (§3.4)
        assert len(b) == 8
    assert set(np.concatenate([b[b >= 32] for b in batches]).tolist()) == {32, 33, 34}
    with pytest.raises(ValueError):
        BalancedBatchSampler(0, 5)


# --------------------------------------------------------------------------- mixup (Eqs. 5-7)


def test_mixup_label_rules_of_the_paper():
    # batch: two normal clips of IDs 0 and 1, one pseudo-anomaly, one more pseudo-anomaly
    y = torch.tensor([1.0, 1.0, 0.0, 0.0])
    t_prime = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])  # Eq. 2: y * onehot(t)
    x = torch.arange(4, dtype=torch.float32)[:, None].repeat(1, 3)
    lam = torch.tensor([0.7, 0.25, 0.4, 0.9])
    perm = torch.tensor([1, 2, 3, 0])  # 0<-1 normal+normal, 1<-2 normal+pseudo, 2<-3 pseudo+pseudo, 3<-0
    x_mix, y_mix, t_mix = mixup_batch(x, y, t_prime, lam, perm)
    torch.testing.assert_close(x_mix[:, 0], torch.tensor([0.7 * 0 + 0.3 * 1, 0.25 * 1 + 0.75 * 2,
                                                          0.4 * 2 + 0.6 * 3, 0.9 * 3 + 0.1 * 0]))
    # normal + normal of different IDs: [λ, 1 − λ]
    torch.testing.assert_close(t_mix[0], torch.tensor([0.7, 0.3]))
    assert y_mix[0].item() == pytest.approx(1.0)
    # normal + pseudo-anomalous: [λ, 0] (the partner has no ID), y = λ
    torch.testing.assert_close(t_mix[1], torch.tensor([0.0, 0.25]))
    assert y_mix[1].item() == pytest.approx(0.25)
    # pseudo + pseudo: no ID mass, y = 0 -> no L_id contribution
    torch.testing.assert_close(t_mix[2], torch.zeros(2))
    assert y_mix[2].item() == 0.0
    # pseudo-anomalous sample mixed with a normal partner: (1 − λ) of the partner's ID
    torch.testing.assert_close(t_mix[3], torch.tensor([0.1, 0.0]))
    assert y_mix[3].item() == pytest.approx(0.1)


# --------------------------------------------------------------------------- losses (Eqs. 1, 3)


def test_type_loss_on_zero_and_large_norms():
    head = torch.nn.Linear(1, 1)
    with torch.no_grad():
        head.weight.fill_(1.0)
        head.bias.fill_(-4.0)
    zero, large = torch.zeros(1, 8), torch.full((1, 8), 10.0)  # ||f||²/D = 0 and 100
    lz, ll = type_logits(head, zero), type_logits(head, large)
    assert lz.item() == pytest.approx(-4.0) and ll.item() == pytest.approx(96.0)
    # normal far from the origin, pseudo-anomaly at the origin: both (almost) correct
    assert type_loss(ll, torch.ones(1)).item() < 1e-6
    assert type_loss(lz, torch.zeros(1)).item() == pytest.approx(math.log1p(math.exp(-4.0)), rel=1e-5)
    # the reverse is penalised: a normal clip at the origin, a pseudo-anomaly with a large norm
    assert type_loss(lz, torch.ones(1)).item() == pytest.approx(math.log1p(math.exp(4.0)), rel=1e-5)
    assert type_loss(ll, torch.zeros(1)).item() == pytest.approx(96.0, rel=1e-4)
    # the gradient of a normal sample at small norm pushes its norm up
    e = torch.full((1, 8), 0.1, requires_grad=True)
    type_loss(type_logits(head, e), torch.ones(1)).backward()
    assert (e.grad < 0).all()


def test_id_loss_normalisation_and_masking():
    logits = torch.tensor([[10.0, -10.0], [-10.0, -10.0]])
    y = torch.tensor([1.0, 0.0])
    t_prime = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    # both samples nearly right: ~0; the pseudo-anomaly contributes with target 0 (Eq. 3)
    assert id_loss(logits, t_prime, y).item() < 1e-3
    bad = torch.tensor([[-10.0, 10.0], [-10.0, -10.0]])
    # wrong normal sample: two BCE terms of ~10 each, divided by C * sum(y) = 2
    assert id_loss(bad, t_prime, y).item() == pytest.approx(10.0, rel=1e-3)
    # no normal in the batch: no ID loss
    assert id_loss(bad, torch.zeros(2, 2), torch.zeros(2)).item() == 0.0


# --------------------------------------------------------------------------- chunks, aggregation


def test_chunks_are_two_seconds_with_half_overlap():
    chunk, hop = 2 * SR, SR
    assert chunk_starts(10 * SR, chunk, hop).tolist() == [i * SR for i in range(9)]  # 0..8 s
    # a clip that does not end on the hop grid gets one last chunk ending at its end
    assert chunk_starts(int(4.5 * SR), chunk, hop).tolist() == [0, SR, 2 * SR, int(2.5 * SR)]
    assert chunk_starts(SR, chunk, hop).tolist() == [0]
    w = np.arange(4 * SR, dtype=np.float32)[None]
    c = chunk_waves(w, chunk, hop)
    assert c.shape == (1, 3, chunk)
    np.testing.assert_array_equal(c[0, 1], w[0, SR:3 * SR])
    # a clip shorter than a chunk is tiled to one chunk
    short = chunk_waves(np.arange(SR, dtype=np.float32)[None], chunk, hop)
    assert short.shape == (1, 1, chunk) and short[0, 0, SR] == 0.0


def test_aggregation_is_the_mean_above_the_median():
    assert aggregate_upper_half(np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(3.5)
    assert aggregate_upper_half(np.array([5.0, 1.0, 4.0, 2.0, 3.0])) == pytest.approx(4.0)  # ⌈5/2⌉ = 3
    assert aggregate_upper_half(np.array([7.0])) == pytest.approx(7.0)
    # one short anomalous burst among 10 chunks moves the upper-half mean 5x more than the mean
    s = np.zeros((2, 10))
    s[1, 3] = 10.0
    agg = aggregate_upper_half(s)
    assert agg[0] == 0.0 and agg[1] == pytest.approx(2.0) and s[1].mean() == pytest.approx(1.0)


# --------------------------------------------------------------------------- EfficientNet-B0


def test_efficientnet_b0_has_torchvisions_layout_and_size():
    net = EfficientNetB0()
    assert sum(p.numel() for p in net.parameters()) == 5_288_548  # torchvision's efficientnet_b0
    sd = net.state_dict()
    assert len(sd) == 360
    shapes = {
        "features.0.0.weight": (32, 3, 3, 3),
        "features.0.1.running_var": (32,),
        "features.1.0.block.0.0.weight": (32, 1, 3, 3),  # depthwise (expand ratio 1: no expand conv)
        "features.1.0.block.1.fc1.weight": (8, 32, 1, 1),
        "features.1.0.block.1.fc2.bias": (32,),
        "features.1.0.block.2.0.weight": (16, 32, 1, 1),
        "features.2.0.block.0.0.weight": (96, 16, 1, 1),  # expand
        "features.2.0.block.1.0.weight": (96, 1, 3, 3),
        "features.2.0.block.2.fc1.weight": (4, 96, 1, 1),
        "features.2.0.block.3.1.num_batches_tracked": (),
        "features.6.3.block.1.0.weight": (1152, 1, 5, 5),
        "features.7.0.block.3.0.weight": (320, 1152, 1, 1),
        "features.8.0.weight": (1280, 320, 1, 1),
        "features.8.1.weight": (1280,),
        "classifier.1.weight": (1000, 1280),
        "classifier.1.bias": (1000,),
    }
    for key, shape in shapes.items():
        assert tuple(sd[key].shape) == shape, key
    assert list(sd)[0] == "features.0.0.weight" and list(sd)[-1] == "classifier.1.bias"
    # stochastic depth: block b of 16 has p = 0.2 b / 16; residual blocks only where stride 1, in = out
    assert net.features[1][0].stochastic_depth.p == 0.0 and net.features[7][0].stochastic_depth.p == pytest.approx(
        0.2 * 15 / 16)
    assert not net.features[2][0].use_res_connect and net.features[2][1].use_res_connect
    net.eval()
    with torch.no_grad():
        assert net(torch.randn(2, 3, 64, 48)).shape == (2, 1000)


def test_stochastic_depth_drops_whole_rows_and_rescales():
    torch.manual_seed(0)
    x = torch.ones(2000, 3)
    y = stochastic_depth(x, 0.25, training=True)
    kept = (y[:, 0] > 0)
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / 0.75))
    assert bool((y[~kept] == 0).all()) and bool(((y > 0).sum(1) % 3 == 0).all())  # whole rows
    assert abs(kept.float().mean().item() - 0.75) < 0.05
    assert torch.equal(stochastic_depth(x, 0.25, training=False), x)


def test_torchvision_weights_file_loads_into_the_extractor(tmp_path):
    src = EfficientNetB0()
    with torch.no_grad():
        for p in src.parameters():  # distinct values, still a working network
            p.mul_(1.0 + 0.01 * torch.randn_like(p))
    path = tmp_path / "efficientnet_b0.pth"
    torch.save(src.state_dict(), path)  # as torch.save(torchvision efficientnet_b0().state_dict())
    # the whole state dict loads strictly into the same architecture
    same = EfficientNetB0()
    same.load_state_dict(torch.load(path, weights_only=True))
    # into a 128-d classifier (Serial-OE's D): features loaded, the ImageNet head skipped
    dst = EfficientNetB0(num_classes=128)
    skipped = load_torchvision_weights(dst, path)
    assert skipped == ["classifier.1.weight", "classifier.1.bias"]
    for k, v in src.state_dict().items():
        if k.startswith("features."):
            assert torch.equal(dst.state_dict()[k], v), k
    # a wrapped checkpoint with a DataParallel prefix is accepted; anything else is refused
    torch.save({"state_dict": {"module." + k: v for k, v in src.state_dict().items()}}, tmp_path / "wrapped.pth")
    assert load_torchvision_weights(EfficientNetB0(), tmp_path / "wrapped.pth") == []
    torch.save({"features.0.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not a torchvision efficientnet_b0"):
        load_torchvision_weights(EfficientNetB0(), tmp_path / "bad.pth")
    # through the backend option: the extractor starts from the file's features
    rng = np.random.default_rng(0)
    waves = {"a": _clips(rng, 4, 700), "b": _clips(rng, 4, 2100)}
    model = fit_serial_oe_baseline(waves, SR, extractor="efficientnet_b0", pretrained=str(path), n_mels=32,
                                   n_fft=512, hop_length=128, chunk_seconds=0.5, hop_seconds=0.5, epochs=0,
                                   batch_size=4, gmm_reg_covar=1e-3, device="cpu", seed=0)
    state = model.states["a"]
    assert torch.equal(state["extractor.backbone.features.3.1.block.1.0.weight"],
                       src.state_dict()["features.3.1.block.1.0.weight"])


# --------------------------------------------------------------------------- front-end


def test_mel_front_end_is_the_papers_224_band_128ms_16ms():
    fb = htk_mel_filterbank(1025, SR, 224, 50.0, 7800.0)
    assert fb.shape == (1025, 224) and (fb >= 0).all()
    freqs = np.linspace(0, SR // 2, 1025)
    used = freqs[(fb.sum(1) > 0).numpy()]
    assert used.min() > 50 - 8 and used.max() < 7800 + 8  # band 50-7800 Hz
    fe = MelFrontEnd(SR)
    out = fe(torch.randn(2, 2 * SR))
    assert out.shape == (2, 224, 2 * SR // 256 + 1) and (out >= 0).all()  # 126 frames of 16 ms, linear
    assert MelFrontEnd(SR, log=True)(torch.randn(1, SR)).min() < 0  # dB


# --------------------------------------------------------------------------- fit and score


def _clips(rng: np.random.Generator, n: int, f0: float, clicks: bool = False, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    out = []
    for _ in range(n):
        w = 0.3 * np.sin(2 * np.pi * rng.uniform(0.97, 1.03) * f0 * t + rng.uniform(0, 6))
        w = w + 0.02 * rng.standard_normal(len(t))
        if clicks:
            for p in rng.integers(0, len(t) - 50, 12):
                w[p:p + 40] += rng.choice([-1.0, 1.0]) * 0.9
        out.append(w.astype(np.float32))
    return np.stack(out)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Three machine types (tones at 700, 1400, 2100 Hz); test clips of type a with clicks as
    anomalies; a list of 3 real anomalous training clips of a (other clicks) written to disk."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    train = {"a": _clips(rng, 16, 700), "b": _clips(rng, 16, 1400), "c": _clips(rng, 16, 2100)}
    sections = {"a": np.array(["00"] * 8 + ["01"] * 8), "b": np.array(["00"] * 16), "c": np.array(["00"] * 16)}
    test = np.concatenate([_clips(rng, 8, 700), _clips(rng, 8, 700, clicks=True)])
    test_sections = np.array(["00", "01"] * 8)
    folder = tmp_path_factory.mktemp("anomalies")
    rows = ["machine,path"]
    for i, w in enumerate(_clips(rng, 3, 700, clicks=True)):
        sf.write(folder / f"a_anomaly_{i}.wav", w, SR, subtype="FLOAT")
        rows.append(f"a,a_anomaly_{i}.wav")
    rows.append(f"zzz,{folder / 'a_anomaly_0.wav'}")  # a type without training clips: ignored
    (folder / "list.csv").write_text("\n".join(rows) + "\n")
    return train, sections, test, test_sections, np.array([0] * 8 + [1] * 8), folder / "list.csv"


def test_fit_and_score_without_anomalies(data, tmp_path):
    train, sections, test, test_sections, labels, _ = data
    model = fit_serial_oe_baseline(train, SR, **TINY, sections_by_machine=sections, seed=1)
    assert set(model.states) == {"a", "b", "c"}
    assert set(model.gmms["a"]) == {"*", "00", "01"} and set(model.gmms["b"]) == {"*", "00"}
    assert all(g.covariance_type == "full" and g.n_components == 2 for g in model.gmms["a"].values())
    assert model.config["n_anomalous"] == {}
    # a: two sections -> the ID head has 2 classes and L_id is on; b: one class -> L_id off
    assert model.net_config["a"]["n_ids"] == 2 and model.net_config["b"]["n_ids"] == 1
    hist = model.history["a"]
    assert len(hist) == 3 and hist[-1]["id"] > 0 and model.history["b"][-1]["id"] == 0.0
    assert all(np.isfinite(h["loss"]) for h in hist)
    scores = score_serial_oe_baseline(model, {"a": test}, {"a": test_sections})["a"]
    assert scores.shape == (16,) and scores.dtype == np.float64 and np.isfinite(scores).all()
    assert roc_auc_score(labels, scores) > 0.8
    # deterministic for a seed; pickles (without the cached nets) and round-trips the registry's save/load
    again = fit_serial_oe_baseline(train, SR, **TINY, sections_by_machine=sections, seed=1)
    np.testing.assert_array_equal(score_serial_oe_baseline(again, {"a": test}, {"a": test_sections})["a"], scores)
    restored = pickle.loads(pickle.dumps(model))
    assert "_nets" not in restored.__dict__
    np.testing.assert_array_equal(score_serial_oe_baseline(restored, {"a": test}, {"a": test_sections})["a"], scores)
    path = save_baseline_model(model, tmp_path / "baseline.pkl", "serial_oe")
    loaded = load_baseline_model(path, "serial_oe")
    out = get_baseline("serial_oe").score(loaded, {"a": test}, sections_by_machine={"a": test_sections})
    np.testing.assert_array_equal(out["a"], scores)
    # an unseen section falls back to the type's pooled GMM; other aggregations are options
    unseen = score_serial_oe_baseline(model, {"a": test[:2]}, {"a": np.array(["07", "07"])})["a"]
    assert np.isfinite(unseen).all()
    for how in ("mean", "max"):
        other = score_serial_oe_baseline(model, {"a": test}, {"a": test_sections}, aggregation=how)["a"]
        assert np.isfinite(other).all()


def test_fit_with_a_few_real_anomalies(data):
    train, sections, test, test_sections, labels, anomaly_list = data
    assert [m for m, _ in read_anomaly_list(anomaly_list)] == ["a", "a", "a", "zzz"]
    model = fit_serial_oe_baseline(train, SR, **TINY, anomalies=str(anomaly_list), sections_by_machine=sections,
                                   seed=1)
    assert model.config["n_anomalous"] == {"a": 3}
    plain = fit_serial_oe_baseline(train, SR, **TINY, sections_by_machine=sections, seed=1)
    # the anomalies change a's extractor only (b and c have none)
    diff = {m: any(not torch.equal(model.states[m][k], plain.states[m][k]) for k in plain.states[m])
            for m in ("a", "b")}
    assert diff["a"]
    scores = score_serial_oe_baseline(model, {"a": test}, {"a": test_sections})["a"]
    assert np.isfinite(scores).all() and roc_auc_score(labels, scores) > 0.8
    with pytest.raises(FileNotFoundError):
        fit_serial_oe_baseline(train, SR, **TINY, anomalies=str(anomaly_list) + ".missing", seed=1)


def test_registry_options_and_refusals(data):
    train, sections, _, _, _, _ = data
    b = get_baseline("serial_oe")
    assert {"alpha", "mixup_alpha", "extractor", "pretrained", "anomalies", "chunk_seconds", "hop_seconds",
            "gmm_components", "id_labels"} <= set(b.options)
    assert set(b.fit_data) == {"sections_by_machine", "attributes_by_machine"}
    assert b.score_data == ("sections_by_machine",)
    assert not set(b.options) & {"sections_by_machine", "attributes_by_machine", "seed"}
    with pytest.raises(ValueError, match="two machine types"):
        fit_serial_oe_baseline({"a": train["a"]}, SR, **TINY)
    with pytest.raises(ValueError, match="extractor"):
        fit_serial_oe_baseline(train, SR, **{**TINY, "extractor": "resnet"})
    with pytest.raises(ValueError, match="pretrained"):
        fit_serial_oe_baseline(train, SR, **TINY, pretrained="x.pth")
    # attribute classes: section x visible attribute combination
    attrs = {"a": np.array(["k=1", "k=2"] * 8), "b": np.array([""] * 16), "c": np.array([""] * 16)}
    model = fit_serial_oe_baseline(train, SR, **{**TINY, "epochs": 1}, id_labels="attributes",
                                   sections_by_machine=sections, attributes_by_machine=attrs, seed=0)
    assert model.net_config["a"]["n_ids"] == 4 and model.net_config["b"]["n_ids"] == 1


def test_efficientnet_extractor_trains_and_scores():
    """The paper's extractor end to end on a small mel (32 bands, 0.5-s chunks): one epoch of
    training moves the weights, the embeddings are D = emb_dim and the scores finite."""
    rng = np.random.default_rng(3)
    waves = {"a": _clips(rng, 6, 700), "b": _clips(rng, 6, 2100)}
    kw = dict(extractor="efficientnet_b0", emb_dim=16, n_mels=32, n_fft=512, hop_length=128, chunk_seconds=0.5,
              hop_seconds=0.5, batch_size=4, gmm_reg_covar=1e-3, device="cpu", seed=0)
    before = fit_serial_oe_baseline(waves, SR, **kw, epochs=0)
    after = fit_serial_oe_baseline(waves, SR, **kw, epochs=1)
    key = "extractor.backbone.features.0.0.weight"
    assert not torch.equal(before.states["a"][key], after.states["a"][key])
    assert len(after.history["a"]) == 1 and np.isfinite(after.history["a"][0]["loss"])
    assert after.chunk_embeddings("a", waves["a"][:2]).shape == (2, 2, 16)  # 1-s clips: chunks at 0 and 0.5 s
    assert np.isfinite(score_serial_oe_baseline(after, {"b": waves["b"]})["b"]).all()
