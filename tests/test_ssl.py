"""Seed 002's self-supervised exchanges: StatEx, FeatEx, tripled labels, the SSL loss term,
and how the options travel from a system definition to the training config."""

import math

import pytest
import torch
import yaml

from asdflow.losses.ssl import (SSLHead, draw_exchange, featex, partner_index, ssl_forward, statex_branches,
                                temporal_statex, triple_labels)
from asdflow.nets import build_net
from asdflow.recipes import SystemRecipe, check_ssl_options
from asdflow.train import SSLConfig, TrainConfig

N_SAMPLES = 8000
NET = {"emb_dim": 8, "base_channels": 4, "spectrum_channels": 8}


def _waves(n: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(N_SAMPLES) / 16000
    f0 = 200 + 700 * torch.rand(n, 1, generator=g)
    return 0.3 * torch.sin(2 * math.pi * f0 * t) + 0.05 * torch.randn(n, N_SAMPLES, generator=g)


def _net(name: str = "Wilkinghoff"):
    torch.manual_seed(0)
    return build_net(name, n_samples=N_SAMPLES, **NET).eval()


# --------------------------------------------------------------------------- StatEx (eq. 3)
def test_temporal_statex_gives_every_frame_the_partners_statistics():
    g = torch.Generator().manual_seed(1)
    spec = torch.rand(5, 33, 12, generator=g) * torch.linspace(0.1, 3, 12)  # [B, F, T], frames differ
    out = temporal_statex(spec)
    assert out.shape == spec.shape
    partner = partner_index(5)
    assert partner.tolist() == [4, 3, 2, 1, 0]
    # per-frame statistics over frequency are the partner's, frame by frame
    torch.testing.assert_close(out.mean(dim=1), spec[partner].mean(dim=1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.std(dim=1, unbiased=False), spec[partner].std(dim=1, unbiased=False),
                               rtol=1e-4, atol=1e-5)
    # the shape of each frame over frequency (the standardised frame) is the sample's own
    z = (spec - spec.mean(1, keepdim=True)) / spec.std(1, keepdim=True, unbiased=False)
    z_out = (out - out.mean(1, keepdim=True)) / out.std(1, keepdim=True, unbiased=False)
    torch.testing.assert_close(z_out, z, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out[2], spec[2], rtol=1e-5, atol=1e-6)  # odd batch: the middle is its own partner
    with pytest.raises(ValueError, match="spectrogram batch"):
        temporal_statex(spec[0])


def test_draw_exchange_is_seeded_and_about_half():
    a = draw_exchange(4000, 0.5, torch.Generator().manual_seed(3))
    b = draw_exchange(4000, 0.5, torch.Generator().manual_seed(3))
    assert a.dtype == torch.bool and torch.equal(a, b) and 0.45 < a.float().mean() < 0.55
    assert not draw_exchange(10, 0.0).any() and draw_exchange(10, 1.0).all()
    with pytest.raises(ValueError, match="probability"):
        draw_exchange(3, 1.5)


# --------------------------------------------------------------------------- labels (eq. 4, 5, 7)
def test_triple_labels_structure():
    y = torch.eye(3)[[0, 1, 2, 1]]  # 4 samples, 3 classes; partners: 3, 2, 1, 0
    ex = torch.tensor([True, False, True, False])
    out = triple_labels(y, ex)
    assert out.shape == (4, 9)
    zero = torch.zeros(3)
    torch.testing.assert_close(out[0], torch.cat([zero, 0.5 * y[0], 0.5 * y[3]]))  # (0, .5 y, .5 y_partner)
    torch.testing.assert_close(out[1], torch.cat([y[1], zero, zero]))  # (y, 0, 0)
    torch.testing.assert_close(out[2], torch.cat([zero, 0.5 * y[2], 0.5 * y[1]]))
    torch.testing.assert_close(out.sum(1), torch.ones(4))
    # mixup-soft targets stay distributions; StatEx then FeatEx: 3 x 3 = 9 N columns (§3.4)
    soft = torch.softmax(torch.randn(4, 3, generator=torch.Generator().manual_seed(0)), dim=1)
    twice = triple_labels(triple_labels(soft, ex), ~ex)
    assert twice.shape == (4, 27)
    torch.testing.assert_close(twice.sum(1), torch.ones(4))
    torch.testing.assert_close(twice[0, :9], triple_labels(soft, ex)[0])  # not FeatEx-exchanged: (y', 0, 0)


# --------------------------------------------------------------------------- FeatEx (eq. 6)
def test_featex_takes_the_partners_second_branch():
    e1, e2 = torch.randn(4, 3), torch.randn(4, 5)
    ex = torch.tensor([True, True, False, False])
    first, second = featex([e1, e2], ex)
    assert torch.equal(first, e1)  # e_new = (e_1^1, e_2^2)
    assert torch.equal(second[0], e2[3]) and torch.equal(second[1], e2[2])
    assert torch.equal(second[2:], e2[2:])
    with pytest.raises(ValueError, match="two branch"):
        featex([e1, e2, e2], ex)


# --------------------------------------------------------------------------- batches through the net
def test_statex_branches_change_only_exchanged_spectrogram_rows():
    net, x = _net(), _waves()
    ex = torch.tensor([True, False, False, True, False, True])
    with torch.no_grad():
        plain = net(x)["branches"]
        regular, swapped = statex_branches(net, x, ex, keep_original=True)
        # eval mode: the regular embeddings are the plain forward's (no batch-statistics coupling)
        for a, b in zip(regular, plain):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        fft, stft = swapped  # Wilkinghoff order: [spectrum, spectrogram]
        torch.testing.assert_close(fft, plain[0])  # the spectrum branch never sees StatEx
        torch.testing.assert_close(stft[~ex], plain[1][~ex], rtol=1e-4, atol=1e-5)
        assert (stft[ex] - plain[1][ex]).abs().amax(dim=1).min() > 1e-4
        # the exchanged rows are the encoder's output on the StatEx'd, then mean-normalised, input
        fe, enc = net.frontends["stft"], net.encoders["stft"]
        spec = fe.features(x)
        expect = enc(fe.normalise(temporal_statex(spec)))
        torch.testing.assert_close(stft[ex], expect[ex], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(fe.normalise(spec), fe(x))  # features + normalise == forward
        # code variant: one pass over the exchanged batch, which the regular loss also sees
        reg_code, sw_code = statex_branches(net, x, ex, keep_original=False)
        assert all(a is b for a, b in zip(reg_code, sw_code))
        torch.testing.assert_close(sw_code[1], stft, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("statex,featex_on,width", [(True, False, 3), (False, True, 3), (True, True, 9)])
def test_ssl_forward_shapes_labels_and_masks(statex, featex_on, width):
    net, x = _net(), _waves()
    target = torch.eye(2)[[0, 1, 0, 1, 1, 0]]
    with torch.no_grad():
        b = ssl_forward(net, x, target, use_statex=statex, use_featex=featex_on,
                        generator=torch.Generator().manual_seed(5))
        plain = net(x)
    assert b.z_new.shape == (6, net.emb_dim) and b.regular["cat"].shape == (6, net.emb_dim)
    assert b.y_new.shape == (6, width * 2)
    torch.testing.assert_close(b.y_new.sum(1), torch.ones(6))
    assert (b.statex is not None) == statex and (b.featex is not None) == featex_on
    torch.testing.assert_close(b.regular["cat"], plain["cat"], rtol=1e-4, atol=1e-5)  # L(x, y) on x itself
    changed = torch.zeros(6, dtype=torch.bool)
    for m in (b.statex, b.featex):
        if m is not None:
            changed |= m
    # samples no exchange touched keep their embedding and the label (y, 0, ...), 0 elsewhere
    torch.testing.assert_close(b.z_new[~changed], plain["cat"][~changed], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(b.y_new[~changed, :2], target[~changed])
    assert (b.y_new[changed, :2] == 0).all()
    if featex_on and not statex:
        d = net.branch_dims[0]
        swapped = b.featex
        torch.testing.assert_close(b.z_new[swapped, d:], plain["branches"][1].flip(0)[swapped], rtol=1e-4,
                                   atol=1e-5)
        torch.testing.assert_close(b.z_new[:, :d], plain["branches"][0], rtol=1e-4, atol=1e-5)


def test_code_variant_with_statex_alone_has_no_ssl_term():
    net, x = _net(), _waves()
    target = torch.eye(2)[[0, 1, 0, 1, 1, 0]]
    with torch.no_grad():
        b = ssl_forward(net, x, target, use_statex=True, use_featex=False, variant="code",
                        generator=torch.Generator().manual_seed(5))
    assert b.z_new is None and b.y_new is None and b.statex is not None
    assert not SSLConfig(statex=True, variant="code").has_loss_term
    assert SSLConfig(statex=True, featex=True, variant="code").has_loss_term
    with pytest.raises(ValueError, match="variant"):
        ssl_forward(net, x, target, use_statex=True, use_featex=False, variant="both")


def test_statex_works_on_ba_and_featex_refuses_it():
    net, x = _net("Ba"), _waves()
    target = torch.eye(2)[[0, 1, 0, 1, 1, 0]]
    with torch.no_grad():
        b = ssl_forward(net, x, target, use_statex=True, use_featex=False, generator=torch.Generator())
    assert b.z_new.shape == (6, net.emb_dim) and b.y_new.shape == (6, 6)
    with pytest.raises(ValueError, match="two branch"):
        ssl_forward(net, x, target, use_statex=False, use_featex=True, generator=torch.Generator())


# --------------------------------------------------------------------------- the SSL loss term (eq. 8)
def _head(n_classes: int = 2, n_exchanges: int = 1) -> SSLHead:
    head = SSLHead(emb_dim=3 * n_classes, n_classes=n_classes, n_exchanges=n_exchanges, n_sub=1)
    with torch.no_grad():  # one orthonormal centre per SSL class, a large scale
        head.head.centres.copy_(torch.eye(3 * n_classes))
        head.head.scale.fill_(60.0)
    return head


def test_ssl_loss_zero_for_an_unchanged_sample_at_its_centre_and_maximal_opposite():
    head = _head()
    assert head.n_classes == 6 and head.head.trainable and head.head.centres.requires_grad
    y = triple_labels(torch.eye(2)[[0]], torch.tensor([False]))  # (y, 0, 0) of class 0
    candidates = torch.cat([torch.eye(6), -torch.eye(6)])
    losses = torch.stack([head(z[None], y) for z in candidates])
    assert losses[0] < 1e-6  # at its own centre: zero
    assert losses.argmax() == 6  # exactly opposite its centre: the largest
    assert losses[6] > 60  # ≈ s · (1 − (−1)) − ln(...) : every other class is closer


def test_ssl_loss_of_an_exchanged_sample_is_minimal_between_its_two_classes():
    head = _head()
    y = triple_labels(torch.eye(2)[[0, 1]], torch.tensor([True, True]))  # rows: (0, .5 e0, .5 e1), (0, .5 e1, .5 e0)
    between = torch.nn.functional.normalize(torch.eye(6)[2] + torch.eye(6)[5], dim=0)  # centres (1, e0), (2, e1)
    best = head(between[None], y[:1])
    assert abs(best.item() - math.log(2)) < 1e-5  # the target's entropy: the least a soft target allows
    # the same embedding labelled as unchanged, or as the other exchange order, is far off
    assert head(between[None], triple_labels(torch.eye(2)[[0]], torch.tensor([False]))) > 20
    assert head(between[None], y[1:]) > 20
    for z in torch.eye(6):  # a single centre half-matches at best
        assert head(z[None], y[:1]) > best + 1


# --------------------------------------------------------------------------- configuration
def test_ssl_config_from_dicts_and_errors():
    cfg = TrainConfig.from_dict({"network": "Wilkinghoff", "ssl": {"statex": True, "featex": True}})
    assert cfg.ssl == SSLConfig(statex=True, featex=True) and cfg.ssl.n_exchanges == 2
    assert cfg.effective_mixup_prob == 0.5  # seed 002 §3.1: 50 % mixup with the other SSL approaches
    off = TrainConfig.from_dict({"network": "Wilkinghoff", "triplet": {"enabled": False}})
    assert not off.ssl.enabled and off.effective_mixup_prob == 1.0
    assert TrainConfig.from_dict(dict(__import__("dataclasses").asdict(cfg))) == cfg  # checkpoint round trip
    with pytest.raises(ValueError, match="unknown ssl options"):
        TrainConfig.from_dict({"ssl": {"statx": True}})
    with pytest.raises(ValueError, match="Wilkinghoff"):
        TrainConfig.from_dict({"network": "Ba", "ssl": {"featex": True}})
    with pytest.raises(ValueError, match="variant"):
        SSLConfig(variant="both")
    TrainConfig.from_dict({"network": "Ba", "ssl": {"statex": True}})  # StatEx needs only a spectrogram


def test_system_definitions_reach_the_train_config(repo):
    config = yaml.safe_load((repo / "config.yaml").read_text())
    defs, train = config["system_definitions"], config["train"]
    expected = {"Wilkinghoff": None, "Wilkinghoff+StatEx": (True, False), "Wilkinghoff+FeatEx": (False, True),
                "Wilkinghoff+SSL": (True, True)}
    for name, flags in expected.items():
        opts = SystemRecipe.from_config(name, defs).train_options(train, 0)
        cfg = TrainConfig.from_dict(opts)
        assert cfg.network == "Wilkinghoff" and not cfg.triplet.enabled
        if flags is None:
            assert "ssl" not in opts and not cfg.ssl.enabled  # unchanged options for systems without SSL
        else:
            assert (cfg.ssl.statex, cfg.ssl.featex, cfg.ssl.variant) == (*flags, "paper")
    for name in defs:  # no other system got SSL options
        if not name.startswith("Wilkinghoff"):
            assert "ssl" not in SystemRecipe.from_config(name, defs).train_options(train, 0)
    assert not set(expected) - {"Wilkinghoff"} & set(config["systems"])  # not in the default demo grid
    # a global train.ssl merges key by key under a system's own
    opts = SystemRecipe.from_config("Wilkinghoff+SSL", defs).train_options({**train, "ssl": {"variant": "code"}}, 0)
    assert opts["ssl"] == {"variant": "code", "statex": True, "featex": True}


def test_ssl_options_are_checked_when_the_recipe_is_read():
    base = {"backend": "embedding", "network": "Ba"}
    with pytest.raises(ValueError, match="system X: train.ssl.featex .* Wilkinghoff"):
        SystemRecipe.from_config("X", {"X": {**base, "train": {"ssl": {"featex": True}}}})
    with pytest.raises(ValueError, match="unknown keys"):
        SystemRecipe.from_config("X", {"X": {**base, "train": {"ssl": {"statx": True}}}})
    with pytest.raises(ValueError, match="embedding backend"):
        SystemRecipe.from_config("X", {"X": {"backend": "gmm", "train": {"ssl": {"statex": True}}}})
    with pytest.raises(ValueError, match="prob"):
        check_ssl_options("X", "Wilkinghoff", {"prob": 2})
    with pytest.raises(ValueError, match="variant"):
        check_ssl_options("X", "Wilkinghoff", {"variant": "both"})
    check_ssl_options("X", "Ba", {"statex": True, "variant": "code"})
