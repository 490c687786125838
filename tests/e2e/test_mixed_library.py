"""One library of photos, sounds, videos and documents, indexed and searched end to end.

Tiny CLIP and CLAP (random weights, fixed seeds) and the real all-MiniLM-L6-v2 text model:
the assertions are about the pipeline and the engine (every kind indexed, one list across
spaces on one scale, moments at the right time, words found by the full-text index), plus
the one semantic check the real text model allows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexers.pipeline import Indexer
from search.engine import SearchEngine
from search.filters import SearchFilters
from search.library import Library
from search.models.encoders import Encoders
from search.storage.catalog import Root
from tests.media import make_photo
from tests.media_audio import chirp, noise_burst, silence, tone, write_audio
from tests.media_docs import make_srt, make_text_pdf
from tests.media_video import make_video, scene_frame

pytestmark = pytest.mark.slow

CAT_NOTE = (
    "Our cat Miso sleeps on the windowsill all afternoon. She purrs when stroked, chases "
    "the red laser dot and hides under the sofa when the vacuum cleaner comes out."
)
CAR_NOTE = (
    "The car needs new tyres before winter. The mechanic said the brake pads are worn and "
    "the engine oil should be changed every fifteen thousand kilometres."
)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> tuple[Path, Library, Indexer]:
    root = tmp_path_factory.mktemp("mixed") / "library"
    for i, name in enumerate(["beach.jpg", "forest.jpg", "city.png", "snow.jpg"]):
        make_photo(root / "photos" / name, 10 + i)
    rate = 48_000
    write_audio(root / "sounds" / "bell.wav", tone(660, 4.0, rate), rate, {"title": "Bell"})
    write_audio(root / "sounds" / "birds.flac", chirp(2000, 5000, 6.0, rate), rate)
    write_audio(root / "sounds" / "rain.mp3", noise_burst(12.0, seed=3, rate=rate), rate)
    write_audio(root / "sounds" / "quiet.wav", silence(3.0, rate), rate)
    # 30 s of scenes; sound only from 20 s to 28 s, so only the windows around it are
    # indexed (silent windows are skipped) and the sound's moment must land there.
    make_video(root / "videos" / "scenes.mp4", duration_s=12.0, fps=5)
    make_video(root / "videos" / "late-tone.mp4", duration_s=30.0, fps=2, tone=(20.0, 28.0))
    (root / "docs").mkdir()
    (root / "docs" / "cat-notes.txt").write_text(CAT_NOTE)
    (root / "docs" / "car-notes.md").write_text("# Car\n\n" + CAR_NOTE)
    make_text_pdf(root / "docs" / "invoice-2023.pdf", ["Amount due: 120 EUR. Thank you."])
    make_text_pdf(root / "docs" / "receipt.pdf", ["An invoice for 2023 services, paid."])
    make_srt(root / "docs" / "film.srt", [(1.0, 3.0, "Hello there."), (4.0, 6.0, "Goodbye.")])

    library = Library(tmp_path_factory.mktemp("data"))
    indexer = Indexer(library, Encoders("tiny-clip", "tiny-clap"), batch_size=4, progress=False)
    summary = indexer.run([Root(str(root), (), ())])
    yield root, library, summary
    library.close()


def test_every_kind_is_indexed_with_its_details(mixed):
    root, library, summary = mixed
    (quiet, reason), *others = summary.failed
    assert others == [] and quiet == str(root / "sounds" / "quiet.wav") and "silent" in reason
    assert library.catalog.counts() == {"audio": 3, "document": 5, "image": 4, "video": 2}
    assert set(library.catalog.vector_keys()) == {
        "tiny-clip",
        "tiny-clip:text",
        "tiny-clap",
        "all-minilm-l6-v2",
    }
    for key in library.catalog.vector_keys():  # every index holds its vectors once
        dim = library.catalog.vector_dim(key)
        assert len(library.open_store(key, dim)) == library.catalog.vector_count(key), key
    bell = library.catalog.item_by_path(str(root / "sounds" / "bell.wav"))
    assert bell.duration_s == pytest.approx(4.0, abs=0.05)
    assert bell.details["title"] == "Bell" and bell.details["sample_rate"] == 48_000
    video = library.catalog.item_by_path(str(root / "videos" / "late-tone.mp4"))
    assert video.duration_s == pytest.approx(30.0, abs=0.6) and video.width == 160


def test_a_rerun_encodes_nothing(mixed):
    root, library, _ = mixed
    again = Indexer(library, Encoders("tiny-clip", "tiny-clap"), progress=False).run(
        [Root(str(root), (), ())]
    )
    assert again.indexed == 0 and again.unchanged == 14


def test_words_reach_every_kind_in_one_list(mixed):
    _, library, _ = mixed
    engine = SearchEngine(library)
    kinds = set()
    for query in ["a bell ringing", "birds at dawn", "a beach", "heavy rain", "notes"]:
        results = engine.search(query, k=8)
        scores = [r.score for r in results]
        assert scores == sorted(scores, reverse=True)
        kinds |= {r.kind for r in results}
    assert kinds == {"image", "audio", "video", "document"}


def test_sound_scores_are_calibrated_not_raw(mixed):
    """CLAP's raw cosines run far above CLIP's here; calibrated, sounds do not take every
    top place just for that."""
    _, library, _ = mixed
    engine = SearchEngine(library)
    text_clip = engine.encoders.clip.encode_texts(["a bell ringing"])[0]
    text_clap = engine.encoders.get("clap").encode_texts(["a bell ringing"])[0]
    raw_clip = library.catalog.vectors("tiny-clip")[1] @ text_clip
    raw_clap = library.catalog.vectors("tiny-clap")[1] @ text_clap
    # The tiny towers (fixed seeds) make every sound's raw cosine beat every picture's
    # (0.21 against -0.03 at most), so ranked raw the three sounds would take the top three.
    assert raw_clap.min() > raw_clip.max() + 0.1, (raw_clap.min(), raw_clip.max())
    top = engine.search("a bell ringing", k=4, filters=SearchFilters(kinds=("image", "audio")))
    assert "image" in [r.kind for r in top[:3]], top


def test_a_sound_finds_itself_and_the_right_moment(mixed, tmp_path):
    root, library, _ = mixed
    engine = SearchEngine(library)
    bell = engine.search("", sounds=(str(root / "sounds" / "bell.wav"),), k=3)
    assert bell[0].path == str(root / "sounds" / "bell.wav") and bell[0].score > 0.99
    # The video's sound is only a tone from 20 to 28 s: a tone query finds that moment.
    probe = write_audio(tmp_path / "probe.wav", tone(440, 5.0, 48_000), 48_000)
    hits = engine.search("", sounds=(str(probe),), k=5, filters=SearchFilters(kinds=("video",)))
    late = next(r for r in hits if r.path.endswith("late-tone.mp4"))
    assert late.start is not None and late.start < 28.0 and late.end > 20.0
    assert late.thumbnail and Path(late.thumbnail).is_file()
    # Sound -> pictures through the bridge: answers, and only pictures when asked.
    pictures = engine.search("", sounds=(str(probe),), k=3, filters=SearchFilters(kinds=("image",)))
    assert [r.kind for r in pictures] == ["image"] * 3


def test_a_video_frame_finds_its_scene(mixed, tmp_path):
    root, library, _ = mixed
    from PIL import Image

    frame = tmp_path / "frame.png"
    Image.fromarray(scene_frame(6.0, 160, 120)).save(frame)
    engine = SearchEngine(library)
    hits = engine.search("", images=(str(frame),), k=3, filters=SearchFilters(kinds=("video",)))
    scenes = next(r for r in hits if r.path.endswith("scenes.mp4"))
    assert 4.0 <= scenes.start <= 8.0, scenes


def test_file_names_and_phrases_through_the_full_text_index(mixed):
    root, library, _ = mixed
    engine = SearchEngine(library)
    invoice = engine.search("invoice 2023", k=3)
    assert invoice[0].path == str(root / "docs" / "invoice-2023.pdf")
    phrase = engine.search('"brake pads"', k=3, filters=SearchFilters(kinds=("document",)))
    assert phrase[0].path == str(root / "docs" / "car-notes.md")
    assert "brake pads" in phrase[0].snippet


def test_meaning_with_the_real_text_model(mixed):
    root, library, _ = mixed
    engine = SearchEngine(library)
    results = engine.search("feline", k=5, filters=SearchFilters(kinds=("document",)))
    paths = [r.path for r in results]
    assert paths.index(str(root / "docs" / "cat-notes.txt")) < paths.index(
        str(root / "docs" / "car-notes.md")
    )


def test_duration_and_kind_filters(mixed):
    _, library, _ = mixed
    engine = SearchEngine(library)
    long_ones = engine.search("sound", k=10, filters=SearchFilters(min_duration=10.0))
    assert {Path(r.path).name for r in long_ones} == {"rain.mp3", "late-tone.mp4", "scenes.mp4"}
    short = engine.search("sound", k=10, filters=SearchFilters(max_duration=5.0))
    assert {Path(r.path).name for r in short} == {"bell.wav"}


def test_a_photo_query_reaches_documents(mixed):
    root, library, _ = mixed
    engine = SearchEngine(library)
    docs = engine.search(
        "",
        images=(str(root / "photos" / "beach.jpg"),),
        k=5,
        filters=SearchFilters(kinds=("document",)),
    )
    # All five documents answer, once each: their passages are in the picture space too.
    assert sorted(Path(r.path).name for r in docs) == [
        "car-notes.md",
        "cat-notes.txt",
        "film.srt",
        "invoice-2023.pdf",
        "receipt.pdf",
    ]
    assert all(r.kind == "document" for r in docs)
    assert np.isfinite([r.score for r in docs]).all()
