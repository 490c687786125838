"""A library remembers its model; a different model means a re-index, never a mixed index."""

from __future__ import annotations

import pytest

from search.engine import SearchEngine
from search.errors import ModelMismatchError
from search.models import ClipEncoder, get_preset

pytestmark = pytest.mark.slow


def test_search_uses_the_librarys_model_and_refuses_another(photo_library, library, index_run):
    index_run(photo_library)
    assert SearchEngine(library).encoder.name == "tiny-clip"
    with pytest.raises(ModelMismatchError, match="index --model clip-vit-b-32"):
        SearchEngine(library, model="clip-vit-b-32")


def test_index_with_a_new_model_reencodes_and_switches(
    photo_library, library, index_run, vit_b32_checkpoint
):
    index_run(photo_library)
    vit = ClipEncoder(get_preset("clip-vit-b-32"), vit_b32_checkpoint, "cpu")
    summary = index_run(photo_library, encoder=vit)
    assert (summary.indexed, summary.unchanged) == (6, 0)
    assert library.clip_model == "clip-vit-b-32"
    assert len(library.catalog.vectors("tiny-clip")[0]) == 0
    assert not library.index_path("tiny-clip").exists()

    engine = SearchEngine(library, model_path=vit_b32_checkpoint)
    hit = engine.search("", images=(str(photo_library / "forest.jpg"),), k=1)[0]
    assert hit.path == str(photo_library / "forest.jpg") and hit.score > 0.99


def test_interrupted_switch_keeps_the_old_model_searchable(
    photo_library, library, index_run, vit_b32_checkpoint, monkeypatch
):
    index_run(photo_library)
    vit = ClipEncoder(get_preset("clip-vit-b-32"), vit_b32_checkpoint, "cpu")
    calls = {"n": 0}
    real = vit.encode_image_tensors

    def interrupt_on_second_batch(batch):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(batch)

    monkeypatch.setattr(vit, "encode_image_tensors", interrupt_on_second_batch)
    summary = index_run(photo_library, encoder=vit)
    assert summary.interrupted and summary.indexed == 4
    assert library.clip_model == "tiny-clip"
    assert len(SearchEngine(library).search("a lake", k=10)) == 6

    monkeypatch.setattr(vit, "encode_image_tensors", real)
    resumed = index_run(photo_library, encoder=vit)
    assert resumed.indexed == 2 and library.clip_model == "clip-vit-b-32"


def test_a_model_of_the_wrong_space_fails_before_anything_is_saved(photo_library, library):
    from indexers.pipeline import Indexer
    from search.errors import UnknownModelError
    from search.models.encoders import Encoders
    from search.storage.catalog import Root

    encoders = Encoders("tiny-clip", "tiny-clip", "tiny-text")
    with pytest.raises(UnknownModelError, match="tiny-clip is not an audio model"):
        Indexer(library, encoders, progress=False).run([Root(str(photo_library), (), ())])
    assert library.catalog.counts() == {}
    assert library.model("clip") is None and library.model("clap") is None


def test_switching_one_spaces_model_keeps_another_spaces_vectors(photo_library, library, index_run):
    from search.models.encoders import meta_key

    index_run(photo_library)
    photos = len(library.catalog.vectors("tiny-clip")[0])
    # A library an older Trove left with the CLIP model's name recorded as its sound model.
    library.catalog.set_meta(meta_key("clap"), "tiny-clip")
    index_run(photo_library)
    assert library.model("clap") == "tiny-clap"
    assert len(library.catalog.vectors("tiny-clip")[0]) == photos == 6
    hit = SearchEngine(library).search("", images=(str(photo_library / "forest.jpg"),), k=1)[0]
    assert hit.path == str(photo_library / "forest.jpg")
