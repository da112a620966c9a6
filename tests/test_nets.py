"""Networks and front-ends: shapes, no bias terms, backward, determinism, short clips, layer sizes."""

import math

import pytest
import torch

from asdflow.nets import Ba, Wilkinghoff, build_net
from asdflow.nets.ba import SpectrogramEncoder, SpectrumEncoder
from asdflow.nets.frontends import FullSpectrum, Spectrogram, SpectrogramConfig

TINY = {"emb_dim": 8, "base_channels": 4, "spectrum_channels": 8}


@pytest.mark.parametrize("n_samples", [16000, 32000])
def test_ba_shapes_and_order(n_samples):
    net = build_net("Ba", n_samples=n_samples, **TINY)
    assert isinstance(net, Ba)
    out = net(torch.randn(3, n_samples))
    assert out["cat"].shape == (3, 24) and [tuple(z.shape) for z in out["branches"]] == [(3, 8)] * 3
    assert net.emb_dim == 24 and net.branch_dims == [8, 8, 8]
    torch.testing.assert_close(out["cat"], torch.cat(out["branches"], dim=1))
    assert net.order == ["fft", "stft_long", "stft_short"]  # the code's concatenation order


def test_branch_order_is_configurable():
    torch.manual_seed(0)
    a = build_net("Ba", n_samples=16000, **TINY)
    torch.manual_seed(0)
    b = build_net("Ba", n_samples=16000, order=["stft_long", "stft_short", "fft"], **TINY)
    a.eval(), b.eval()
    x = torch.randn(2, 16000)
    za, zb = a(x)["branches"], b(x)["branches"]
    torch.testing.assert_close(za[0], zb[2])
    torch.testing.assert_close(za[1], zb[0])
    with pytest.raises(ValueError, match="order"):
        build_net("Ba", n_samples=16000, order=["fft", "stft_long"], **TINY)


@pytest.mark.parametrize("n_samples", [16000, 32000])
def test_wilkinghoff_shapes(n_samples):
    net = build_net("Wilkinghoff", n_samples=n_samples, **TINY)
    assert isinstance(net, Wilkinghoff)
    out = net(torch.randn(2, n_samples))
    assert out["cat"].shape == (2, 16) and len(out["branches"]) == 2
    assert net.order == ["fft", "stft"] and net.branch_dims == [8, 8]


def test_full_widths_are_384_and_256():
    assert build_net("Ba", n_samples=16000).emb_dim == 384
    assert build_net("Wilkinghoff", n_samples=16000).emb_dim == 256


@pytest.mark.parametrize("name", ["Ba", "Wilkinghoff"])
def test_no_bias_anywhere(name):
    net = build_net(name, n_samples=16000, **TINY)
    assert not [n for n, _ in net.named_parameters() if "bias" in n]
    for m in net.modules():
        assert getattr(m, "bias", None) is None, m
    # the codes' batch-norm shifts are an option
    code = build_net(name, n_samples=16000, bn_shift=True, **TINY)
    assert any(n.endswith("bias") for n, _ in code.named_parameters())
    assert all(m.bias is not None for m in code.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))


def test_backward_reaches_every_parameter_and_is_deterministic():
    torch.manual_seed(0)
    a = build_net("Ba", n_samples=16000, **TINY)
    torch.manual_seed(0)
    b = build_net("Ba", n_samples=16000, **TINY)
    x = torch.randn(4, 16000)
    za, zb = a(x)["cat"], b(x)["cat"]
    torch.testing.assert_close(za, zb, rtol=0, atol=0)
    za.pow(2).sum().backward()
    missing = [n for n, p in a.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


def test_eval_mode_is_batch_independent():
    net = build_net("Wilkinghoff", n_samples=16000, **TINY).eval()
    x = torch.randn(3, 16000)
    torch.testing.assert_close(net(x)["cat"][:1], net(x[:1])["cat"], rtol=1e-4, atol=1e-5)


def test_very_short_clips_fall_back_gracefully():
    # 0.25 s: 2 frames of the 256-ms STFT and a 2001-bin spectrum
    for name in ("Ba", "Wilkinghoff"):
        net = build_net(name, n_samples=4000, **TINY)
        assert net(torch.randn(2, 4000))["cat"].shape == (2, net.emb_dim)
    enc = SpectrumEncoder(2001, 8, 8)
    assert enc.padding == "same"
    assert SpectrumEncoder(144001, 8, 8).padding == "valid"
    with pytest.raises(ValueError, match="valid"):
        SpectrumEncoder(2001, 8, 8, padding="valid")


def test_reference_layer_sizes_at_18_seconds():
    """Flatten sizes of the seed-000 code for 288 000 samples (docs/reference.md §3.2)."""
    long_cfg = SpectrogramConfig(n_fft=4096)
    short_cfg = SpectrogramConfig(n_fft=128)
    assert (long_cfg.n_bins, long_cfg.n_frames(288000)) == (1997, 141)
    assert (short_cfg.n_bins, short_cfg.n_frames(288000)) == (63, 4501)
    # flatten = channels x frequency after the ResNet (time axis is max-pooled away)
    assert SpectrogramEncoder(1997, 128, 16, probe_frames=33).head[1].in_features == 8064
    assert SpectrogramEncoder(63, 128, 16, probe_frames=33).head[1].in_features == 256
    assert SpectrumEncoder(144001, 128, 128).dense[0].in_features == 1792
    # Wilkinghoff: 513 bins -> 16 x 128 channels; spectrum 144000 -> 18 x 128
    assert SpectrogramEncoder(513, 128, 16, style="wilkinghoff", probe_frames=40).head[1].in_features == 2048
    assert SpectrumEncoder(144000, 128, 128, padding="same", n_dense=3).dense[0].in_features == 2304


def test_frequency_cut_and_normalisation():
    cfg = SpectrogramConfig(n_fft=4096, sample_rate=16000, f_min=200, f_max=8000)
    spec = Spectrogram(cfg)(torch.randn(1, 16000))
    assert spec.shape == (1, 1997, 8)  # bins 52..2048; 16000 // 2048 + 1 centred frames
    assert SpectrogramConfig(n_fft=128).n_bins == 63  # 200-Hz cut keeps bins from 250 Hz
    assert SpectrogramConfig(n_fft=1024, f_min=None, f_max=None).n_bins == 513
    x = torch.randn(2, 8000)
    raw = Spectrogram(SpectrogramConfig(n_fft=256, normalized="none", f_min=None, f_max=None))(x)
    win = Spectrogram(SpectrogramConfig(n_fft=256, normalized=True, f_min=None, f_max=None))(x)
    fl = Spectrogram(SpectrogramConfig(n_fft=256, normalized="frame_length", f_min=None, f_max=None))(x)
    w = torch.hann_window(256)
    torch.testing.assert_close(win, raw / w.pow(2).sum().sqrt())  # torchaudio normalized=True
    torch.testing.assert_close(fl, raw / math.sqrt(256))  # torch.stft normalized=True
    with pytest.raises(ValueError):
        SpectrogramConfig(normalized="power")


def test_log_and_temporal_mean_normalisation():
    x = torch.randn(2, 8000)
    spec = Spectrogram(n_fft=256, log=True, temporal_norm=True)(x)
    assert torch.isfinite(spec).all()
    torch.testing.assert_close(spec.mean(-1), torch.zeros(spec.shape[:2]), atol=1e-4, rtol=0)
    lin = Spectrogram(n_fft=256)(x)
    torch.testing.assert_close(Spectrogram(n_fft=256, log=True)(x), 20 * torch.log10(lin))


def test_uncentred_frames_and_full_spectrum():
    cfg = SpectrogramConfig(n_fft=1024, center=False, f_min=None, f_max=None, normalized="none")
    assert Spectrogram(cfg)(torch.randn(1, 288000)).shape == (1, 513, 561) == (1, 513, cfg.n_frames(288000))
    x = torch.randn(2, 1000)
    full = FullSpectrum()(x)
    assert full.shape == (2, 1, 501)
    torch.testing.assert_close(full[:, 0], torch.fft.rfft(x).abs())
    assert FullSpectrum(n_bins=500)(x).shape == (2, 1, 500)


def test_unknown_network_and_missing_length():
    with pytest.raises(ValueError, match="unknown network"):
        build_net("ResNet", n_samples=16000)
    with pytest.raises(TypeError, match="n_samples"):
        build_net("Ba")
