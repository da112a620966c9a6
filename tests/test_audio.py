"""The one audio loader: decode, downmix, resample, fixed length; bad files give AudioError."""

import numpy as np
import pytest
import soundfile as sf

from asdflow.io.audio import AudioError, AudioSpec, fix_length, load_audio, load_clip


def _tone(freq, sr, seconds, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    x = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def _peak_hz(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spec) * sr / len(x)


def test_mono_16k_roundtrip(tmp_path):
    x = _tone(440, 16000, 1.0)
    sf.write(tmp_path / "a.wav", x, 16000, subtype="PCM_16")
    y = load_audio(tmp_path / "a.wav", 16000)
    assert y.dtype == np.float32 and y.shape == (16000,)
    assert np.max(np.abs(y - x)) < 1e-3


def test_stereo_is_averaged(tmp_path):
    left = _tone(440, 16000, 0.5)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    sf.write(tmp_path / "s.wav", stereo, 16000)
    y = load_audio(tmp_path / "s.wav", 16000)
    assert y.shape == (8000,)
    np.testing.assert_allclose(y, left / 2, atol=1e-3)


@pytest.mark.parametrize("sr", [44100, 32000, 8000])
def test_resampled_to_16k_keeps_frequency(tmp_path, sr):
    sf.write(tmp_path / "r.wav", _tone(1000, sr, 1.0), sr)
    y = load_audio(tmp_path / "r.wav", 16000)
    assert abs(len(y) - 16000) <= 1
    assert abs(_peak_hz(y, 16000) - 1000) < 5


def test_flac(tmp_path):
    sf.write(tmp_path / "a.flac", _tone(300, 16000, 0.5), 16000)
    assert load_audio(tmp_path / "a.flac", 16000).shape == (8000,)


def test_corrupt_file_names_the_file(tmp_path):
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(np.random.default_rng(0).bytes(2000))
    with pytest.raises(AudioError, match="corrupt.wav"):
        load_audio(bad, 16000)


def test_empty_file(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="empty.wav: file holds no audio"):
        load_audio(tmp_path / "empty.wav", 16000)


def test_nan_audio(tmp_path):
    x = _tone(440, 16000, 0.1)
    x[10] = np.nan
    sf.write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load_audio(tmp_path / "nan.wav", 16000)


def test_missing_file():
    with pytest.raises(AudioError, match="nope.wav"):
        load_audio("/nonexistent/nope.wav", 16000)


def test_fix_length_policies():
    x = np.arange(1, 4, dtype=np.float32)  # [1, 2, 3]
    tile = AudioSpec(sample_rate=1, clip_seconds=7, length_policy="tile")
    pad = AudioSpec(sample_rate=1, clip_seconds=7, length_policy="pad")
    np.testing.assert_array_equal(fix_length(x, tile), [1, 2, 3, 1, 2, 3, 1])
    np.testing.assert_array_equal(fix_length(x, pad), [1, 2, 3, 0, 0, 0, 0])
    long = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(fix_length(long, AudioSpec(1, 4, crop="start")), [0, 1, 2, 3])
    np.testing.assert_array_equal(fix_length(long, AudioSpec(1, 4, crop="center")), [3, 4, 5, 6])
    np.testing.assert_array_equal(fix_length(long, AudioSpec(1, 10)), long)


def test_spec_validation():
    with pytest.raises(ValueError, match="length_policy"):
        AudioSpec(length_policy="loop")
    with pytest.raises(ValueError, match="crop"):
        AudioSpec(crop="end")


def test_load_clip_has_spec_length(tmp_path):
    sf.write(tmp_path / "a.wav", _tone(440, 44100, 0.3), 44100)
    spec = AudioSpec(sample_rate=16000, clip_seconds=1.0)
    assert load_clip(tmp_path / "a.wav", spec).shape == (16000,)
