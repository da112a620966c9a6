"""Built-in synthetic data (asdflow.synth): formats, counts, determinism, audio, and that the
data carry a learnable but non-trivial anomaly signal. Everything runs on the tiny preset."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from asdflow.synth import SynthConfig, generate
from asdflow.synth.dcase import DcaseClip, render_dcase_clip
from asdflow.synth.external import AUDIOSET_CLASSES, POOL_CATEGORIES
from asdflow.synth.machines import MACHINE_TYPES

LABELLED = re.compile(
    r"^section_00_(?P<domain>source|target)_(?P<split>train|test)_(?P<label>normal|anomaly)_(?P<index>\d{4})_"
    r"(?P<attrs>[A-Za-z0-9.-]+_[A-Za-z0-9.-]+(?:_[A-Za-z0-9.-]+_[A-Za-z0-9.-]+)*)\.wav$"
)
HIDDEN = re.compile(r"^section_00_(?P<index>\d{4})\.wav$")
SEGMENT_ROW = re.compile(
    r'^(?P<ytid>[A-Za-z0-9_-]{11}), (\d+\.\d{3}), (\d+\.\d{3}), "(?P<mids>/[mt]/[a-z0-9_]+(?:,/[mt]/[a-z0-9_]+)*)"$'
)
COUNTS_LINE = re.compile(r"^# num_ytids=(\d+), num_segs=(\d+), num_unique_labels=(\d+), num_positive_labels=(\d+)$")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthConfig, dict]:
    cfg = SynthConfig.from_preset("tiny")
    out = tmp_path_factory.mktemp("tiny")
    return out, cfg, generate(out, cfg)


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthConfig, dict]:
    """Another seed, a one-attribute machine, 10 target train clips and the eval set."""
    cfg = SynthConfig.from_preset("tiny", seed=1, machines=("ToyCar", "valve"), n_target_train=10, eval=True)
    out = tmp_path_factory.mktemp("other")
    return out, cfg, generate(out, cfg)


def _wavs(root: Path) -> list[Path]:
    return sorted(root.rglob("*.wav"))


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "synth_summary.json"
    }


def _features(x: np.ndarray, sr: int = 16000, nfft: int = 1024, hop: int = 512, n_bands: int = 40) -> np.ndarray:
    """Mean and std over time of log energies in log-spaced bands."""
    x = x.astype(float) / 32768.0
    frames = np.lib.stride_tricks.sliding_window_view(x, nfft)[::hop] * np.hanning(nfft)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    f = np.fft.rfftfreq(nfft, 1.0 / sr)
    edges = np.geomspace(50.0, sr / 2, n_bands + 1)
    bands = np.stack([power[:, (f >= lo) & (f < hi)].sum(1) for lo, hi in zip(edges[:-1], edges[1:])], 1)
    logb = np.log(bands + 1e-10)
    return np.concatenate([logb.mean(0), logb.std(0)])


# --------------------------------------------------------------------------- config


def test_presets_and_overrides() -> None:
    tiny = SynthConfig.from_preset("tiny")
    demo = SynthConfig.from_preset("demo")
    assert tiny.preset == "tiny" and demo.preset == "demo"
    assert len(demo.machines) >= 4 and demo.n_target_train == 10
    cfg = SynthConfig.from_preset("tiny", seed=7, machines=["valve", "slider"], snr_db=[0, 5])
    assert cfg.seed == 7 and cfg.machines == ("valve", "slider") and cfg.snr_db == (0.0, 5.0)
    with pytest.raises(ValueError, match="tiny"):
        SynthConfig.from_preset("huge")
    with pytest.raises(ValueError, match="no_such_field"):
        SynthConfig.from_preset("tiny", no_such_field=1)
    with pytest.raises(ValueError, match="unknown"):
        SynthConfig.from_preset("tiny", machines=("Fan",))
    with pytest.raises(ValueError):
        SynthConfig.from_preset("tiny", snr_db=(5, 0))


# --------------------------------------------------------------------------- DCASE layout


def test_dcase_layout_and_names(tiny: tuple[Path, SynthConfig, dict]) -> None:
    out, cfg, summary = tiny
    raw = out / "dcase" / "dev_data" / "raw"
    assert summary["dcase_root"] == str(out / "dcase")
    assert sorted(p.name for p in raw.iterdir()) == sorted(cfg.machines)  # mixed case kept
    assert not (out / "dcase" / "eval_data").exists() and summary["eval_ground_truth"] is None
    for mdir in raw.iterdir():
        assert sorted(p.name for p in mdir.iterdir()) == ["attributes_00.csv", "test", "train"]
        for split in ("train", "test"):
            for wav in (mdir / split).iterdir():
                m = LABELLED.match(wav.name)
                assert m, wav.name
                assert m["split"] == split
                if split == "train":
                    assert m["label"] == "normal"
                keys = m["attrs"].split("_")[::2]
                assert keys == [a.key for a in MACHINE_TYPES[mdir.name].attributes]


def test_attributes_csv_matches_files(
    tiny: tuple[Path, SynthConfig, dict], other: tuple[Path, SynthConfig, dict]
) -> None:
    for out, cfg, _ in (tiny, other):
        for machine in cfg.machines:
            mdir = out / "dcase" / "dev_data" / "raw" / machine
            with open(mdir / "attributes_00.csv", newline="") as fh:
                rows = list(csv.reader(fh))
            assert rows[0] == ["file_name", "d1p", "d1v", "d2p", "d2v"]
            files = {f"{machine}/{p.parent.name}/{p.name}" for p in mdir.glob("*/*.wav")}
            assert {r[0] for r in rows[1:]} == files and len(rows) - 1 == len(files)
            for r in rows[1:]:
                assert len(r) == 5
                tail = LABELLED.match(r[0].split("/")[-1])["attrs"].split("_")
                pairs = [x for x in r[1:] if x]
                assert pairs == tail
                if len(MACHINE_TYPES[machine].attributes) == 1:
                    assert r[3:] == ["", ""]  # trailing cells empty
    valve = (other[0] / "dcase/dev_data/raw/valve/attributes_00.csv").read_text().splitlines()
    assert valve[1].endswith(",,")


def test_counts_per_cell(tiny: tuple[Path, SynthConfig, dict], other: tuple[Path, SynthConfig, dict]) -> None:
    for out, cfg, summary in (tiny, other):
        for machine in cfg.machines:
            mdir = out / "dcase" / "dev_data" / "raw" / machine
            cells: dict[tuple[str, str, str], list[int]] = {}
            for wav in mdir.glob("*/*.wav"):
                m = LABELLED.match(wav.name)
                cells.setdefault((m["split"], m["domain"], m["label"]), []).append(int(m["index"]))
            expected = {
                ("train", "source", "normal"): cfg.n_source_train,
                ("train", "target", "normal"): cfg.n_target_train,
                **{
                    ("test", d, lab): cfg.n_test_per_cell for d in ("source", "target") for lab in ("normal", "anomaly")
                },
            }
            assert {k: len(v) for k, v in cells.items()} == expected
            for idx in cells.values():
                assert sorted(idx) == list(range(len(idx)))  # NNNN runs 0000.. per cell
            counts = summary["counts"]["dev_data"][machine]
            assert counts["train"] == {"source_normal": cfg.n_source_train, "target_normal": cfg.n_target_train}
            assert sum(counts["test"].values()) == 4 * cfg.n_test_per_cell
    assert other[1].n_target_train == 10
    assert len(list((other[0] / "dcase/dev_data/raw/valve/train").glob("section_00_target_train_*"))) == 10


def test_domain_shift_attribute(tiny: tuple[Path, SynthConfig, dict]) -> None:
    """Target clips use values of the first attribute that the source domain never has."""
    out, cfg, _ = tiny
    for machine in cfg.machines:
        values: dict[str, set[str]] = {"source": set(), "target": set()}
        for wav in (out / "dcase/dev_data/raw" / machine).glob("*/*.wav"):
            m = LABELLED.match(wav.name)
            values[m["domain"]].add(m["attrs"].split("_")[1])
        assert values["target"] and not values["target"] & values["source"]


def test_truth_csv(tiny: tuple[Path, SynthConfig, dict]) -> None:
    out, cfg, summary = tiny
    truth = pd.read_csv(out / "dcase" / "truth.csv", dtype=str, keep_default_na=False)
    assert summary["truth"] == str(out / "dcase" / "truth.csv")
    assert list(truth.columns)[:8] == [
        "dataset",
        "machine",
        "split",
        "file_name",
        "domain",
        "label",
        "anomaly_kind",
        "attributes",
    ]
    assert len(truth) == len(_wavs(out / "dcase"))
    for r in truth.itertuples():
        assert (out / "dcase" / r.dataset / "raw" / r.machine / r.split / r.file_name).is_file()
        assert r.file_name.endswith(f"_{r.attributes}.wav")
        assert (r.anomaly_kind == "none") == (r.label == "normal")
    for machine in cfg.machines:
        kinds = set(truth[(truth.machine == machine) & (truth.label == "anomaly")].anomaly_kind)
        assert kinds <= set(MACHINE_TYPES[machine].anomalies)
        if 2 * cfg.n_test_per_cell >= len(MACHINE_TYPES[machine].anomalies):
            assert kinds == set(MACHINE_TYPES[machine].anomalies)
        assert summary["anomaly_kinds"]["dev_data"][machine] == dict(
            Counter(truth[truth.machine == machine].anomaly_kind[lambda s: s != "none"])
        )


def test_eval_set_and_ground_truth(other: tuple[Path, SynthConfig, dict]) -> None:
    out, cfg, summary = other
    gt_root = out / "dcase" / "eval_ground_truth"
    assert summary["eval_ground_truth"] == str(gt_root)
    truth = pd.read_csv(out / "dcase" / "truth.csv", dtype=str, keep_default_na=False)
    for machine in cfg.machines:
        mdir = out / "dcase" / "eval_data" / "raw" / machine
        test_names = sorted(p.name for p in (mdir / "test").iterdir())
        assert all(HIDDEN.match(n) for n in test_names)
        assert test_names == [f"section_00_{i:04d}.wav" for i in range(4 * cfg.n_test_per_cell)]
        assert all(LABELLED.match(p.name) for p in (mdir / "train").iterdir())
        with open(mdir / "attributes_00.csv", newline="") as fh:
            listed = {r[0] for r in list(csv.reader(fh))[1:]}
        assert listed == {f"{machine}/train/{p.name}" for p in (mdir / "train").iterdir()}  # train only
        name = f"ground_truth_{machine}_section_00_test.csv"
        sub = truth[(truth.dataset == "eval_data") & (truth.machine == machine) & (truth.split == "test")]
        expect_label = {r.file_name: str(int(r.label == "anomaly")) for r in sub.itertuples()}
        expect_domain = {r.file_name: str(int(r.domain == "target")) for r in sub.itertuples()}
        for kind, expect in (("ground_truth_data", expect_label), ("ground_truth_domain", expect_domain)):
            lines = (gt_root / kind / name).read_text().splitlines()
            rows = [line.split(",") for line in lines]
            assert [r[0] for r in rows] == test_names  # no header, sorted by hidden name
            assert dict(rows) == expect
        attrs = dict(line.split(",") for line in (gt_root / "ground_truth_attributes" / name).read_text().splitlines())
        for hidden, labelled in attrs.items():
            m = LABELLED.match(labelled + ".wav")
            assert m and m["split"] == "test"
            assert str(int(m["label"] == "anomaly")) == expect_label[hidden]


# --------------------------------------------------------------------------- AudioSet layout


def test_segments_and_labels_csv(tiny: tuple[Path, SynthConfig, dict]) -> None:
    out, cfg, summary = tiny
    labels_path = out / "audioset" / "class_labels_indices.csv"
    assert summary["labels"] == str(labels_path)
    lines = labels_path.read_text().splitlines()
    assert lines[0] == "index,mid,display_name"
    assert all(re.match(r'^\d+,/[mt]/[a-z0-9_]+,".+"$', line) for line in lines[1:])
    with open(labels_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["index"]) for r in rows] == list(range(len(rows)))
    names = {r["mid"]: r["display_name"] for r in rows}
    assert names["/m/02x984l"] == "Mechanical fan" and names["/m/07ptzwd"] == "Pump (liquid)"
    assert names["/m/05zppz"] == "Male speech, man speaking"  # quoted comma survives
    assert [Path(p).name for p in summary["segments"]] == ["balanced_train_segments.csv", "eval_segments.csv"]
    ytids: list[str] = []
    n_multi = 0
    for seg in summary["segments"]:
        text = Path(seg).read_text().splitlines()
        assert text[0].startswith("# Segments csv created")
        assert text[2] == "# YTID, start_seconds, end_seconds, positive_labels"
        counts = COUNTS_LINE.match(text[1])
        body = text[3:]
        mids = []
        for line in body:
            m = SEGMENT_ROW.match(line)
            assert m, line
            row = next(csv.reader([line], skipinitialspace=True))
            assert len(row) == 4 and row[0] == m["ytid"] and row[3] == m["mids"]
            assert float(row[2]) - float(row[1]) == pytest.approx(cfg.external_seconds)
            mids += row[3].split(",")
            n_multi += "," in row[3]
            ytids.append(row[0])
        assert [int(g) for g in counts.groups()] == [len(body), len(body), len(set(mids)), len(mids)]
        assert set(mids) <= set(names)
    assert len(ytids) == cfg.n_external == len(set(ytids))
    assert any(y.startswith("-") for y in ytids)
    assert n_multi > 0


def test_missing_pool_audio(tiny: tuple[Path, SynthConfig, dict]) -> None:
    out, cfg, summary = tiny
    ext = summary["external"]
    assert ext["listed"] == cfg.n_external
    assert ext["missing"] >= 1 and ext["missing"] == len(ext["missing_ytids"])
    assert ext["with_audio"] + ext["missing"] == ext["listed"]
    assert ext["machine_like"] == sum(n for c, n in ext["per_category"].items() if POOL_CATEGORIES[c].machine_like)
    on_disk = {p.stem for d in summary["audio_dirs"] for p in Path(d).iterdir()}
    assert len(on_disk) == ext["with_audio"]
    for seg, audio_dir in zip(summary["segments"], summary["audio_dirs"]):
        listed = [line.split(",")[0] for line in Path(seg).read_text().splitlines()[3:]]
        present = {p.name for p in Path(audio_dir).iterdir()}
        for ytid in listed:
            assert (f"Y{ytid}.wav" in present) != (ytid in ext["missing_ytids"])


# --------------------------------------------------------------------------- audio


def test_audio_properties(tiny: tuple[Path, SynthConfig, dict]) -> None:
    out, cfg, summary = tiny
    for wav in _wavs(out / "dcase"):
        info = sf.info(wav)
        assert (info.samplerate, info.channels, info.subtype, info.format) == (16000, 1, "PCM_16", "WAV")
        assert info.frames == int(cfg.clip_seconds * 16000)
    for d in summary["audio_dirs"]:
        for wav in Path(d).iterdir():
            assert wav.name.startswith("Y") and wav.suffix == ".wav"
            info = sf.info(wav)
            assert (info.samplerate, info.channels, info.subtype) == (32000, 1, "PCM_16")
            assert info.frames == int(cfg.external_seconds * 32000)
    for wav in _wavs(out)[::7]:
        x, _ = sf.read(wav, dtype="int16")
        assert 100 < np.sqrt(np.mean(x.astype(float) ** 2)) and np.abs(x).max() < 32767


# --------------------------------------------------------------------------- determinism


def test_deterministic_per_seed(
    tiny: tuple[Path, SynthConfig, dict], other: tuple[Path, SynthConfig, dict], tmp_path: Path
) -> None:
    out, cfg, summary = tiny
    again = generate(tmp_path, cfg)
    assert _hashes(tmp_path) == _hashes(out)
    strip = lambda s: {
        k: v for k, v in s.items()
        if k not in {"dcase_root", "truth", "labels", "segments", "audio_dirs", "pool_truth", "train_anomalies"}
    }
    assert strip(again) == strip(summary)
    assert json.loads((tmp_path / "synth_summary.json").read_text()) == again
    wav_hashes = lambda root: {h for p, h in _hashes(root).items() if p.endswith(".wav")}
    assert not wav_hashes(out) & wav_hashes(other[0])  # another seed: every clip differs


def test_workers_and_rerun_give_same_bytes(tmp_path: Path) -> None:
    cfg = SynthConfig.from_preset("tiny", n_source_train=2, n_target_train=1, n_test_per_cell=1, n_external=6)
    generate(tmp_path / "a", cfg)
    generate(tmp_path / "b", cfg, workers=2)
    assert _hashes(tmp_path / "a") == _hashes(tmp_path / "b")
    generate(
        tmp_path / "a", SynthConfig.from_preset("tiny", n_source_train=1, n_target_train=1, n_test_per_cell=1, n_external=2)
    )
    assert len(list((tmp_path / "a/dcase/dev_data/raw/fan/train").iterdir())) == 2  # old clips replaced
    foreign = tmp_path / "c"
    (foreign / "dcase").mkdir(parents=True)
    (foreign / "dcase" / "mine.txt").write_text("not synth output")
    with pytest.raises(FileExistsError):
        generate(foreign, cfg)


def test_render_does_not_depend_on_order() -> None:
    cfg = SynthConfig.from_preset("tiny")
    clips = [
        DcaseClip("dev_data", "fan", "test", "source", "anomaly", i, (("model", "M2"), ("load", "L1")), "bearing", 3.0)
        for i in range(3)
    ]
    first = [render_dcase_clip(c, cfg) for c in clips]
    backwards = [render_dcase_clip(c, cfg) for c in reversed(clips)][::-1]
    assert all(np.array_equal(a, b) for a, b in zip(first, backwards))


# --------------------------------------------------------------------------- learnable signal


def test_anomalies_are_measurable_but_subtle() -> None:
    """Anomalous clips lie farther from normal clips (same attributes, 10 dB SNR) than normal
    clips do, for each machine type; but not every kind stands out (they are subtle)."""
    cfg = SynthConfig.from_preset("tiny")
    for machine in cfg.machines:
        mtype = MACHINE_TYPES[machine]
        attrs = tuple((a.key, a.source[0]) for a in mtype.attributes)

        def feats(label: str, kind: str | None, start: int, count: int) -> np.ndarray:
            clips = [
                DcaseClip("dev_data", machine, "test", "source", label, i, attrs, kind, 10.0)
                for i in range(start, start + count)
            ]
            return np.stack([_features(render_dcase_clip(c, cfg)) for c in clips])

        ref = feats("normal", None, 100, 8)
        mu, sd = ref.mean(0), ref.std(0) + 1e-3
        dist = lambda f: np.sqrt((((f - mu) / sd) ** 2).mean(1))
        normal = dist(feats("normal", None, 0, 6)).mean()
        per_kind = {k: dist(feats("anomaly", k, 0, 6)).mean() for k in mtype.anomalies}
        assert np.mean(list(per_kind.values())) > 1.1 * normal, (machine, normal, per_kind)
        assert sum(v > normal for v in per_kind.values()) >= len(per_kind) / 2
        assert min(per_kind.values()) < 5 * normal  # no anomaly kind is blatant


def test_machine_types_are_distinguishable() -> None:
    """At 10 dB SNR, leave-one-out 1-NN on simple spectral features tells all six machine types
    apart, across both domains (whose backgrounds differ)."""
    cfg = SynthConfig.from_preset("tiny", machines=tuple(MACHINE_TYPES))
    feats, names = [], []
    for machine, mtype in MACHINE_TYPES.items():
        for domain in ("source", "target"):
            values = [a.source if domain == "source" else a.target for a in mtype.attributes]
            for i in range(8):
                attrs = tuple((a.key, v[i % len(v)]) for a, v in zip(mtype.attributes, values))
                clip = DcaseClip("dev_data", machine, "train", domain, "normal", i, attrs, None, 10.0)
                feats.append(_features(render_dcase_clip(clip, cfg)))
                names.append(machine)
    x = np.stack(feats)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    y = np.array(names)
    assert (y[d.argmin(1)] == y).mean() >= 0.9


def test_pool_has_machine_like_and_unrelated_clips(tiny: tuple[Path, SynthConfig, dict]) -> None:
    _, cfg, summary = tiny
    ext = summary["external"]
    assert 0 < ext["machine_like"] < ext["listed"]
    assert ext["machine_like"] == round(cfg.n_external * cfg.external_machine_fraction)
    used = {mid for c in POOL_CATEGORIES.values() for labels in c.labels for mid in labels}
    assert used <= {mid for mid, _ in AUDIOSET_CLASSES}


def test_train_anomalies_are_outside_the_dcase_tree_and_new_clips(tiny: tuple[Path, SynthConfig, dict],
                                                                   tmp_path: Path) -> None:
    """A few anomalous training clips (Serial-OE's "few real anomalies"): listed in
    train_anomalies.csv, written outside dcase/ (no system trains on them unless given the list),
    not copies of any test clip; without them the DCASE files are byte-identical."""
    out, cfg, summary = tiny
    assert cfg.n_train_anomalies == 2
    listed = pd.read_csv(out / "train_anomalies.csv", dtype=str)
    assert summary["train_anomalies"] == str(out / "train_anomalies.csv")
    assert list(listed.columns) == ["machine", "path", "anomaly_kind"]
    assert listed.groupby("machine").size().to_dict() == {m: 2 for m in cfg.machines}
    assert summary["n_train_anomalies"] == {m: 2 for m in cfg.machines}
    test_hashes = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (out / "dcase").rglob("*.wav")}
    for r in listed.itertuples():
        path = out / r.path
        assert path.is_file() and r.path.startswith(f"train_anomalies/{r.machine}/")
        m = LABELLED.match(path.name)
        assert m and m["split"] == "train" and m["label"] == "anomaly" and m["domain"] == "source"
        assert r.anomaly_kind in MACHINE_TYPES[r.machine].anomalies
        assert hashlib.sha256(path.read_bytes()).hexdigest() not in test_hashes
    none = SynthConfig.from_preset("tiny", n_train_anomalies=0)
    generate(tmp_path, none)
    assert pd.read_csv(tmp_path / "train_anomalies.csv").empty
    assert not (tmp_path / "train_anomalies").exists() or not any((tmp_path / "train_anomalies").rglob("*.wav"))
    dcase = lambda root: {p: h for p, h in _hashes(root).items() if p.startswith("dcase/")}  # noqa: E731
    assert dcase(tmp_path) == dcase(out)
