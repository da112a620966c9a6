"""Frame baselines: log-mel features, GMM, the DCASE autoencoder, the backend registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from asdflow.baselines import context_frames, fit_gmm_baseline, logmel, mel_filterbank, score_gmm_baseline
from asdflow.baselines.autoencoder import AENet
from asdflow.baselines import (get_baseline, load_baseline_model, save_baseline_model,
                               fit_autoencoder_baseline, score_autoencoder_baseline)
from asdflow.baselines.features import _hz_to_mel, _mel_to_hz

SR = 16000


def test_mel_scale_and_filterbank():
    # Slaney scale: 1 kHz = 15 mel, 6.4 kHz = 15 + 27 = 42 mel; the two maps are inverse
    assert _hz_to_mel(1000.0) == pytest.approx(15.0)
    assert _hz_to_mel(6400.0) == pytest.approx(42.0)
    f = np.array([0.0, 300.0, 1000.0, 3000.0, 8000.0])
    np.testing.assert_allclose(_mel_to_hz(_hz_to_mel(f)), f, atol=1e-6)
    fb = mel_filterbank(SR, 1024, 128)
    assert fb.shape == (128, 513) and (fb >= 0).all() and (fb.sum(axis=1) > 0).all()
    # Slaney normalisation: each triangle has unit area in Hz (checked on wide, high filters)
    np.testing.assert_allclose(fb[64:].sum(axis=1) * SR / 1024, 1.0, rtol=0.05)


def test_logmel_shapes_and_tone_peak():
    t = np.arange(SR) / SR
    wave = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    lm = logmel(wave, SR)
    assert lm.shape == (128, 1 + SR // 512)
    batch = logmel(np.stack([wave, 0.5 * wave]), SR)
    assert batch.shape == (2, 128, 1 + SR // 512)
    np.testing.assert_allclose(batch[0], lm, atol=1e-4)
    # halving the amplitude lowers the power by 20*log10(2) ~ 6.02 dB everywhere it matters
    peak = int(lm[:, 10].argmax())
    assert batch[0, peak, 10] - batch[1, peak, 10] == pytest.approx(6.02, abs=0.05)
    centres = _mel_to_hz(np.linspace(_hz_to_mel(0), _hz_to_mel(SR / 2), 130))[1:-1]
    assert abs(centres[peak] - 1000) < 60
    v = context_frames(lm, 5)
    assert v.shape == (lm.shape[1] - 4, 640)
    np.testing.assert_array_equal(v[3, 128:256], lm[:, 4])  # block t holds frame i + t


def _clips(rng, n, tone_hz=None, seconds=1.0):
    t = np.arange(int(SR * seconds)) / SR
    out = []
    for _ in range(n):
        x = 0.1 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * 440 * t + rng.uniform(0, 6.3))
        if tone_hz:
            x += 0.3 * np.sin(2 * np.pi * tone_hz * t)
        out.append(x)
    return np.asarray(out, dtype=np.float32)


@pytest.mark.parametrize("context", [1, 5])
def test_gmm_baseline_separates_extra_tone(context):
    rng = np.random.default_rng(0)
    model = fit_gmm_baseline({"toy": _clips(rng, 12)}, SR, n_components=2, context=context,
                             max_frames=300, seed=0)
    normal, anomalous = _clips(rng, 6), _clips(rng, 6, tone_hz=3000)
    scores = score_gmm_baseline(model, {"toy": np.concatenate([normal, anomalous])})["toy"]
    assert scores.shape == (12,)
    assert roc_auc_score([0] * 6 + [1] * 6, scores) == 1.0
    with pytest.raises(KeyError):
        score_gmm_baseline(model, {"other": normal})


def test_autoencoder_has_the_dcase_baseline_layers():
    net = AENet()  # 725b304: 640 -> 128 x4 -> 8 -> 128 x4 -> 640
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == (
        [(640, 128)] + [(128, 128)] * 3 + [(128, 8), (8, 128)] + [(128, 128)] * 3 + [(128, 640)])
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(bns) == 9 and all(b.momentum == 0.01 and b.eps == 1e-3 for b in bns)
    assert net(torch.zeros(4, 640)).shape == (4, 640)


def test_autoencoder_baseline_detects_extra_tone_and_is_deterministic(tmp_path):
    rng = np.random.default_rng(0)
    train = {"toy": _clips(rng, 16)}
    kw = dict(epochs=15, batch_size=64, context=5, seed=3)
    model = fit_autoencoder_baseline(train, SR, **kw)
    hist = model.history["toy"]
    assert len(hist) == 15 and hist[-1]["loss"] < hist[0]["loss"] and "val_loss" in hist[-1]
    normal, anomalous = _clips(rng, 6), _clips(rng, 6, tone_hz=3000)
    scores = score_autoencoder_baseline(model, {"toy": np.concatenate([normal, anomalous])})["toy"]
    assert scores.shape == (12,) and (scores > 0).all()
    assert roc_auc_score([0] * 6 + [1] * 6, scores) >= 0.9
    # same seed, same model; the pickled model scores the same through the registry
    again = score_autoencoder_baseline(fit_autoencoder_baseline(train, SR, **kw), {"toy": normal})["toy"]
    np.testing.assert_array_equal(again, scores[:6])
    path = save_baseline_model(model, tmp_path / "baseline.pkl", "autoencoder")
    loaded = load_baseline_model(path, "autoencoder")
    np.testing.assert_array_equal(get_baseline("autoencoder").score(loaded, {"toy": normal})["toy"], scores[:6])
    with pytest.raises(ValueError, match="expected 'gmm'"):
        load_baseline_model(path, "gmm")


def test_baseline_registry_rejects_unknown_names_and_options():
    with pytest.raises(KeyError, match="unknown baseline backend"):
        get_baseline("svdd")
    with pytest.raises(ValueError, match="unknown options"):
        get_baseline("gmm").fit({"toy": np.zeros((2, SR), np.float32)}, SR, {"n_components": 2, "epochs": 3}, 0)


def test_cae_svdd_is_registered_and_gets_the_domains(monkeypatch):
    """The seed-004 backend registers like gmm/autoencoder; the training clips' domains reach
    its fit function (only backends whose fit takes them), never as a config option."""
    from asdflow import baselines

    cae = get_baseline("cae_svdd")
    assert cae.uses_domains and "domains_by_machine" not in cae.options and "seed" not in cae.options
    assert {"epochs", "nu", "grl_lambda", "score"} <= set(cae.options)
    assert not get_baseline("gmm").uses_domains
    seen = {}

    def fake_fit(waves, sr, *, epochs=1, domains_by_machine=None, seed=0):
        seen.update(domains=domains_by_machine, seed=seed)
        return "model"

    monkeypatch.setitem(baselines.BASELINES, "fake", baselines.Baseline("fake", fake_fit, lambda m, w: {}))
    dom = {"toy": np.array([0, 0, 1])}
    assert get_baseline("fake").fit({"toy": np.zeros((3, SR), np.float32)}, SR, {"epochs": 2}, 7,
                                    domains_by_machine=dom) == "model"
    assert seen["domains"] is dom and seen["seed"] == 7


def test_recipe_rejects_unknown_backends_and_staged_baselines():
    from asdflow.recipes import SystemRecipe

    with pytest.raises(ValueError, match="backend must be one of"):
        SystemRecipe(name="X", backend="svdd")
    with pytest.raises(ValueError, match="one stage"):
        SystemRecipe(name="AE2", backend="autoencoder", stages=2, pseudo_labels=True)
    ae = SystemRecipe(name="AE", backend="autoencoder", options={"epochs": 3})
    assert ae.baseline_options({"autoencoder": {"epochs": 100, "lr": 0.01}}) == {"epochs": 3, "lr": 0.01}


def test_representatives_need_original_training_clips():
    import pandas as pd

    from asdflow.systems import fit_representatives

    emb = pd.DataFrame({"clip_id": ["a"], "machine": ["fan"], "section": ["00"], "domain": ["source"],
                        "embedding": [np.ones(4, np.float32)]})
    trainset = pd.DataFrame({"clip_id": ["b"], "is_external": [False]})
    with pytest.raises(ValueError, match="no training embedding belongs"):
        fit_representatives(emb, trainset, pd.DataFrame({"clip_id": ["a"], "path": ["/x/a.wav"]}), {}, seed=0)


def test_serial_oe_file_options_resolve_and_become_inputs():
    """serial_oe's anomalies/pretrained name files: `synthetic` stands for the built-in data's
    list, and both are the fit job's inputs (generic: any backend's declared file options)."""
    from asdflow.recipes import SystemRecipe

    config = {"serial_oe": {"anomalies": None, "pretrained": None, "epochs": 3}}
    plain = SystemRecipe("Serial-OE", "serial_oe")
    assert plain.baseline_files(config, "results/data/synth/x") == []
    with_a = SystemRecipe("S+A", "serial_oe", options={"anomalies": "synthetic", "pretrained": "w.pth"})
    opts = with_a.baseline_options(config, "results/data/synth/x")
    assert opts["anomalies"] == "results/data/synth/x/train_anomalies.csv" and opts["epochs"] == 3
    assert with_a.baseline_files(config, "results/data/synth/x") == [opts["anomalies"], "w.pth"]
    with pytest.raises(ValueError, match="built-in data"):
        with_a.baseline_options(config, None)  # real data: give a path
    with pytest.raises(ValueError, match="cannot be 'synthetic'"):
        SystemRecipe("S", "serial_oe", options={"pretrained": "synthetic"}).baseline_options(config, "d")
    assert SystemRecipe("G", "gmm").baseline_files({"gmm": {"n_components": 2}}, "d") == []


def test_representatives_read_exactly_the_keys_the_rule_passes():
    """The representatives rule passes only the scoring keys listed in
    recipes.REPRESENTATIVE_OPTIONS as params (so changing one reruns the job); fit_representatives
    must read no other key, or a change to it would not rerun anything."""
    from collections.abc import Mapping

    import pandas as pd

    from asdflow.recipes import REPRESENTATIVE_OPTIONS
    from asdflow.systems import fit_representatives

    class Recording(Mapping):
        def __init__(self) -> None:
            self.read: set[str] = set()

        def __getitem__(self, key: str):
            self.read.add(key)
            raise KeyError(key)

        def get(self, key: str, default=None):
            self.read.add(key)
            return default

        def __iter__(self):
            return iter(())

        def __len__(self) -> int:
            return 0

    rng = np.random.default_rng(0)
    ids = [f"c{i}" for i in range(24)]
    emb = pd.DataFrame({"clip_id": ids, "dataset": "dev_data", "machine": "fan", "section": "00",
                        "domain": ["source"] * 20 + ["target"] * 4, "split": "train", "label": "normal",
                        "embedding": list(rng.standard_normal((24, 8)).astype(np.float32))})
    trainset = pd.DataFrame({"clip_id": ids, "is_external": False})
    manifest = pd.DataFrame({"clip_id": ids, "path": [f"/x/{c}.wav" for c in ids]})
    scoring = Recording()
    scores, reps = fit_representatives(emb, trainset, manifest, scoring, seed=0)
    assert len(scores) == 24 and not reps.empty
    assert scoring.read == set(REPRESENTATIVE_OPTIONS)
