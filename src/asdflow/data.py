"""Training/inference data built from artifact tables: waveform datasets over decoded-audio caches.

A *trainset* table (schema ``trainset``) lists the clips a model trains on: one row per clip with
its string ``label`` (machine, machine_attr, machine_mid, machine_pl<j>, ...), its machine type
and domain, and where its decoded audio lives (``cache_path`` + ``cache_row``). Stage m differs
from stage 1 only by this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from asdflow.io.cache import AudioCache

__all__ = ["CachedWaves", "LabelEncoder", "attach_cache_rows", "dcase_trainset", "machine_attr_labels",
           "true_attr_string"]


def __getattr__(name: str):
    # CachedWaves is a torch Dataset: imported on first use, so the table steps (evaluate,
    # representatives, trainsets, ...) that import this module never pay torch's import time
    if name == "CachedWaves":
        from asdflow.waves import CachedWaves

        return CachedWaves
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class LabelEncoder:
    """Sorted class names ↔ integer ids (saved inside model checkpoints)."""

    classes: tuple[str, ...]

    @classmethod
    def fit(cls, labels: Sequence[str]) -> "LabelEncoder":
        return cls(tuple(sorted(set(map(str, labels)))))

    def encode(self, labels: Sequence[str]) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes)}
        try:
            return np.asarray([index[str(x)] for x in labels], dtype=np.int64)
        except KeyError as exc:
            raise KeyError(f"label {exc.args[0]!r} is not one of the {len(self.classes)} trained classes") from None

    def __len__(self) -> int:
        return len(self.classes)


def attach_cache_rows(manifest: pd.DataFrame, cache_npy: str | Path) -> pd.DataFrame:
    """Add ``cache_path``/``cache_row`` columns for the manifest's clips from a cache's index.

    Clips whose decoding failed (status != ok) are dropped with their count logged by the caller
    (the returned frame's ``attrs['n_failed']``).
    """
    # the (Arrow-backed) cache index and an Arrow hash lookup: no Python object per clip, so a
    # shard job's memory barely grows with its shard
    index = AudioCache(Path(cache_npy)).index
    found = pc.index_in(pa.array(manifest["clip_id"], type=pa.string()), value_set=pa.array(index["clip_id"]))
    if found.null_count:
        first = int(np.flatnonzero(found.is_null().to_numpy(zero_copy_only=False))[0])
        raise KeyError(
            f"{cache_npy}: {found.null_count} manifest clips are not in the cache "
            f"(e.g. {manifest['clip_id'].iloc[first]!r}); rebuild the cache"
        )
    pos = found.to_numpy()
    ok = np.asarray(pc.equal(pa.array(index["status"]), "ok").to_numpy(zero_copy_only=False), dtype=bool)[pos]
    out = manifest[ok].reset_index(drop=True)  # one copy, of the decodable rows only
    out["cache_path"] = str(cache_npy)
    out["cache_row"] = np.asarray(index["row"].to_numpy(), dtype=np.int64)[pos[ok]]
    out.attrs["n_failed"] = int((~ok).sum())
    return out


def true_attr_string(manifest: pd.DataFrame) -> pd.Series:
    """The true attribute string ``"k1=v1,k2=v2"`` of every manifest row, whether the manifest
    shows it (``attr_string``) or withholds it (``hidden_attributes``, ``hide_attributes: true``);
    ``""`` where the data has none. Labeled systems (``labels: machine_attr``) and diagnostics
    (pseudo-label quality, oracle labels) read attributes only through this."""
    from asdflow.io.dcase import attr_string

    n = len(manifest)
    visible = (manifest["attr_string"].fillna("").astype(str) if "attr_string" in manifest.columns
               else pd.Series([""] * n, index=manifest.index, dtype=object))
    if "hidden_attributes" not in manifest.columns:
        return visible
    hidden = manifest["hidden_attributes"].map(
        lambda ps: attr_string((a["name"], a["value"]) for a in ps) if ps is not None else "")
    return visible.where(visible != "", hidden.astype(str))


def machine_attr_labels(manifest: pd.DataFrame, attr: pd.Series | None = None) -> pd.Series:
    """Class names of the labeled condition: ``<machine>_sec<section>_<true attributes>``
    (``<machine>_sec<section>`` for rows without attributes). ``attr``: the rows'
    :func:`true_attr_string` when the caller has it already."""
    attr = true_attr_string(manifest) if attr is None else attr
    return manifest["machine"].astype(str) + "_sec" + manifest["section"].astype(str) + attr.map(
        lambda a: f"_{a}" if a else "")


def dcase_trainset(manifest: pd.DataFrame, label_mode: str = "machine") -> pd.DataFrame:
    """Stage-1 training set: the original training clips with the label column.

    label_mode: ``machine`` (machine type only: the unlabeled condition; no attribute string
    ever reaches the label) or ``machine_attr`` (the labeled condition: machine type + section +
    the TRUE attribute string, read from ``attributes`` or, when ``hide_attributes`` withholds
    them, from ``hidden_attributes``; rows without attributes fall back to machine + section).
    """
    train = manifest[manifest["split"] == "train"].copy()
    if label_mode == "machine":
        train["label"] = train["machine"]
    elif label_mode == "machine_attr":
        attr = true_attr_string(train)
        labels = machine_attr_labels(train, attr)
        if not (attr != "").any():
            import logging

            logging.getLogger(__name__).warning(
                "labels=machine_attr but the data has no attributes (neither visible nor hidden): classes fall "
                "back to machine type + section"
            )
        train["label"] = labels
    else:
        raise ValueError(f"unknown label_mode {label_mode!r}; expected 'machine' or 'machine_attr'")
    train["is_external"] = False
    return train
