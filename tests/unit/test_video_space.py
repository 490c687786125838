"""The video-clip space end to end with the tiny X-CLIP: indexing adds clips of 8 sampled
frames beside the frames' CLIP vectors, words search that index through X-CLIP's own text
tower, a library keeps its choice, and choosing it later processes the videos again."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexers.pipeline import Indexer
from search.engine import SearchEngine
from search.errors import ModelMismatchError
from search.library import Library
from search.models.encoders import Encoders
from search.query import parse_query
from search.segments import clip_segments
from search.storage.catalog import Root
from tests.media import make_photo
from tests.media_video import make_video

pytestmark = pytest.mark.slow


@pytest.fixture
def video_library(tmp_path: Path) -> Path:
    folder = tmp_path / "videos"
    folder.mkdir()
    make_video(folder / "long.mp4", duration_s=12.0)
    make_video(folder / "short.mp4", duration_s=3.0, size=(120, 160))
    make_photo(folder / "lake.jpg", 2)
    return folder


def index(library: Library, folder: Path, video: str | None):
    encoders = Encoders("tiny-clip", "tiny-clap", "tiny-text", video=video)
    return Indexer(library, encoders, progress=False).run([Root(str(folder), (), ())])


def test_words_search_the_video_clips_through_xclip(tmp_path, video_library):
    library = Library(tmp_path / "data")
    assert index(library, video_library, "tiny-xclip").indexed == 3
    assert library.model("video") == "tiny-xclip"
    ids, vectors = library.catalog.vectors("tiny-xclip")
    found = library.catalog.resolve_segments([int(i) for i in ids])
    by_file: dict[str, list] = {}
    for seg_id in ids.tolist():
        item, segment = found[seg_id]
        by_file.setdefault(Path(item.path).name, []).append(segment)
    # Clips of 8 sampled frames with their time spans, plus one pooled vector per video; the
    # photo has none.
    assert set(by_file) == {"long.mp4", "short.mp4"} and vectors.shape[1] == 32
    timed = [s for s in by_file["long.mp4"] if s.start_s is not None]
    assert len(timed) >= 2 and timed[0].start_s == 0.0 and timed[-1].end_s > 10.0
    with SearchEngine(library) as engine:
        keys = [s.key for s in engine.queries.index_queries(parse_query("people dancing"))]
        assert "tiny-xclip" in keys and "tiny-clip" in keys
        hits = engine.search("people dancing", k=5)
    assert {Path(h.path).name for h in hits if h.kind == "video"} == {"long.mp4", "short.mp4"}


def test_choosing_a_video_model_later_processes_the_videos_again(tmp_path, video_library):
    library = Library(tmp_path / "data")
    index(library, video_library, None)
    assert library.model("video") is None
    assert index(library, video_library, "tiny-xclip").indexed == 2  # the videos only
    assert index(library, video_library, "tiny-xclip").indexed == 0
    with pytest.raises(ModelMismatchError, match="index --video-model xclip-base-patch32"):
        library.check_search_model("video", "xclip-base-patch32")


def test_a_last_short_clip_repeats_its_last_frame():
    from dataclasses import dataclass

    from PIL import Image

    @dataclass
    class Frame:
        t_s: float
        end_s: float
        image: Image.Image

    frames = [Frame(t, t + 1, Image.new("RGB", (8, 8), (t * 20, 0, 0))) for t in range(10)]
    clips = clip_segments(frames, 8)
    assert [(c.start_s, c.end_s) for c in clips] == [(0, 8), (8, 10)]
    last = clips[1].inputs["frames"]
    assert len(last) == 8 and all((p == last[1]).all() for p in last[1:])
    assert int(last[0][0, 0, 0]) == 160 and int(last[1][0, 0, 0]) == 180
