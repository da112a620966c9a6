"""The one embedding loop: batched, streaming inference over cached waveforms (DCASE or pool)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from asdflow.data import CachedWaves

__all__ = ["embed_waves"]


@torch.no_grad()
def embed_waves(
    model: torch.nn.Module,
    cache_paths: Sequence[str],
    cache_rows: Sequence[int],
    *,
    batch_size: int = 64,
    num_workers: int = 0,
    progress: bool = True,
    desc: str = "embedding",
    amp: bool = False,
) -> np.ndarray:
    """Concatenated embeddings ``[N, D]`` (float32) of the given cache rows, in order.

    Memory is bounded by ``batch_size``: waveforms stream from the memmapped caches.
    ``amp`` runs the forward pass under CUDA autocast (ignored on CPU).
    """
    device = next(model.parameters()).device
    model.eval()
    waves = CachedWaves(cache_paths, cache_rows, random_shift=False)
    loader = DataLoader(waves, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda")
    out: list[np.ndarray] = []
    use_amp = amp and device.type == "cuda"
    for x in tqdm(loader, disable=not progress, desc=desc, mininterval=2.0, leave=False):
        with torch.autocast(device_type=device.type, enabled=use_amp):
            z = model(x.to(device, non_blocking=True))["cat"]
        out.append(z.float().cpu().numpy())
    dim = getattr(model, "emb_dim", 0)
    return np.concatenate(out) if out else np.zeros((0, dim), dtype=np.float32)
