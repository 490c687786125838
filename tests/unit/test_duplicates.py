"""Near-duplicate photos: resized, recompressed and brightened copies group together; other
photos do not; files are only reported, never touched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from search.duplicates import find_duplicates, find_library_duplicates, hamming, phash
from tests.media import make_photo
from tests.media_video import make_video


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    original = make_photo(tmp_path / "beach.jpg", 1, size=(800, 600), quality=95)
    with Image.open(original) as im:
        im.resize((400, 300), Image.Resampling.LANCZOS).save(tmp_path / "beach-small.jpg")
        im.save(tmp_path / "beach-recompressed.jpg", quality=55)
        ImageEnhance.Brightness(im).enhance(1.15).save(tmp_path / "beach-bright.png")
    others = [make_photo(tmp_path / f"other-{i}.jpg", 10 + i, size=(800, 600)) for i in range(4)]
    return [
        original,
        tmp_path / "beach-small.jpg",
        tmp_path / "beach-recompressed.jpg",
        tmp_path / "beach-bright.png",
        *others,
    ]


def _inputs(paths: list[Path], vectors: np.ndarray):
    return (
        list(range(100, 100 + len(paths))),
        [str(p) for p in paths],
        [p.stat().st_size for p in paths],
        vectors,
    )


def _tiny_clip_vectors(paths: list[Path]) -> np.ndarray:
    from search.models import load_encoder

    images = [Image.open(p).convert("RGB") for p in paths]
    return load_encoder("tiny-clip").encode_images(images)


@pytest.mark.slow
def test_copies_of_one_photo_form_one_group(photos):
    before = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in photos}
    # An untrained CLIP finds every pair similar: the perceptual hash must tell them apart.
    groups = find_duplicates(*_inputs(photos, _tiny_clip_vectors(photos)), clip_threshold=0.0)
    assert len(groups) == 1
    members = groups[0].members
    assert {Path(m.path).name for m in members} == {
        "beach.jpg",
        "beach-small.jpg",
        "beach-recompressed.jpg",
        "beach-bright.png",
    }
    assert [m.size for m in members] == sorted((m.size for m in members), reverse=True)
    assert groups[0].reclaimable == sum(m.size for m in members[1:])
    assert {m.item_id for m in members} == {100, 101, 102, 103}
    assert before == {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in photos}


def test_pixels_alike_but_clip_vectors_apart_is_not_a_duplicate(photos):
    # Orthogonal vectors: CLIP says these show different things, so no pair is a candidate.
    vectors = np.eye(len(photos), 16, dtype=np.float32)
    assert find_duplicates(*_inputs(photos, vectors)) == []


def test_a_file_that_disappeared_is_left_out(photos):
    vectors = np.tile(np.eye(1, 16, dtype=np.float32), (len(photos), 1))
    inputs = _inputs(photos, vectors)
    photos[1].unlink()
    (group,) = find_duplicates(*inputs)
    assert "beach-small.jpg" not in {Path(m.path).name for m in group.members}
    assert len(group.members) == 3


def test_phash_distances(photos):
    hashes = [phash(Image.open(p)) for p in photos]
    copies = [hamming(hashes[0], h) for h in hashes[1:4]]
    strangers = [hamming(hashes[0], h) for h in hashes[4:]]
    assert max(copies) <= 6
    assert min(strangers) >= 16


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError):
        find_duplicates([1, 2], ["a"], [1, 2], np.zeros((2, 4), np.float32))
    assert find_duplicates([1], ["a"], [1], np.ones((1, 4), np.float32)) == []


def test_library_duplicates_compare_the_indexed_photos_only(library, index_run, photo_library):
    assert find_library_duplicates(library.catalog, library.clip_model).groups == []
    with Image.open(photo_library / "beach.jpg") as im:
        im.resize((160, 120), Image.Resampling.LANCZOS).save(photo_library / "beach-small.jpg")
    # A video's frames share the photos' CLIP space but are no file to delete one of.
    make_video(photo_library / "clip.mp4", duration_s=2.0)
    index_run(photo_library)
    assert library.catalog.counts() == {"image": 7, "video": 1}
    # The untrained tiny-clip finds every pair similar: the perceptual hash decides.
    found = find_library_duplicates(library.catalog, library.clip_model, clip_threshold=0.0)
    assert found.photos == 7
    [group] = found.groups
    assert [Path(m.path).name for m in group.members] == ["beach.jpg", "beach-small.jpg"]
    assert group.to_dict() == {
        "reclaimable_bytes": group.members[1].size,
        "files": [{"path": m.path, "size": m.size} for m in group.members],
    }
