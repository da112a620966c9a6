"""Waveform datasets over decoded-audio caches (torch), for training and inference.

Kept apart from :mod:`asdflow.data` (tables only) so that steps which never touch a waveform do
not import torch; ``asdflow.data.CachedWaves`` still resolves here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from asdflow.io.cache import AudioCache

__all__ = ["CachedWaves"]


class CachedWaves(Dataset):
    """Waveforms of the rows of a table, read from one or more decoded-audio caches (memmaps).

    ``random_shift`` applies a random circular shift per access (training augmentation that
    mirrors the reference code's random crop of a tiled clip); off for inference.
    """

    def __init__(self, cache_paths: Sequence[str], cache_rows: Sequence[int], *, random_shift: bool = False,
                 seed: int = 0) -> None:
        self.cache_paths = [str(p) for p in cache_paths]
        self.cache_rows = np.asarray(cache_rows, dtype=np.int64)
        if len(self.cache_paths) != len(self.cache_rows):
            raise ValueError("cache_paths and cache_rows differ in length")
        self.random_shift = random_shift
        self.seed = seed
        self.epoch = 0
        self._caches: dict[str, AudioCache] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _cache(self, path: str) -> AudioCache:
        cache = self._caches.get(path)
        if cache is None:
            cache = self._caches[path] = AudioCache(Path(path))
        return cache

    def __len__(self) -> int:
        return len(self.cache_rows)

    def __getitem__(self, i: int) -> torch.Tensor:
        wave = self._cache(self.cache_paths[i]).get_rows(np.asarray([self.cache_rows[i]]))[0]
        if self.random_shift:
            rng = np.random.default_rng((self.seed, self.epoch, int(i)))
            wave = np.roll(wave, int(rng.integers(0, len(wave))))
        return torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
