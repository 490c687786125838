"""The folder watcher (indexers/watch.py) on real folders: real inotify events, the real
indexer with the tiny model, searches of the real catalog and index. Each change is
made the way a person's program makes it (a copy, a rename, an unlink) and waited for."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from indexers.watch import (
    LIVE,
    MARKED,
    POLLED,
    UNAVAILABLE,
    FolderWatcher,
    filesystem_type,
    library_runner,
    no_events_reason,
)
from search.engine import SearchEngine
from search.models.encoders import Encoders
from search.storage.catalog import Root
from tests.media import make_photo

WAIT_S = 60.0


def eventually(check: Callable[[], object], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


def indexed(library, path: Path) -> bool:
    item = library.catalog.item_by_path(str(path))
    return item is not None and item.error is None


def first_hit(library, photo: Path) -> str:
    return SearchEngine(library).search("", images=(str(photo),), k=1)[0].path


@pytest.fixture
def watch(library, tiny_encoder):
    """Start a watcher over folders with the tiny model; stopped after the test."""
    started: list[FolderWatcher] = []

    def start(*folders: Path, polled=(), debounce_s=0.4, poll_interval_s=600.0) -> FolderWatcher:
        encoders = Encoders(tiny_encoder, "tiny-clap", "tiny-text")
        watcher = FolderWatcher(
            lambda: [Root(str(f), (), ()) for f in folders],
            library_runner(library, encoders, batch_size=4),
            polled=lambda: {str(f) for f in polled},
            debounce_s=debounce_s,
            poll_interval_s=poll_interval_s,
        )
        started.append(watcher.start())
        assert watcher.wait_idle(WAIT_S), "the first scan did not finish"
        return watcher

    yield start
    for watcher in started:
        watcher.stop()


def test_create_modify_move_delete_each_reach_search(
    photo_library, library, tiny_encoder, watch, tmp_path
):
    watcher = watch(photo_library)
    assert watcher.state().folders[0].mode == LIVE
    assert indexed(library, photo_library / "beach.jpg")
    encoded = tiny_encoder.images_encoded

    # create: a photo copied in is found first by itself
    outside = make_photo(tmp_path / "new.jpg", 40, quality=90)
    new = photo_library / "new.jpg"
    shutil.copy(outside, new)
    eventually(lambda: indexed(library, new), "the copied photo is indexed")
    assert first_hit(library, outside) == str(new)

    # modify: new content is encoded again and found by the new content
    changed = make_photo(tmp_path / "changed.jpg", 41, quality=90)
    before = library.catalog.item_by_path(str(new)).fingerprint
    shutil.copyfile(changed, new)
    eventually(
        lambda: library.catalog.item_by_path(str(new)).fingerprint != before,
        "the modified photo is indexed again",
    )
    assert first_hit(library, changed) == str(new)
    assert tiny_encoder.images_encoded == encoded + 2

    # move into a new folder: the same vectors, under the new path
    moved = photo_library / "trips" / "renamed.jpg"
    moved.parent.mkdir()
    os.rename(new, moved)
    eventually(lambda: indexed(library, moved), "the moved photo is at its new path")
    assert library.catalog.item_by_path(str(new)) is None
    assert tiny_encoder.images_encoded == encoded + 2
    assert first_hit(library, changed) == str(moved)

    # delete: out of the catalog and the index
    count = len(library.open_store(tiny_encoder.name, tiny_encoder.dim))
    moved.unlink()
    eventually(lambda: library.catalog.item_by_path(str(moved)) is None, "the photo is gone")
    assert len(library.open_store(tiny_encoder.name, tiny_encoder.dim)) == count - 1
    assert first_hit(library, changed) != str(moved)


def test_a_burst_of_files_is_one_batched_run(photo_library, library, watch, tmp_path):
    staging = tmp_path / "staging"
    photos = [make_photo(staging / f"burst{i:02d}.jpg", 100 + i, (96, 64)) for i in range(60)]
    # A copy that pauses for longer than the debounce would rightly be two runs; 2 s is far
    # more than copying 60 small files takes.
    watcher = watch(photo_library, debounce_s=2.0)
    runs = watcher.state().runs
    target = photo_library / "burst"
    target.mkdir()
    for photo in photos:
        shutil.copy(photo, target / photo.name)
    eventually(lambda: all(indexed(library, target / p.name) for p in photos), "all 60 are indexed")
    assert watcher.wait_idle(WAIT_S)
    assert watcher.state().runs - runs == 1


def test_a_half_written_file_waits_until_it_is_closed(photo_library, library, watch, tmp_path):
    watcher = watch(photo_library, debounce_s=0.3)
    data = make_photo(tmp_path / "big.jpg", 7, (640, 480), quality=95).read_bytes()
    target = photo_library / "arriving.jpg"
    with open(target, "wb") as f:
        f.write(data[: len(data) // 2])
        f.flush()
        # The folder has been quiet for several debounces: the watcher ran and held it back.
        eventually(lambda: str(target) in watcher.state().held, "a run held the file back")
        assert library.catalog.item_by_path(str(target)) is None
        f.write(data[len(data) // 2 :])
    eventually(lambda: indexed(library, target), "the finished file is indexed")
    assert first_hit(library, tmp_path / "big.jpg") == str(target)
    assert library.catalog.failures() == []


def test_a_folder_marked_for_polling_is_rescanned(photo_library, library, watch, tmp_path):
    watcher = watch(photo_library, polled=[photo_library], poll_interval_s=1.0)
    (folder,) = watcher.state().folders
    assert (folder.mode, folder.reason) == (POLLED, MARKED)
    new = photo_library / "polled.jpg"
    make_photo(new, 50, quality=90)
    eventually(lambda: indexed(library, new), "the poll found the new photo")


def test_an_unplugged_folder_is_never_a_deletion(photo_library, library, watch, tmp_path):
    watcher = watch(photo_library, poll_interval_s=0.5)
    known = len(library.catalog.items_under(str(photo_library)))
    away = tmp_path / "unplugged"
    os.rename(photo_library, away)  # the drive is gone, mount point and all
    eventually(lambda: watcher.state().folders[0].mode == UNAVAILABLE, "the folder is missing")
    assert "does not exist" in watcher.state().folders[0].reason
    assert len(library.catalog.items_under(str(photo_library))) == known

    os.rename(away, photo_library)  # plugged in again
    eventually(lambda: watcher.state().folders[0].mode == LIVE, "the folder is watched again")
    new = photo_library / "after.jpg"
    make_photo(new, 60, quality=90)
    eventually(lambda: indexed(library, new), "a photo added after replugging is indexed")
    assert len(library.catalog.items_under(str(photo_library))) == known + 1


def test_an_emptied_mount_point_keeps_its_files(photo_library, library, watch, tmp_path):
    watcher = watch(photo_library, poll_interval_s=0.5)
    known = len(library.catalog.items_under(str(photo_library)))
    for entry in list(photo_library.iterdir()):
        shutil.move(entry, tmp_path / entry.name)
    eventually(lambda: watcher.state().folders[0].mode == UNAVAILABLE, "the folder is refused")
    assert "Is its drive mounted?" in watcher.state().folders[0].reason
    assert len(library.catalog.items_under(str(photo_library))) == known


def test_network_and_fuse_mounts_are_polled(tmp_path):
    # This machine's own mount table, plus a share and a FUSE mount as Linux lists them.
    table = tmp_path / "mounts"
    shares = (
        "nas:/volume1/photos /mnt/nas\\040photos nfs4 rw,relatime 0 0\n"
        "ann@host:/home/ann /mnt/ssh fuse.sshfs rw 0 0\n"
    )
    table.write_text(Path("/proc/self/mounts").read_text() + shares)
    assert no_events_reason("/mnt/nas photos/2023", str(table)) == (
        "on a nfs4 file system, which sends no change events"
    )
    assert "fuse.sshfs" in no_events_reason("/mnt/ssh/Pictures", str(table))
    assert filesystem_type("/proc/self", str(table)) == "proc"
    assert no_events_reason(str(tmp_path)) is None  # a local disk sends events
