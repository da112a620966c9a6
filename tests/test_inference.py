"""Inference copy of a network (folded batch norms, channels-last) and the fast front-end paths:
same embeddings as the trained model, original untouched, batch sizes per device."""

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from asdflow.embed import embed_waves, inference_batch_size
import soundfile as sf

from asdflow.io.audio import AudioSpec
from asdflow.io.cache import build_cache
from asdflow.nets import build_net
from asdflow.nets.ba import BatchNorm1d, BatchNorm2d, _Stem
from asdflow.nets.frontends import magnitude
from asdflow.nets.inference import fold_batch_norms, for_inference

TINY = {"emb_dim": 8, "base_channels": 4, "spectrum_channels": 8}


def _trained_like(name: str, n_samples: int, **kw) -> nn.Module:
    """A network whose batch norms hold non-trivial statistics and scales (as after training)."""
    torch.manual_seed(0)
    net = build_net(name, n_samples=n_samples, **TINY, **kw).train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(4, n_samples) * 3 + 0.5)
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(-1.5, 1.5)  # negative scales too: folding must not assume γ > 0
                if m.bias is not None:
                    m.bias.uniform_(-0.5, 0.5)
    return net.eval()


@pytest.mark.parametrize("name,kw", [("Ba", {}), ("Ba", {"bn_shift": True}), ("Wilkinghoff", {})])
def test_inference_copy_gives_the_same_embeddings(name, kw):
    net = _trained_like(name, 32000, **kw)
    before = copy.deepcopy(net.state_dict())
    fast = for_inference(net)
    x = torch.randn(5, 32000)
    with torch.inference_mode():
        ref, out = net(x), fast(x)
    torch.testing.assert_close(out["cat"], ref["cat"], rtol=1e-4, atol=1e-5)
    for a, b in zip(out["branches"], ref["branches"]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    # the trained model is not changed (its checkpoint stays loadable, training can go on)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert not any(p.requires_grad for p in fast.parameters())
    assert not fast.training
    convs = [m for m in fast.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)


def test_folding_removes_every_bn_next_to_a_linear_map():
    net = _trained_like("Ba", 32000)
    n_bn = sum(isinstance(m, (BatchNorm1d, BatchNorm2d)) for m in net.modules())
    folded = fold_batch_norms(copy.deepcopy(net))
    # left: the 2 per-frequency BNs before the stems and the pre-activation BN of the 8 blocks of
    # each 2-D encoder (ReLU on both sides); folded: stem, block bodies, heads, the 1-D dense stack
    assert folded == n_bn - 2 - 2 * 8 == 25
    assert folded > 0


def test_fold_before_a_linear_layer_and_after_a_conv():
    torch.manual_seed(1)
    seq = nn.Sequential(nn.Conv1d(3, 4, 5, bias=False), nn.BatchNorm1d(4), nn.ReLU(), nn.Flatten(),
                        nn.BatchNorm1d(4 * 6), nn.Linear(4 * 6, 2)).train()
    for _ in range(3):
        seq(torch.randn(8, 3, 10) * 2 - 1)
    seq.eval()
    x = torch.randn(6, 3, 10)
    ref = seq(x)
    assert fold_batch_norms(seq) == 2
    assert sum(isinstance(m, nn.BatchNorm1d) for m in seq) == 0
    torch.testing.assert_close(seq(x), ref, rtol=1e-5, atol=1e-6)


def test_folding_needs_running_statistics():
    seq = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3, track_running_stats=False))
    with pytest.raises(ValueError, match="running statistics"):
        fold_batch_norms(seq)


def test_stem_pools_before_the_relu_with_the_same_result():
    torch.manual_seed(0)
    stem = _Stem(4, bn_shift=True).eval()
    with torch.no_grad():
        stem.bn.weight.uniform_(-1, 1)
        stem.bn.bias.uniform_(-1, 1)
    for shape in [(2, 40, 30), (2, 8, 50)]:  # the second pads the short axis
        x = torch.randn(*shape).unsqueeze(1)
        fb, fa, fp = stem._axis_pad(shape[1])
        tb, ta, tp = stem._axis_pad(shape[2])
        ref = F.max_pool2d(F.relu(stem.bn(stem.conv(F.pad(x, (tb, ta, fb, fa))))), 3, 2, padding=(fp, tp))
        torch.testing.assert_close(stem(x), ref, rtol=0, atol=0)


def test_magnitude_equals_abs_and_keeps_a_gradient_path():
    spec = torch.stft(torch.randn(2, 4000), 256, 128, window=torch.hann_window(256), return_complex=True)
    torch.testing.assert_close(magnitude(spec[:, 3:100]), spec[:, 3:100].abs(), rtol=1e-6, atol=1e-6)
    zero = torch.zeros(3, dtype=torch.complex64)
    assert torch.equal(magnitude(zero), torch.zeros(3))
    z = torch.randn(4, dtype=torch.complex64).requires_grad_()
    zz = torch.cat([z, torch.zeros(1, dtype=torch.complex64)])
    magnitude(zz).sum().backward()  # through abs(): finite gradient even at 0
    assert torch.isfinite(torch.view_as_real(z.grad)).all()


def test_embed_waves_optimized_and_plain_agree(tmp_path):
    net = _trained_like("Ba", 16000)
    paths = []
    for i, wave in enumerate(torch.randn(7, 16000).numpy() * 0.3):
        paths.append(str(tmp_path / f"{i}.wav"))
        sf.write(paths[-1], wave, 16000)
    cache = tmp_path / "c.npy"
    build_cache([str(i) for i in range(7)], paths, cache, AudioSpec(sample_rate=16000, clip_seconds=1.0),
                progress=False)
    rows = list(range(7))
    fast = embed_waves(net, [str(cache)] * 7, rows, batch_size=3, progress=False)
    plain = embed_waves(net, [str(cache)] * 7, rows, batch_size=3, progress=False, optimize=False)
    torch.testing.assert_close(torch.from_numpy(fast), torch.from_numpy(plain), rtol=1e-4, atol=1e-5)


def test_inference_batch_size_per_device():
    assert inference_batch_size("cpu", 10.0) == 12
    assert inference_batch_size("cpu", 2.0) == 60
    assert inference_batch_size("cpu", 18.0, cpu_batch_seconds=120) == 7
    assert inference_batch_size("cpu", 600.0) == 1  # never 0
    assert inference_batch_size("cuda", 10.0, gpu_batch_size=200) == 200
    with pytest.raises(ValueError, match="clip_seconds"):
        inference_batch_size("cpu", 0.0)


def test_stem_transposed_training_path_matches_the_plain_convolution():
    # training on CPU convolves a tall map in its transposed layout (a oneDNN speed-up): the same
    # output and gradients up to float rounding; eval mode keeps the plain path bit for bit
    torch.manual_seed(0)
    stem = _Stem(8, bn_shift=False).train()
    x = torch.randn(3, 1, 120, 14, requires_grad=True)
    results = []
    for transposed in (True, False):
        _Stem.cpu_transpose_tall = transposed
        try:
            x.grad, stem.conv.weight.grad = None, None
            y = stem(x)
            y.backward(torch.linspace(-1, 1, y.numel()).reshape(y.shape))
            results.append((y.detach(), x.grad.clone(), stem.conv.weight.grad.clone()))
        finally:
            _Stem.cpu_transpose_tall = True
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert not torch.equal(results[0][2], torch.zeros_like(results[0][2]))
