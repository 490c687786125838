"""A query file is decoded and encoded exactly as the indexer did it: a library video or sound
used as a query searches with the very vector the library stored for it, a video sampled
at the library's own frame rate, which the library remembers from the index run."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from indexers.pipeline import Indexer
from search.engine import SearchEngine
from search.models.encoders import Encoders
from search.query import parse_query
from search.segments import FRAME_RATE_META, SegmentSettings, library_frame_rate
from search.storage.catalog import Root
from tests.media import make_photo
from tests.media_audio import chirp, write_audio
from tests.media_video import make_video

DEMO = Path(__file__).resolve().parents[2] / "assets" / "demo"
# Far from the default rate, so a query sampled at the default would pool other frames.
LIBRARY_RATE = 0.25


@pytest.fixture
def indexed(library, tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    video = make_video(root / "scenes.mp4", duration_s=12.0, tone=(2.0, 9.0))
    sound = write_audio(root / "sweep.wav", chirp(200, 4000, 25.0))
    make_photo(root / "photo.jpg", seed=3)

    def index(settings: SegmentSettings) -> None:
        encoders = Encoders("tiny-clip", "tiny-clap", "tiny-text")
        Indexer(library, encoders, progress=False, settings=settings).run([Root(str(root), (), ())])

    index(SegmentSettings(frame_rate=LIBRARY_RATE))
    return library, index, str(video), str(sound)


def stored_whole_file_vector(library, path: str, key: str) -> np.ndarray:
    item = library.catalog.item_by_path(path)
    rows = library.catalog.item_vectors([item.id], key)
    return next(vector for _, _, segment, vector in rows if segment.start_s is None)


def query_vector(engine: SearchEngine, key: str, **files) -> np.ndarray:
    query = parse_query("", **{kind: (path,) for kind, path in files.items()})
    return next(q.vector for q in engine.queries.index_queries(query) if q.key == key)


def test_the_library_remembers_its_frame_rate(indexed):
    library, index, _, _ = indexed
    assert library_frame_rate(library.catalog) == LIBRARY_RATE
    index(SegmentSettings())  # a later run that asks for no rate keeps the library's
    assert library_frame_rate(library.catalog) == LIBRARY_RATE
    index(SegmentSettings(frame_rate=2.0))
    assert library_frame_rate(library.catalog) == 2.0


def test_a_library_video_and_sound_query_with_their_stored_vectors(indexed):
    library, _, video, sound = indexed
    with SearchEngine(library) as engine:
        image_key, audio_key = engine.encoders.key("image"), engine.encoders.key("audio")
        frames = query_vector(engine, image_key, videos=video)
        np.testing.assert_allclose(
            frames, stored_whole_file_vector(library, video, image_key), atol=1e-6
        )
        track = query_vector(engine, audio_key, videos=video)
        np.testing.assert_allclose(
            track, stored_whole_file_vector(library, video, audio_key), atol=1e-6
        )
        heard = query_vector(engine, audio_key, sounds=sound)
        np.testing.assert_allclose(
            heard, stored_whole_file_vector(library, sound, audio_key), atol=1e-6
        )
        top = engine.search("", videos=(video,), k=1)[0]
        assert (top.path, top.score) == (video, 1.0)

        # The frame rate matters: sampled at another rate, the same video pools other
        # frames into another vector (so the equalities above are not a coincidence).
        library.catalog.set_meta(FRAME_RATE_META, "2.0")
        other = query_vector(engine, image_key, videos=video)
        assert float(np.abs(other - frames).max()) > 1e-3


def test_a_query_video_outranks_other_spaces_outliers(library, tmp_path):
    """The demo's documents score as outliers of CLIP's narrow text-chunk space against a
    video's frames; calibrated onto the frames' scale they must stay below the video itself,
    an exact match."""
    root = tmp_path / "media"
    shutil.copytree(DEMO / "documents", root / "documents")
    video = shutil.copy(DEMO / "videos" / "bouncing-ball.mp4", root / "ball.mp4")
    encoders = Encoders("tiny-clip", "tiny-clap")
    Indexer(library, encoders, progress=False).run([Root(str(root), (), ())])
    with SearchEngine(library) as engine:
        top, *rest = engine.search("", videos=(str(video),), k=5)
    assert (top.path, top.score) == (str(video), 1.0)
    assert all(r.score < 1.0 for r in rest), [(r.path, r.score) for r in rest]
