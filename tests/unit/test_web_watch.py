"""The served library kept current (search/web/watching.py): the watcher's runs go through
the UI's index jobs, searches see their files, a run asked for by hand takes over, and a
pause is remembered by the library. Real folders, real inotify, the tiny model."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from indexers.watch import LIVE, is_paused
from search.errors import TroveError
from search.web.jobs import DONE, IndexJobs
from search.web.library_tab import render_watch
from search.web.service import SearchRequest, TroveUI
from search.web.watching import LibraryWatch
from tests.media import make_photo
from tests.unit.test_watch import WAIT_S, eventually


def indexed(ui: TroveUI, path: Path) -> bool:
    item = ui.library().catalog.item_by_path(str(path))
    return item is not None and item.error is None


@pytest.fixture
def served(tmp_path: Path, photo_library: Path):
    """A UI over an indexed library, with its watcher running, as `serve` starts them."""
    ui = TroveUI(tmp_path / "data", model="tiny-clip", jobs=IndexJobs(tmp_path / "data", 2))
    ui.add_root(str(photo_library))
    ui.start_indexing("tiny-clip")
    assert ui.jobs.wait(WAIT_S).state == DONE
    ui.watch = LibraryWatch(ui, debounce_s=0.3).start()
    assert ui.watch.watcher.wait_idle(WAIT_S)
    yield ui
    ui.watch.stop()
    ui.close()


def test_a_photo_copied_in_is_searchable_without_a_reload(served, photo_library, tmp_path):
    status = served.library_status()["watch"]
    assert [(f["folder"], f["mode"]) for f in status["folders"]] == [
        (str(photo_library.resolve()), LIVE)
    ]
    before = served.search(SearchRequest(query="photo"), page_size=50).results
    new = photo_library / "arrived.jpg"
    shutil.copy(make_photo(tmp_path / "camera.jpg", 77, quality=90), new)
    # While a run writes, the UI's engine is refreshed at most every 10 s; once it is done,
    # the next search sees everything it wrote.
    eventually(
        lambda: indexed(served, new) and not served.index_status().running,
        "the watcher indexed the photo",
    )
    page = served.search(SearchRequest(similar_to=str(new)), page_size=3)
    assert page.results[0].path == str(new)
    assert len(served.search(SearchRequest(query="photo"), page_size=50).results) == len(before) + 1
    assert served.index_status().state == DONE


def test_start_indexing_takes_over_from_the_watchers_run(served, photo_library):
    for i in range(40):
        make_photo(photo_library / "burst" / f"b{i}.jpg", 200 + i, (64, 48))
    eventually(lambda: served.index_status().running, "the watcher's run started")
    status = served.start_indexing()  # stops the watcher's run between batches, then runs
    assert status.running
    assert served.jobs.wait(WAIT_S).state == DONE
    eventually(
        lambda: all(indexed(served, photo_library / "burst" / f"b{i}.jpg") for i in range(40)),
        "every file of the burst is indexed",
    )


def test_pause_is_remembered_and_resume_catches_up(served, photo_library, tmp_path):
    served.watch.pause()
    assert is_paused(served.library().catalog)
    again = LibraryWatch(served)  # the next server start over the same library
    assert again.state().paused
    new = photo_library / "while-paused.jpg"
    make_photo(new, 88, quality=90)
    time.sleep(1.5)  # five debounces: a watcher that was not paused would have run
    assert not indexed(served, new)
    served.watch.resume()
    assert not is_paused(served.library().catalog)
    eventually(lambda: indexed(served, new), "resume indexed what changed meanwhile")


def test_the_library_tab_says_which_folders_are_live_and_which_polled(served, photo_library):
    folder = str(photo_library.resolve())
    assert render_watch(served.watch.state()).startswith("**Watching**: 1 folder(s) live, 0 polled")
    served.watch.set_polled(folder, True)
    text = render_watch(served.watch.state())
    assert "0 folder(s) live, 1 polled" in text
    assert f"- polled: `{folder}` (marked to be polled)" in text
    served.watch.pause()
    assert render_watch(served.watch.state()).startswith("**Watching paused** (remembered)")
    with pytest.raises(TroveError, match="is not a library folder"):
        served.watch.set_polled("/nowhere", True)
