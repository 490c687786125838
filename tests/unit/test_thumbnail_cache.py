"""The picture cache (search/thumbnails.py) is pruned: pictures of files the library no
longer holds go, and past the size cap those least recently shown go first."""

from __future__ import annotations

import os

import pytest

from search.decode.isolation import IsolatedDecoder
from search.errors import TroveError
from search.thumbnails import Thumbnails, cache_cap
from tests.media import make_photo


@pytest.fixture
def thumbs(tmp_path):
    with IsolatedDecoder(workers=1, timeout_s=60) as decoder:
        yield Thumbnails(tmp_path / "thumbnails", decoder)


def pictures(folder) -> set:
    return {p for p in folder.rglob("*.jpg")}


def test_pictures_of_files_gone_are_pruned(thumbs, tmp_path):
    photos = [make_photo(tmp_path / "lib" / f"p{i}.jpg", i, quality=90) for i in range(3)]
    made = [thumbs.get(str(p)) for p in photos]
    still_kept = thumbs.get(str(photos[0]), box=1600)  # a second size of the same photo
    thumbs.missing()
    pruned = thumbs.prune([str(photos[0]), str(photos[1])], max_bytes=2**30)
    assert pruned.files == 1 and pruned.freed_bytes > 0
    assert pictures(thumbs.folder) == {made[0], made[1], still_kept}
    assert (thumbs.folder / "missing.png").exists()
    assert thumbs.get(str(photos[2])).exists()  # made again on the next view


def test_past_the_cap_the_least_recently_shown_go(thumbs, tmp_path):
    photos = [make_photo(tmp_path / "lib" / f"p{i}.jpg", i, quality=90) for i in range(4)]
    made = [thumbs.get(str(p)) for p in photos]
    for age, picture in enumerate(reversed(made)):  # made[0] shown longest ago
        os.utime(picture, (1_000_000 + age, 1_000_000 + age))
    thumbs.get(str(photos[0]))  # shown again now: the newest
    sizes = {p: p.stat().st_size for p in made}
    cap = sizes[made[0]] + sizes[made[3]] + 1
    pruned = thumbs.prune(map(str, photos), max_bytes=cap)
    assert pictures(thumbs.folder) == {made[0]}  # down to 90% of the cap: only the newest
    assert pruned.files == 3 and pruned.kept_bytes == sizes[made[0]]


def test_the_cap_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("TROVE_THUMBNAIL_CACHE_MB", "500")
    assert cache_cap() == 500 * 2**20
    monkeypatch.setenv("TROVE_THUMBNAIL_CACHE_MB", "lots")
    with pytest.raises(TroveError, match="not a number of megabytes"):
        cache_cap()
