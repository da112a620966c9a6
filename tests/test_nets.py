"""Networks: shapes, no bias terms, backward, determinism, short clips."""

import pytest
import torch

from asdflow.nets import build_net
from asdflow.nets.frontends import Spectrogram, SpectrogramConfig

TINY = {"emb_dim": 8, "base_channels": 4, "spectrum_channels": 8}


@pytest.mark.parametrize("n_samples", [16000, 32000])
def test_ba_shapes(n_samples):
    net = build_net("Ba", n_samples=n_samples, **TINY)
    out = net(torch.randn(3, n_samples))
    assert out["cat"].shape == (3, 24) and [z.shape for z in out["branches"]] == [(3, 8)] * 3
    assert net.emb_dim == 24 and net.branch_dims == [8, 8, 8]
    # concatenation order of the reference code: [FFT, STFT 256 ms, STFT 8 ms]
    torch.testing.assert_close(out["cat"], torch.cat(out["branches"], dim=1))
    assert net.order == ["fft", "stft_long", "stft_short"]


def test_full_size_ba_is_384d():
    net = build_net("Ba", n_samples=16000)
    assert net.emb_dim == 384


def test_wilkinghoff_shapes():
    net = build_net("Wilkinghoff", n_samples=16000, **TINY)
    out = net(torch.randn(2, 16000))
    assert out["cat"].shape == (2, 16) and len(out["branches"]) == 2
    assert build_net("Wilkinghoff", n_samples=16000).emb_dim == 256


@pytest.mark.parametrize("name", ["Ba", "Wilkinghoff"])
def test_no_bias_terms_in_convs_and_linears(name):
    net = build_net(name, n_samples=16000, **TINY)
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)):
            assert m.bias is None, m


def test_backward_and_determinism():
    torch.manual_seed(0)
    a = build_net("Ba", n_samples=16000, **TINY)
    torch.manual_seed(0)
    b = build_net("Ba", n_samples=16000, **TINY)
    x = torch.randn(4, 16000)
    za, zb = a(x)["cat"], b(x)["cat"]
    torch.testing.assert_close(za, zb)
    za.pow(2).sum().backward()
    assert all(p.grad is not None for p in a.parameters() if p.requires_grad)


def test_very_short_clip_still_works():
    net = build_net("Ba", n_samples=4000, **TINY)  # 0.25 s: one frame of the 256-ms STFT
    assert net(torch.randn(2, 4000))["cat"].shape == (2, 24)


def test_frequency_cut_of_the_code():
    cfg = SpectrogramConfig(n_fft=4096, sample_rate=16000, f_min=200, f_max=8000)
    spec = Spectrogram(cfg)(torch.randn(1, 16000))
    assert spec.shape[1] == 1997  # bins 52..2048 as in the reference code (1997 x 141 at 18 s)
    cfg128 = SpectrogramConfig(n_fft=128, sample_rate=16000)
    assert cfg128.n_bins == 63


def test_unknown_network():
    with pytest.raises(ValueError, match="unknown network"):
        build_net("ResNet", n_samples=16000)
