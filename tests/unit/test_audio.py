"""Sound decoding: every format, mono at 48 kHz, tags, windows, silence, bad files, limits."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import soundfile as sf

from search.decode.audio import (
    SILENCE_DBFS,
    audio_windows,
    load_audio,
    rms_dbfs,
)
from search.errors import BadFileError
from search.vectors import pool
from tests.media_audio import (
    ALL_FORMATS,
    chirp,
    noise_burst,
    silence,
    speech,
    tone,
    write_audio,
)

RATE = 48_000
TAGS = {"title": "Morning Birds", "artist": "Trove Tests"}
# Raw ADTS AAC has no place for tags; every other container carries them.
UNTAGGED = {".aac"}


def peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])


@pytest.mark.parametrize("suffix", ALL_FORMATS)
def test_every_format_decodes_to_mono_48k_with_pitch_duration_and_tags(tmp_path, suffix):
    stereo = np.stack([tone(440, 3), tone(440, 3, amplitude=0.1)], axis=1)
    clip = load_audio(write_audio(tmp_path / f"song{suffix}", stereo, tags=TAGS))
    assert clip.sample_rate == RATE and clip.samples.dtype == np.float32
    assert clip.samples.ndim == 1 and clip.channels == 2
    # Lossy codecs add encoder delay and padding (AAC about 50 ms).
    assert clip.duration_s == pytest.approx(3.0, abs=0.1)
    assert clip.source_rate in (44_100, 48_000)
    # A wrong rate conversion would move the pitch.
    assert peak_hz(clip.samples, RATE) == pytest.approx(440, abs=3)
    assert clip.decoded_all
    assert clip.tags == ({} if suffix in UNTAGGED else TAGS)


def test_speech_at_22k_is_resampled_and_heard(tmp_path):
    path = speech("Trove finds the sound you describe", tmp_path / "speech.wav")
    assert sf.info(path).samplerate == 22_050
    clip = load_audio(path)
    assert clip.source_rate == 22_050 and clip.channels == 1
    assert clip.duration_s == pytest.approx(sf.info(path).duration, abs=0.01)
    assert audio_windows(clip.samples, RATE), "speech must not count as silence"


def test_windows_cover_the_file_with_full_overlapping_windows():
    samples = np.ones(25 * RATE, dtype=np.float32) * 0.1
    windows = audio_windows(samples, RATE, window_s=10, hop_s=5)
    assert [(w.start_s, w.end_s) for w in windows] == [(0, 10), (5, 15), (10, 20), (15, 25)]
    assert all(len(w.samples) == 10 * RATE for w in windows)
    assert np.shares_memory(windows[1].samples, samples), "windows are views, not copies"


def test_window_boundaries_for_short_exact_and_just_longer_audio():
    def spans(seconds):
        samples = np.full(int(seconds * RATE), 0.1, dtype=np.float32)
        return [(w.start_s, w.end_s) for w in audio_windows(samples, RATE, 10, 5)]

    assert spans(4) == [(0, 4)]
    assert spans(10) == [(0, 10)]
    # The tail is covered by one last full window ending at the end, not a 0.5 s stub.
    assert spans(10.5) == [(0, 10), (0.5, 10.5)]
    assert spans(0) == []
    with pytest.raises(ValueError):
        audio_windows(np.zeros(RATE, np.float32), RATE, 10, 0)


def test_silent_windows_are_dropped():
    samples = np.concatenate(
        [tone(440, 5, RATE), silence(20, RATE), noise_burst(5, seed=1, rate=RATE)]
    )
    windows = audio_windows(samples, RATE, 10, 5)
    assert [(w.start_s, w.end_s) for w in windows] == [(0, 10), (20, 30)]
    assert audio_windows(silence(30, RATE), RATE) == []


def test_silence_threshold_in_dbfs():
    full_scale_sine = tone(1000, 1, RATE, amplitude=1.0)
    assert rms_dbfs(full_scale_sine) == pytest.approx(-3.01, abs=0.01)
    quiet = tone(1000, 1, RATE, amplitude=10 ** ((SILENCE_DBFS - 7) / 20))  # about -70 dBFS
    soft = tone(1000, 1, RATE, amplitude=10 ** ((SILENCE_DBFS + 13) / 20))  # about -50 dBFS
    assert audio_windows(quiet, RATE) == []
    assert len(audio_windows(soft, RATE)) == 1


def test_file_vector_is_the_normalised_mean_of_windows():
    rows = np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32)
    np.testing.assert_allclose(pool(rows), [2**-0.5, 2**-0.5, 0], atol=1e-6)
    with pytest.raises(ValueError):
        pool(np.zeros((0, 3), np.float32))


@pytest.mark.parametrize("suffix", [".wav", ".m4a"])
def test_long_recordings_are_cut_at_the_decode_limit(tmp_path, suffix):
    path = write_audio(tmp_path / f"long{suffix}", chirp(200, 2000, 6))
    clip = load_audio(path, max_duration_s=2.0)
    assert clip.duration_s == pytest.approx(2.0, abs=0.05)
    assert not clip.decoded_all


def wav_claiming(path, claimed_seconds: float, actual_seconds: float, rate: int = 8000):
    """A 16-bit mono WAV whose data chunk declares more audio than the file holds."""
    data = (tone(300, actual_seconds, rate) * 32767).astype("<i2").tobytes()
    declared = min(int(claimed_seconds * rate * 2), 0xFFFFFFFE)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    path.write_bytes(
        b"RIFF"
        + struct.pack("<I", 36 + declared)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", declared)
        + data
    )
    return path


def test_a_header_claiming_hours_is_refused_as_truncated(tmp_path):
    path = wav_claiming(tmp_path / "liar.wav", claimed_seconds=3 * 3600, actual_seconds=2)
    with pytest.raises(BadFileError, match=r"truncated: the header declares 3:00:00"):
        load_audio(path)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3", ".m4a", ".ogg"])
def test_truncated_files_are_bad_files(tmp_path, suffix):
    path = write_audio(tmp_path / f"full{suffix}", chirp(200, 4000, 6))
    data = path.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadFileError, match="truncated|corrupt|no audio samples|not an audio"):
        load_audio(cut)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.wav", b"", "empty"),
        ("noise.mp3", np.random.default_rng(0).bytes(4000), "not an audio file"),
        ("noise.wav", b"RIFF" + np.random.default_rng(1).bytes(4000), "not an audio file"),
        ("notes.flac", b"shopping list: milk, eggs\n" * 20, "not an audio file"),
    ],
)
def test_garbage_is_a_bad_file_with_a_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(BadFileError, match=reason):
        load_audio(path)


def test_non_finite_samples_are_a_bad_file(tmp_path):
    samples = tone(440, 1)
    samples[100] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, samples, 44_100, subtype="FLOAT")
    with pytest.raises(BadFileError, match="NaN"):
        load_audio(path)


def test_a_file_with_no_audio_stream_is_a_bad_file(tmp_path):
    from tests.media import make_photo

    path = make_photo(tmp_path / "photo.png", 1)
    with pytest.raises(BadFileError):
        load_audio(path)


@pytest.mark.slow
def test_tiny_clap_is_reproducible_normalised_and_takes_one_window_at_most():
    from search.models import get_preset, load_audio_encoder
    from search.models.clap import ClapEncoder

    encoder = load_audio_encoder("tiny-clap")
    clips = [tone(440, 10, RATE), noise_burst(0.3, seed=2, rate=RATE)]
    a = encoder.encode_audio(clips)
    b = ClapEncoder(get_preset("tiny-clap")).encode_audio(clips)
    assert a.shape == (2, 64) and a.dtype == np.float32 and np.array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert encoder.encode_texts([]).shape == (0, 64)
    with pytest.raises(ValueError, match="mono clips"):
        encoder.encode_audio([tone(440, 10.5, RATE)])
    assert encoder.fingerprint == ClapEncoder(get_preset("tiny-clap")).fingerprint


def test_audio_presets_and_missing_weights_message(monkeypatch, tmp_path):
    from search.errors import UnknownModelError, WeightsNotFoundError
    from search.models import DEFAULT_AUDIO_MODEL, get_preset, load_audio_encoder
    from search.models.weights import resolve_weights

    assert DEFAULT_AUDIO_MODEL == "clap-htsat-unfused"
    assert get_preset(DEFAULT_AUDIO_MODEL).space == "clap"
    with pytest.raises(UnknownModelError, match="tiny-clap"):
        load_audio_encoder("tiny-clip")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as err:
        resolve_weights(get_preset(DEFAULT_AUDIO_MODEL))
    message = str(err.value)
    for needle in (
        "clap-htsat-unfused",
        "laion/clap-htsat-unfused",
        "model.safetensors",
        "config.json",
        "HF_HUB_OFFLINE",
        "tiny-clap",
    ):
        assert needle in message


def test_demo_sounds_decode_with_tags_and_audible_windows():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "assets" / "demo" / "sounds"
    clips = {p.name: load_audio(p) for p in sorted(folder.iterdir()) if p.suffix != ".py"}
    assert set(clips) == {
        "bell.flac",
        "birdsong.mp3",
        "memo-dentist.mp3",
        "memo-tomatoes.opus",
        "rain-with-bell.opus",
        "rain.ogg",
        "speech.m4a",
        "voicemail-plumber.ogg",
    }
    for name, clip in clips.items():
        assert clip.tags["artist"] == "Trove demo", name
        assert audio_windows(clip.samples, RATE), name
    assert len(audio_windows(clips["rain-with-bell.opus"].samples, RATE)) == 4
