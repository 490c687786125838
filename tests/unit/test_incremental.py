"""Re-runs encode only what changed: counted at the encoder."""

from __future__ import annotations

import json
import os
import shutil

from search.engine import SearchEngine
from tests.media import make_photo


def indexed_paths(library) -> set[str]:
    root_items = library.catalog.items_under("/")
    return {p for p, item in root_items.items() if item.error is None}


def test_first_run_indexes_everything_and_rerun_nothing(
    photo_library, library, index_run, tiny_encoder
):
    first = index_run(photo_library)
    assert (first.indexed, first.failed) == (6, [])
    assert tiny_encoder.images_encoded == 6

    second = index_run(photo_library)
    assert (second.indexed, second.unchanged) == (0, 6)
    assert tiny_encoder.images_encoded == 6


def test_touch_is_not_reencoded_but_a_modified_file_is(
    photo_library, library, index_run, tiny_encoder
):
    index_run(photo_library)
    beach = photo_library / "beach.jpg"
    os.utime(beach, ns=(10**18, 10**18))
    touched = index_run(photo_library)
    assert (touched.touched, touched.indexed) == (1, 0)
    assert tiny_encoder.images_encoded == 6

    make_photo(photo_library / "forest.jpg", 99, quality=90)
    modified = index_run(photo_library)
    assert (modified.indexed, modified.unchanged) == (1, 5)
    assert tiny_encoder.images_encoded == 7
    assert len(library.open_store(tiny_encoder.name, tiny_encoder.dim)) == 6


def test_rename_and_move_keep_vectors_and_search_finds_the_new_path(
    photo_library, library, index_run, tiny_encoder
):
    index_run(photo_library)
    old = photo_library / "2023" / "snow.jpg"
    new = photo_library / "winter" / "snowy-day.jpg"
    new.parent.mkdir()
    shutil.move(old, new)
    summary = index_run(photo_library)
    assert (summary.moved, summary.indexed, summary.removed) == (1, 0, 0)
    assert tiny_encoder.images_encoded == 6
    assert str(new) in indexed_paths(library)
    assert str(old) not in indexed_paths(library)

    results = SearchEngine(library).search("", images=(str(new),), k=1)
    assert results[0].path == str(new)
    assert results[0].score > 0.999


def test_move_between_roots_is_recognised(
    photo_library, tmp_path, library, index_run, tiny_encoder
):
    other = tmp_path / "other-root"
    other.mkdir()
    index_run(photo_library, other)
    shutil.move(photo_library / "beach.jpg", other / "beach.jpg")
    summary = index_run(photo_library, other)
    assert summary.moved == 1
    assert tiny_encoder.images_encoded == 6


def test_deleted_file_leaves_catalog_and_index(photo_library, library, index_run, tiny_encoder):
    index_run(photo_library)
    (photo_library / "forest.jpg").unlink()
    summary = index_run(photo_library)
    assert summary.removed == 1
    assert str(photo_library / "forest.jpg") not in indexed_paths(library)
    store = library.open_store(tiny_encoder.name, tiny_encoder.dim)
    assert len(store) == 5
    paths = {r.path for r in SearchEngine(library).search("forest", k=10)}
    assert str(photo_library / "forest.jpg") not in paths
    assert len(paths) == 5


def test_copy_of_a_file_is_indexed_as_its_own_item(photo_library, library, index_run):
    index_run(photo_library)
    shutil.copy(photo_library / "beach.jpg", photo_library / "beach-copy.jpg")
    summary = index_run(photo_library)
    assert (summary.indexed, summary.moved) == (1, 0)
    assert len(indexed_paths(library)) == 7


def test_excluding_a_folder_later_removes_its_items(photo_library, library, index_run):
    index_run(photo_library)
    summary = index_run(photo_library, exclude=["summer"])
    assert summary.removed == 2
    assert len(indexed_paths(library)) == 4


def test_new_file_is_picked_up_and_committed_batches_survive(
    photo_library, library, index_run, tiny_encoder
):
    index_run(photo_library)
    for i in range(5):
        make_photo(photo_library / "new" / f"n{i}.jpg", 100 + i)
    summary = index_run(photo_library)
    assert summary.indexed == 5
    assert tiny_encoder.images_encoded == 11
    assert library.catalog.counts() == {"image": 11}


def test_unchanged_rescan_leaves_the_index_file_alone(
    photo_library, library, index_run, tiny_encoder
):
    index_run(photo_library)
    index_file = library.index_path(tiny_encoder.name)
    before = index_file.stat().st_mtime_ns
    index_run(photo_library)
    assert index_file.stat().st_mtime_ns == before
    (photo_library / "beach.jpg").rename(photo_library / "beach-2022.jpg")
    index_run(photo_library)
    assert index_file.stat().st_mtime_ns == before  # a move changes no vector
    # ...and the index is still in sync, so search needs no rebuild.
    sidecar = json.loads(index_file.with_suffix(".faiss.json").read_text())
    assert sidecar["generation"] == library.catalog.generation


def test_indexer_moves_the_index_to_the_type_its_size_calls_for(
    photo_library, library, index_run, tiny_encoder, monkeypatch
):
    """Growing past the exact-search threshold rebuilds at the end of the index run, so the
    next search does not pay for it."""
    import search.storage.store

    monkeypatch.setattr(search.storage.store, "FLAT_MAX_COMPONENTS", 4 * tiny_encoder.dim)
    monkeypatch.setattr(search.storage.store, "MIN_APPROXIMATE_COUNT", 4)
    index_run(photo_library)
    sidecar = json.loads(library.index_path("tiny-clip").with_suffix(".faiss.json").read_text())
    assert sidecar["index_type"].startswith("IVF")
    assert SearchEngine(library).store.index_type == sidecar["index_type"]


def _index_with(library, root, settings):
    from indexers.pipeline import Indexer
    from search.models.encoders import Encoders
    from search.storage.catalog import Root

    encoders = Encoders("tiny-clip", "tiny-clap", "tiny-text")
    indexer = Indexer(library, encoders, batch_size=4, progress=False, settings=settings)
    return indexer.run([Root(str(root), (), ())])


def _segment_count(library, path) -> int:
    item = library.catalog.item_by_path(str(path))
    return len(library.catalog.item_vectors([item.id], "tiny-clip"))


def test_turning_ocr_on_or_off_reads_the_photos_again_and_is_remembered(
    photo_library, library, tesseract
):
    """Issue 21 item 2: --ocr on an indexed library re-processes its photos (not "6
    unchanged"), a run without the option keeps the library's choice, and --no-ocr turns it
    off again, re-processing them once more."""
    from search.segments import SegmentSettings, library_ocr

    assert _index_with(library, photo_library, SegmentSettings()).indexed == 6
    turned_on = _index_with(library, photo_library, SegmentSettings(ocr=True))
    assert (turned_on.indexed, turned_on.unchanged) == (6, 0)
    assert any("OCR" in note and "6" in note for note in turned_on.notes), turned_on.notes
    assert library_ocr(library.catalog) is True

    kept = _index_with(library, photo_library, SegmentSettings())
    assert (kept.indexed, kept.unchanged) == (0, 6)
    assert library_ocr(library.catalog) is True

    turned_off = _index_with(library, photo_library, SegmentSettings(ocr=False))
    assert (turned_off.indexed, turned_off.unchanged) == (6, 0)
    assert library_ocr(library.catalog) is False


def test_a_new_frame_rate_samples_the_videos_again(tmp_path, library):
    """Issue 21 item 2: --frame-rate on an indexed library re-samples its videos (photos stay
    as they are), and the summary says so."""
    from search.segments import SegmentSettings
    from tests.media_video import make_video

    root = tmp_path / "media"
    video = make_video(root / "clip.mp4", duration_s=8.0)
    make_photo(root / "photo.jpg", 3)
    _index_with(library, root, SegmentSettings(frame_rate=0.5))
    before = _segment_count(library, video)

    faster = _index_with(library, root, SegmentSettings(frame_rate=2.0))
    assert (faster.indexed, faster.unchanged) == (1, 1)
    assert any("frame rate" in note and "1 video" in note for note in faster.notes), faster.notes
    assert _segment_count(library, video) > before
    same = _index_with(library, root, SegmentSettings(frame_rate=2.0))
    assert (same.indexed, same.unchanged) == (0, 2)
