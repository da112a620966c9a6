"""The one embedding loop: batched, streaming inference over waveforms (DCASE clips or pool shards).

Waveforms come from a *batch source*, a dataset whose items are whole batches:

* :class:`CacheBatches`: rows of decoded-audio caches (one ``pread`` per run of consecutive
  rows, so nothing of the cache stays mapped into the process);
* :class:`DecodeBatches`: audio files decoded with :func:`asdflow.io.audio.load_clip` and
  quantised exactly as the cache stores them (:func:`asdflow.io.cache.quantize`), so a pool
  scored with or without the cache gives the same embeddings. Files that fail to decode are
  flagged (zero waveform, ``ok=False``, the error text), never raised.

Loading overlaps compute: with ``num_workers > 0`` DataLoader worker processes build batches
(two in flight per worker); with ``num_workers == 0`` one background thread prefetches
``prefetch`` batches (decoding, file reads and resampling release the GIL). Peak memory is
set by the batch size and the prefetch depth, never by the number of clips. On CUDA the forward
pass runs under bfloat16 autocast when ``amp`` is on (bfloat16, not float16: the magnitude
spectrum of an 18-s clip exceeds the float16 range); on CPU ``amp`` is ignored.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from asdflow.io.audio import AudioError, AudioSpec, load_clip
from asdflow.io.cache import AudioCache, dequantize, quantize
from asdflow.nets.inference import for_inference
from asdflow.runtime import use_job_cpus

__all__ = ["CacheBatches", "DecodeBatches", "EmbeddedBatch", "embed_stream", "embed_waves", "inference_batch_size",
           "iter_batches"]


def _n_batches(n: int, batch_size: int) -> int:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return -(-n // batch_size)


def inference_batch_size(device: torch.device | str, clip_seconds: float, *, cpu_batch_seconds: float = 120.0,
                         gpu_batch_size: int = 256) -> int:
    """Clips per batch of an embedding pass (config block ``inference``).

    On a CPU the best batch holds a fixed amount of audio: small enough for the activations to
    stay in the caches, large enough to amortise the per-batch work (measured with the Ba net on
    2 cores, ``benchmarks/scale_external.py``: about 100-120 s of audio for 2-, 10- and 18-s
    clips). On a GPU: ``gpu_batch_size`` clips.
    """
    if clip_seconds <= 0:
        raise ValueError(f"clip_seconds must be > 0, got {clip_seconds}")
    if torch.device(device).type == "cuda":
        return max(1, int(gpu_batch_size))
    return max(1, int(round(cpu_batch_seconds / clip_seconds)))


class CacheBatches(Dataset):
    """Batches of waveforms read from decoded-audio caches: item ``b`` holds rows
    ``b*batch_size ...`` of the given (cache path, cache row) list, in order."""

    def __init__(self, cache_paths: Sequence[str], cache_rows: Sequence[int], batch_size: int) -> None:
        self.cache_paths = np.asarray([str(p) for p in cache_paths], dtype=object)
        self.cache_rows = np.asarray(cache_rows, dtype=np.int64)
        if len(self.cache_paths) != len(self.cache_rows):
            raise ValueError("cache_paths and cache_rows differ in length")
        self.batch_size = batch_size
        self._len = _n_batches(len(self.cache_rows), batch_size)
        self._caches: dict[str, AudioCache] = {}  # opened lazily (per worker process)

    def __len__(self) -> int:
        return self._len

    def _cache(self, path: str) -> AudioCache:
        if path not in self._caches:
            self._caches[path] = AudioCache(path)
        return self._caches[path]

    def __getitem__(self, b: int) -> dict:
        lo = b * self.batch_size
        paths = self.cache_paths[lo:lo + self.batch_size]
        rows = self.cache_rows[lo:lo + self.batch_size]
        first = self._cache(paths[0])
        out = np.empty((len(rows), first.spec.n_samples), dtype=np.float32)
        for path in dict.fromkeys(paths):  # usually one cache file per batch
            sel = paths == path
            out[sel] = self._cache(path).get_rows(rows[sel])
        return {"start": lo, "waves": torch.from_numpy(out), "ok": torch.ones(len(rows), dtype=torch.bool),
                "errors": [""] * len(rows)}


class DecodeBatches(Dataset):
    """Batches of waveforms decoded from audio files (no cache): ``load_clip`` + the cache's
    int16 quantisation. A file that cannot be decoded gives a zero row with ``ok=False``."""

    def __init__(self, paths: Sequence[str], spec: AudioSpec, batch_size: int) -> None:
        self.paths = [str(p) for p in paths]
        self.spec = spec
        self.batch_size = batch_size
        self._len = _n_batches(len(self.paths), batch_size)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, b: int) -> dict:
        lo = b * self.batch_size
        paths = self.paths[lo:lo + self.batch_size]
        out = np.zeros((len(paths), self.spec.n_samples), dtype=np.float32)
        ok = torch.ones(len(paths), dtype=torch.bool)
        errors = [""] * len(paths)
        for i, path in enumerate(paths):
            try:
                out[i] = dequantize(quantize(load_clip(path, self.spec)))
            except AudioError as exc:
                ok[i] = False
                errors[i] = str(exc)
        return {"start": lo, "waves": torch.from_numpy(out), "ok": ok, "errors": errors}


def _prefetched(items: Iterable, depth: int) -> Iterator:
    """Iterate ``items`` in a background thread, at most ``depth`` items ahead (order kept;
    an exception in the thread is raised here)."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("end", done))
        except BaseException as exc:  # handed to the consumer
            q.put(("error", exc))

    thread = threading.Thread(target=produce, name="asdflow-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)


def iter_batches(source: Dataset, *, num_workers: int = 0, prefetch: int = 2, pin_memory: bool = False) -> Iterator[dict]:
    """The batches of a batch source, in order, loaded ahead of their use (see module doc)."""
    if num_workers > 0:
        loader = DataLoader(source, batch_size=None, shuffle=False, num_workers=num_workers,
                            prefetch_factor=max(1, prefetch), pin_memory=pin_memory, persistent_workers=False)
        yield from loader
        return
    items = (source[b] for b in range(len(source)))
    yield from (_prefetched(items, prefetch) if prefetch > 0 else items)


@dataclass
class EmbeddedBatch:
    """Embeddings ``[b, D]`` (float32) of rows ``start ... start+b`` of a batch source, which
    rows loaded (``ok``) and the load error of the others."""

    start: int
    embeddings: np.ndarray
    ok: np.ndarray
    errors: list[str]


def _amp_context(device: torch.device, amp: bool):
    if amp and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return torch.autocast(device_type=device.type, enabled=False)


def embed_stream(
    model: torch.nn.Module,
    source: Dataset,
    *,
    num_workers: int = 0,
    prefetch: int = 2,
    amp: bool = False,
    optimize: bool = True,
    progress: bool = True,
    desc: str = "embedding",
) -> Iterator[EmbeddedBatch]:
    """Embed every batch of ``source`` (``model(x)["cat"]``), yielding them in order.

    The caller consumes each batch (e.g. searches it) so nothing of size N is held here.
    ``optimize`` runs a frozen inference copy of the model (:func:`asdflow.nets.inference.
    for_inference`: batch norms folded, channels-last weights; same embeddings up to float
    rounding); ``False`` runs ``model`` itself, in eval mode.
    """
    device = next(model.parameters()).device
    use_job_cpus()  # never more CPU threads than the job was given
    model.eval()
    if optimize:
        model = for_inference(model)
    batches = iter_batches(source, num_workers=num_workers, prefetch=prefetch, pin_memory=device.type == "cuda")
    with torch.inference_mode():
        for batch in tqdm(batches, total=len(source), disable=not progress, desc=desc, mininterval=2.0,
                          leave=False):
            with _amp_context(device, amp):
                z = model(batch["waves"].to(device, non_blocking=True))["cat"]
            yield EmbeddedBatch(int(batch["start"]), z.float().cpu().numpy(), batch["ok"].numpy().astype(bool),
                                list(batch["errors"]))


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
    optimize: bool = True,
) -> np.ndarray:
    """Concatenated embeddings ``[N, D]`` (float32) of the given cache rows, in order.

    Memory is bounded by ``batch_size`` (plus the ``N x D`` result): waveforms stream from the
    caches through :func:`embed_stream`.
    """
    source = CacheBatches(cache_paths, cache_rows, batch_size)
    out = [b.embeddings for b in embed_stream(model, source, num_workers=num_workers, amp=amp, optimize=optimize,
                                              progress=progress, desc=desc)]
    dim = getattr(model, "emb_dim", 0)
    return np.concatenate(out) if out else np.zeros((0, dim), dtype=np.float32)
