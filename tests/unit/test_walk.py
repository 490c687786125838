from __future__ import annotations

import os
from pathlib import Path

from indexers.walk import matches, walk


def names(root: Path, **kwargs) -> list[str]:
    return [os.path.relpath(f.path, root) for f in walk(str(root), **kwargs)]


def test_walk_finds_media_skips_hidden_and_other_files(photo_library):
    found = names(photo_library)
    assert found == [
        "beach.jpg",
        "forest.jpg",
        "2023/party.png",
        "2023/snow.jpg",
        "2023/summer/dog.jpg",
        "2023/summer/lake.webp",
    ]


def test_walk_hidden_files_on_request(photo_library):
    assert ".thumbnails/beach.jpg" in names(photo_library, include_hidden=True)


def test_exclude_globs_prune_folders_and_files(photo_library):
    assert names(photo_library, exclude=["summer"]) == [
        "beach.jpg",
        "forest.jpg",
        "2023/party.png",
        "2023/snow.jpg",
    ]
    assert names(photo_library, exclude=["*.jpg"]) == ["2023/party.png", "2023/summer/lake.webp"]
    assert names(photo_library, exclude=["2023/*"]) == ["beach.jpg", "forest.jpg"]


def test_include_globs(photo_library):
    assert names(photo_library, include=["*.png", "*.webp"]) == [
        "2023/party.png",
        "2023/summer/lake.webp",
    ]


def test_symlink_loop_ends_and_linked_folders_are_followed(photo_library, tmp_path):
    (photo_library / "2023" / "summer" / "back-to-top").symlink_to(photo_library)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "extra.jpg").write_bytes((photo_library / "beach.jpg").read_bytes())
    (photo_library / "linked").symlink_to(outside)
    found = names(photo_library)
    assert "linked/extra.jpg" in found
    # Each real folder is walked once, whatever the number of ways into it.
    assert len(found) == len(set(found)) == 7


def test_dangling_symlink_is_reported_and_skipped(photo_library):
    (photo_library / "gone.jpg").symlink_to(photo_library / "missing.jpg")
    errors = []
    found = names(photo_library, on_error=lambda path, exc: errors.append(path))
    assert "gone.jpg" not in found
    assert errors == [str(photo_library / "gone.jpg")]


def test_matches_relative_path_or_name():
    assert matches("a/b/c.jpg", ["*.jpg"])
    assert matches("a/cache/x.png", ["a/cache/*"])
    assert matches("a/.trash", [".trash"])
    assert not matches("a/b.png", ["*.jpg"])
