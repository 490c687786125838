"""The sound-similarity space end to end with the tiny AST and wav2vec2 models: indexing
stores their vectors beside CLAP's, a query sound searches their index, a library keeps its
choice, and choosing another (or a first one) processes the sound files again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexers.pipeline import Indexer
from search.engine import SearchEngine
from search.errors import ModelMismatchError
from search.library import Library
from search.models.encoders import Encoders
from search.query import parse_query
from search.storage.catalog import Root
from tests.media import make_photo
from tests.media_audio import chirp, noise_burst, speech, tone, write_audio

pytestmark = pytest.mark.slow


@pytest.fixture
def sound_library(tmp_path: Path) -> Path:
    folder = tmp_path / "sounds"
    folder.mkdir()
    write_audio(folder / "tone.wav", tone(440, 4))
    write_audio(folder / "chirp.flac", chirp(200, 6000, 12))
    write_audio(folder / "noise.wav", noise_burst(3, 7))
    speech("the quick brown fox jumps over the lazy dog", folder / "speech.wav")
    make_photo(folder / "forest.jpg", 1)
    return folder


def index(library: Library, folder: Path, sound: str | None):
    encoders = Encoders("tiny-clip", "tiny-clap", "tiny-text", sound=sound)
    return Indexer(library, encoders, progress=False).run([Root(str(folder), (), ())])


@pytest.mark.parametrize("model", ["tiny-ast", "tiny-wav2vec2"])
def test_a_query_sound_searches_the_sound_similarity_index(tmp_path, sound_library, model):
    library = Library(tmp_path / "data")
    summary = index(library, sound_library, model)
    assert summary.indexed == 5
    assert library.model("sound") == model
    ids, vectors = library.catalog.vectors(model)
    # Windows of the four sound files and a pooled vector for each; the photo has none.
    assert len(ids) >= 8 and vectors.shape[1] == 32
    query = str(sound_library / "chirp.flac")
    with SearchEngine(library) as engine:
        searches = engine.queries.index_queries(parse_query("", sounds=(query,)))
        # Sounds by the sound-similarity model (first: its scale), photos through the bridge;
        # CLAP's sound index is not asked about the query sound.
        assert [s.key for s in searches] == [model, "tiny-clip"]
        hits = engine.search("", sounds=(query,), k=5, filters=None)
    assert hits[0].path == query and hits[0].score == pytest.approx(1.0, abs=1e-3)
    assert {h.kind for h in hits} >= {"audio"}


def test_words_still_search_the_sounds_through_clap(tmp_path, sound_library):
    library = Library(tmp_path / "data")
    index(library, sound_library, "tiny-ast")
    with SearchEngine(library) as engine:
        keys = [s.key for s in engine.queries.index_queries(parse_query("a dog barking"))]
    assert "tiny-clap" in keys and "tiny-ast" not in keys


def test_choosing_a_sound_model_later_processes_the_sounds_again_and_a_switch_replaces_it(
    tmp_path, sound_library
):
    library = Library(tmp_path / "data")
    index(library, sound_library, None)
    assert library.model("sound") is None and "tiny-ast" not in library.catalog.vector_keys()

    first = index(library, sound_library, "tiny-ast")
    assert first.indexed == 4  # the sound files; the photo is unchanged
    assert library.model("sound") == "tiny-ast"
    clap_before = len(library.catalog.vectors("tiny-clap")[0])
    again = index(library, sound_library, "tiny-ast")
    assert again.indexed == 0

    switched = index(library, sound_library, "tiny-wav2vec2")
    assert switched.indexed == 4 and library.model("sound") == "tiny-wav2vec2"
    assert "tiny-ast" not in library.catalog.vector_keys()
    assert not library.index_path("tiny-ast").exists()
    # The other spaces keep their vectors.
    assert len(library.catalog.vectors("tiny-clap")[0]) == clap_before
    assert len(library.catalog.vectors("tiny-clip")[0]) >= 1


def test_search_refuses_another_sound_model_than_the_librarys(tmp_path, sound_library):
    library = Library(tmp_path / "data")
    index(library, sound_library, "tiny-ast")
    with pytest.raises(ModelMismatchError, match="index --sound-model tiny-wav2vec2"):
        library.check_search_model("sound", "tiny-wav2vec2")


def test_similar_sounds_rank_by_the_sound_model(tmp_path, sound_library):
    """The ranking of a query sound is the sound model's cosine order over the library's
    pooled sound vectors (calibration keeps the first list's cosines)."""
    library = Library(tmp_path / "data")
    index(library, sound_library, "tiny-ast")
    query = str(sound_library / "tone.wav")
    with SearchEngine(library, alpha=1.0) as engine:
        hits = [h for h in engine.search("", sounds=(query,), k=10) if h.kind == "audio"]
        vector = engine.queries.index_queries(parse_query("", sounds=(query,)))[0].vector
    ids, vectors = library.catalog.vectors("tiny-ast")
    found = library.catalog.resolve_segments([int(i) for i in ids])
    best: dict[str, float] = {}
    for seg_id, row in zip(ids.tolist(), vectors, strict=True):
        path = found[seg_id][0].path
        best[path] = max(best.get(path, -1.0), float(row @ vector))
    expected = sorted(best, key=lambda p: -best[p])
    assert [h.path for h in hits] == expected
    # The three closest keep their cosines; the last one lies below what an unrelated item
    # scores and is shown at that floor (search/fusion.py).
    top = [best[p] for p in expected[:3]]
    np.testing.assert_allclose([h.score for h in hits[:3]], top, atol=1e-4)
    assert hits[3].score < top[2]
