"""A file that failed is not decoded again on every run while it is unchanged; it is tried
again when it changes, when Trove's version changes, and on request (--retry-failed)."""

from __future__ import annotations

from indexers.changes import FAILED_WITH_META
from indexers.pipeline import Indexer
from search import __version__
from search.models.encoders import Encoders
from search.storage.catalog import Root
from tests.media import make_photo


def run(library, tiny_encoder, root, retry_failed=False):
    encoders = Encoders(tiny_encoder, "tiny-clap", "tiny-text")
    indexer = Indexer(library, encoders, batch_size=4, progress=False, retry_failed=retry_failed)
    return indexer.run([Root(str(root), (), ())])


def test_a_failed_file_waits_until_it_changes_or_is_asked_for(photo_library, library, tiny_encoder):
    broken = photo_library / "broken.jpg"
    broken.write_bytes(make_photo(photo_library / "tmp.png", 3).read_bytes()[:300])
    (photo_library / "tmp.png").unlink()
    first = run(library, tiny_encoder, photo_library)
    assert [path for path, _ in first.failed] == [str(broken)]
    assert library.catalog.get_meta(FAILED_WITH_META) == __version__

    again = run(library, tiny_encoder, photo_library)
    assert (again.failed, again.indexed) == ([], 0)
    assert any("1 file(s) that failed before are unchanged" in n for n in again.notes)
    assert [path for path, _ in library.catalog.failures()] == [str(broken)]  # still listed

    asked = run(library, tiny_encoder, photo_library, retry_failed=True)
    assert [path for path, _ in asked.failed] == [str(broken)]

    library.catalog.set_meta(FAILED_WITH_META, "0.0.1")  # recorded by an older Trove
    upgraded = run(library, tiny_encoder, photo_library)
    assert [path for path, _ in upgraded.failed] == [str(broken)]
    assert library.catalog.get_meta(FAILED_WITH_META) == __version__

    make_photo(broken, 9, quality=90)  # the file was fixed
    fixed = run(library, tiny_encoder, photo_library)
    assert (fixed.failed, fixed.indexed) == ([], 1)
    assert library.catalog.failures() == []


def test_a_clean_library_records_no_version(photo_library, library, tiny_encoder):
    # No failure, no write: a clean run adds no commit of its own.
    run(library, tiny_encoder, photo_library)
    assert library.catalog.get_meta(FAILED_WITH_META) is None
