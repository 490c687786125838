"""The served library kept current: `LibraryWatch` runs the folder watcher
(indexers/watch.py) over the library's folders, its runs going through the UI's index jobs
(search/web/jobs.py), so there is one run at a time, shown in the Library tab, and a run
asked for by hand takes over from the watcher's.

At start every library folder is scanned once (it may have changed while nothing watched),
with the library's model (`serve --model`, or the default, for a library not indexed yet).
A folder added in the Library tab is watched from then on, and indexed by Start indexing
(as the tab says), so the model a new library is indexed with is the one the user picks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from indexers.pipeline import IndexSummary
from indexers.watch import (
    DEFAULT_DEBOUNCE_S,
    DEFAULT_POLL_INTERVAL_S,
    FolderWatcher,
    WatchState,
    describe,
    is_paused,
    polled_folders,
    set_paused,
    set_polled,
)
from search.decode.kinds import FoundFile
from search.errors import LibraryRootError, NoLibraryError
from search.storage.catalog import Root

log = logging.getLogger(__name__)

# The picture cache is pruned after the first run and after a run that removed or moved
# files, at most this often (walking a large cache is not free).
PRUNE_EVERY_S = 600.0


class LibraryWatch:
    """The folder watcher of one served library (`TroveUI`); pausing is remembered in the
    library, like the folders marked to be polled."""

    def __init__(
        self,
        ui,
        debounce_s: float = DEFAULT_DEBOUNCE_S,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    ) -> None:
        self.ui = ui
        library = ui.library()
        self.watcher = FolderWatcher(
            self._roots,
            self._run,
            polled=self._polled,
            debounce_s=debounce_s,
            poll_interval_s=poll_interval_s,
            paused=library is not None and is_paused(library.catalog),
        )
        ui.on_roots_changed(lambda roots: self.watcher.refresh(scan_new=False))
        # A library indexed for the first time is watched from the end of that run on.
        ui.jobs.on_finish.append(lambda status: self.watcher.refresh(scan_new=False))
        self._pruned_at: float | None = None

    def start(self) -> LibraryWatch:
        self.watcher.start()
        for line in self.describe():
            log.info("%s", line)
        return self

    def stop(self) -> None:
        self.watcher.stop()

    def state(self) -> WatchState:
        return self.watcher.state()

    def describe(self) -> list[str]:
        return describe(self.state())

    def pause(self) -> WatchState:
        set_paused(self._library().catalog, True)
        return self.watcher.pause()

    def resume(self) -> WatchState:
        set_paused(self._library().catalog, False)
        return self.watcher.resume()

    def set_polled(self, folder: str, polled: bool) -> WatchState:
        """Poll `folder` every poll interval instead of waiting for its events (a network
        share), or watch it again; remembered."""
        library = self._library()
        known = [root.path for root in library.catalog.roots()]
        if folder not in known:
            raise LibraryRootError(
                f"{folder} is not a library folder; the library's folders: {', '.join(known)}."
            )
        set_polled(library.catalog, folder, polled)
        self.watcher.refresh(scan_new=False)
        return self.state()

    def _library(self):
        library = self.ui.library()
        if library is None:
            raise NoLibraryError("The library has no folders yet: add one in the Library tab.")
        return library

    def _roots(self) -> list[Root]:
        library = self.ui.library()
        return library.catalog.roots() if library is not None else []

    def _polled(self) -> set[str]:
        library = self.ui.library()
        return polled_folders(library.catalog) if library is not None else set()

    def _run(self, roots: list[Root], hold: Callable[[FoundFile], bool]) -> IndexSummary:
        summary = self.ui.index_folders(roots, hold)
        now = time.monotonic()
        due = self._pruned_at is None or now - self._pruned_at > PRUNE_EVERY_S
        if due or ((summary.removed or summary.moved) and now - self._pruned_at > 60):
            self._pruned_at = now
            self.prune_pictures()
        return summary

    def prune_pictures(self) -> None:
        """Drop cached pictures of files the library no longer holds, and the least recently
        shown past the cache's cap (search/thumbnails.py)."""
        library = self.ui.library()
        if library is None:
            return
        files: set[str] = set()
        for root in library.catalog.roots():
            files.update(library.catalog.items_under(root.path))
        pruned = self.ui.thumbs.prune(files)
        if pruned.files:
            log.info(
                "Picture cache: %d old picture(s) removed (%.1f MB); %.1f MB kept.",
                pruned.files,
                pruned.freed_bytes / 2**20,
                pruned.kept_bytes / 2**20,
            )
