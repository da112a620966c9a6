"""CUDA paths (skipped cleanly on machines without a GPU)."""

import numpy as np
import pytest
import torch

from asdflow.losses import pitch_shift
from asdflow.nets import build_net
from asdflow.train import pick_device

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible")


def test_auto_device_falls_back_to_cpu_without_cuda():
    if not torch.cuda.is_available():
        assert pick_device("auto").type == "cpu"
        with pytest.raises(RuntimeError, match="no CUDA device"):
            pick_device("cuda")


@pytest.mark.gpu
@cuda
def test_ba_forward_on_cuda_matches_cpu():
    torch.manual_seed(0)
    net = build_net("Ba", n_samples=16000, emb_dim=8, base_channels=4, spectrum_channels=8).eval()
    x = torch.randn(4, 16000)
    cpu = net(x)["cat"]
    gpu = net.cuda()(x.cuda())["cat"].cpu()
    torch.testing.assert_close(cpu, gpu, atol=1e-3, rtol=1e-3)


@pytest.mark.gpu
@cuda
def test_pitch_shift_on_cuda_matches_cpu():
    x = torch.randn(3, 8000)
    shifts = torch.tensor([7.0, -6.0, 12.0])
    torch.testing.assert_close(pitch_shift(x, shifts).cpu(), pitch_shift(x.cuda(), shifts.cuda()).cpu(),
                               atol=1e-3, rtol=1e-3)


@pytest.mark.gpu
@cuda
def test_faiss_gpu_index_when_available():
    faiss = pytest.importorskip("faiss")
    if not hasattr(faiss, "get_num_gpus") or faiss.get_num_gpus() == 0:
        pytest.skip("faiss build has no GPU support")
    from asdflow.scoring import build_index, search_nearest_machine

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((10, 16)).astype(np.float32)
    machines = ["a"] * 5 + ["b"] * 5
    index = build_index(centres, machines, use_gpu="auto")
    out = search_nearest_machine(index, machines, rng.standard_normal((20, 16)).astype(np.float32))
    assert len(out) == 20
