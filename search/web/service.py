"""What the web UI and its API call: `TroveUI`, the handlers over one data folder, as plain
methods (testable without a browser), with the requests and pages they take and give.

It knows the library, the search engine and the background index jobs (search/web/jobs.py),
never FAISS or SQLite, and nothing of Gradio but where it keeps uploaded files.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from indexers.pipeline import IndexSummary
from search.decode.isolation import IsolatedDecoder
from search.decode.kinds import FoundFile, kind_for_path
from search.decode.speech import SpeechLine
from search.engine import SearchEngine, SearchResult
from search.errors import NoLibraryError, QueryError, TroveError, WeightsNotFoundError
from search.filters import SearchFilters
from search.library import Library
from search.models import get_preset, list_presets
from search.models.registry import DEFAULT_CLIP_MODEL
from search.models.weights import resolve_weights, weights_present
from search.query import Query, parse_query
from search.segments import NATIVE_TIMEOUT_S
from search.storage.catalog import Item, Root
from search.storage.datadir import DataDir
from search.thumbnails import Thumbnails
from search.timefmt import local_time
from search.web.desktop import open_path
from search.web.jobs import IndexJobs, JobStatus
from search.web.media import file_url

if TYPE_CHECKING:
    from search.web.watching import LibraryWatch

log = logging.getLogger(__name__)

PAGE_SIZE = 24
PREVIEW_SIZE = 1600
# While an index run commits batches, the catalog moves on every few seconds; reloading the
# index from it on every search would redo that work each time, so it is refreshed at most
# this often then (new files show up within that delay).
REFRESH_WHILE_INDEXING_S = 10.0
NOT_LOADED = "not loaded yet (it loads on the first search)"

QUERY_HINT = (
    'Words are one phrase; "quotes" keep a phrase together; join terms with + and -, '
    'weight them with 2: (e.g. `"beach at sunset" - people` or `2:"golden retriever" + dog`). '
    "Drop or paste an image, or drop a sound or a video, to search with it too: everything "
    "given is one query."
)
# Which of parse_query's file lists each kind of query file goes to.
QUERY_SLOTS = {"image": "images", "audio": "sounds", "video": "videos"}
TRIAL_HINT = (
    "For a trial without weights, choose tiny-clip under Library > Model and start indexing "
    "(an untrained model: the pipeline works, the rankings mean nothing)."
)


@dataclass(frozen=True)
class SearchRequest:
    """One query and its filters, kept between a search and its "more results"."""

    query: str = ""
    image: str | None = None
    similar_to: str = ""
    filters: SearchFilters = SearchFilters()
    # Uploaded query files of any kind (photo, sound, video), routed by their extension.
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class SearchPage:
    """One page of results. `message` says what happened (or what to do) in one line."""

    results: tuple[SearchResult, ...]
    offset: int
    has_more: bool
    message: str


@dataclass(frozen=True)
class ItemDetail:
    """What the detail panel shows for one library file."""

    path: str
    kind: str
    preview: str
    size: int
    width: int | None
    height: int | None
    modified: float
    indexed: float | None
    folder: str
    duration_s: float | None = None
    # When a photo was taken (its EXIF date), epoch seconds.
    taken_at: float | None = None
    # Per-kind details from the catalog: sample_rate, channels, codec, fps, pages, title,
    # artist, camera, lens, notice...
    details: dict = field(default_factory=dict)
    # What was said in a sound or a video's sound track (the library's stored transcript).
    transcript: tuple[SpeechLine, ...] = ()

    def to_dict(self) -> dict:
        """As JSON for the API (`file`, not `path`: see search/web/api.py's `result_dict`)."""
        out = asdict(self)
        out["file"] = out.pop("path")
        out["modified"] = local_time(self.modified)
        out["indexed"] = local_time(self.indexed) if self.indexed else None
        out["taken_at"] = local_time(self.taken_at) if self.taken_at is not None else None
        out["original_url"] = file_url(self.path)
        return out


class TroveUI:
    """The handlers behind the web UI and its API, over one data folder.

    `model` is the preset a new library is indexed with (a library keeps its own model for
    searching); `model_path` goes with it. Nothing loads a model until a search or index
    run needs one (or `warm_up` is called).
    """

    def __init__(
        self,
        data_dir: str | Path,
        model: str | None = None,
        model_path: str | None = None,
        jobs: IndexJobs | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        if model is not None:
            get_preset(model)  # an unknown name fails here, listing the presets
        self.model = model
        self.model_path = model_path
        self.jobs = jobs or IndexJobs(self.data_dir)
        # Uploaded query files and pictures of library files are decoded in these worker
        # processes, bounded in time and memory, never in the server's own.
        self.decoder = IsolatedDecoder(workers=2, timeout_s=NATIVE_TIMEOUT_S)
        self.thumbs = Thumbnails(DataDir(self.data_dir).thumbnails, self.decoder)
        self._lock = threading.RLock()
        self._library: Library | None = None
        self._engine: SearchEngine | None = None
        self._engine_key: tuple[str, int] | None = None
        self._engine_opened = 0.0
        self._model_state = NOT_LOADED
        self._model_error: str | None = None
        self._roots_changed: list[Callable[[list[str]], None]] = []
        # The folder watcher (search/web/watching.py), when the server runs one.
        self.watch: LibraryWatch | None = None

    # -- library ------------------------------------------------------------------------

    def library(self) -> Library | None:
        """The library, or None while the data folder holds none yet."""
        with self._lock:
            if self._library is None and DataDir(self.data_dir).catalog.exists():
                self._library = Library(self.data_dir, create=False)
            return self._library

    def close(self) -> None:
        with self._lock:
            if self._library is not None:
                self._library.close()
                self._library = None
            self._engine = None
        self.decoder.close()

    def roots(self) -> list[str]:
        library = self.library()
        return [r.path for r in library.catalog.roots()] if library else []

    def open_file(self, path: str, reveal: bool = False) -> str:
        """Open a library file in this machine's default application, or show it in its
        folder (the caller has checked that the browser runs on this machine). Refused for
        anything that is not a file of this library."""
        library = self.library()
        if library is None:
            raise NoLibraryError(EMPTY_LIBRARY)
        item = _library_file(library, path)
        if not os.path.exists(item.path):
            raise QueryError(f"{item.path} is no longer there (moved or deleted?).")
        return open_path(item.path, reveal)

    def library_generation(self) -> int | None:
        """The catalog's generation (it moves with every change to the library), or None
        while there is no library."""
        library = self.library()
        return library.catalog.generation if library is not None else None

    def on_roots_changed(self, callback: Callable[[list[str]], None]) -> None:
        """Call `callback(root paths)` whenever a library folder is added or removed."""
        self._roots_changed.append(callback)

    def library_status(self, folder_counts: bool = True) -> dict:
        """Folders, counts per kind, index size on disk, model, failed files.

        Without `folder_counts`, each folder's "files" is None: counting them reads every
        item row, too much to redo every second while a large library is indexed."""
        library = self.library()
        model = (library.clip_model if library else None) or None
        status = self.jobs.status()
        out: dict[str, Any] = {
            "data_dir": str(self.data_dir),
            "exists": library is not None,
            "model": model,
            "new_library_model": self.model or DEFAULT_CLIP_MODEL,
            "roots": [],
            "counts": {},
            "size_on_disk_bytes": 0,
            "failed": [],
            "indexing": status.running,
            "watch": self.watch.state().to_dict() if self.watch is not None else None,
        }
        if library is None:
            return out
        out["roots"] = [
            {
                "folder": r.path,
                "include": list(r.include),
                "exclude": list(r.exclude),
                "files": len(library.catalog.items_under(r.path)) if folder_counts else None,
            }
            for r in library.catalog.roots()
        ]
        out["counts"] = library.catalog.counts()
        out["size_on_disk_bytes"] = library.size_on_disk()
        out["failed"] = [{"file": p, "reason": r} for p, r in library.catalog.failures()]
        return out

    def add_root(
        self, path: str, include: str | list[str] = "", exclude: str | list[str] = ""
    ) -> str:
        """Add a library folder (or change its patterns); returns what to do next. Patterns
        are globs, comma-separated (or a list)."""
        root = self.jobs.add_root(path, parse_patterns(include), parse_patterns(exclude))
        self._notify_roots()
        patterns = ""
        if root.include or root.exclude:
            patterns = f" (include {', '.join(root.include) or 'all'}; exclude " + (
                f"{', '.join(root.exclude) or 'nothing'})"
            )
        return f"Added `{root.path}`{patterns}. Press **Start indexing** to index it."

    def remove_root(self, path: str) -> str:
        dropped = self.jobs.remove_root(path)
        self._notify_roots()
        with self._lock:
            self._engine = None  # its index may still hold the dropped files
        return f"Removed `{path.strip()}`: {dropped} files left the library and its index."

    def _notify_roots(self) -> None:
        roots = self.roots()
        for callback in self._roots_changed:
            callback(roots)

    # -- index runs ---------------------------------------------------------------------

    def start_indexing(self, model: str | None = None) -> JobStatus:
        """Start (or resume) indexing every library folder in the background."""
        library = self.library()
        current = library.clip_model if library else None
        name = model or current or self.model or DEFAULT_CLIP_MODEL
        # --model-path belongs to the --model preset; another preset uses its own lookup.
        path = self.model_path if name == (self.model or DEFAULT_CLIP_MODEL) else None
        try:
            return self.jobs.start(name, path)
        except WeightsNotFoundError as exc:
            raise WeightsNotFoundError(f"{exc} {TRIAL_HINT}") from None

    def index_folders(self, roots: list[Root], hold: Callable[[FoundFile], bool]) -> IndexSummary:
        """Index `roots` now, in the calling thread: the folder watcher's runs."""
        return self.jobs.run_folders(roots, hold, self.model or DEFAULT_CLIP_MODEL, self.model_path)

    def stop_indexing(self) -> JobStatus:
        return self.jobs.stop()

    def index_status(self) -> JobStatus:
        return self.jobs.status()

    # -- models -------------------------------------------------------------------------

    def list_models(self) -> list[dict]:
        """Every preset: its dimension, whether its weights are on this machine, whether
        the library uses it."""
        library = self.library()
        in_use = library.clip_model if library else None
        rows = []
        for spec in list_presets():
            path = self.model_path if spec.name == self.model else None
            try:
                found = resolve_weights(spec, path, allow_download=False)
                weights, source = True, found.source
            except TroveError:
                weights, source = False, "not on this machine"
            rows.append(
                {
                    "name": spec.name,
                    "space": spec.space,
                    "dim": spec.embed_dim,
                    "weights_here": weights,
                    "weights": source,
                    "in_use": spec.name == in_use,
                    "default": spec.name == DEFAULT_CLIP_MODEL,
                    "description": spec.description,
                }
            )
        return rows

    def model_status(self) -> str:
        """One line: which model searches, and whether it is loaded."""
        library = self.library()
        name = (library.clip_model if library else None) or self.model or DEFAULT_CLIP_MODEL
        with self._lock:
            state, error = self._model_state, self._model_error
        if error or not weights_present(get_preset(name), self.model_path):
            return (
                f"Model {name}: no weights on this machine, so searching needs them first: run "
                f"`python app.py models download {name}` where there is network (the Models "
                f"tab says how to bring them here). Without weights, the Library tab can index "
                f"with tiny-clip for a trial."
            )
        run = self.jobs.status()
        if state == NOT_LOADED and run.model == name and run.done:
            state = "loaded"  # the index run in this process loaded it
        return f"Model {name}: {state}."

    def warm_up(self) -> threading.Thread | None:
        """Load the library's model in the background, so the first search is quick. Does
        nothing for a library with nothing in it yet."""
        library = self.library()
        if library is None or library.clip_model is None:
            return None
        thread = threading.Thread(target=self._warm_up, name="trove-warm-up", daemon=True)
        thread.start()
        return thread

    def _warm_up(self) -> None:
        try:
            self._search_engine().encoder.load()
        except TroveError as exc:
            log.warning("%s", exc)
        except Exception:  # a thread has nobody to raise to
            log.exception("Loading the model failed")
            with self._lock:
                self._model_state = "failed to load (see the server log)"
        else:
            with self._lock:
                self._model_state = "loaded"

    def _search_engine(self) -> SearchEngine:
        """The engine for the library's model, reopened when the catalog has moved on."""
        library = self.library()
        if library is None:
            raise NoLibraryError(EMPTY_LIBRARY)
        running = self.jobs.status().running
        with self._lock:
            built = library.clip_model
            model = built or self.model or DEFAULT_CLIP_MODEL
            key = (model, library.catalog.generation)
            fresh = self._engine is not None and self._engine_key == key
            recent = time.monotonic() - self._engine_opened < REFRESH_WHILE_INDEXING_S
            if self._engine is not None and self._engine.encoder.name == model and running:
                fresh = fresh or recent
            if fresh and self._engine is not None:
                return self._engine
            engine = SearchEngine(
                library,
                None if built else model,
                self.model_path if model == self.model else None,
                # Our own index thread may be writing that index file right now.
                save_rebuilt_index=not running,
                decoder=self.decoder,
            )
            try:
                resolve_weights(engine.encoder.spec, engine.encoder.model_path, False)
            except WeightsNotFoundError as exc:
                self._model_error = str(exc)
                raise WeightsNotFoundError(f"{exc} {TRIAL_HINT}") from None
            self._model_error = None
            if self._model_state == NOT_LOADED:
                self._model_state = "loading"
            self._engine, self._engine_key = engine, key
            self._engine_opened = time.monotonic()
            return engine

    # -- search -------------------------------------------------------------------------

    def search(
        self, request: SearchRequest, offset: int = 0, page_size: int = PAGE_SIZE
    ) -> SearchPage:
        """One page of results for `request`, or a page with no results whose message says
        why (empty library, nothing matches). Raises TroveError for a bad query or missing
        weights."""
        given = request.image or request.files or request.similar_to.strip()
        if not (request.query.strip() or given):
            return SearchPage(
                (),
                0,
                False,
                f"Type some words or drop an image, a sound or a video. {QUERY_HINT}",
            )
        library = self.library()
        if library is None or not library.catalog.counts():
            return SearchPage((), 0, False, empty_library_message(self.jobs.status()))
        query = self._parse(request, library)
        engine = self._search_engine()
        results = engine.search(query, k=page_size + 1, filters=request.filters, offset=offset)
        with self._lock:
            if self._model_state in (NOT_LOADED, "loading"):
                self._model_state = "loaded"
        page = tuple(results[:page_size])
        has_more = len(results) > page_size
        return SearchPage(page, offset, has_more, self._summary(request, page, offset))

    def _parse(self, request: SearchRequest, library: Library) -> Query:
        slots: dict[str, list[str]] = {"images": [], "sounds": [], "videos": []}
        if request.image:
            slots["images"].append(_uploaded(request.image))
        for path in request.files:
            uploaded = _uploaded(path)
            slots[_query_slot(uploaded, kind_for_path(uploaded))].append(uploaded)
        if request.similar_to.strip():
            item = _library_file(library, request.similar_to.strip())
            slots[_query_slot(item.path, item.kind)].append(item.path)
        query = parse_query(
            request.query.strip(),
            tuple(slots["images"]),
            tuple(slots["sounds"]),
            tuple(slots["videos"]),
        )
        # parse_query resolves file paths
        given = {str(Path(p).resolve()) for paths in slots.values() for p in paths}
        roots = [Path(r.path) for r in library.catalog.roots()]
        for term in query.terms:
            if term.kind in QUERY_SLOTS and term.value not in given:
                real = Path(term.value).resolve()
                if not any(real.is_relative_to(root.resolve()) for root in roots):
                    raise QueryError(
                        f"Files typed into the web UI's query must be inside the library "
                        f"folders; {term.value} is not. Drop that file into the drop area."
                    )
        return query

    def _summary(self, request: SearchRequest, page: tuple[SearchResult, ...], offset: int) -> str:
        if not page and offset:
            return "No more results."
        if not page:
            if request.filters.active:
                return (
                    "Nothing matches the filters. Loosen them (kind, folder, dates, duration, "
                    "minimum score) and search again."
                )
            return "No results."
        end = offset + len(page)
        text = f"Results {offset + 1}-{end}" if offset else f"{len(page)} results"
        if request.filters.sort == "date":
            text += ", newest first"
        status = self.jobs.status()
        if status.running:
            text += f" (indexing: {status.done} of {status.total} files done so far)"
        library = self.library()
        model = library.clip_model if library else None
        if model and get_preset(model).is_tiny:
            text += f". {model} is untrained: these rankings mean nothing"
        return text + "."

    def thumbnail(self, path: str, still: str | None = None) -> str:
        """The gallery picture for a result: `still` (a video moment's, made by the engine)
        when given, else a cached picture of the file (photo, first frame, waveform, page
        card), or a grey square for a file that cannot be shown."""
        if still and Path(still).resolve().is_relative_to(self.thumbs.folder):
            return still
        try:
            return str(self.thumbs.get(path))
        except (OSError, TroveError):
            return str(self.thumbs.missing())

    def item_detail(self, path: str, at_s: float | None = None) -> ItemDetail:
        """The detail panel's content for a library file (refused for anything else); the
        preview of a video is its still at `at_s` (a result's moment), else its first frame."""
        library = self.library()
        if library is None:
            raise NoLibraryError(EMPTY_LIBRARY)
        item = _library_file(library, path)
        moment = at_s if item.kind == "video" else None
        try:
            preview = str(self.thumbs.get(item.path, PREVIEW_SIZE, moment))
            size = os.stat(item.path).st_size
        except (OSError, TroveError) as exc:
            raise QueryError(
                f"{item.path} cannot be shown: {getattr(exc, 'strerror', None) or exc}. "
                f"It may have been moved or deleted since it was indexed; index again."
            ) from None
        return ItemDetail(
            path=item.path,
            kind=item.kind,
            preview=preview,
            size=size,
            width=item.width,
            height=item.height,
            modified=item.mtime_ns / 1e9,
            indexed=item.indexed_at,
            folder=str(Path(item.path).parent),
            duration_s=item.duration_s,
            taken_at=item.taken_at,
            details=item.details,
            transcript=_transcript_lines(library, item),
        )


EMPTY_LIBRARY = (
    "The library is empty. Add a folder in the Library tab (e.g. /home/you/Pictures) and "
    "press Start indexing; results appear here as files are indexed."
)


def empty_library_message(status: JobStatus) -> str:
    if status.running:
        return (
            f"Indexing has started ({status.done} of {status.total or '?'} files so far); "
            f"search again in a moment."
        )
    return EMPTY_LIBRARY


def _transcript_lines(library: Library, item: Item) -> tuple[SpeechLine, ...]:
    """The stored transcript's lines of a sound or video; none for other kinds, for a file
    not transcribed (speech off, not yet) and for one whose transcription failed."""
    if item.kind not in ("audio", "video"):
        return ()
    transcript = library.catalog.transcript(item.id)
    return transcript.lines if transcript is not None else ()


def _library_file(library: Library, path: str) -> Item:
    item = library.catalog.item_by_path(os.path.abspath(os.path.expanduser(path)))
    if item is None or item.error is not None:
        raise QueryError(f"{path} is not a file of this library.")
    return item


def _uploaded(path: str) -> str:
    """An uploaded query file's path, refused unless Gradio's upload folder holds it."""
    from gradio.utils import get_upload_folder

    real = Path(path).resolve()
    if not real.is_relative_to(Path(get_upload_folder()).resolve()) or not real.is_file():
        raise QueryError("The query file must be uploaded (drop or paste it into the drop area).")
    return str(real)


def _query_slot(path: str, kind: str | None) -> str:
    """Which of parse_query's file lists a query file belongs in, by its kind."""
    name = Path(path).name
    if kind == "document":
        raise QueryError(
            f"Search by a photo, a sound or a video; {name} is a document. To find documents "
            f"like it, type some of its words."
        )
    if kind not in QUERY_SLOTS:
        raise QueryError(
            f"Search by a photo, a sound or a video; {name} is none of these (by its extension)."
        )
    return QUERY_SLOTS[kind]


def parse_patterns(text: str | list[str] | None) -> tuple[str, ...]:
    """Glob patterns from a comma- or newline-separated field (or a list, from the API)."""
    if not text:
        return ()
    parts = text if isinstance(text, list) else text.replace("\n", ",").split(",")
    return tuple(p.strip() for p in parts if p.strip())
