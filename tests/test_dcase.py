"""Tests of asdflow.io.dcase: file-name patterns, layout scan, attributes, ground truth, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asdflow.io.dcase import (
    PATTERNS,
    DcaseLayoutError,
    UnknownFilenameError,
    parse_filename,
    read_attributes_csv,
    scan_dcase,
    split_attr_tail,
    write_dcase_manifest,
)
from asdflow.schemas import read_table

# --------------------------------------------------------------------------- parse_filename

CASES = [
    # name, section, domain, split, label, index, tail, pattern
    # 2020 dev / eval train / relabelled, eval hidden
    ("normal_id_01_00000000.wav", "01", "source", "unknown", "normal", "00000000", "", "dcase2020"),
    ("anomaly_id_05_00000097.wav", "05", "source", "unknown", "anomaly", "00000097", "", "dcase2020"),
    ("id_05_00000000.wav", "05", "source", "test", "unknown", "00000000", "", "dcase2020_hidden"),
    # 2021 dev train (tails of several shapes), dev test without tail, eval hidden with domain
    (
        "section_00_source_train_normal_0000_A1Spd28VMic1.wav",
        "00",
        "source",
        "train",
        "normal",
        "0000",
        "A1Spd28VMic1",
        "labelled",
    ),
    (
        "section_01_target_train_normal_0002_strength_1_ambient.wav",
        "01",
        "target",
        "train",
        "normal",
        "0002",
        "strength_1_ambient",
        "labelled",
    ),
    ("section_00_source_test_normal_0000.wav", "00", "source", "test", "normal", "0000", "", "labelled"),
    ("section_02_target_test_anomaly_0099.wav", "02", "target", "test", "anomaly", "0099", "", "labelled"),
    ("section_03_source_test_0000.wav", "03", "source", "test", "unknown", "0000", "", "hidden_domain"),
    ("section_05_target_test_0199.wav", "05", "target", "test", "unknown", "0199", "", "hidden_domain"),
    # 2022 dev, eval hidden
    (
        "section_00_source_train_normal_0989_car_G2_spd_34V_mic_1_noise_6.wav",
        "00",
        "source",
        "train",
        "normal",
        "0989",
        "car_G2_spd_34V_mic_1_noise_6",
        "labelled",
    ),
    ("section_01_target_test_anomaly_0049_m-n_X.wav", "01", "target", "test", "anomaly", "0049", "m-n_X", "labelled"),
    ("section_03_0199.wav", "03", "unknown", "test", "unknown", "0199", "", "hidden"),
    # 2023
    ("section_00_source_test_anomaly_0005_vel_15.wav", "00", "source", "test", "anomaly", "0005", "vel_15", "labelled"),
    ("section_00_0000.wav", "00", "unknown", "test", "unknown", "0000", "", "hidden"),
    # 2024: noAttribute, 0001 starts, RoboticArm without _test_, slider tail with empty last token
    (
        "section_00_source_train_normal_0001_noAttribute.wav",
        "00",
        "source",
        "train",
        "normal",
        "0001",
        "noAttribute",
        "labelled",
    ),
    ("section_00_0001.wav", "00", "unknown", "test", "unknown", "0001", "", "hidden"),
    ("section_00_0200.wav", "00", "unknown", "test", "unknown", "0200", "", "hidden"),
    (
        "section_00_source_normal_0035_weight15_BckgF",
        "00",
        "source",
        "test",
        "normal",
        "0035",
        "weight15_BckgF",
        "labelled_nosplit",
    ),
    (
        "section_00_target_anomaly_0001_weight15_BckgF.wav",
        "00",
        "target",
        "test",
        "anomaly",
        "0001",
        "weight15_BckgF",
        "labelled_nosplit",
    ),
    (
        "section_00_source_test_normal_0001_ac_0.03_.wav",
        "00",
        "source",
        "test",
        "normal",
        "0001",
        "ac_0.03_",
        "labelled",
    ),
    # 2025: noAttribute, long tails, supplemental in three spellings
    (
        "section_00_target_test_anomaly_0049_noAttribute.wav",
        "00",
        "target",
        "test",
        "anomaly",
        "0049",
        "noAttribute",
        "labelled",
    ),
    (
        "section_00_source_train_normal_0000_mic_imp34dt05_mic_pos_A_grind_100_bkg_A.wav",
        "00",
        "source",
        "train",
        "normal",
        "0000",
        "mic_imp34dt05_mic_pos_A_grind_100_bkg_A",
        "labelled",
    ),
    ("section_00_machine_0001_.wav", "00", "unknown", "supplemental", "unknown", "0001", "", "supplemental"),
    (
        "section_00_source_supplemental_machine_0000.wav",
        "00",
        "source",
        "supplemental",
        "unknown",
        "0000",
        "",
        "supplemental",
    ),
    (
        "section_00_noise_supplemental_normal_0000.wav",
        "00",
        "unknown",
        "supplemental",
        "normal",
        "0000",
        "",
        "supplemental",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_parse_filename_every_year(case):
    name, section, domain, split, label, index, tail, pattern = case
    p = parse_filename(name)
    assert (p.section, p.domain, p.split, p.label, p.file_index, p.attr_tail, p.pattern) == (
        section,
        domain,
        split,
        label,
        index,
        tail,
        pattern,
    )
    assert pattern in PATTERNS


def test_parse_filename_path_and_case_of_extension():
    assert parse_filename("dev_data/fan/train/section_00_0000.WAV").pattern == "hidden"


@pytest.mark.parametrize(
    "name",
    [
        "foo.wav",
        "section_0_0000.wav",
        "section_00_source_train_normal_000.wav",
        "normal_id_01_0000.wav",
        "",
        "section_00_source_train_broken_0000.wav",
    ],
)
def test_parse_filename_unknown_raises(name):
    with pytest.raises(UnknownFilenameError) as exc:
        parse_filename(name)
    assert repr(name) in str(exc.value)


def test_split_attr_tail_best_effort():
    assert split_attr_tail("car_G2_spd_34V_mic_1") == [("car", "G2"), ("spd", "34V"), ("mic", "1")]
    assert split_attr_tail("m-n_X") == [("m-n", "X")]
    assert split_attr_tail("ac_0.03_") == [("ac", "0.03")]
    assert split_attr_tail("noAttribute") == []
    assert split_attr_tail("") == []
    for opaque in ("weight15_BckgF", "A1Spd28VMic1", "strength_1_ambient", "mic_imp34dt05_mic_pos_A"):
        assert split_attr_tail(opaque) == [("attr", opaque)]


def test_read_attributes_csv_variants(tmp_path):
    p = tmp_path / "attributes_00.csv"
    p.write_text(
        "file_name,d1p,d1v,d2p,d2v,file_name_with_full_attributes\n"
        "fan/train/a_0.wav,m-n,W,,,x\n"
        "b_1,vel,8,loc,B,\n"
        "c.wav,noAttribute,,,\n"
        "d.wav,vel,,,\n"
        ",vel,1,,\n"
        "e.wav,vel,1,,,,,\n"
    )
    got, bad = read_attributes_csv(p)
    assert got == {"a_0": [("m-n", "W")], "b_1": [("vel", "8"), ("loc", "B")], "c": []}
    assert sorted(b["line"] for b in bad) == [5, 6, 7]


def test_read_attributes_csv_unterminated_quote_is_reported_with_its_lines(tmp_path):
    """An unterminated quote swallows the rest of the file into one cell: report it, with the
    lines lost, instead of reading ``unterminated,spd,10...`` as a file name."""
    p = tmp_path / "attributes_00.csv"
    p.write_text('file_name,d1p,d1v\na.wav,spd,1\n"unterminated,spd,10\nb.wav,spd,20\nc.wav,spd,30\n')
    lines: dict[str, int] = {}
    got, bad = read_attributes_csv(p, lines)
    assert got == {"a": [("spd", "1")]} and lines == {"a": 2}
    assert len(bad) == 1 and bad[0]["line"] == 3
    assert "unterminated quote" in bad[0]["reason"] and "3-5" in bad[0]["reason"]


def test_scan_reports_attribute_rows_without_clip_and_empty_machine_folders(tmp_path):
    root = tmp_path / "dcase"
    fan = root / "dev_data" / "fan"
    _wav(fan / "train" / "section_00_source_train_normal_0000_vel_1.wav")
    _wav(fan / "test" / "section_00_source_test_normal_0000_vel_1.wav")
    (fan / "attributes_00.csv").write_text(
        "file_name,d1p,d1v\n"
        "fan/train/section_00_source_train_normal_0000_vel_1.wav,vel,1\n"
        "fan/train/section_00_source_train_normal_0099_vel_9.wav,vel,9\n"
    )
    (root / "dev_data" / "pump" / "train").mkdir(parents=True)  # a machine folder with no clips
    (root / "dev_data" / "pump" / "test").mkdir()
    valve = root / "dev_data" / "valve"
    _wav(valve / "test" / "section_00_source_test_normal_0000_pat_1.wav")
    (valve / "train").mkdir()
    df, report = scan_dcase(root, datasets=("dev_data",), hide_attributes=False)
    skips = {s["reason"]: s for s in report["skipped"]}
    row = skips["attributes_row_without_clip"]
    assert row["path"].endswith("fan/attributes_00.csv:3") and "normal_0099_vel_9" in row["detail"]
    assert skips["empty_machine_folder"]["path"].endswith("pump")
    assert report["skip_counts"]["empty_machine_folder"] == 1
    assert any("pump" in w and "without any clip" in w for w in report["warnings"])
    assert any("valve" in w and "no usable training clip" in w for w in report["warnings"])
    assert set(df["machine"]) == {"fan", "valve"}


# --------------------------------------------------------------------------- layout fixture

SR = 16000


def _wav(path: Path, seconds: float = 0.6, sr: int = SR, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(round(seconds * sr))
    data = (np.random.default_rng(0).standard_normal((n, channels)) * 0.01).astype("float32")
    sf.write(str(path), data if channels > 1 else data[:, 0], sr, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    root = tmp_path_factory.mktemp("dcase")
    dev = root / "dev_data" / "raw"
    fan = dev / "fan"
    _wav(fan / "train" / "section_00_source_train_normal_0000_m-n_W.wav")
    _wav(fan / "train" / "section_00_target_train_normal_0000_m-n_X.wav")
    _wav(fan / "train" / "section_00_source_train_normal_0001_m-n_W.wav")  # not in the csv
    _wav(fan / "test" / "section_00_source_test_anomaly_0000_m-n_W.wav")
    _wav(fan / "test" / "section_00_target_test_normal_0000_m-n_X.wav")
    (fan / "attributes_00.csv").write_text(
        "file_name,d1p,d1v\n"
        "fan/train/section_00_source_train_normal_0000_m-n_W.wav,m-n,Wcsv\n"  # prefix + .wav
        "section_00_target_train_normal_0000_m-n_X,m-n,Xcsv\n"  # bare stem
        "section_00_target_test_normal_0000_m-n_X.wav,m-n,Xt\n"  # .wav, no prefix
        "fan/test/section_00_source_test_anomaly_0000_m-n_W.wav,m-n,\n"  # malformed: half pair
    )
    toy = dev / "ToyCar"
    _wav(toy / "train" / "section_00_source_train_normal_0001_noAttribute.wav")
    (toy / "train" / "section_00_source_train_normal_0002_noAttribute.wav").write_bytes(
        np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    )  # corrupt
    _wav(toy / "train" / "section_00_source_train_normal_0003_noAttribute.wav", seconds=0.0)  # empty
    _wav(toy / "train" / "section_00_source_train_normal_0004_noAttribute.wav", seconds=0.1)  # too short
    _wav(toy / "train" / "section_00_source_train_normal_0005_noAttribute.wav", channels=2)  # stereo
    _wav(toy / "train" / "section_00_source_train_normal_0006_noAttribute.wav", sr=44100)  # 44.1 kHz
    _wav(toy / "train" / "notes_about_this_machine.wav")  # unknown name
    (toy / "train" / "readme.txt").write_text("not audio")
    _wav(toy / "supplemental" / "section_00_machine_0001_.wav")
    (toy / "attributes_00.csv").write_text(
        "file_name\nToyCar/train/section_00_source_train_normal_0001_noAttribute.wav\n"
    )
    # eval_data without the raw/ level
    ev = root / "eval_data"
    _wav(ev / "bandsaw" / "train" / "section_00_source_train_normal_0000_vel_15.wav")
    _wav(ev / "bandsaw" / "test" / "section_00_0000.wav")
    _wav(ev / "bandsaw" / "test" / "section_00_0001.wav")
    _wav(ev / "grinder" / "test" / "section_00_0000.wav")
    _wav(ev / "grinder" / "test" / "section_00_0001.wav")
    _wav(ev / "gearbox" / "test" / "section_03_source_test_0000.wav")
    _wav(ev / "gearbox" / "test" / "section_03_target_test_0000.wav")
    _wav(ev / "gearbox" / "test" / "section_03_target_test_0001.wav")  # no ground truth for it
    (ev / "gearbox" / "test_rename").mkdir()
    gt = root / "gt"
    (gt / "ground_truth_data").mkdir(parents=True)
    (gt / "ground_truth_domain").mkdir()
    (gt / "ground_truth_data" / "ground_truth_bandsaw_section_00_test.csv").write_text(
        "section_00_0000.wav,1\nsection_00_0001.wav,0\n"
    )
    (gt / "ground_truth_domain" / "ground_truth_bandsaw_section_00_test.csv").write_text(
        "section_00_0000.wav,1\nsection_00_0001.wav,0\n"
    )
    (gt / "ground_truth_data" / "ground_truth_gearbox_section_03_source_test.csv").write_text(
        "section_03_source_test_0000.wav,1\n"
    )
    (gt / "ground_truth_data" / "ground_truth_gearbox_section_03_target_test.csv").write_text(
        "section_03_target_test_0000.wav,0\n"
    )
    # baseline relabel list (CRLF, machine header lines)
    (gt / "eval_data_list_2023.csv").write_bytes(
        b"grinder\r\n"
        b"section_00_0000.wav,section_00_target_test_anomaly_0003_grindstone_3_plate_3\r\n"
        b"section_00_0001.wav,section_00_source_test_normal_0020_grindstone_1_plate_2\r\n"
    )
    return root


@pytest.fixture(scope="module")
def scanned(layout):
    return scan_dcase(layout, hide_attributes=False, eval_ground_truth=layout / "gt")


def _row(df, clip_id):
    sel = df[df.clip_id == clip_id]
    assert len(sel) == 1, clip_id
    return sel.iloc[0]


def _pairs(structs):
    return [(s["name"], s["value"]) for s in structs]


def test_scan_rows_and_columns(layout, scanned):
    df, report = scanned
    assert list(df.clip_id) == sorted(df.clip_id)
    assert df.clip_id.is_unique
    assert set(df.machine) == {"fan", "ToyCar", "bandsaw", "grinder", "gearbox"}
    assert all(Path(p).is_absolute() and Path(p).exists() for p in df.path)
    r = _row(df, "dev_data/fan/test/section_00_source_test_anomaly_0000_m-n_W")
    assert (r.dataset, r.machine, r.section, r.domain, r.split, r.label, r.file_index, r.name_pattern) == (
        "dev_data",
        "fan",
        "00",
        "source",
        "test",
        "anomaly",
        "0000",
        "labelled",
    )
    assert r.sample_rate == 16000 and r.channels == 1 and r.duration == pytest.approx(0.6)
    sup = _row(df, "dev_data/ToyCar/supplemental/section_00_machine_0001_")
    assert sup.split == "supplemental"
    assert report["n_rows"] == len(df)
    assert report["machines"]["dev_data"]["fan"] == {"train": 3, "test": 2}
    assert report["machines"]["dev_data"]["ToyCar"] == {"train": 3, "supplemental": 1}
    assert (
        report["n_files_seen"] == len(df) + len(report["skipped"]) - report["skip_counts"]["malformed_attributes_row"]
    )
    assert any("test_rename" in w for w in report["warnings"])


def test_scan_attributes_joined_from_csv_or_tail(scanned):
    df, report = scanned
    get = lambda cid: _row(df, cid)  # noqa: E731
    r = get("dev_data/fan/train/section_00_source_train_normal_0000_m-n_W")  # csv row with prefix + .wav
    assert _pairs(r.attributes) == [("m-n", "Wcsv")] and r.attr_string == "m-n=Wcsv"
    assert list(r.hidden_attributes) == []
    assert r.attr_tail == "m-n_W"
    assert get("dev_data/fan/train/section_00_target_train_normal_0000_m-n_X").attr_string == "m-n=Xcsv"  # bare stem
    assert get("dev_data/fan/test/section_00_target_test_normal_0000_m-n_X").attr_string == "m-n=Xt"  # .wav only
    assert get("dev_data/fan/train/section_00_source_train_normal_0001_m-n_W").attr_string == "m-n=W"  # tail fallback
    # malformed csv row: skipped and counted; the clip falls back to its tail
    assert get("dev_data/fan/test/section_00_source_test_anomaly_0000_m-n_W").attr_string == "m-n=W"
    bad = [s for s in report["skipped"] if s["reason"] == "malformed_attributes_row"]
    assert len(bad) == 1 and bad[0]["path"].endswith("fan/attributes_00.csv:5") and "name without value" in bad[0]["detail"]
    # noAttribute is no attributes, not an error
    na = get("dev_data/ToyCar/train/section_00_source_train_normal_0001_noAttribute")
    assert na.attr_tail == "noAttribute" and list(na.attributes) == [] and na.attr_string == ""
    assert report["attribute_sources"]["csv"] == 3


def test_scan_hide_attributes_moves_pairs(layout):
    df, _ = scan_dcase(layout, datasets=("dev_data",), hide_attributes=True)
    assert set(df.dataset) == {"dev_data"}
    assert (df.attr_string == "").all()
    assert all(len(a) == 0 for a in df.attributes)
    r = _row(df, "dev_data/fan/train/section_00_source_train_normal_0000_m-n_W")
    assert _pairs(r.hidden_attributes) == [("m-n", "Wcsv")]


def test_scan_eval_ground_truth_both_formats(scanned):
    df, report = scanned
    get = lambda cid: _row(df, cid)  # noqa: E731
    # evaluator files: label + domain
    a = get("eval_data/bandsaw/test/section_00_0000")
    b = get("eval_data/bandsaw/test/section_00_0001")
    assert (a.label, a.domain, b.label, b.domain) == ("anomaly", "target", "normal", "source")
    assert a.name_pattern == "hidden"
    # baseline relabel list (CRLF)
    g0 = get("eval_data/grinder/test/section_00_0000")
    g1 = get("eval_data/grinder/test/section_00_0001")
    assert (g0.label, g0.domain, g1.label, g1.domain) == ("anomaly", "target", "normal", "source")
    assert g0.attr_string == "grindstone=3,plate=3"  # attributes from the labelled name
    # 2021 per-domain files; domain already visible in the name
    assert get("eval_data/gearbox/test/section_03_source_test_0000").label == "anomaly"
    assert get("eval_data/gearbox/test/section_03_target_test_0000").label == "normal"
    nogt = get("eval_data/gearbox/test/section_03_target_test_0001")
    assert (nogt.label, nogt.domain) == ("unknown", "target")
    assert report["notes"]["eval_test_without_ground_truth"] == 1
    gt = report["ground_truth"]
    assert gt["filled_label"] == 6 and gt["filled_domain"] == 4 and gt["n_unmatched_entries"] == 0
    # train rows are untouched
    assert get("eval_data/bandsaw/train/section_00_source_train_normal_0000_vel_15").attr_string == "vel=15"


def test_scan_without_ground_truth_keeps_unknown(layout):
    df, report = scan_dcase(layout, datasets=("eval_data",), hide_attributes=False, probe_audio=False)
    hidden = df[df.name_pattern == "hidden"]
    assert len(hidden) == 4 and (hidden.label == "unknown").all() and (hidden.domain == "unknown").all()
    assert df.duration.isna().all() and (df.sample_rate == -1).all() and (df.channels == -1).all()
    assert report["ground_truth"] is None


def test_scan_bad_inputs_are_counted_skips(layout, scanned):
    _, report = scanned
    toy = layout / "dev_data" / "raw" / "ToyCar" / "train"
    by_reason = {}
    for s in report["skipped"]:
        by_reason.setdefault(s["reason"], []).append(s["path"])
    assert by_reason["unreadable_audio"] == [str(toy / "section_00_source_train_normal_0002_noAttribute.wav")]
    assert by_reason["empty_audio"] == [str(toy / "section_00_source_train_normal_0003_noAttribute.wav")]
    assert by_reason["too_short"] == [str(toy / "section_00_source_train_normal_0004_noAttribute.wav")]
    assert by_reason["unknown_name"] == [str(toy / "notes_about_this_machine.wav")]
    assert report["skip_counts"] == {
        "empty_audio": 1,
        "malformed_attributes_row": 1,
        "too_short": 1,
        "unknown_name": 1,
        "unreadable_audio": 1,
    }
    json.dumps(report)  # serialisable


def test_scan_stereo_and_44k_kept_with_warnings(layout, scanned):
    df, report = scanned
    toy = layout / "dev_data" / "raw" / "ToyCar" / "train"
    st = _row(df, "dev_data/ToyCar/train/section_00_source_train_normal_0005_noAttribute")
    hi = _row(df, "dev_data/ToyCar/train/section_00_source_train_normal_0006_noAttribute")
    assert st.channels == 2 and hi.sample_rate == 44100
    assert report["notes"]["multichannel"] == 1 and report["notes"]["sample_rate_not_16000"] == 1
    assert any(str(toy / "section_00_source_train_normal_0005_noAttribute.wav") in w for w in report["warnings"])
    assert any(str(toy / "section_00_source_train_normal_0006_noAttribute.wav") in w for w in report["warnings"])


def test_min_seconds_parameter(layout):
    df, report = scan_dcase(layout, datasets=("dev_data",), hide_attributes=False, min_seconds=0.05)
    assert "too_short" not in report["skip_counts"]
    assert "dev_data/ToyCar/train/section_00_source_train_normal_0004_noAttribute" in set(df.clip_id)


def test_scan_2020_layout_with_relabel_list(tmp_path):
    root = tmp_path / "d2020"
    _wav(root / "dev_data" / "fan" / "train" / "normal_id_00_00000000.wav")
    _wav(root / "dev_data" / "fan" / "test" / "anomaly_id_00_00000000.wav")
    _wav(root / "eval_data" / "fan" / "test" / "id_01_00000000.wav")
    _wav(root / "eval_data" / "fan" / "test" / "id_01_00000001.wav")
    lst = tmp_path / "eval_data_list_2020.csv"
    lst.write_text(
        "fan\nid_01_00000000.wav,anomaly_id_01_00000012.wav,1\nid_01_00000001.wav,normal_id_01_00000087.wav,0\n"
    )
    df, report = scan_dcase(root, hide_attributes=True, eval_ground_truth=lst)
    assert list(df.label) == ["anomaly", "normal", "anomaly", "normal"]
    assert list(df.split) == ["test", "train", "test", "test"]
    assert set(df.domain) == {"source"} and set(df.section) == {"00", "01"}
    assert report["ground_truth"]["filled_label"] == 2


def test_layout_errors_are_clear(tmp_path):
    with pytest.raises(DcaseLayoutError, match="does not exist"):
        scan_dcase(tmp_path / "nope", hide_attributes=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DcaseLayoutError) as exc:
        scan_dcase(empty, hide_attributes=True)
    msg = str(exc.value)
    assert str(empty) in msg and "dev_data" in msg and "<machine>" in msg
    (empty / "dev_data" / "raw" / "fan" / "train").mkdir(parents=True)
    with pytest.raises(DcaseLayoutError, match="no .wav files"):
        scan_dcase(empty, hide_attributes=True)
    # root given one level too deep
    with pytest.raises(DcaseLayoutError, match="pass its parent"):
        scan_dcase(empty / "dev_data" / "raw", hide_attributes=True)


def test_manifest_round_trip(tmp_path, scanned):
    df, report = scanned
    out = tmp_path / "m" / "dcase.parquet"
    rep = tmp_path / "m" / "dcase.report.json"
    write_dcase_manifest(df, report, out, rep)
    back = read_table(out, "dcase_manifest")
    assert list(back.clip_id) == list(df.clip_id)
    assert list(back.attr_string) == list(df.attr_string)
    r = back[back.clip_id == "dev_data/fan/train/section_00_source_train_normal_0000_m-n_W"].iloc[0]
    assert _pairs(r.attributes) == [("m-n", "Wcsv")]
    assert json.loads(rep.read_text())["n_rows"] == len(df)
    assert not any(math.isnan(x) for x in back.duration)
