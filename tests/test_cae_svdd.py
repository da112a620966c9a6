"""Seed paper 004: CAE + DANN + Deep SVDD baseline (asdflow.baselines.cae_svdd)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from asdflow.baselines import load_baseline_model, save_baseline_model
from asdflow.baselines.cae_svdd import (CAE, DomainClassifier, _oversample, fit_cae_svdd_baseline, frequency_shift,
                                        grad_reverse, grl_lambda_at, noise_burst, score_cae_svdd_baseline,
                                        svdd_loss, synthesize_anomalies)

SR = 16000
TINY = dict(epochs=6, batch_size=16, lr=1e-3, n_mels=32, patch_frames=16, latent_dim=16, validation_split=0.0)


def _clips(n: int, rng: np.random.Generator, clicks: bool = False) -> np.ndarray:
    """1-s clips: a ~1 kHz sine + faint noise; ``clicks`` adds 8 loud 2-ms clicks."""
    t = np.arange(SR) / SR
    out = []
    for _ in range(n):
        w = 0.3 * np.sin(2 * np.pi * rng.uniform(900, 1100) * t + rng.uniform(0, 6)) + 0.01 * rng.standard_normal(SR)
        if clicks:
            for p in rng.integers(0, SR - 50, 8):
                w[p:p + 30] += rng.choice([-1.0, 1.0]) * 0.8
        out.append(w.astype(np.float32))
    return np.stack(out)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    train = {"toy": _clips(24, rng)}
    domains = {"toy": np.array([0] * 20 + [1] * 4)}
    test = np.concatenate([_clips(8, rng), _clips(8, rng, clicks=True)])
    return train, domains, test, np.array([0] * 8 + [1] * 8)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_grl_is_identity_forward_and_reverses_gradient_by_lambda():
    x = torch.tensor([[1.0, -2.0, 3.0]], requires_grad=True)
    w = torch.tensor([[0.5, 2.0, -1.0]])
    y = grad_reverse(x, 0.3)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    torch.testing.assert_close(x.grad, -0.3 * w)  # d(w·x)/dx = w, reversed and scaled
    x2 = x.detach().clone().requires_grad_(True)
    (x2 * w).sum().backward()
    torch.testing.assert_close(x.grad, -0.3 * x2.grad)
    # λ schedule: constant (paper) or the DANN ramp from 0 to λ
    assert grl_lambda_at(0.0, 0.1) == grl_lambda_at(1.0, 0.1) == 0.1
    assert grl_lambda_at(0.0, 0.1, "dann") == 0.0
    assert grl_lambda_at(1.0, 0.1, "dann") == pytest.approx(0.1, rel=1e-4)
    with pytest.raises(ValueError):
        grl_lambda_at(0.5, 0.1, "linear")


def test_svdd_pull_and_push_terms_of_eq5():
    c = torch.zeros(4)
    # normals at the centre: no pull; their distance² counts as is otherwise
    z_n = torch.zeros(3, 4)
    total, pull, push = svdd_loss(z_n, c, torch.zeros(3, dtype=torch.long), nu=3.0)
    assert pull.item() == 0.0 and push.item() == 0.0 and total.item() == 0.0
    z_far = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    assert svdd_loss(z_far, c, torch.zeros(1, dtype=torch.long), nu=3.0)[1].item() == pytest.approx(2.0)
    # a synthetic anomaly inside the margin (‖z−c‖² = 1 < ν = 3): push = ν − 1 = 2
    inside = torch.tensor([[1.0, 0.0, 0.0, 0.0]], requires_grad=True)
    total, pull, push = svdd_loss(inside, c, torch.ones(1, dtype=torch.long), nu=3.0)
    assert push.item() == pytest.approx(2.0) and pull.item() == 0.0
    total.backward()
    assert inside.grad[0, 0] < 0  # descending the loss moves it away from c
    # beyond the margin (‖z−c‖² = 4 > 3): no push
    beyond = torch.tensor([[2.0, 0.0, 0.0, 0.0]])
    assert svdd_loss(beyond, c, torch.ones(1, dtype=torch.long), nu=3.0)[2].item() == 0.0
    # mixed batch: mean over each set separately (Eq. 5)
    z = torch.cat([z_n, inside.detach(), beyond])
    y = torch.tensor([0, 0, 0, 1, 1])
    total, pull, push = svdd_loss(z, c, y, nu=3.0)
    assert pull.item() == 0.0 and push.item() == pytest.approx(1.0) and total.item() == pytest.approx(1.0)


def test_synthetic_anomalies_are_noise_bursts_and_frequency_shifts():
    rng = np.random.default_rng(3)
    t = np.arange(SR) / SR
    wave = (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    # noise burst: only a contiguous span changes, by noise of the requested level
    out, (a, b) = noise_burst(wave, SR, rng, burst_fraction=(0.1, 0.1), burst_db=(0.0, 0.0))
    assert b - a == SR // 10
    np.testing.assert_array_equal(out[:a], wave[:a])
    np.testing.assert_array_equal(out[b:], wave[b:])
    noise = out[a:b] - wave[a:b]
    assert np.all(noise != 0)
    rms = lambda v: float(np.sqrt(np.mean(np.asarray(v, dtype=np.float64) ** 2)))  # noqa: E731
    assert 20 * np.log10(rms(noise) / rms(wave)) == pytest.approx(0.0, abs=0.5)
    # frequency shift: the 1 kHz tone moves to 1.3 kHz (and to 0.8 kHz for −200 Hz)
    for shift in (300.0, -200.0):
        spec = np.abs(np.fft.rfft(frequency_shift(wave, SR, shift)))
        assert np.fft.rfftfreq(SR, 1 / SR)[spec.argmax()] == pytest.approx(1000 + shift)
    # a batch: one transformation per clip, each clip changed, drawn from the requested kinds
    waves = np.stack([wave, 0.5 * wave, wave[::-1].copy()])
    synth, kinds = synthesize_anomalies(waves, SR, np.random.default_rng(0))
    assert synth.shape == waves.shape and set(kinds) <= {"noise_burst", "freq_shift"}
    assert all(np.abs(s - w).max() > 1e-3 for s, w in zip(synth, waves))
    _, only = synthesize_anomalies(waves, SR, np.random.default_rng(0), kinds=["freq_shift"])
    assert only == ["freq_shift"] * 3
    with pytest.raises(ValueError):
        synthesize_anomalies(waves, SR, rng, kinds=["reverb"])


def test_cae_architecture_matches_the_paper_size():
    # §4.3: the inference CAE has 17.04 M parameters for a 128 × 1024 input (d = 128)
    cae, dom = CAE(128, 1024, 128), DomainClassifier(128, 64, 0.5)
    assert round(sum(p.numel() for p in cae.parameters()) / 1e6, 2) == 17.04
    small = CAE(32, 16, 8).eval()
    x = torch.rand(3, 1, 32, 16)
    with torch.no_grad():
        z, xh = small(x)
    assert z.shape == (3, 8) and xh.shape == x.shape and (xh >= 0).all() and (xh <= 1).all()
    assert dom(torch.zeros(2, 128)).shape == (2, 2)
    with pytest.raises(ValueError):
        CAE(30, 16, 8)


def test_oversampling_balances_class_and_domain_cells():
    y = np.array([0] * 10 + [0] * 2 + [1] * 5 + [1] * 1)
    d = np.array([0] * 10 + [1] * 2 + [0] * 5 + [1] * 1)
    m = np.zeros_like(y)
    idx = _oversample(y, d, m, np.random.default_rng(0), use_domain=True)
    cells = {(a, b): int(np.sum((y[idx] == a) & (d[idx] == b))) for a in (0, 1) for b in (0, 1)}
    assert set(cells.values()) == {10} and set(range(len(y))) <= set(idx)
    idx = _oversample(y, d, m, np.random.default_rng(0), use_domain=False)
    assert np.sum(y[idx] == 0) == np.sum(y[idx] == 1) == 12


def test_fit_score_separates_clicks_is_deterministic_and_pickles(data, tmp_path):
    train, domains, test, labels = data
    model = fit_cae_svdd_baseline(train, SR, **TINY, domains_by_machine=domains, seed=1)
    scores = score_cae_svdd_baseline(model, {"toy": test})["toy"]
    assert scores.shape == (len(test),) and scores.dtype == np.float64 and np.isfinite(scores).all()
    assert roc_auc_score(labels, scores) > 0.8
    hist = model.history["toy"]
    assert len(hist) == TINY["epochs"] and {"recon", "svdd_pull", "svdd_push", "adv", "domain_loss"} <= set(hist[0])
    for mode in ("svdd", "fusion"):
        other = score_cae_svdd_baseline(model, {"toy": test}, score=mode)["toy"]
        assert other.shape == scores.shape and np.isfinite(other).all()
    again = fit_cae_svdd_baseline(train, SR, **TINY, domains_by_machine=domains, seed=1)
    np.testing.assert_array_equal(score_cae_svdd_baseline(again, {"toy": test})["toy"], scores)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(score_cae_svdd_baseline(restored, {"toy": test})["toy"], scores)
    path = save_baseline_model(model, tmp_path / "baseline.pkl", "cae_svdd")
    np.testing.assert_array_equal(score_cae_svdd_baseline(load_baseline_model(path, "cae_svdd"), {"toy": test})["toy"],
                                  scores)


def test_step1_touches_only_the_domain_classifier_and_grl_carries_lambda(data):
    """With λ = 0 the reversed gradient is zero: the CAE weights equal a run with the domain head
    off on the same data (step 1 updates θ_D only); with λ > 0 the adversarial gradient reaches
    the encoder."""
    train, domains, _, _ = data
    kw = {**TINY, "epochs": 2, "oversample": False}

    def weights(model):
        return {k: v for k, v in model.states["toy"].items() if "running" not in k and "num_batches" not in k}

    plain = weights(fit_cae_svdd_baseline(train, SR, **kw, domain_head=False, domains_by_machine=domains, seed=2))
    zero = weights(fit_cae_svdd_baseline(train, SR, **kw, grl_lambda=0.0, domains_by_machine=domains, seed=2))
    adv = weights(fit_cae_svdd_baseline(train, SR, **kw, grl_lambda=0.1, domains_by_machine=domains, seed=2))
    for k in plain:
        torch.testing.assert_close(zero[k], plain[k], rtol=0, atol=0)
    assert any(not torch.equal(adv[k], plain[k]) for k in plain if k.startswith("encoder"))


def test_generalized_and_per_machine_models_validation_and_no_domains(data):
    train, domains, test, _ = data
    two = {"a": train["toy"][:12], "b": train["toy"][12:]}
    gen = fit_cae_svdd_baseline(two, SR, **{**TINY, "epochs": 2, "validation_split": 0.25}, seed=0)
    assert set(gen.states) == {"a", "b"} and gen.states["a"] is gen.states["b"]  # one shared model (paper)
    np.testing.assert_array_equal(gen.centers["a"], gen.centers["b"])
    assert "val_auc" in gen.history["a"][-1] and "adv" not in gen.history["a"][-1]  # no domains: head off
    per = fit_cae_svdd_baseline(two, SR, **{**TINY, "epochs": 2}, machine_generalized=False, seed=0)
    assert per.states["a"] is not per.states["b"]
    out = score_cae_svdd_baseline(per, {"a": test[:3], "b": test[3:5]})
    assert out["a"].shape == (3,) and out["b"].shape == (2,)
    with pytest.raises(KeyError):
        score_cae_svdd_baseline(per, {"c": test[:2]})
    with pytest.raises(ValueError):
        fit_cae_svdd_baseline(train, SR, **TINY, domains_by_machine={"toy": np.zeros(3)}, seed=0)
    with pytest.raises(ValueError):
        fit_cae_svdd_baseline(train, SR, **{**TINY, "patch_frames": 20}, seed=0)
    with pytest.raises(KeyError):
        fit_cae_svdd_baseline(two, SR, **TINY, domains_by_machine={"a": np.zeros(12)}, seed=0)
    mixed = fit_cae_svdd_baseline(two, SR, **{**TINY, "epochs": 1},
                                  domains_by_machine={"a": np.array([0] * 9 + [1] * 3), "b": None}, seed=0)
    assert "adv" in mixed.history["a"][-1]  # domains of a (b's clips count as source)
    # whole-clip input (patch_frames None, the paper): 32 frames of a 1-s clip → width 32
    whole = fit_cae_svdd_baseline(train, SR, **{**TINY, "epochs": 1, "patch_frames": None},
                                  domains_by_machine={"toy": np.array(["source"] * 20 + ["target"] * 4)}, seed=0)
    assert whole.patch_frames == 32 and np.isfinite(score_cae_svdd_baseline(whole, {"toy": test})["toy"]).all()
