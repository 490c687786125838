"""Watching library folders: file-system events -> debounced batches -> the same incremental
`Indexer` an `index` run uses.

Events come from watchdog (inotify on Linux, FSEvents on macOS, ReadDirectoryChangesW on
Windows; bench/watch_backends.py measured it against watchfiles: no CPU while idle, and on
Linux it reports when a writer closes a file). An event only says which library folder
changed; the run that follows walks that folder and diffs it against the catalog like
`index` does, so moves and renames keep their vectors and deletions leave the catalog and the
indexes, whatever order the events came in.

- Debounce: a folder is indexed once its events have been quiet for `debounce_s`, so a burst
  of a thousand copied files is one run. A file still being written is held back: on Linux
  one modified and not yet closed, everywhere one whose status changed (ctime) within half
  `debounce_s`. A held file is left as it is (new: not read; known: its old vectors
  stay) and looked at again once it settles.
- Folders without events (network shares, FUSE mounts; or marked by the user) are polled:
  the same run every `poll_interval_s`. A folder the OS cannot watch (Linux's limit on
  inotify watches) is polled too, and `WatchState.warnings` says how to raise the limit.
- A folder that is missing, or empty while the catalog holds its files (an unplugged drive
  often leaves its empty mount point), is never taken as deleted: the run's folder check
  refuses it (indexers/roots.py), the folder shows as unavailable, and it is checked again
  until it is back.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from indexers.pipeline import DEFAULT_BATCH_SIZE, Indexer, IndexSummary
from search.decode.kinds import FoundFile, kind_for_path
from search.errors import AlreadyIndexingError, LibraryRootError, TroveError
from search.library import Library
from search.models.encoders import Encoders
from search.storage.catalog import Catalog, Root

log = logging.getLogger(__name__)

DEFAULT_DEBOUNCE_S = 1.0
DEFAULT_POLL_INTERVAL_S = 300.0
# A missing or unmounted folder is looked for this often (or at the poll interval, if shorter).
RECHECK_S = 30.0
# A file opened for writing and then left without a write for this long no longer holds its
# folder back on that account (a stalled download); its ctime still has to settle.
WRITER_STALE_S = 60.0
# Kept in the catalog's meta table, so a pause or a folder marked for polling is remembered.
PAUSED_KEY = "watch.paused"
POLLED_KEY = "watch.polled"

# File systems that deliver no change events to a watcher on this machine: network shares
# (another machine's changes never reach the local kernel) and FUSE mounts.
NO_EVENTS_FS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "9p", "davfs", "ceph", "glusterfs"}
)

LIVE = "live"
POLLED = "polled"
UNAVAILABLE = "unavailable"
MARKED = "marked to be polled"
# A run refused because another run has the library is tried again after this long.
RETRY_S = 5.0

# The events a run can follow from; opens and reads (ours included) are left out.
_EVENTS = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    DirCreatedEvent,
    DirMovedEvent,
    DirDeletedEvent,
]


@dataclass(frozen=True)
class FolderState:
    """One library folder: `mode` is live (events), polled (every `poll_interval_s`), or
    unavailable (missing or unmounted: `reason` says, and nothing is deleted)."""

    folder: str
    mode: str
    reason: str = ""


@dataclass(frozen=True)
class WatchState:
    """What the watcher is doing, for the Library tab and `watch`'s log.

    `queued`: changed paths waiting for their folder's run; `current`: the folder being
    indexed; `last_change`/`last_run`: epoch seconds; `last_summary`: that run's report;
    `warnings`: what the user can fix (the watch limit)."""

    running: bool = False
    paused: bool = False
    folders: tuple[FolderState, ...] = ()
    queued: int = 0
    held: tuple[str, ...] = ()
    current: str | None = None
    last_change: float | None = None
    last_run: float | None = None
    last_summary: str = ""
    runs: int = 0
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "running": self.running,
            "paused": self.paused,
            "folders": [
                {"folder": f.folder, "mode": f.mode, "reason": f.reason} for f in self.folders
            ],
            "queued": self.queued,
            "held": list(self.held),
            "current": self.current,
            "last_change": self.last_change,
            "last_run": self.last_run,
            "last_summary": self.last_summary,
            "runs": self.runs,
            "warnings": list(self.warnings),
        }


# -- what the catalog remembers -----------------------------------------------------------


def is_paused(catalog: Catalog) -> bool:
    return catalog.get_meta(PAUSED_KEY) == "1"


def set_paused(catalog: Catalog, paused: bool) -> None:
    catalog.set_meta(PAUSED_KEY, "1" if paused else "0")


def polled_folders(catalog: Catalog) -> set[str]:
    """The folders the user marked to be polled rather than watched."""
    return set(json.loads(catalog.get_meta(POLLED_KEY) or "[]"))


def set_polled(catalog: Catalog, folder: str, polled: bool) -> None:
    folders = polled_folders(catalog)
    if polled:
        folders.add(folder)
    else:
        folders.discard(folder)
    catalog.set_meta(POLLED_KEY, json.dumps(sorted(folders)))


# -- which folders deliver events ---------------------------------------------------------


def no_events_reason(folder: str, mounts: str = "/proc/self/mounts") -> str | None:
    """Why events cannot be expected from `folder` (a network share, a FUSE mount), or None.
    Known on Linux from the mount table; elsewhere the user marks such folders."""
    fs = filesystem_type(folder, mounts)
    if fs is None:
        return None
    if fs in NO_EVENTS_FS or fs.startswith("fuse"):
        return f"on a {fs} file system, which sends no change events"
    return None


def filesystem_type(folder: str, mounts: str = "/proc/self/mounts") -> str | None:
    """The type of the file system `folder` is on, from the mount table (Linux), or None."""
    try:
        with open(mounts, encoding="utf-8", errors="replace") as f:
            mounts = [line.split() for line in f]
    except OSError:
        return None
    real = os.path.realpath(folder)
    best, fs_type = "", None
    for fields in mounts:
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, fs_type = point, fields[2]
    return fs_type


def watch_limit_message(folder: str, exc: OSError) -> str:
    """What to do when the OS refuses another watch for `folder`."""
    if sys.platform.startswith("linux"):
        if exc.errno == errno.EMFILE:
            setting, now, raised = (
                "fs.inotify.max_user_instances",
                _sysctl("max_user_instances"),
                1024,
            )
        else:
            setting, now, raised = (
                "fs.inotify.max_user_watches",
                _sysctl("max_user_watches"),
                524288,
            )
        return (
            f"{folder} is polled instead of watched: Linux's limit on inotify watches is reached "
            f"({setting} = {now}). To watch it live, raise the limit and restart Trove: "
            f"`sudo sysctl {setting}={raised}`, and to keep it after a reboot "
            f"`echo {setting}={raised} | sudo tee /etc/sysctl.d/60-trove.conf`."
        )
    return (
        f"{folder} is polled instead of watched: the system refused to watch it "
        f"({exc.strerror or exc})."
    )


def _sysctl(name: str) -> str:
    try:
        return Path(f"/proc/sys/fs/inotify/{name}").read_text().strip()
    except OSError:
        return "?"


def _watch_refused(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EMFILE)


# -- the watcher --------------------------------------------------------------------------

# run(roots, hold) indexes `roots` and returns the run's summary; `hold(file)` is True for a
# file to leave for a later run. It raises LibraryRootError when a folder fails its check,
# AlreadyIndexingError when another run has the library.
RunFolders = Callable[[list[Root], Callable[[FoundFile], bool]], IndexSummary]


def library_runner(
    library: Library, encoders: Encoders, batch_size: int = DEFAULT_BATCH_SIZE
) -> RunFolders:
    """`RunFolders` with an `Indexer` over `library` (`python app.py watch`); the models
    load once, on the first run that encodes."""

    def run(roots: list[Root], hold: Callable[[FoundFile], bool]) -> IndexSummary:
        indexer = Indexer(library, encoders, batch_size=batch_size, progress=False, hold=hold)
        return indexer.run(roots)

    return run


def changed(summary: IndexSummary) -> bool:
    """Whether a run changed anything (a poll that found nothing is not worth a log line)."""
    return bool(
        summary.indexed or summary.moved or summary.removed or summary.failed or summary.skipped
    )


@dataclass
class _Folder:
    root: Root
    mode: str = LIVE
    reason: str = ""
    watch: object | None = None
    # Changed paths -> when their last event came (monotonic).
    pending: dict[str, float] = field(default_factory=dict)
    next_run: float = 0.0  # polled and unavailable folders: when to look again


class FolderWatcher:
    """Keeps a library's folders indexed while it runs: `start`, `pause`/`resume`,
    `stop`; `state()` says what it is doing.

    `roots()` gives the library folders (asked again by `refresh`, after one is added or
    removed); `polled()` the folders marked for polling; `run` indexes folders (see
    `RunFolders`). Runs happen one at a time in the watcher's own thread.
    """

    def __init__(
        self,
        roots: Callable[[], Sequence[Root]],
        run: RunFolders,
        polled: Callable[[], set[str]] = set,
        debounce_s: float = DEFAULT_DEBOUNCE_S,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        paused: bool = False,
        on_run: Callable[[WatchState], None] | None = None,
    ) -> None:
        if debounce_s <= 0 or poll_interval_s <= 0:
            raise TroveError("The debounce and the poll interval must be more than 0 seconds.")
        self._roots = roots
        self._run = run
        self._polled = polled
        self.debounce_s = debounce_s
        self.poll_interval_s = poll_interval_s
        self._on_run = on_run
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._folders: dict[str, _Folder] = {}
        # Paths written to and not yet closed (Linux) -> when last written (monotonic).
        self._writing: dict[str, float] = {}
        # Folders created under live folders since the last check: each must have a watch.
        self._new_dirs: list[str] = []
        self._state = WatchState(paused=paused)
        self._observer = Observer()
        self._thread: threading.Thread | None = None
        self._handler = _Handler(self)
        # Set while no run is queued or going: `wait_idle` waits on it.
        self._idle = threading.Event()

    # -- control ------------------------------------------------------------------------

    def start(self) -> FolderWatcher:
        # Started before any folder is scheduled, so that a folder the OS refuses fails
        # alone (watchdog raises from `schedule` then) instead of failing the start.
        self._observer.start()
        self.refresh()
        self._thread = threading.Thread(target=self._loop, name="trove-watch", daemon=True)
        self._state = replace(self._state, running=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        self._observer.stop()
        self._observer.join()
        with self._lock:
            self._state = replace(self._state, running=False)

    def pause(self) -> WatchState:
        """No runs until `resume`; events keep being gathered."""
        with self._lock:
            self._state = replace(self._state, paused=True)
        return self.state()

    def resume(self) -> WatchState:
        """Runs again, catching up at once on what changed while paused (every folder is
        looked at: a folder's events may have been lost while nobody listened)."""
        with self._lock:
            self._state = replace(self._state, paused=False)
            for folder in self._folders.values():
                folder.next_run = 0.0
                folder.pending.setdefault(folder.root.path, time.monotonic() - self.debounce_s)
        self._wake.set()
        return self.state()

    def state(self) -> WatchState:
        with self._lock:
            return replace(
                self._state,
                folders=tuple(
                    FolderState(f.root.path, f.mode, f.reason) for f in self._folders.values()
                ),
                queued=sum(len(f.pending) for f in self._folders.values()),
            )

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or running (True), or `timeout` seconds (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._idle.wait(max(0.0, deadline - time.monotonic())) and not self._busy():
                return True
            time.sleep(0.05)
        return False

    def refresh(self, scan_new: bool = True) -> None:
        """Follow the library's folders: watch new ones, drop removed ones, poll or watch
        those newly marked or unmarked. With `scan_new`, a new folder is indexed at once (it
        may have changed while nobody watched); without, only what changes in it from now."""
        roots = {root.path: root for root in self._roots()}
        polled = self._polled()
        with self._lock:
            for path in list(self._folders):
                if path not in roots:
                    self._unwatch(self._folders.pop(path))
            for path, root in roots.items():
                folder = self._folders.get(path)
                if folder is None:
                    folder = self._folders[path] = _Folder(root)
                    self._place(folder, polled)
                    if scan_new:
                        folder.pending[path] = time.monotonic() - self.debounce_s
                    else:
                        folder.next_run = time.monotonic() + self.poll_interval_s
                    continue
                folder.root = root
                if (path in polled) != (folder.reason == MARKED):
                    self._unwatch(folder)
                    self._place(folder, polled)
        self._idle.clear()
        self._wake.set()

    # -- placing folders ----------------------------------------------------------------

    def _place(self, folder: _Folder, polled: set[str]) -> None:
        """Watch `folder`, or poll it when it is marked, sends no events, or the OS refuses
        a watch (lock held)."""
        path = folder.root.path
        folder.watch = None
        if not os.path.isdir(path):
            folder.mode, folder.reason = UNAVAILABLE, "missing (not mounted?)"
            folder.next_run = time.monotonic() + min(RECHECK_S, self.poll_interval_s)
            return
        if path in polled:
            folder.mode, folder.reason = POLLED, MARKED
            return
        reason = no_events_reason(path)
        if reason:
            folder.mode, folder.reason = POLLED, reason
            return
        try:
            folder.watch = self._observer.schedule(
                self._handler, path, recursive=True, event_filter=_EVENTS
            )
        except OSError as exc:
            if not _watch_refused(exc):
                raise
            self._refused(folder, exc)
            return
        folder.mode, folder.reason = LIVE, ""
        if _unwatched(self._watched_dirs(folder), _folders_under(path)):
            self._refused(folder, OSError(errno.ENOSPC, "inotify watch limit reached"))

    def _unwatch(self, folder: _Folder) -> None:
        if folder.watch is not None:
            with contextlib.suppress(KeyError):  # its emitter has already ended
                self._observer.unschedule(folder.watch)
            folder.watch = None

    def _warn(self, message: str) -> None:
        if message not in self._state.warnings:
            self._state = replace(self._state, warnings=(*self._state.warnings, message))

    def _check_emitters(self) -> None:
        """A live folder whose emitter ended (its folder unmounted under it), or with a
        folder created since that got no watch (the OS limit reached), is polled from then
        on (lock held)."""
        alive = {e.watch for e in self._observer.emitters if e.is_alive()}
        new_dirs, self._new_dirs = self._new_dirs, []
        for folder in self._folders.values():
            if folder.mode != LIVE or folder.watch is None:
                continue
            if folder.watch not in alive:
                self._unwatch(folder)
                folder.mode, folder.reason = POLLED, "its watch ended"
                if not os.path.isdir(folder.root.path):
                    folder.mode, folder.reason = UNAVAILABLE, "missing (not mounted?)"
                folder.pending[folder.root.path] = time.monotonic() - self.debounce_s
                continue
            mine = [d for d in new_dirs if _inside(d, folder.root.path) and os.path.isdir(d)]
            if mine and _unwatched(self._watched_dirs(folder), mine):
                self._refused(folder, OSError(errno.ENOSPC, "inotify watch limit reached"))
                folder.pending[folder.root.path] = time.monotonic() - self.debounce_s

    def _watched_dirs(self, folder: _Folder) -> set[bytes] | None:
        """The directories the OS watches for `folder`, where the backend says (watchdog's
        inotify emitter, which skips a sub-folder the OS refuses without a word); None
        elsewhere (FSEvents and ReadDirectoryChangesW watch a whole tree with one handle)."""
        for emitter in self._observer.emitters:
            if emitter.watch == folder.watch:
                group = getattr(emitter, "_inotify", None)
                watched = getattr(group, "_active_callbacks_by_path", None)
                return set(watched) if watched is not None else None
        return None

    def _refused(self, folder: _Folder, exc: OSError) -> None:
        """The OS refused a watch in `folder`: poll it, and say how to raise the limit."""
        self._unwatch(folder)
        message = watch_limit_message(folder.root.path, exc)
        log.warning("%s", message)
        folder.mode, folder.reason = POLLED, "the OS limit on watches is reached"
        self._warn(message)

    # -- events -------------------------------------------------------------------------

    def _event(self, event: FileSystemEvent) -> None:
        paths = [os.fsdecode(event.src_path)]
        if getattr(event, "dest_path", ""):
            paths.append(os.fsdecode(event.dest_path))
        if not event.is_directory and not any(kind_for_path(p) for p in paths):
            return  # a temporary or unrelated file; a rename onto a media name still counts
        now = time.monotonic()
        with self._lock:
            for path in paths:
                if isinstance(event, DirCreatedEvent | DirMovedEvent):
                    self._new_dirs.append(path)
                if isinstance(event, FileModifiedEvent):
                    self._writing[path] = now
                elif isinstance(event, FileClosedEvent | FileDeletedEvent):
                    self._writing.pop(path, None)
                for folder in self._folders.values():
                    if folder.mode == LIVE and _inside(path, folder.root.path):
                        folder.pending[path] = now
            self._state = replace(self._state, last_change=time.time())
        self._idle.clear()
        self._wake.set()

    def _busy(self) -> bool:
        with self._lock:
            return any(f.pending for f in self._folders.values()) or self._state.current is not None

    # -- the loop -----------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            due, wait_s = self._due()
            if due:
                self._index(due)
                continue
            if not self._busy():
                self._idle.set()
            # Sleeps until an event, or the next poll; no wake-ups while nothing changes.
            self._wake.wait(wait_s)
            self._wake.clear()

    def _due(self) -> tuple[list[_Folder], float]:
        """The folders to index now, and how long to sleep otherwise."""
        now = time.monotonic()
        due: list[_Folder] = []
        wait_s = self.poll_interval_s
        with self._lock:
            self._check_emitters()
            if self._state.paused:
                return [], self.poll_interval_s
            for folder in self._folders.values():
                if folder.mode == LIVE and not os.path.isdir(folder.root.path):
                    # Gone under its watch (unmounted, renamed): its run says so, and
                    # deletes nothing.
                    folder.pending.setdefault(folder.root.path, now - self.debounce_s)
                if folder.pending:
                    quiet_at = max(folder.pending.values()) + self.debounce_s
                    if quiet_at <= now:
                        due.append(folder)
                    else:
                        wait_s = min(wait_s, quiet_at - now)
                elif folder.mode in (POLLED, UNAVAILABLE):
                    if folder.next_run <= now:
                        due.append(folder)
                    else:
                        wait_s = min(wait_s, folder.next_run - now)
        return due, max(wait_s, 0.01)

    def _index(self, due: list[_Folder]) -> None:
        """One run over the due folders (a file moved from one to another is a move)."""
        with self._lock:
            for folder in due:
                if folder.mode == UNAVAILABLE and os.path.isdir(folder.root.path):
                    self._place(folder, self._polled())
            roots = [f.root for f in due]
            queued = {f.root.path: dict(f.pending) for f in due}
            for folder in due:
                folder.pending.clear()
            self._state = replace(self._state, current=", ".join(r.path for r in roots))
        held: set[str] = set()
        summary: IndexSummary | None = None
        problem = ""
        try:
            summary = self._run(roots, self._holder(held))
        except AlreadyIndexingError as exc:
            # Another run (the CLI's `index`, the UI's button) has the library: try again.
            problem = str(exc)
            with self._lock:
                for folder in due:
                    folder.pending.update(
                        {p: time.monotonic() + RETRY_S for p in queued[folder.root.path]}
                    )
        except LibraryRootError as exc:
            if len(due) > 1:
                # Which folder failed its check is not known: each runs alone, so one
                # unplugged drive does not stop the others.
                with self._lock:
                    self._state = replace(self._state, current=None)
                for folder in due:
                    with self._lock:
                        folder.pending.update(queued[folder.root.path])
                    self._index([folder])
                return
            problem = str(exc)
            with self._lock:
                # Missing, or empty while the catalog holds its files: never a deletion.
                self._unwatch(due[0])
                due[0].mode, due[0].reason = UNAVAILABLE, problem
        except TroveError as exc:  # missing weights, a catalog it cannot write: said, not fatal
            problem = str(exc)
        except Exception as exc:  # the watcher thread must outlive a failed run: log it, go on
            log.exception("Indexing %s failed", ", ".join(r.path for r in roots))
            problem = f"Indexing failed: {type(exc).__name__}: {exc}"
        self._finish(due, held, summary, problem)

    def _finish(
        self, due: list[_Folder], held: set[str], summary: IndexSummary | None, problem: str
    ) -> None:
        now = time.monotonic()
        with self._lock:
            for folder in due:
                if folder.mode == UNAVAILABLE and not problem:
                    self._place(folder, self._polled())
                recheck = min(RECHECK_S, self.poll_interval_s)
                folder.next_run = now + (
                    recheck if folder.mode == UNAVAILABLE else self.poll_interval_s
                )
                # A file held back while a writer on Linux has it open is queued again by
                # its close event; one held for its recent ctime is looked at once it settles.
                for path in held - self._writing.keys():
                    if _inside(path, folder.root.path):
                        folder.pending[path] = now
            self._state = replace(
                self._state,
                current=None,
                held=tuple(sorted(held)),
                last_run=time.time(),
                last_summary=summary.report() if summary is not None else problem,
                runs=self._state.runs + 1,
            )
            state = self._state
        if summary is not None and changed(summary):
            log.info("%s", summary.report())
        if problem:
            log.warning("%s", problem)
        if self._on_run is not None:
            self._on_run(state)

    def _holder(self, held: set[str]) -> Callable[[FoundFile], bool]:
        """The run's `hold`: a file being written is left for later, and noted in `held`."""
        with self._lock:
            stale = time.monotonic() - WRITER_STALE_S
            writing = {p for p, t in self._writing.items() if t > stale}

        def hold(found: FoundFile) -> bool:
            try:
                changed = os.stat(found.path).st_ctime
            except OSError:
                return False  # gone: the run reports it
            # Half the debounce: the folder has been quiet for a whole one before a run
            # starts, so a finished file is past this; a polled folder has no other sign.
            if found.path in writing or time.time() - changed < self.debounce_s / 2:
                held.add(found.path)
                return True
            return False

        return hold


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: FolderWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.watcher._event(event)


def _folders_under(root: str) -> list[str]:
    """`root` and every folder below it, as the inotify backend watches them (symlinks to
    folders not followed)."""
    found = [root]
    for parent, dirs, _ in os.walk(root):
        found += [
            os.path.join(parent, d) for d in dirs if not os.path.islink(os.path.join(parent, d))
        ]
    return found


def _unwatched(watched: set[bytes] | None, folders: Sequence[str]) -> bool:
    """Whether any of `folders` lacks a watch (False when the backend does not say)."""
    return watched is not None and any(os.fsencode(f) not in watched for f in folders)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def describe(state: WatchState) -> list[str]:
    """The watcher's folders as lines a person reads: which are live, polled, unavailable."""
    lines = []
    for folder in state.folders:
        if folder.mode == LIVE:
            lines.append(f"watching {folder.folder} (live)")
        elif folder.mode == POLLED:
            lines.append(f"polling {folder.folder} ({folder.reason})")
        else:
            lines.append(f"waiting for {folder.folder}: {folder.reason}")
    return lines + list(state.warnings)


def watch_until_stopped(watcher: FolderWatcher, out: Callable[[str], None] = print) -> None:
    """`python app.py watch`: start `watcher`, say what it watches, and run until Ctrl-C or
    SIGTERM (how systemd and launchd stop a service); the run in hand finishes first."""
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    watcher.start()
    for line in describe(watcher.state()):
        out(line)
    out("Indexing changes as they happen; Ctrl-C stops.")
    try:
        while not stopping.wait(60.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        out("Stopping (the run in hand finishes first).")
        watcher.stop()
        signal.signal(signal.SIGTERM, previous)
