"""Losses and augmentations: SCAC centres and scale, subspace loss, triplet margins, SNR mixing,
partners, semitones, pitch shift, mixup."""

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from asdflow.losses import (SubClusterAdaCos, SubspaceLoss, choose_partners, initial_scale, mixup, pitch_shift,
                            sample_semitones, sample_snr_db, snr_mix, triplet_loss)


# --------------------------------------------------------------------------- SCAC
def test_fixed_centres_are_a_buffer_that_never_moves_and_trainable_ones_learn():
    torch.manual_seed(0)
    fixed = SubClusterAdaCos(8, 3, n_sub=4, trainable=False)
    train = SubClusterAdaCos(8, 3, n_sub=4, trainable=True)
    assert fixed.centres.shape == (8, 12)
    assert not fixed.centres.requires_grad and "centres" in fixed.state_dict()
    assert list(fixed.parameters()) == []
    z = torch.randn(6, 8, requires_grad=True)
    y = F.one_hot(torch.tensor([0, 1, 2, 0, 1, 2]), 3).float()
    before_f, before_t = fixed.centres.clone(), train.centres.detach().clone()
    opt = torch.optim.AdamW([z, *fixed.parameters(), *train.parameters()], lr=0.1)
    (fixed(z, y) + train(z, y)).backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert train.centres.grad is not None and train.centres.grad.abs().sum() > 0
    assert fixed.centres.grad is None
    opt.step()
    torch.testing.assert_close(fixed.centres, before_f, rtol=0, atol=0)
    assert not torch.allclose(train.centres.detach(), before_t)
    # the fixed centres survive a state-dict round trip
    other = SubClusterAdaCos(8, 3, n_sub=4, trainable=False)
    other.load_state_dict(fixed.state_dict())
    torch.testing.assert_close(other.centres, fixed.centres)


def test_centres_are_xavier_uniform_and_class_major():
    torch.manual_seed(0)
    head = SubClusterAdaCos(64, 5, n_sub=16)
    bound = math.sqrt(6 / (64 + 80))
    assert head.centres.detach().abs().max().item() <= bound
    # a centre of column c*n_sub + k belongs to class c: an embedding equal to it scores that class
    z = head.centres.detach()[:, 3 * 16 + 7][None]
    assert int(head.log_class_probs(z).argmax()) == 3


def test_loss_matches_the_definition():
    torch.manual_seed(0)
    head = SubClusterAdaCos(6, 3, n_sub=2)
    z = torch.randn(4, 6)
    y = F.one_hot(torch.tensor([0, 1, 2, 1]), 3).float()
    cos = F.normalize(z, dim=1) @ F.normalize(head.centres.detach(), dim=0)
    prob = torch.softmax(initial_scale(3, 2) * cos, dim=1).view(4, 3, 2).sum(-1)
    expected = -(y * prob.log()).sum(1).mean()
    torch.testing.assert_close(head(z, y), expected)
    torch.testing.assert_close(head(z, torch.tensor([0, 1, 2, 1])), expected)  # integer labels


def test_scale_is_fixed_s0_and_loss_decreases_on_separable_data():
    head = SubClusterAdaCos(4, 2, n_sub=16, trainable=True)
    assert math.isclose(float(head.scale), math.sqrt(2) * math.log(2 * 16 - 1), rel_tol=1e-6)
    assert math.isclose(initial_scale(14, 16), 7.65, abs_tol=0.01)  # stage 1 of the code: 14 classes
    torch.manual_seed(1)
    enc = torch.nn.Linear(4, 4, bias=False)
    x = torch.cat([torch.randn(10, 4) + 3, torch.randn(10, 4) - 3])
    y = F.one_hot(torch.tensor([0] * 10 + [1] * 10), 2).float()
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=0.05)
    first = head(enc(x), y).item()
    for _ in range(20):
        opt.zero_grad()
        loss = head(enc(x), y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
    assert math.isclose(float(head.scale), math.sqrt(2) * math.log(31), rel_tol=1e-6)  # never adapted


def test_soft_targets_and_adaptive_scale():
    torch.manual_seed(0)
    head = SubClusterAdaCos(4, 3, n_sub=2, trainable=True, adaptive_scale=True)
    s0 = float(head.scale)
    y = torch.tensor([[0.3, 0.7, 0.0], [1.0, 0.0, 0.0]])
    z = torch.randn(2, 4)
    loss = head(z, y)
    assert torch.isfinite(loss) and float(head.scale) != s0
    s1 = float(head.scale)
    head.eval()
    head(z, y)
    assert float(head.scale) == s1  # only updated in training mode
    # soft target = mixture of the one-hot cross-entropies (same scale, no update in eval)
    a, b = head(z[:1], torch.tensor([1])), head(z[:1], torch.tensor([0]))
    torch.testing.assert_close(head(z[:1], y[:1]), 0.7 * a + 0.3 * b)
    with pytest.raises(ValueError):
        head(z, torch.ones(2, 4))


def test_sub_counts_leave_switched_off_centres_out_of_the_softmax():
    """A head with sub_counts equals, column for column, a head that only has the active centres:
    the switched-off ones take no probability mass, get no gradient, and s0 counts active columns."""
    torch.manual_seed(0)
    head = SubClusterAdaCos(6, 3, n_sub=4, trainable=True, sub_counts=[4, 1, 2])
    assert math.isclose(float(head.scale), math.sqrt(2) * math.log(7 - 1), rel_tol=1e-6)
    z = torch.randn(5, 6)
    y = F.one_hot(torch.tensor([0, 1, 2, 1, 0]), 3).float()
    keep = [0, 1, 2, 3, 4, 8, 9]  # class 0: all four, class 1: its first, class 2: its first two
    cos = F.normalize(z, dim=1) @ F.normalize(head.centres.detach()[:, keep], dim=0)
    p = torch.softmax(float(head.scale) * cos, dim=1)
    prob = torch.stack([p[:, :4].sum(1), p[:, 4], p[:, 5:].sum(1)], dim=1)
    torch.testing.assert_close(head(z, y), -(y * prob.log()).sum(1).mean())
    head(z, y).backward()
    off = [5, 6, 7, 10, 11]
    assert head.centres.grad[:, off].abs().max() == 0 and head.centres.grad[:, keep].abs().max() > 0
    # all classes at n_sub: exactly the unmasked head
    torch.manual_seed(0)
    full = SubClusterAdaCos(6, 3, n_sub=4, trainable=True, sub_counts=[4, 4, 4])
    torch.manual_seed(0)
    plain = SubClusterAdaCos(6, 3, n_sub=4, trainable=True)
    torch.testing.assert_close(full(z, y), plain(z, y), rtol=0, atol=0)
    assert set(plain.state_dict()) == set(head.state_dict())  # old models load unchanged
    adaptive = SubClusterAdaCos(6, 3, n_sub=4, adaptive_scale=True, sub_counts=[4, 1, 2])
    assert torch.isfinite(adaptive(z, y)) and math.isfinite(float(adaptive.scale))
    with pytest.raises(ValueError, match="sub_counts"):
        SubClusterAdaCos(6, 3, n_sub=4, sub_counts=[4, 5, 1])


def test_subcluster_cap_by_training_clips():
    from asdflow.train import TrainConfig, subcluster_counts

    assert subcluster_counts(TrainConfig(), [3, 40], 2) is None  # papers: every class n_subclusters
    capped = TrainConfig.from_dict({"n_subclusters_cap": "clips"})
    assert subcluster_counts(capped, [3, 40, 16], 3) == [3, 16, 16]
    with pytest.raises(ValueError, match="n_subclusters_cap"):
        TrainConfig.from_dict({"n_subclusters_cap": "half"})


def test_subspace_loss_sums_its_parts_with_weights():
    loss = SubspaceLoss(12, [4, 4, 4], n_classes=3, n_sub=2)
    z = [torch.randn(5, 4) for _ in range(3)]
    y = F.one_hot(torch.arange(5) % 3, 3).float()
    total, parts = loss(torch.cat(z, 1), z, y)
    assert set(parts) == {"cat", "branch0", "branch1", "branch2"}
    torch.testing.assert_close(total, sum(parts.values()))
    assert not loss.cat.centres.requires_grad and all(h.centres.requires_grad for h in loss.branches)
    weighted = SubspaceLoss(12, [4, 4, 4], n_classes=3, n_sub=2, cat_weight=2.0, branch_weight=[0.0, 1.0, 0.5])
    weighted.load_state_dict(loss.state_dict())
    total_w, parts_w = weighted(torch.cat(z, 1), z, y)
    torch.testing.assert_close(total_w, 2 * parts_w["cat"] + parts_w["branch1"] + 0.5 * parts_w["branch2"])


# --------------------------------------------------------------------------- triplet loss
def _unit(angle):
    return torch.tensor([[math.cos(angle), math.sin(angle)]], requires_grad=True)


def test_triplet_paper_is_zero_exactly_when_the_margin_is_met():
    # eq. 11, tau 0.2, gamma 0.5: max(0, 1.5 - cos_ap/0.2 + cos_an/0.2) = 0 <=> cos_ap - cos_an >= 0.3
    a, p = _unit(0.0), _unit(0.0)  # cos_ap = 1
    n_ok = _unit(math.acos(0.6))  # difference 0.4
    loss_ok = triplet_loss(a, p, n_ok)
    assert loss_ok.item() == 0.0
    loss_ok.backward()
    for t in (a, p, n_ok):
        assert t.grad is None or t.grad.abs().sum().item() == 0.0
    n_bad = _unit(math.acos(0.8))  # difference 0.2
    bad = triplet_loss(a, p, n_bad)
    assert math.isclose(bad.item(), 1.5 - 1 / 0.2 + 0.8 / 0.2, abs_tol=1e-5) and bad.item() > 0
    bad.backward()
    assert n_bad.grad.abs().sum() > 0
    # identical triplet: gamma + 1 (the "+1" does not cancel)
    assert math.isclose(triplet_loss(a, a, a).item(), 1.5, abs_tol=1e-5)
    # code form with the same difference 0.2 is already zero (margin tau*gamma = 0.1)
    assert triplet_loss(a, p, n_bad, variant="code").item() == 0.0


def test_triplet_code_variant_has_no_plus_one_and_sums():
    a, p, n = _unit(0.0), _unit(0.0), _unit(math.acos(0.95))
    # code: max(0, 0.5 + (0.95 - 1)/0.2) = 0.25 ; paper: max(0, 1.5 - 5 + 4.75) = 1.25
    assert math.isclose(triplet_loss(a, p, n, variant="code").item(), 0.25, abs_tol=1e-5)
    assert math.isclose(triplet_loss(a, p, n, variant="paper").item(), 1.25, abs_tol=1e-5)
    two = torch.cat([a, a]), torch.cat([p, p]), torch.cat([n, n])
    assert math.isclose(triplet_loss(*two, variant="code", reduction="sum").item(), 0.5, abs_tol=1e-5)
    assert math.isclose(triplet_loss(*two, variant="code", reduction="mean").item(), 0.25, abs_tol=1e-5)
    mask = torch.tensor([True, False])
    assert math.isclose(triplet_loss(*two, variant="code", reduction="sum", mask=mask).item(), 0.25, abs_tol=1e-5)
    assert triplet_loss(*two, mask=torch.tensor([False, False])).item() == 0.0
    with pytest.raises(ValueError):
        triplet_loss(a, p, n, variant="other")


@pytest.mark.parametrize("variant,factor", [("paper", 1.0), ("code", 0.5)])
def test_snr_mix_realises_the_snr(variant, factor):
    g = torch.Generator().manual_seed(0)
    a, j = torch.randn(4, 8000, generator=g), 3 * torch.randn(4, 8000, generator=g)
    alpha = torch.tensor([-5.0, 0.0, 10.0, 20.0])
    noise = snr_mix(a, j, alpha, variant=variant) - a
    snr = 10 * torch.log10(a.pow(2).sum(1) / noise.pow(2).sum(1))
    torch.testing.assert_close(snr, alpha * factor, atol=1e-3, rtol=0)
    # noise is a scaled copy of the other clip; silence adds nothing
    torch.testing.assert_close(F.cosine_similarity(noise, j, dim=1), torch.ones(4))
    torch.testing.assert_close(snr_mix(a, torch.zeros_like(j), 0.0, variant=variant), a)


def test_snr_draws_are_in_range():
    alpha = sample_snr_db(1000, torch.Generator().manual_seed(0))
    assert alpha.min() >= -5 and alpha.max() <= 20 and alpha.std() > 5


def test_partners_are_other_machine_types():
    ids = torch.tensor([0, 0, 0, 1, 2, 1, 0, 2])
    seen = set()
    for seed in range(30):
        p, ok = choose_partners(ids, torch.Generator().manual_seed(seed), return_mask=True)
        assert (ids[p] != ids).all() and ok.all()
        seen.update(zip(range(8), p.tolist()))
    assert {j for i, j in seen if i == 0} == {3, 4, 5, 7}  # anchor 0 draws from every clip of another type
    single, ok = choose_partners(torch.zeros(4, dtype=torch.long), torch.Generator().manual_seed(0), return_mask=True)
    assert (single != torch.arange(4)).all() and not ok.any()  # one-type batch: another clip, never itself
    assert choose_partners(torch.zeros(1, dtype=torch.long)).tolist() == [0]


def test_same_type_partners_reproduce_the_code():
    ids = torch.tensor([0, 0, 0, 1, 2, 1, 0, 2])
    for seed in range(10):
        idx, keep = choose_partners(ids, torch.Generator().manual_seed(seed), mode="same_type", return_mask=True)
        assert (ids[idx] == ids).all()
        assert (idx[~keep] == torch.arange(8)[~keep]).all()  # rejected pairs point at the anchor itself
    with pytest.raises(ValueError):
        choose_partners(ids, mode="random")


def test_semitones_per_sample_and_per_batch():
    s = sample_semitones(2000, torch.Generator().manual_seed(0))
    assert set(s.abs().unique().tolist()) == set(range(6, 13)) and (s > 0).any() and (s < 0).any()
    b = sample_semitones(5, torch.Generator().manual_seed(0), per="batch")
    assert len(b.unique()) == 1 and 6 <= abs(b[0]) <= 12


# --------------------------------------------------------------------------- pitch shift
def _peak_hz(y, sr):
    spec = np.abs(np.fft.rfft(y.numpy() * np.hanning(len(y))))
    return np.argmax(spec) * sr / len(y)


def test_pitch_shift_moves_a_tone_batched_and_keeps_length():
    sr = 16000
    t = torch.arange(sr) / sr
    x = torch.sin(2 * math.pi * 1000 * t).repeat(5, 1)
    shifts = torch.tensor([12.0, -12.0, 7.0, 0.0, 12.0])
    y = pitch_shift(x, shifts, sr)
    assert y.shape == x.shape and y.dtype == x.dtype and torch.isfinite(y).all()
    expected = [2000, 500, 1000 * 2 ** (7 / 12), 1000, 2000]  # +7 -> 1498.3 Hz
    for i, f in enumerate(expected):
        assert abs(_peak_hz(y[i], sr) - f) / f < 0.01, (i, _peak_hz(y[i], sr), f)
    torch.testing.assert_close(y[3], x[3])  # zero shift is the identity
    torch.testing.assert_close(y[0], y[4])  # same shift, same result inside one batch
    # torchaudio's vocoder (reproduced here) keeps no vertical phase coherence: a pure tone keeps
    # its pitch but may lose level; it must not vanish
    ratio = y[:3, 2000:-2000].pow(2).mean(1) / x[:3, 2000:-2000].pow(2).mean(1)
    assert (ratio > 0.2).all() and (ratio < 1.5).all(), ratio
    # a scalar shift applies to every clip
    torch.testing.assert_close(pitch_shift(x[:2], 12.0, sr), y[[0, 4]])


def test_pitch_shift_rejects_bad_shapes():
    with pytest.raises(ValueError):
        pitch_shift(torch.zeros(3, 1000), torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError):
        pitch_shift(torch.zeros(1000), 3.0)


# --------------------------------------------------------------------------- mixup
def test_mixup_mixes_waves_and_labels_with_one_lambda():
    g = torch.Generator().manual_seed(0)
    x = torch.stack([torch.full((10,), float(i)) for i in range(6)])
    y = torch.eye(6)
    xm, ym, lam = mixup(x, y, prob=1.0, generator=g, return_lambda=True)
    rev = torch.arange(5, -1, -1)
    torch.testing.assert_close(xm, lam[:, None] * x + (1 - lam[:, None]) * x[rev])
    torch.testing.assert_close(ym, lam[:, None] * y + (1 - lam[:, None]) * y[rev])
    torch.testing.assert_close(ym.sum(1), torch.ones(6))
    assert ((lam >= 0) & (lam <= 1)).all()
    xm0, ym0 = mixup(x, y, prob=0.0, generator=g)
    torch.testing.assert_close(xm0, x)
    torch.testing.assert_close(ym0, y)


def test_mixup_lambda_is_uniform_and_probability_is_respected():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20000, 2), torch.eye(2).repeat(10000, 1)
    _, _, lam = mixup(x, y, prob=1.0, generator=g, return_lambda=True)
    assert abs(lam.mean().item() - 0.5) < 0.01 and lam.min() < 0.01 and lam.max() > 0.99
    _, _, lam_half = mixup(x, y, prob=0.5, generator=g, return_lambda=True)
    mixed = (lam_half < 1).float().mean().item()
    assert abs(mixed - 0.5) < 0.02
    with pytest.raises(ValueError):
        mixup(x, y, prob=1.5)
