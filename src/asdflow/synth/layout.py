"""Writing the synthetic data in the real on-disk formats, and :func:`generate`.

Layout under ``out_dir`` (docs/formats.md §1.3–1.6 and §3.1–3.3)::

    dcase/dev_data/raw/<machine>/{train,test}/section_00_<domain>_<split>_<cond>_NNNN_<attrs>.wav
    dcase/dev_data/raw/<machine>/attributes_00.csv          file_name,d1p,d1v,d2p,d2v
    dcase/eval_data/raw/<machine>/{train,test}/...          (cfg.eval; test names hidden: section_00_NNNN.wav)
    dcase/eval_ground_truth/ground_truth_{data,domain,attributes}/ground_truth_<machine>_section_00_test.csv
    dcase/truth.csv                                         what every clip really is (for tests/analyses)
    audioset/class_labels_indices.csv                       index,mid,"display_name"
    audioset/metadata/{balanced_train_segments,eval_segments}.csv
    audioset/audio/<segments>/Y<YTID>.wav                   32 kHz; a few listed clips missing
    audioset/pool_truth.csv                                 ytid,file_name,category,machine_like (analyses)
    train_anomalies/<machine>/section_00_source_train_anomaly_NNNN_<attrs>.wav
                                                            cfg.n_train_anomalies per machine type, outside
                                                            the DCASE tree (not training data of any system
                                                            unless a system is given the list)
    train_anomalies.csv                                     machine,path,anomaly_kind (path relative to it)
    synth_summary.json                                      counts and the paths the workflow needs
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import soundfile as sf
from tqdm import tqdm

from asdflow.synth.config import SynthConfig
from asdflow.synth.dcase import SECTION, DcaseClip, plan_dcase, plan_train_anomalies, render_dcase_clip
from asdflow.synth.external import (
    AUDIOSET_CLASSES,
    POOL_CATEGORIES,
    SEGMENT_LISTS,
    PoolClip,
    plan_pool,
    render_pool_clip,
)
from asdflow.synth.machines import max_attributes

__all__ = ["generate", "SUMMARY_NAME", "TRAIN_ANOMALIES_NAME"]

SUMMARY_NAME = "synth_summary.json"
TRAIN_ANOMALIES_NAME = "train_anomalies.csv"
_MARKER = ".asdflow-synth"
_TRUTH_COLUMNS = ("dataset", "machine", "split", "file_name", "domain", "label", "anomaly_kind", "attributes", "snr_db")


def _write_rows(path: Path, rows: Iterable[Iterable[Any]]) -> None:
    """Plain CSV with ``\\n`` line ends (no quoting unless needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def _prepare(out_dir: Path) -> None:
    """Create ``out_dir``; clear a previous synth output there, refuse to touch anything else."""
    out_dir.mkdir(parents=True, exist_ok=True)
    owned = (out_dir / _MARKER).exists()
    for sub in ("dcase", "audioset", "train_anomalies"):
        d = out_dir / sub
        if d.exists() and any(d.iterdir()):
            if not owned:
                raise FileExistsError(f"{d} exists and was not written by asdflow.synth; use an empty output folder")
            shutil.rmtree(d)
    (out_dir / SUMMARY_NAME).unlink(missing_ok=True)
    (out_dir / TRAIN_ANOMALIES_NAME).unlink(missing_ok=True)
    (out_dir / _MARKER).write_text("written by asdflow.synth: dcase/ and audioset/ are replaced on every run\n")


def _machine_dir(dcase_root: Path, dataset: str, machine: str) -> Path:
    return dcase_root / dataset / "raw" / machine


def _write_attributes(dcase_root: Path, clips: list[DcaseClip]) -> None:
    """``attributes_00.csv`` per (dataset, machine): train then test rows (eval: train only)."""
    width = max_attributes()
    header = ["file_name"] + [f"d{i}{s}" for i in range(1, width + 1) for s in ("p", "v")]
    groups: dict[tuple[str, str], list[DcaseClip]] = {}
    for c in clips:
        if c.hidden_index is None:
            groups.setdefault((c.dataset, c.machine), []).append(c)
    for (dataset, machine), members in groups.items():
        rows = [header]
        for c in sorted(members, key=lambda c: (c.split != "train", c.file_name)):
            cells = [x for pair in c.attrs for x in pair]
            rows.append([c.rel_path] + cells + [""] * (2 * width - len(cells)))
        _write_rows(_machine_dir(dcase_root, dataset, machine) / f"attributes_{SECTION}.csv", rows)


def _write_truth(path: Path, clips: list[DcaseClip]) -> None:
    rows = [_TRUTH_COLUMNS] + [
        (
            c.dataset,
            c.machine,
            c.split,
            c.file_name,
            c.domain,
            c.label,
            c.fault or "none",
            c.attr_tail,
            f"{c.snr_db:.2f}",
        )
        for c in clips
    ]
    _write_rows(path, rows)


def _write_ground_truth(root: Path, clips: list[DcaseClip]) -> None:
    """The official evaluator's files for eval test clips: no header, sorted by hidden name."""
    hidden = [c for c in clips if c.hidden_index is not None]
    for machine in sorted({c.machine for c in hidden}):
        members = sorted((c for c in hidden if c.machine == machine), key=lambda c: c.file_name)
        name = f"ground_truth_{machine}_section_{SECTION}_test.csv"
        _write_rows(root / "ground_truth_data" / name, [(c.file_name, int(c.label == "anomaly")) for c in members])
        _write_rows(root / "ground_truth_domain" / name, [(c.file_name, int(c.domain == "target")) for c in members])
        _write_rows(
            root / "ground_truth_attributes" / name, [(c.file_name, c.labelled_name[: -len(".wav")]) for c in members]
        )


def _write_labels(path: Path) -> None:
    """``class_labels_indices.csv`` in the official style (display names always quoted)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["index,mid,display_name"] + [f'{i},{mid},"{name}"' for i, (mid, name) in enumerate(AUDIOSET_CLASSES)]
    path.write_text("\n".join(lines) + "\n")


def _write_segments(path: Path, clips: list[PoolClip], seconds: float, seed: int) -> None:
    """A segments list in the official format: 3 ``#`` lines, ``", "`` separators, quoted mids."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mids = [m for c in clips for m in c.labels]
    lines = [
        f"# Segments csv created by asdflow.synth, seed {seed}",
        f"# num_ytids={len(clips)}, num_segs={len(clips)}, num_unique_labels={len(set(mids))}, "
        f"num_positive_labels={len(mids)}",
        "# YTID, start_seconds, end_seconds, positive_labels",
    ]
    lines += [f'{c.ytid}, {c.start:.3f}, {c.start + seconds:.3f}, "{",".join(c.labels)}"' for c in clips]
    path.write_text("\n".join(lines) + "\n")


def _write_pool_truth(path: Path, clips: list[PoolClip]) -> None:
    """What every listed pool clip really is: its category and whether that is machine-like."""
    rows = [("ytid", "file_name", "category", "machine_like")] + [
        (c.ytid, c.file_name, c.category, str(POOL_CATEGORIES[c.category].machine_like).lower()) for c in clips
    ]
    _write_rows(path, rows)


def _counts(clips: list[DcaseClip]) -> dict[str, Any]:
    """dataset → machine → split → ``<domain>_<label>`` → count (eval test counted by true labels)."""
    out: dict[str, Any] = {}
    for c in clips:
        cell = out.setdefault(c.dataset, {}).setdefault(c.machine, {}).setdefault(c.split, {})
        key = f"{c.domain}_{c.label}"
        cell[key] = cell.get(key, 0) + 1
    return out


def _anomaly_kinds(clips: list[DcaseClip]) -> dict[str, Any]:
    """dataset → machine → anomaly kind → count of test clips."""
    out: dict[str, Any] = {}
    for c in clips:
        if c.fault:
            kinds = out.setdefault(c.dataset, {}).setdefault(c.machine, {})
            kinds[c.fault] = kinds.get(c.fault, 0) + 1
    return out


def _write_clip(job: tuple[Path, Callable[[], np.ndarray], int]) -> None:
    """Render one clip and write it as 16-bit PCM WAV."""
    path, render, sr = job
    sf.write(path, render(), sr, subtype="PCM_16")


def generate(out_dir: Path, cfg: SynthConfig, progress: bool = False, workers: int = 1) -> dict[str, Any]:
    """Write the synthetic DCASE-layout data and AudioSet-layout pool under ``out_dir``.

    ``workers`` > 1 renders clips in that many processes; the bytes written do not depend on it
    (every clip has its own seed).

    Returns (and writes as ``synth_summary.json``) a summary: counts per dataset/machine/split/
    cell, anomaly kinds, external-pool counts (incl. the listed clips without audio), and the
    paths ``dcase_root``, ``segments``, ``labels``, ``audio_dirs``, ``eval_ground_truth``, ``truth``,
    ``pool_truth``.
    A previous synth output in ``out_dir`` is replaced; other existing data makes it refuse.
    """
    out_dir = Path(out_dir)
    _prepare(out_dir)
    dcase_root = out_dir / "dcase"
    audioset_root = out_dir / "audioset"
    clips = plan_dcase(cfg)
    pool = plan_pool(cfg)

    jobs: list[tuple[Path, Callable[[], np.ndarray], int]] = []
    for c in clips:
        path = _machine_dir(dcase_root, c.dataset, c.machine) / c.split / c.file_name
        jobs.append((path, partial(render_dcase_clip, c, cfg), cfg.sample_rate))
    anomalies = plan_train_anomalies(cfg)
    anomaly_paths = [Path("train_anomalies") / c.machine / c.file_name for c in anomalies]
    for c, rel in zip(anomalies, anomaly_paths):
        jobs.append((out_dir / rel, partial(render_dcase_clip, c, cfg), cfg.sample_rate))
    audio_dirs = [audioset_root / "audio" / name for name in SEGMENT_LISTS]
    for p in pool:
        if p.has_audio:
            path = audioset_root / "audio" / p.segments / p.file_name
            jobs.append((path, partial(render_pool_clip, p, cfg), cfg.external_sample_rate))
    for d in {path.parent for path, _, _ in jobs} | set(audio_dirs):
        d.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(jobs), desc="synth", unit="clip", disable=not progress)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool_exec:
            for _ in pool_exec.map(_write_clip, jobs, chunksize=16):
                bar.update()
    else:
        for job in jobs:
            _write_clip(job)
            bar.update()
    bar.close()

    _write_attributes(dcase_root, clips)
    truth = dcase_root / "truth.csv"
    _write_truth(truth, clips)
    ground_truth = dcase_root / "eval_ground_truth" if cfg.eval else None
    if ground_truth is not None:
        _write_ground_truth(ground_truth, clips)
    labels = audioset_root / "class_labels_indices.csv"
    _write_labels(labels)
    segments = [audioset_root / "metadata" / f"{name}.csv" for name in SEGMENT_LISTS]
    for name, path in zip(SEGMENT_LISTS, segments):
        _write_segments(path, [p for p in pool if p.segments == name], cfg.external_seconds, cfg.seed)

    pool_truth = audioset_root / "pool_truth.csv"
    _write_pool_truth(pool_truth, pool)
    train_anomalies = out_dir / TRAIN_ANOMALIES_NAME
    _write_rows(train_anomalies, [("machine", "path", "anomaly_kind")]
                + [(c.machine, rel.as_posix(), c.fault) for c, rel in zip(anomalies, anomaly_paths)])

    missing = [p for p in pool if not p.has_audio]
    summary: dict[str, Any] = {
        "generator": "asdflow.synth",
        "config": cfg.to_dict(),
        "dcase_root": str(dcase_root),
        "datasets": sorted({c.dataset for c in clips}),
        "machines": list(cfg.machines),
        "sample_rate": cfg.sample_rate,
        "clip_seconds": cfg.clip_seconds,
        "counts": _counts(clips),
        "anomaly_kinds": _anomaly_kinds(clips),
        "truth": str(truth),
        "eval_ground_truth": str(ground_truth) if ground_truth is not None else None,
        "labels": str(labels),
        "pool_truth": str(pool_truth),
        "train_anomalies": str(train_anomalies),
        "n_train_anomalies": {m: sum(c.machine == m for c in anomalies) for m in cfg.machines},
        "segments": [str(p) for p in segments],
        "audio_dirs": [str(d) for d in audio_dirs],
        "external": {
            "sample_rate": cfg.external_sample_rate,
            "clip_seconds": cfg.external_seconds,
            "listed": len(pool),
            "with_audio": len(pool) - len(missing),
            "missing": len(missing),
            "missing_ytids": [p.ytid for p in missing],
            "per_list": {
                name: {
                    "listed": sum(p.segments == name for p in pool),
                    "missing": sum(p.segments == name and not p.has_audio for p in pool),
                }
                for name in SEGMENT_LISTS
            },
            "machine_like": sum(POOL_CATEGORIES[p.category].machine_like for p in pool),
            "per_category": dict(sorted(Counter(p.category for p in pool).items())),
        },
    }
    (out_dir / SUMMARY_NAME).write_text(json.dumps(summary, indent=2) + "\n")
    return summary
