"""What was said: Whisper tiny.en (the bundled weights) on speech made by espeak-ng, indexed,
searched by a paraphrase and by a quoted phrase, kept across renames, redone on a model switch."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from indexers.pipeline import Indexer
from search import segments
from search.decode.speech import (
    SPEECH_RATE,
    SpeechOptions,
    format_transcript,
    is_hallucination,
    speech_timeout_s,
    transcribe_samples,
)
from search.engine import SearchEngine
from search.filters import SearchFilters
from search.library import Library
from search.models.encoders import Encoders
from search.models.speech import load_speech_model
from search.segments import SPEECH_CHUNK_S, SPEECH_CHUNK_WORDS, SegmentSettings, speech_chunks
from search.storage.catalog import Root
from search.web.render import caption
from tests.media_audio import RATE, noise_burst, silence, spoken, tone, write_audio
from tests.media_video import make_video

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

TOMATOES = "Remember to water the tomatoes in the greenhouse every evening while I am away."
BUDGET = "The quarterly budget meeting starts at nine in the conference room."
FERRY = "The last boat to the island leaves the harbour at six o'clock."
OFFSET_S = 9.0


def music(seconds: float, rate: int = RATE) -> np.ndarray:
    """A melody of two-note chords: music without a voice."""
    notes = [262, 294, 330, 349, 392, 440, 494, 523]
    steps = int(seconds / 0.4)
    return np.concatenate(
        [
            tone(notes[i % 8], 0.4, rate) + tone(notes[(i + 2) % 8] * 2, 0.4, rate, 0.1)
            for i in range(steps)
        ]
    )


def drums(seconds: float, rate: int = RATE) -> np.ndarray:
    beat = np.zeros(int(0.5 * rate), np.float32)
    beat[:800] = np.random.default_rng(0).normal(0, 0.5, 800)
    return (
        np.tile(beat, int(seconds * 2))
        + tone(110, seconds, rate, 0.1)[: int(seconds * 2) * len(beat)]
    )


def tiny_en(**changes) -> SpeechOptions:
    options = load_speech_model("whisper-tiny-en").options(cpu_threads=2)
    return SpeechOptions(**{**options.__dict__, **changes})


# -- the model and its filter ----------------------------------------------------------------


def test_the_bundled_model_hears_an_espeak_sentence():
    transcript = transcribe_samples(spoken(TOMATOES, SPEECH_RATE), tiny_en())
    words = transcript.text.lower()
    assert "tomatoes" in words and "greenhouse" in words
    assert transcript.lines[0].start_s < 1.0 and transcript.dropped == 0


@pytest.mark.parametrize(
    "sound",
    [music(16, SPEECH_RATE), drums(15, SPEECH_RATE), noise_burst(15, 1, SPEECH_RATE, 0.02)],
    ids=["music", "drums", "noise"],
)
def test_whispers_inventions_on_non_speech_are_dropped(sound):
    # Unguarded (no voice detector, Whisper's own skipping off) tiny.en makes up text over
    # these: "Thank you.", a line repeated until the window ends. The filter drops all of it.
    raw = transcribe_samples(sound, tiny_en(vad=False, unguarded=True))
    assert raw.dropped >= 1
    assert raw.lines == ()
    # As indexing runs it, the voice detector passes nothing to Whisper at all.
    guarded = transcribe_samples(sound, tiny_en())
    assert guarded.lines == () and guarded.speech_s == 0.0


def test_the_filter_keeps_real_speech_heard_unguarded():
    raw = transcribe_samples(spoken(BUDGET, SPEECH_RATE), tiny_en(vad=False, unguarded=True))
    assert "budget" in raw.text.lower() and raw.dropped == 0


def test_hallucination_rule_follows_whispers_own_thresholds():
    assert is_hallucination(0.91, -1.34, 0.56)  # "Thank you." over a melody
    assert is_hallucination(0.2, -0.29, 11.06)  # a line repeated over drums
    assert is_hallucination(0.1, -1.7, 1.0)  # hopelessly unsure
    assert not is_hallucination(0.36, -0.78, 0.92)  # an espeak sentence
    assert not is_hallucination(0.7, -0.5, 1.2)  # a confident line in a noisy room


def test_passages_keep_their_times_and_stay_short():
    from search.decode.speech import SpeechLine

    lines = [SpeechLine(i * 3.0, i * 3.0 + 2.5, "one two three four five six") for i in range(20)]
    chunks = speech_chunks(lines)
    assert all(len(text.split()) <= SPEECH_CHUNK_WORDS for _, _, text in chunks)
    assert all(end - start <= SPEECH_CHUNK_S for start, end, _ in chunks)
    assert len(chunks) > 1
    assert chunks[0][0] == 0.0 and chunks[-1][1] == lines[-1].end_s
    assert " ".join(t for _, _, t in chunks) == " ".join(line.text for line in lines)


def test_subtitles_are_written_with_their_times():
    transcript = transcribe_samples(spoken(FERRY, SPEECH_RATE), tiny_en())
    srt = format_transcript(transcript, "srt")
    assert srt.startswith("1\n00:00:00,") and " --> 00:00:0" in srt and "island" in srt.lower()
    assert format_transcript(transcript, "vtt").startswith("WEBVTT\n\n00:00:00.")


# -- a library ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spoken_library(tmp_path_factory):
    root = tmp_path_factory.mktemp("spoken")
    # A sentence said 9 s into a 20 s recording, between music and noise.
    said = spoken(TOMATOES)
    lead = music(OFFSET_S)[: int(OFFSET_S * RATE)]
    tail = noise_burst(20 - OFFSET_S - len(said) / RATE, 3, amplitude=0.01)
    write_audio(root / "voice-memo.wav", np.concatenate([lead, said, tail]))
    write_audio(root / "meeting.mp3", np.concatenate([silence(1.0), spoken(BUDGET)]))
    write_audio(root / "song.wav", music(12))
    write_audio(root / "static.flac", noise_burst(10, 7))
    ferry = np.concatenate([silence(3.0), spoken(FERRY), silence(2.0)])
    make_video(root / "harbour.mp4", duration_s=len(ferry) / RATE, sound=ferry)
    data = tmp_path_factory.mktemp("data")
    summary = index(data, root)
    return root, data, summary


def index(data: Path, root: Path, **settings):
    library = Library(data)
    try:
        encoders = Encoders("tiny-clip", "tiny-clap")
        indexer = Indexer(library, encoders, progress=False, settings=SegmentSettings(**settings))
        return indexer.run([Root(str(root), (), ())])
    finally:
        library.close()


def search(data: Path, query: str, **filters):
    library = Library(data, create=False)
    try:
        with SearchEngine(library) as engine:
            return engine.search(query, k=5, filters=SearchFilters(**filters))
    finally:
        library.close()


def stored(data: Path, path: Path):
    library = Library(data, create=False)
    try:
        item = library.catalog.item_by_path(str(path))
        return item, library.catalog.transcript(item.id)
    finally:
        library.close()


def test_every_sound_and_video_is_heard_once(spoken_library):
    root, data, summary = spoken_library
    assert summary.failed == [] and summary.transcribed == 5 and summary.with_speech == 3


def test_a_paraphrase_finds_the_sentence_at_its_moment(spoken_library):
    root, data, _ = spoken_library
    top = search(data, "watering the plants while someone is travelling")[0]
    assert top.path == str(root / "voice-memo.wav")
    assert "spoken words" in top.matched
    assert top.start <= OFFSET_S + 1.0 and top.end >= OFFSET_S + 2.0
    assert top.end - top.start < 12
    assert "tomatoes" in top.snippet.lower()
    # The UI's result card names the strongest reason.
    label = caption(top, [str(root)])
    assert label.endswith(f" · {top.matched[0]} · {root.name}/voice-memo.wav")


def test_a_quoted_phrase_finds_its_exact_words(spoken_library):
    root, data, _ = spoken_library
    results = search(data, '"budget meeting"')
    assert results[0].path == str(root / "meeting.mp3")
    assert "budget meeting" in results[0].snippet.lower()
    assert "spoken words" in results[0].matched


def test_a_videos_sound_track_is_found_at_the_right_time(spoken_library):
    root, data, _ = spoken_library
    top = search(data, "when does the last boat leave for the island", kinds=("video",))[0]
    assert top.path == str(root / "harbour.mp4")
    assert top.kind == "video"
    assert 2.0 <= top.start <= 4.0 and top.end >= 5.0
    assert "island" in top.snippet.lower()


def test_music_and_noise_get_no_transcript(spoken_library):
    root, data, _ = spoken_library
    for name in ("song.wav", "static.flac"):
        item, transcript = stored(data, root / name)
        assert transcript is not None and transcript.model == "whisper-tiny-en"
        assert transcript.lines == () and transcript.error is None


def test_status_counts_transcribed_files_and_hours(spoken_library):
    _, data, _ = spoken_library
    library = Library(data, create=False)
    counts = library.catalog.speech_counts()
    library.close()
    assert counts["files"] == 3
    assert 40 / 3600 < counts["hours"] < 80 / 3600


def test_a_truncated_recording_records_its_reason(tmp_path: Path):
    root = tmp_path / "lib"
    path = write_audio(root / "cut.wav", np.concatenate([silence(0.5), spoken(BUDGET)]))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    summary = index(tmp_path / "data", root)
    assert summary.transcribed == 0
    assert [(p, r) for p, r in summary.failed] == [(str(path), summary.failed[0][1])]
    assert "truncated" in summary.failed[0][1]
    item, transcript = stored(tmp_path / "data", path)
    assert item.error and "truncated" in item.error and transcript is None


def test_a_rename_keeps_the_transcript_without_hearing_it_again(tmp_path: Path):
    root = tmp_path / "lib"
    write_audio(root / "memo.wav", spoken(FERRY))
    data = tmp_path / "data"
    assert index(data, root).transcribed == 1
    before, transcript = stored(data, root / "memo.wav")
    (root / "trips").mkdir()
    (root / "memo.wav").rename(root / "trips" / "ferry times.wav")
    again = index(data, root)
    assert again.moved == 1 and again.transcribed == 0
    after, kept = stored(data, root / "trips" / "ferry times.wav")
    assert after.id == before.id and kept == transcript
    assert search(data, "ship departure time")[0].path == str(root / "trips" / "ferry times.wav")
    # The same content elsewhere (a copy) reuses the transcript too.
    shutil.copy(root / "trips" / "ferry times.wav", root / "copy.wav")
    assert index(data, root).transcribed == 0
    assert stored(data, root / "copy.wav")[1].lines == transcript.lines


def test_switching_speech_models_transcribes_again_and_old_transcripts_answer_meanwhile(
    tmp_path: Path,
):
    root = tmp_path / "lib"
    write_audio(root / "a-ferry.wav", spoken(FERRY))
    write_audio(root / "b-budget.wav", spoken(BUDGET))
    write_audio(root / "c-tomatoes.wav", spoken(TOMATOES))
    data = tmp_path / "data"
    assert index(data, root).transcribed == 3
    # Another preset name, given the bundled files as its weights: a real second model id.
    folder = str(load_speech_model("whisper-tiny-en").resolve().path.parent)
    library = Library(data)
    stop = threading.Event()
    done = []

    def after_each(event):
        if event.path:
            done.append(event.path)
            stop.set()  # interrupt after the first committed batch

    settings = SegmentSettings(speech_model="whisper-base", speech_model_path=folder)
    indexer = Indexer(
        library,
        Encoders("tiny-clip", "tiny-clap"),
        batch_size=1,
        progress=False,
        settings=settings,
        on_progress=after_each,
        stop=stop,
    )
    first = indexer.run([Root(str(root), (), ())])
    library.close()
    assert first.interrupted and first.transcribed == len(done) >= 1
    models = {p.name: stored(data, p)[1].model for p in sorted(root.iterdir())}
    redone = {Path(p).name for p in done}
    assert {n for n, m in models.items() if m == "whisper-base"} == redone
    waiting = [n for n, m in models.items() if m == "whisper-tiny-en"]
    assert waiting  # these keep their old transcript, and it still answers:
    words = {"a-ferry.wav": "island", "b-budget.wav": "budget", "c-tomatoes.wav": "tomatoes"}
    for name in waiting:
        assert search(data, words[name])[0].path == str(root / name)
    # The library now transcribes with the new model, whose folder it remembers: a plain run
    # finishes the switch.
    rest = index(data, root)
    assert rest.transcribed == len(waiting)
    assert {stored(data, p)[1].model for p in root.iterdir()} == {"whisper-base"}


def test_no_speech_is_remembered_and_drops_transcripts(tmp_path: Path):
    root = tmp_path / "lib"
    write_audio(root / "memo.wav", spoken(FERRY))
    data = tmp_path / "data"
    assert index(data, root, speech=False).transcribed == 0
    assert stored(data, root / "memo.wav")[1] is None
    assert index(data, root).transcribed == 0  # the library keeps "off"
    assert index(data, root, speech=True).transcribed == 1
    off = index(data, root, speech=False)
    assert off.transcribed == 0 and stored(data, root / "memo.wav")[1] is None
    heard = search(data, '"harbour at six"')
    assert all("spoken words" not in r.matched and r.snippet is None for r in heard)


def test_a_transcription_past_its_time_limit_is_recorded_and_retried_when_asked(
    tmp_path: Path, monkeypatch
):
    root = tmp_path / "lib"
    write_audio(root / "memo.wav", spoken(BUDGET))
    data = tmp_path / "data"
    # A limit no worker can meet (loading the model alone takes longer).
    monkeypatch.setattr(segments, "speech_timeout_s", lambda *_: 0.05)
    first = index(data, root)
    assert first.failed == [] and first.indexed == 1  # its sound is indexed all the same
    _, transcript = stored(data, root / "memo.wav")
    assert transcript.error == "took longer than 0.05 s to transcribe"
    library = Library(data, create=False)
    assert library.catalog.transcript_failures() == [(str(root / "memo.wav"), transcript.error)]
    library.close()
    monkeypatch.undo()
    # Like a failed file: not heard again while unchanged (a watched folder is scanned
    # often), but with --retry-failed.
    assert index(data, root).transcribed == 0
    library = Library(data)
    indexer = Indexer(
        library, Encoders("tiny-clip", "tiny-clap"), progress=False, retry_failed=True
    )
    again = indexer.run([Root(str(root), (), ())])
    library.close()
    assert again.transcribed == 1 and again.with_speech == 1
    assert "budget" in stored(data, root / "memo.wav")[1].text.lower()


def test_the_time_limit_grows_with_the_recording():
    assert speech_timeout_s(60) < speech_timeout_s(600) < speech_timeout_s(None)
    assert speech_timeout_s(10 * 3600) == speech_timeout_s(None)  # the cap bounds it


def test_a_new_text_model_embeds_the_passages_again_without_transcribing(tmp_path: Path):
    root = tmp_path / "lib"
    write_audio(root / "memo.wav", spoken(TOMATOES))
    data = tmp_path / "data"
    assert index(data, root).transcribed == 1
    library = Library(data)
    switched = Indexer(library, Encoders("tiny-clip", "tiny-clap", "tiny-text"), progress=False)
    summary = switched.run([Root(str(root), (), ())])
    keys = set(library.catalog.vector_keys())
    library.close()
    assert summary.indexed == 1 and summary.transcribed == 0  # the transcript is reused
    assert "tiny-text" in keys and "all-minilm-l6-v2" not in keys
    assert search(data, '"tomatoes"')[0].path == str(root / "memo.wav")
