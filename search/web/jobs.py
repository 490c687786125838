"""Background index runs for the web UI, and the library-folder edits that go with them.

`IndexJobs` runs the same `Indexer` the CLI runs, in a thread: one run at a time per data
folder (the library's writer lock also keeps out a CLI `index` on the same folder). Its
progress (done/total, files per second, ETA, current file, failures) is kept here, on the
server, so a page that reloads finds the run where it is. Stop ends the run between
batches like Ctrl-C does: what is committed stays, and the next start resumes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from indexers.pipeline import DEFAULT_BATCH_SIZE, Indexer, IndexSummary, ProgressEvent
from indexers.roots import check_roots, typed_folder
from search.decode.kinds import FoundFile
from search.errors import AlreadyIndexingError, LibraryRootError, TroveError
from search.library import Library
from search.models import ClipEncoder, get_preset, load_encoder
from search.models.encoders import Encoders
from search.models.registry import DEFAULT_CLIP_MODEL, trial_partner
from search.models.weights import resolve_weights
from search.storage.catalog import Root
from search.storage.datadir import DataDir

log = logging.getLogger(__name__)

IDLE = "idle"
SCANNING = "scanning"  # walking the folders and comparing them with the catalog
INDEXING = "indexing"  # encoding new and changed files
STOPPING = "stopping"  # asked to stop; ends after the batch in hand
DONE = "done"
STOPPED = "stopped"
FAILED = "failed"
RUNNING = frozenset({SCANNING, INDEXING, STOPPING})


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of the current (or last) index run.

    `done` of `total` files to encode are finished (committed or failed); `rate` is files
    per second since encoding began and `eta_s` the seconds left at that rate (None until
    known). `errors` are (path, reason) pairs; `message` is the run's summary, or why it
    failed.
    """

    state: str = IDLE
    model: str | None = None
    done: int = 0
    total: int = 0
    rate: float = 0.0
    eta_s: float | None = None
    current: str | None = None
    errors: tuple[tuple[str, str], ...] = ()
    started_at: float | None = None
    finished_at: float | None = None
    message: str = ""

    @property
    def running(self) -> bool:
        return self.state in RUNNING

    def to_dict(self) -> dict:
        out = asdict(self)
        out["running"] = self.running
        # `file`, not `path`: gradio_client takes a dict with a "path" key for a download.
        out["errors"] = [{"file": p, "reason": r} for p, r in self.errors]
        return out


class IndexJobs:
    """Starts, stops and reports index runs over one data folder's library folders."""

    def __init__(
        self,
        data_dir: str | Path,
        batch_size: int = DEFAULT_BATCH_SIZE,
        workers: int | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.batch_size = batch_size
        self.workers = workers
        self._lock = threading.Lock()
        self._status = JobStatus()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._encode_started: float | None = None
        # True while the run going is the folder watcher's (`run_folders`): a run asked for
        # by hand, or a folder's removal, stops it instead of being refused.
        self._watch_run = False
        self._ended = threading.Event()
        self._ended.set()
        self._summary: IndexSummary | None = None
        self._error: TroveError | None = None
        # Called with the final status after each run.
        self.on_finish: list[Callable[[JobStatus], None]] = []

    # -- runs ---------------------------------------------------------------------------

    def status(self) -> JobStatus:
        with self._lock:
            return self._status

    def start(self, model: str | None = None, model_path: str | None = None) -> JobStatus:
        """Index every library folder in the background with `model` (default: the
        library's own model, or the default preset for a new library).

        A different model than the library's re-encodes every file and switches the
        library to it when done; searches use the old model until then. Raises (before
        anything starts) when a run is going, there are no folders, a folder is missing, or
        the model's weights are not on this machine: the web UI never downloads weights.
        """
        self._end_watch_run()
        with self._lock:
            if self._status.running:
                raise AlreadyIndexingError(
                    "Already indexing this library; wait for the run to finish or stop it."
                )
            roots, current = self._roots_and_model()
            name = model or current or DEFAULT_CLIP_MODEL
            spec = get_preset(name)
            resolve_weights(spec, model_path, allow_download=False)
            encoder = load_encoder(name, model_path)
            check_roots(roots, self.data_dir)
            switching = current is not None and current != name
            self._stop = threading.Event()
            self._encode_started = None
            self._watch_run = False
            self._ended.clear()
            self._status = JobStatus(
                state=SCANNING,
                model=name,
                started_at=time.time(),
                message=(
                    f"Re-indexing with {name}: searches use {current} until every file "
                    f"has a {name} vector."
                    if switching
                    else "Scanning the library folders for new, changed and removed files."
                ),
            )
            self._thread = threading.Thread(
                target=self._run, args=(roots, encoder), name="trove-index", daemon=True
            )
            self._thread.start()
            return self._status

    def run_folders(
        self,
        roots: list[Root],
        hold: Callable[[FoundFile], bool],
        model: str,
        model_path: str | None = None,
    ) -> IndexSummary:
        """Index `roots` now, in the calling thread (the folder watcher's), with the
        library's model (`model` for a library that has none yet): the run `start` makes,
        shown in the same status. Raises AlreadyIndexingError while another run goes,
        LibraryRootError when a folder fails its check (a missing or emptied drive)."""
        with self._lock:
            if self._status.running:
                raise AlreadyIndexingError("Already indexing this library; trying again shortly.")
            library = Library(self.data_dir, create=False)
            try:
                check_roots(roots, self.data_dir, library.catalog)
                name = library.clip_model or model
            finally:
                library.close()
            # --model-path belongs to the --model preset; the library's own uses its lookup.
            encoder = load_encoder(name, model_path if name == model else None)
            self._stop = threading.Event()
            self._encode_started = None
            self._watch_run = True
            self._summary = None
            self._error = None
            self._ended.clear()
            self._status = JobStatus(
                state=SCANNING,
                model=name,
                started_at=time.time(),
                message=f"Indexing what changed in {', '.join(r.path for r in roots)}.",
            )
        self._run(roots, encoder, hold)
        with self._lock:
            status, summary, error = self._status, self._summary, self._error
        if error is not None:
            raise error  # e.g. AlreadyIndexingError: `python app.py index` has the library
        if summary is None:
            raise TroveError(status.message)
        return summary

    def _end_watch_run(self) -> None:
        """Stop the watcher's run (after its batch in hand) and wait for it: a run asked for
        by hand covers what it was doing."""
        with self._lock:
            if not (self._status.running and self._watch_run):
                return
            self._stop.set()
        self._ended.wait(120)

    def stop(self) -> JobStatus:
        """Ask the run to stop after the batch in hand; returns at once."""
        with self._lock:
            if self._status.running:
                self._stop.set()
                self._status = replace(
                    self._status,
                    state=STOPPING,
                    message="Stopping after the current batch; everything done so far is kept.",
                )
            return self._status

    def wait(self, timeout: float | None = None) -> JobStatus:
        """Block until the current run ends (or `timeout` seconds pass); returns the status."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.status()

    def _roots_and_model(self) -> tuple[list[Root], str | None]:
        if not DataDir(self.data_dir).catalog.exists():
            raise LibraryRootError(_NO_FOLDERS)
        library = Library(self.data_dir, create=False)
        try:
            roots = library.catalog.roots()
            if not roots:
                raise LibraryRootError(_NO_FOLDERS)
            return roots, library.clip_model
        finally:
            library.close()

    def _run(
        self,
        roots: list[Root],
        encoder: ClipEncoder,
        hold: Callable[[FoundFile], bool] | None = None,
    ) -> None:
        library: Library | None = None
        try:
            # The run gets its own catalog connection, so the UI's reads never queue behind
            # its write transactions (WAL lets readers go on while it writes).
            library = Library(self.data_dir)
            # The library's own sound and text models; a trial with the untrained tiny-clip
            # pairs it with the untrained tiny-clap, as `app.py demo` does.
            sound = library.model("clap") or trial_partner(encoder.spec, "clap")
            indexer = Indexer(
                library,
                Encoders(
                    encoder,
                    sound,
                    library.model("text"),
                    sound=library.model("sound"),
                    video=library.model("video"),
                ),
                batch_size=self.batch_size,
                workers=self.workers,
                progress=False,
                on_progress=self._on_progress,
                stop=self._stop,
                hold=hold,
            )
            summary = indexer.run(roots)
        except TroveError as exc:
            self._error = exc
            self._finish(FAILED, str(exc))
        except Exception as exc:  # a thread has nobody to raise to: log it and show it
            log.exception("The index run failed")
            self._finish(FAILED, f"Indexing failed: {type(exc).__name__}: {exc}")
        else:
            self._summary = summary
            self._finish(STOPPED if summary.interrupted else DONE, summary.report(), summary)
        finally:
            if library is not None:
                library.close()

    def _on_progress(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        with self._lock:
            if self._encode_started is None:
                self._encode_started = now
            elapsed = now - self._encode_started
            rate = event.done / elapsed if event.done and elapsed > 0 else 0.0
            errors = self._status.errors
            if event.error is not None and event.path is not None:
                errors = (*errors, (event.path, event.error))
            self._status = replace(
                self._status,
                state=STOPPING if self._stop.is_set() else INDEXING,
                done=event.done,
                total=event.total,
                rate=rate,
                eta_s=(event.total - event.done) / rate if rate > 0 else None,
                current=event.path or self._status.current,
                errors=errors,
                message=(
                    self._status.message
                    if self._stop.is_set()
                    else f"Encoding {event.total} new or changed files with {self._status.model}."
                ),
            )

    def _finish(self, state: str, message: str, summary: IndexSummary | None = None) -> None:
        with self._lock:
            status = replace(
                self._status,
                state=state,
                finished_at=time.time(),
                eta_s=None,
                message=message,
            )
            if summary is not None:
                status = replace(status, errors=tuple(summary.failed))
            self._status = status
        self._ended.set()
        for callback in self.on_finish:
            callback(status)

    # -- library folders ----------------------------------------------------------------

    def add_root(
        self, path: str, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()
    ) -> Root:
        """Add a library folder (or change its patterns); it is indexed by the next run.

        The path must be an existing, readable folder given in full (`~` is expanded);
        creates the library on first use. Raises LibraryRootError saying what is wrong.
        """
        folder = typed_folder(path, self.data_dir)
        root = Root(str(folder), tuple(include), tuple(exclude))
        library = Library(self.data_dir, create=True)
        try:
            library.catalog.add_root(root)
        finally:
            library.close()
        return root

    def remove_root(self, path: str) -> int:
        """Forget a library folder and drop its files (unless another library folder also
        holds them) from the catalog and the indexes (`Library.remove_root`). Returns how
        many files were dropped.

        Refused while a run is going: the run would put them back.
        """
        self._end_watch_run()
        with self._lock:
            if self._status.running:
                raise AlreadyIndexingError(
                    "Stop indexing (or wait for it to finish) before removing a folder."
                )
            if not DataDir(self.data_dir).catalog.exists():
                raise LibraryRootError(_NO_FOLDERS)
            library = Library(self.data_dir, create=False)
            try:
                return library.remove_root(path).files
            finally:
                library.close()


_NO_FOLDERS = (
    "The library has no folders yet: add one (e.g. /home/you/Pictures) in the Library tab "
    "first, then start indexing."
)
