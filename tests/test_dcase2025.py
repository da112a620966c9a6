"""Seed 003 (the DCASE 2025 system): the Spec network, trainable SCAC centres, per-system
pseudo-label method / features / scoring back-end, and the frozen BEATs front-end loaded from a
checkpoint file (a tiny randomly initialised one in the release format, written here)."""

import copy

import numpy as np
import pytest
import torch
import yaml
from snakemake.utils import validate

from asdflow.losses import SubspaceLoss
from asdflow.nets import build_net
from asdflow.nets.beats import BEATsCheckpointError, BEATsFrontend, BEATsModel, kaldi_fbank, load_beats_checkpoint
from asdflow.recipes import SystemRecipe, check_stage1_reuse
from asdflow.train import TrainConfig, _build
from conftest import REPO

TINY = {"emb_dim": 8, "base_channels": 4, "spectrum_channels": 8}
SCHEMA = str(REPO / "schemas" / "config.schema.yaml")
#: a BEATs_iter3-shaped cfg (deep norm, relative positions with gating), tiny depth and width
TINY_BEATS = dict(input_patch_size=16, embed_dim=24, conv_bias=False, encoder_layers=2, encoder_embed_dim=32,
                  encoder_ffn_embed_dim=48, encoder_attention_heads=4, layer_norm_first=False, deep_norm=True,
                  relative_position_embedding=True, num_buckets=32, max_distance=64, gru_rel_pos=True, conv_pos=8,
                  conv_pos_groups=4, layer_wise_gradient_decay_ratio=0.6, finetuned_model=False)


def _config():
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    validate(cfg, schema=SCHEMA)
    return cfg


# --------------------------------------------------------------------------- Spec network


def test_spec_is_ba_with_three_spectrograms_and_the_spectrum():
    net = build_net("Spec", n_samples=16000, **TINY)
    assert net.order == ["fft", "stft256", "stft1024", "stft4096"] and net.branch_dims == [8] * 4
    hops = {k: fe.cfg.hop_length for k, fe in net.frontends.items() if k != "fft"}
    assert hops == {"stft256": 128, "stft1024": 512, "stft4096": 2048}  # hop = half the DFT size
    for k, fe in net.frontends.items():
        if k != "fft":  # 200-8000 Hz bins
            f = fe.cfg.frequencies()[fe.lo:fe.hi]
            assert f[0] >= 200 and f[-1] <= 8000 and fe.lo >= 1
    out = net(torch.randn(2, 16000))
    assert out["cat"].shape == (2, 32)
    assert build_net("Spec", n_samples=16000).emb_dim == 512  # paper: 4 x 128
    # the same as Ba with the window list, and any list of DFT sizes works
    torch.manual_seed(1)
    a = build_net("Spec", n_samples=16000, **TINY)
    torch.manual_seed(1)
    b = build_net("Ba", n_samples=16000, stft_windows=[256, 1024, 4096], **TINY)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert build_net("Ba", n_samples=16000, stft_windows=[512], **TINY).order == ["fft", "stft512"]
    with pytest.raises(ValueError, match="stft_windows"):
        build_net("Ba", n_samples=16000, stft_windows=[256, 256], **TINY)


def test_ba_without_stft_windows_is_unchanged():
    """The default Ba (no stft_windows) keeps its branch keys, order and initialisation."""
    torch.manual_seed(0)
    a = build_net("Ba", n_samples=16000, **TINY)
    torch.manual_seed(0)
    b = build_net("Ba", n_samples=16000, stft_windows=None, order=("fft", "stft_long", "stft_short"), **TINY)
    assert a.order == ["fft", "stft_long", "stft_short"]
    assert [f.cfg.n_fft for k, f in a.frontends.items() if k != "fft"] == [4096, 128]
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_trainable_centres_option_trains_the_concatenated_head():
    fixed = _build(TrainConfig.from_dict({"network": "Spec", "net": TINY}), 16000, 3, torch.device("cpu"))[1]
    train = _build(TrainConfig.from_dict({"network": "Spec", "net": TINY, "trainable_centres": True}), 16000, 3,
                   torch.device("cpu"))[1]
    assert isinstance(fixed, SubspaceLoss)
    assert not fixed.cat.trainable and "cat.centres" not in dict(fixed.named_parameters())
    assert train.cat.trainable and "cat.centres" in dict(train.named_parameters())
    assert all(h.trainable for h in fixed.branches)


# --------------------------------------------------------------------------- recipes and config


def test_recipe_methods_features_and_scoring():
    base = {"backend": "embedding", "stages": 2}
    r = SystemRecipe("a", **base, pseudo_labels="gmm_bic")
    assert r.pseudo_label_method == "gmm_bic" and r.resolved_pseudo_label_method("kmeans") == "gmm_bic"
    assert SystemRecipe("a", **base, pseudo_labels=True).resolved_pseudo_label_method("gmm_bic") == "gmm_bic"
    assert SystemRecipe("a", **base, pseudo_labels="kmeans").resolved_pseudo_label_method("gmm_bic") == "kmeans"
    assert r.resolved_pseudo_label_features("stage") == "stage"
    assert SystemRecipe("a", **base, pseudo_labels=True, pseudo_label_features="beats"
                        ).resolved_pseudo_label_features("stage") == "beats"
    assert SystemRecipe("a", **base, pseudo_labels="oracle").resolved_pseudo_label_features("beats") is None
    with pytest.raises(ValueError, match="pseudo_label_features"):
        SystemRecipe("a", **base, pseudo_labels=True, pseudo_label_features="panns")
    with pytest.raises(ValueError, match="scoring"):
        SystemRecipe("a", backend="gmm", scoring="smote_knn")


def test_default_config_defines_the_dcase2025_systems():
    cfg = _config()
    assert "DCASE2025-Spec" not in cfg["systems"] and "BEATs-frozen" not in cfg["systems"]
    spec = SystemRecipe.from_config("DCASE2025-Spec", cfg["system_definitions"])
    assert (spec.network, spec.labels, spec.pseudo_label_method, spec.scoring, spec.stages) == (
        "Spec", "machine", "gmm_bic", "smote_knn", 2)
    opts = spec.train_options(cfg["train"], 0)
    assert (opts["epochs"], opts["batch_size"], opts["lr"], opts["mixup_prob"], opts["trainable_centres"]) == (
        16, 64, 0.001, 0.5, True)
    assert not opts["triplet"]["enabled"]
    TrainConfig.from_dict(opts)  # a valid training configuration
    check_stage1_reuse(cfg["system_definitions"], cfg["train"])
    beats = SystemRecipe.from_config("BEATs-frozen", cfg["system_definitions"])
    assert beats.uses_beats and beats.scoring == "smote_knn"
    # the BEATs net takes the beats block, not the CNN widths of train.net
    assert beats.train_options(cfg["train"], 0, beats={"checkpoint": "/x.pt"})["net"] == {"checkpoint": "/x.pt"}
    assert cfg["beats"]["checkpoint"] is None and cfg["pseudo_labels"]["features"] == "stage"
    bad = copy.deepcopy(cfg)
    bad["system_definitions"]["DCASE2025-Spec"]["network"] = "EAT"
    with pytest.raises(Exception):
        validate(bad, schema=SCHEMA)


def test_configcheck_names_a_missing_beats_checkpoint(tmp_path):
    from asdflow.configcheck import path_problems

    assert path_problems({"beats": {"checkpoint": None}}) == []
    probs = path_problems({"beats": {"checkpoint": str(tmp_path / "BEATs_iter3.pt")}})
    assert probs and probs[0][0] == ["beats", "checkpoint"] and "does not exist" in probs[0][1]


# --------------------------------------------------------------------------- BEATs


def _write_ckpt(path, cfg=TINY_BEATS, seed=0, mutate=None):
    torch.manual_seed(seed)
    state = BEATsModel(cfg).state_dict()
    if mutate:
        mutate(state)
    torch.save({"cfg": dict(cfg), "model": state}, path)
    return state


def test_beats_state_dict_has_the_release_key_names():
    keys = set(BEATsModel(TINY_BEATS).state_dict())
    for k in ("patch_embedding.weight", "layer_norm.weight", "layer_norm.bias", "post_extract_proj.weight",
              "encoder.pos_conv.0.weight_g", "encoder.pos_conv.0.weight_v", "encoder.pos_conv.0.bias",
              "encoder.layer_norm.weight", "encoder.layers.1.self_attn.q_proj.weight",
              "encoder.layers.0.self_attn.k_proj.bias", "encoder.layers.0.self_attn.v_proj.weight",
              "encoder.layers.0.self_attn.out_proj.weight", "encoder.layers.0.self_attn.grep_linear.weight",
              "encoder.layers.0.self_attn.grep_a", "encoder.layers.1.self_attn.relative_attention_bias.weight",
              "encoder.layers.0.self_attn_layer_norm.weight", "encoder.layers.0.fc1.weight",
              "encoder.layers.0.fc2.bias", "encoder.layers.0.final_layer_norm.weight"):
        assert k in keys, k
    assert "patch_embedding.bias" not in keys  # conv_bias false
    m = BEATsModel(TINY_BEATS)
    assert m.encoder.layers[1].self_attn.relative_attention_bias is m.encoder.layers[0].self_attn.relative_attention_bias


def test_beats_checkpoint_loads_frozen_and_gives_mean_pooled_features(tmp_path):
    path = tmp_path / "BEATs_tiny.pt"
    state = _write_ckpt(path)
    model = load_beats_checkpoint(path)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    fe = build_net("BEATs", n_samples=16000, checkpoint=str(path))
    assert isinstance(fe, BEATsFrontend) and fe.frozen and fe.emb_dim == 32 and fe.branch_dims == [32]
    fe.train()
    assert not fe.training  # always eval: a frozen front-end
    x = 0.1 * torch.randn(3, 16000)
    tokens = model(x)  # 98 fbank frames -> 6 x 8 patches of 16 x 16
    assert tokens.shape == (3, 48, 32)
    out = fe(x)
    torch.testing.assert_close(out["cat"], tokens.mean(dim=1))
    torch.testing.assert_close(fe(x[:1])["cat"], out["cat"][:1], atol=1e-5, rtol=1e-5)  # per clip
    # the shared position table may be stored once (layer 0 only)
    _write_ckpt(tmp_path / "once.pt", mutate=lambda s: s.pop("encoder.layers.1.self_attn.relative_attention_bias.weight"))
    torch.testing.assert_close(load_beats_checkpoint(tmp_path / "once.pt")(x), tokens)


def test_beats_bad_checkpoints_name_the_file_and_the_problem(tmp_path):
    missing = tmp_path / "nope" / "BEATs_iter3.pt"
    with pytest.raises(BEATsCheckpointError, match=r"nope/BEATs_iter3\.pt: no such file"):
        load_beats_checkpoint(missing)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(BEATsCheckpointError, match=r"junk\.pt: cannot be read"):
        load_beats_checkpoint(junk)
    plain = tmp_path / "plain.pt"
    torch.save(BEATsModel(TINY_BEATS).state_dict(), plain)  # a bare state dict, no cfg
    with pytest.raises(BEATsCheckpointError, match=r"plain\.pt: expected a dict with 'cfg' and 'model'"):
        load_beats_checkpoint(plain)
    short = tmp_path / "short.pt"
    _write_ckpt(short, mutate=lambda s: s.pop("encoder.layers.1.fc1.weight"))
    with pytest.raises(BEATsCheckpointError, match=r"short\.pt: .*1 missing keys .*encoder\.layers\.1\.fc1\.weight"):
        load_beats_checkpoint(short)
    extra = tmp_path / "extra.pt"
    _write_ckpt(extra, mutate=lambda s: s.update({"encoder.layers.2.fc1.weight": torch.zeros(1)}))
    with pytest.raises(BEATsCheckpointError, match=r"extra\.pt: .*unexpected keys"):
        load_beats_checkpoint(extra)
    wide = tmp_path / "wide.pt"
    torch.save({"cfg": {**TINY_BEATS, "encoder_ffn_embed_dim": 40}, "model": BEATsModel(TINY_BEATS).state_dict()},
               wide)
    with pytest.raises(BEATsCheckpointError, match=r"wide\.pt: .*wrong shape .*fc1\.bias: checkpoint \(48,\), "
                                                   r"cfg gives \(40,\)"):
        load_beats_checkpoint(wide)
    with pytest.raises(BEATsCheckpointError, match="beats.checkpoint"):
        build_net("BEATs", n_samples=16000)


def _kaldi_reference(wave: np.ndarray) -> np.ndarray:
    """Kaldi fbank written out frame by frame (float64 numpy), the definition kaldi_fbank follows."""
    win, hop, nfft, n_mels, sr = 400, 160, 512, 128, 16000
    n = 1 + (len(wave) - win) // hop
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / (win - 1))) ** 0.85

    def mel(f):
        return 1127.0 * np.log(1.0 + f / 700.0)

    lo, hi = mel(20.0), mel(sr / 2)
    delta = (hi - lo) / (n_mels + 1)
    fft_mel = mel(np.arange(nfft // 2) * sr / nfft)
    banks = np.zeros((n_mels, nfft // 2 + 1))
    for b in range(n_mels):
        left, centre, right = lo + b * delta, lo + (b + 1) * delta, lo + (b + 2) * delta
        up, down = (fft_mel - left) / (centre - left), (right - fft_mel) / (right - centre)
        banks[b, : nfft // 2] = np.maximum(0.0, np.minimum(up, down))
    out = np.zeros((n, n_mels))
    for i in range(n):
        fr = wave[i * hop: i * hop + win].astype(np.float64)
        fr = fr - fr.mean()
        fr = fr - 0.97 * np.concatenate([fr[:1], fr[:-1]])
        spec = np.abs(np.fft.rfft(fr * window, nfft)) ** 2
        out[i] = np.log(np.maximum(banks @ spec, np.finfo(np.float32).eps))
    return out


def test_kaldi_fbank_matches_the_frame_by_frame_definition():
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(len(t))) * 2**15
    ours = kaldi_fbank(torch.tensor(wave, dtype=torch.float32)[None])[0].numpy()
    ref = _kaldi_reference(wave)
    assert ours.shape == ref.shape == (48, 128)
    np.testing.assert_allclose(ours, ref, atol=2e-3, rtol=1e-4)
    with pytest.raises(ValueError, match="shorter than one"):
        kaldi_fbank(torch.zeros(1, 399))


# --------------------------------------------------------------------------- through the workflow


def test_beats_through_the_workflow_with_a_generated_checkpoint(tmp_path):
    """Both BEATs roles on the tiny data with a generated checkpoint: (a) GMM-BIC pseudo-labels of
    DCASE2025-Spec clustered on frozen BEATs features (rule embed_beats; no stage-1 training
    needed for them), (b) the frozen front-end as system BEATs-frozen, scored by its SMOTE-kNN
    back-end. Without a checkpoint the workflow refuses at parse time, naming the key."""
    from conftest import run_snakemake

    ckpt = tmp_path / "BEATs_tiny.pt"
    _write_ckpt(ckpt)
    extra = tmp_path / "beats.yaml"
    extra.write_text(yaml.safe_dump({
        "beats": {"checkpoint": str(ckpt)}, "systems": ["BEATs-frozen", "DCASE2025-Spec"],
        "scoring": {"backends": ["kmeans_cos"]},  # smote_knn still comes: the systems' own scoring
        "system_definitions": {"DCASE2025-Spec": {"pseudo_label_features": "beats"}}}))
    tiny = REPO / "tests/configs/tiny.yaml"
    work = tmp_path / "run"
    targets = ["results/DCASE2025-Spec/seed0/stage2/pseudolabels.parquet",
               "results/BEATs-frozen/seed0/stage1/metrics.parquet",
               "results/BEATs-frozen/seed0/stage1/backends/smote_knn/metrics.parquet"]
    proc = run_snakemake(work, "--", *targets, configfiles=[tiny, extra])
    assert proc.returncode == 0, proc.stderr[-4000:]
    import pandas as pd

    from asdflow.schemas import read_table

    feats = read_table(work / "results/features/beats/embeddings_train.parquet", "embeddings")
    assert len(feats["embedding"].iloc[0]) == 32 and (feats["split"] == "train").all()
    pl = read_table(work / "results/DCASE2025-Spec/seed0/stage2/pseudolabels.parquet", "pseudolabels")
    assert sorted(pl["clip_id"]) == sorted(feats["clip_id"])
    assert not (work / "results/DCASE2025-Spec/seed0/stage1/model.pt").exists()  # not needed for (a)
    log = (work / "logs/pseudolabels/DCASE2025-Spec/seed0/stage2.log").read_text()
    assert "gmm_bic on beats features" in log
    report = yaml.safe_load((work / "results/BEATs-frozen/seed0/stage1/train_report.json").read_text())
    assert report["frozen"] and report["epochs"] == 0 and report["history"] == []
    emb = read_table(work / "results/BEATs-frozen/seed0/stage1/embeddings_test.parquet", "embeddings")
    assert len(emb["embedding"].iloc[0]) == 32
    for m in ("metrics.parquet", "backends/smote_knn/metrics.parquet"):
        metrics = pd.read_parquet(work / "results/BEATs-frozen/seed0/stage1" / m)
        assert metrics["auc"].between(0, 1).all()
    # no checkpoint: a clear error at parse time
    extra.write_text(yaml.safe_dump({"systems": ["BEATs-frozen"]}))
    proc = run_snakemake(work, "-n", configfiles=[tiny, extra])
    assert proc.returncode != 0 and "beats.checkpoint is not set" in proc.stdout + proc.stderr
