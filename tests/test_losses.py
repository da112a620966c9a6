"""Losses and augmentations: SCAC centres, subspace loss, triplet margins, SNR, partners,
pitch shift, mixup."""

import math

import numpy as np
import pytest
import torch

from asdflow.losses import (SubClusterAdaCos, SubspaceLoss, choose_partners, mixup, pitch_shift, sample_semitones,
                            snr_mix, triplet_loss)


def test_fixed_centres_stay_fixed_and_trainable_ones_learn():
    torch.manual_seed(0)
    fixed = SubClusterAdaCos(8, 3, n_sub=4, trainable=False)
    train = SubClusterAdaCos(8, 3, n_sub=4, trainable=True)
    assert not fixed.centres.requires_grad and "centres" in fixed.state_dict()
    assert list(fixed.parameters()) == []
    z = torch.randn(6, 8, requires_grad=True)
    y = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 0, 1, 2]), 3).float()
    before_f, before_t = fixed.centres.clone(), train.centres.detach().clone()
    opt = torch.optim.SGD([z, *train.parameters()], lr=0.5)
    (fixed(z, y) + train(z, y)).backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert train.centres.grad is not None and train.centres.grad.abs().sum() > 0
    opt.step()
    torch.testing.assert_close(fixed.centres, before_f)
    assert not torch.allclose(train.centres.detach(), before_t)


def test_scac_scale_is_s0_and_loss_decreases_on_separable_data():
    head = SubClusterAdaCos(4, 2, n_sub=16, trainable=True)
    assert math.isclose(float(head.scale), math.sqrt(2) * math.log(2 * 16 - 1), rel_tol=1e-6)
    torch.manual_seed(1)
    z = torch.cat([torch.randn(10, 4) + 3, torch.randn(10, 4) - 3])
    y = torch.nn.functional.one_hot(torch.tensor([0] * 10 + [1] * 10), 2).float()
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    first = head(z, y).item()
    for _ in range(30):
        opt.zero_grad()
        loss = head(z, y)
        loss.backward()
        opt.step()
    assert loss.item() < first * 0.5


def test_soft_targets_and_adaptive_scale():
    head = SubClusterAdaCos(4, 3, n_sub=2, trainable=True, adaptive_scale=True)
    s0 = float(head.scale)
    y = torch.tensor([[0.3, 0.7, 0.0], [1.0, 0.0, 0.0]])
    loss = head(torch.randn(2, 4), y)
    assert torch.isfinite(loss) and float(head.scale) != s0


def test_subspace_loss_sums_its_parts():
    loss = SubspaceLoss(12, [4, 4, 4], n_classes=3, n_sub=2)
    z = [torch.randn(5, 4) for _ in range(3)]
    y = torch.nn.functional.one_hot(torch.arange(5) % 3, 3).float()
    total, parts = loss(torch.cat(z, 1), z, y)
    assert set(parts) == {"cat", "branch0", "branch1", "branch2"}
    torch.testing.assert_close(total, sum(parts.values()))
    assert not loss.cat.centres.requires_grad and all(h.centres.requires_grad for h in loss.branches)


def _unit(angle):
    return torch.tensor([[math.cos(angle), math.sin(angle)]], requires_grad=True)


def test_triplet_paper_zero_iff_margin_met():
    # paper eq. 11 with tau=0.2, gamma=0.5: zero iff cos_ap - cos_an >= tau * (gamma + 1) = 0.3
    a = _unit(0.0)
    p = _unit(0.0)  # cos_ap = 1
    n_ok = _unit(math.acos(0.6))  # cos_an = 0.6 -> difference 0.4 >= 0.3
    n_bad = _unit(math.acos(0.8))  # difference 0.2 < 0.3
    loss_ok = triplet_loss(a, p, n_ok)
    assert loss_ok.item() == 0.0
    loss_ok.backward()
    assert a.grad is None or float(a.grad.abs().sum()) == 0.0
    assert math.isclose(float(triplet_loss(a, p, n_bad)), 0.5 + 1 - 1 / 0.2 + 0.8 / 0.2, abs_tol=1e-5)


def test_triplet_code_variant_has_no_plus_one():
    a, p, n = _unit(0.0), _unit(0.0), _unit(math.acos(0.95))
    # code: max(0, 0.5 + (0.95 - 1)/0.2) = 0.25 ; paper: max(0, 1.5 - 5 + 4.75) = 1.25
    assert math.isclose(float(triplet_loss(a, p, n, variant="code")), 0.25, abs_tol=1e-5)
    assert math.isclose(float(triplet_loss(a, p, n, variant="paper")), 1.25, abs_tol=1e-5)
    two = torch.cat([a, a]), torch.cat([p, p]), torch.cat([n, n])
    assert math.isclose(float(triplet_loss(*two, variant="code", reduction="sum")), 0.5, abs_tol=1e-5)


@pytest.mark.parametrize("variant,factor", [("paper", 1.0), ("code", 0.5)])
def test_snr_mix_realises_snr(variant, factor):
    g = torch.Generator().manual_seed(0)
    a, j = torch.randn(4, 8000, generator=g), 3 * torch.randn(4, 8000, generator=g)
    alpha = torch.tensor([-5.0, 0.0, 10.0, 20.0])
    noise = snr_mix(a, j, alpha, variant=variant) - a
    snr = 10 * torch.log10(a.pow(2).sum(1) / noise.pow(2).sum(1))
    torch.testing.assert_close(snr, alpha * factor, atol=1e-3, rtol=0)


def test_partners_are_other_machine_types():
    ids = torch.tensor([0, 0, 0, 1, 2, 1, 0, 2])
    for seed in range(20):
        p = choose_partners(ids, torch.Generator().manual_seed(seed))
        assert (ids[p] != ids).all()
    single = choose_partners(torch.zeros(4, dtype=torch.long), torch.Generator().manual_seed(0))
    assert (single != torch.arange(4)).all()  # one-type batch: another clip, never itself
    same = choose_partners(ids, torch.Generator().manual_seed(0), mode="same_type")
    assert (ids[same] == ids).all()


def _peak(y, sr):
    spec = np.abs(np.fft.rfft(y.numpy() * np.hanning(len(y))))
    return np.argmax(spec) * sr / len(y)


def test_pitch_shift_moves_a_tone():
    sr = 16000
    t = torch.arange(sr) / sr
    x = torch.sin(2 * math.pi * 1000 * t).repeat(4, 1)
    y = pitch_shift(x, torch.tensor([12.0, -12.0, 7.0, 0.0]), sr)
    assert y.shape == x.shape
    expected = [2000, 500, 1000 * 2 ** (7 / 12), 1000]
    for i, f in enumerate(expected):
        assert abs(_peak(y[i], sr) - f) / f < 0.01, (i, _peak(y[i], sr), f)


def test_semitones_range():
    s = sample_semitones(1000, torch.Generator().manual_seed(0))
    assert set(s.abs().unique().tolist()) <= set(range(6, 13)) and (s > 0).any() and (s < 0).any()
    b = sample_semitones(5, torch.Generator().manual_seed(0), per="batch")
    assert len(b.unique()) == 1


def test_mixup_mixes_waves_and_labels_with_one_lambda():
    g = torch.Generator().manual_seed(0)
    x = torch.stack([torch.full((10,), float(i)) for i in range(6)])
    y = torch.eye(6)
    xm, ym = mixup(x, y, prob=1.0, generator=g)
    lam = ym[torch.arange(6), torch.arange(6)]
    rev = torch.arange(5, -1, -1)
    torch.testing.assert_close(xm, lam[:, None] * x + (1 - lam[:, None]) * x[rev])
    assert ((lam >= 0) & (lam <= 1)).all()
    xm0, ym0 = mixup(x, y, prob=0.0, generator=g)
    torch.testing.assert_close(xm0, x)
    torch.testing.assert_close(ym0, y)
