"""Library-folder checks (indexers/roots.py): what the CLI, the Indexer and the web UI refuse."""

from __future__ import annotations

import os
import shutil

import pytest

from indexers.roots import check_roots, typed_folder
from search.errors import LibraryRootError
from search.storage.catalog import Root
from tests.media import make_photo


def folder(path) -> Root:
    return Root(str(path), (), ())


def test_each_problem_with_a_folder_is_named(tmp_path, photo_library):
    data = tmp_path / "data"
    data.mkdir()
    cases = {
        tmp_path / "nope": "does not exist. Check the path, or plug in the drive",
        photo_library / "beach.jpg": "is a file, not a folder",
        data: "is Trove's own data folder",
        data / "indexes": "is Trove's own data folder",
        tmp_path: "holds Trove's data folder",
    }
    (data / "indexes").mkdir()
    for path, reason in cases.items():
        with pytest.raises(LibraryRootError, match=reason):
            check_roots([folder(path)], data)
    check_roots([folder(photo_library)], data)


def test_a_data_folder_in_a_hidden_folder_is_allowed(tmp_path):
    # The walk skips hidden folders, so ~ may hold ~/.local/share/trove.
    home = tmp_path / "home"
    make_photo(home / "photo.jpg", seed=1)
    check_roots([folder(home)], home / ".local" / "share" / "trove")
    with pytest.raises(LibraryRootError, match="holds Trove's data folder"):
        check_roots([folder(home)], home / "trove")


def test_the_data_folder_is_compared_through_symlinks(tmp_path, photo_library):
    link = tmp_path / "link"
    link.symlink_to(photo_library)
    with pytest.raises(LibraryRootError, match="holds Trove's data folder"):
        check_roots([folder(link)], photo_library / "data")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
def test_an_unreadable_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        with pytest.raises(LibraryRootError, match="cannot be read"):
            check_roots([folder(locked)], tmp_path / "data")
    finally:
        locked.chmod(0o755)


def test_an_empty_folder_the_catalog_knows_is_refused(tmp_path, library, photo_library, index_run):
    index_run(photo_library)
    shutil.rmtree(photo_library)
    photo_library.mkdir()  # the mount point an unplugged drive leaves behind
    root = folder(photo_library.resolve())
    check_roots([root], library.data_dir)  # without the catalog, empty is fine
    with pytest.raises(LibraryRootError, match="is empty, but the catalog holds 6 files"):
        check_roots([root], library.data_dir, library.catalog)


def test_a_typed_folder_must_be_a_full_path(tmp_path, photo_library):
    data = tmp_path / "data"
    with pytest.raises(LibraryRootError, match="Type the full path"):
        typed_folder("  ", data)
    with pytest.raises(LibraryRootError, match="photos is a relative path"):
        typed_folder("photos", data)
    assert typed_folder(f" {photo_library}/ ", data) == photo_library.resolve()
