"""The web UI: Gradio Blocks over one data folder, searching photos, sounds, videos and
documents by words, by a dropped photo, sound or video, by a library file, or all at once.

`TroveUI` holds the handlers as plain methods (testable without a browser): it knows the
library, the search engine and the background index jobs, never FAISS or SQLite. `build_app`
lays them out as Search, Library and Models tabs and registers every operation as a named
API endpoint; `create_app` wires it as it is served, and `serve` launches it with the media
rules of search/web/media.py.

Who may reach the server and who may change the library is search/web/access.py's rule: every
handler that changes the library (UI event and API endpoint alike) takes the caller's
`gr.Request` and passes it to `require_manager` first.

Media (thumbnails, and which files the server hands out) are in search/web/media.py.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import gradio as gr
from gradio import FileData
from starlette.middleware import Middleware

from search.decode.kinds import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, kind_for_path
from search.engine import SearchEngine, SearchResult
from search.errors import (
    NoLibraryError,
    QueryError,
    TroveError,
    WeightsNotFoundError,
)
from search.filters import KINDS, SORTS, SearchFilters, format_score, parse_date
from search.library import Library
from search.models import get_preset, list_presets
from search.models.registry import DEFAULT_CLIP_MODEL
from search.models.weights import resolve_weights
from search.query import Query, parse_query
from search.storage.catalog import Item
from search.storage.datadir import DataDir
from search.thumbnails import Thumbnails, clock
from search.web.access import NotAllowedError, check_exposure, check_manager
from search.web.jobs import DONE, FAILED, IDLE, STOPPED, STOPPING, IndexJobs, JobStatus
from search.web.media import MediaGuard, MediaPolicy, media_rules

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
# What the drop area takes, and which query slot each kind of file goes to.
QUERY_FILE_TYPES = sorted(IMAGE_EXTENSIONS | AUDIO_EXTENSIONS | VIDEO_EXTENSIONS)
QUERY_SLOTS = {"image": "images", "audio": "sounds", "video": "videos"}
OFFLINE_WEIGHTS = """\
Weights are looked up in this order, and nothing else is tried:

1. `--model-path`: a checkpoint file (an open_clip state dict `.bin`/`.pt` or a
   `.safetensors` file) or a folder holding `open_clip_model.safetensors` or
   `open_clip_pytorch_model.bin`.
2. The Hugging Face cache (`~/.cache/huggingface/hub`, or `$HF_HOME/hub`). This works with
   `HF_HUB_OFFLINE=1`.
3. A download from the Hugging Face hub (skipped when `HF_HUB_OFFLINE=1`; the web UI never
   downloads: use the command below).

So, on any machine with network: `python app.py models download clip-vit-b-32`, then copy
`~/.cache/huggingface/hub/models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K` into the same place
on the offline machine (or copy the single `open_clip_model.safetensors` and pass it with
`--model-path`). When no weights are found, the command stops with one paragraph naming the
model, each place it looked and why that failed, and these commands."""
BRIDGE_NOTE = (
    "How well sounds and pictures line up (the CLIP <-> CLAP bridge's held-out figures): "
    "`python app.py models info clap-htsat-unfused` (or tiny-clap) on this machine."
)
TRIAL_HINT = (
    "For a trial without weights, choose tiny-clip under Library > Model and start indexing "
    "(an untrained model: the pipeline works, the rankings mean nothing)."
)
CSS = """
#title h1 { margin-bottom: 0; }
#header-status { color: var(--body-text-color-subdued); }
#results .caption-label {
    white-space: normal; overflow: visible; text-overflow: clip; overflow-wrap: anywhere;
    max-width: calc(100% - 2 * var(--spacing-md)); font-size: 0.8rem; line-height: 1.2;
}
#search-status, #library-message, #index-progress { min-height: 1.5em; }
#detail-meta code, #index-progress code, #library-summary code, #detail-meta blockquote {
    word-break: break-all; white-space: normal;
}
/* The results grow the page instead of scrolling inside a box of their own. */
#results .grid-wrap { max-height: none !important; overflow-y: auto; }
/* Gradio gives a short result list fewer, wider columns: two results would fill the page. */
#results .grid-container { grid-template-columns: repeat(4, minmax(0, 1fr)) !important; }
.field-row { align-items: flex-end; }
.field-row > button { flex-grow: 0; margin-bottom: var(--spacing-lg); }
"""


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

    request: SearchRequest
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

    def to_dict(self) -> dict:
        """As JSON for the API (`file`, not `path`: see `result_dict`)."""
        out = asdict(self)
        out["file"] = out.pop("path")
        out["modified"] = _iso(self.modified)
        out["indexed"] = _iso(self.indexed) if self.indexed else None
        out["taken_at"] = _iso(self.taken_at) if self.taken_at is not None else None
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
        self.thumbs = Thumbnails(DataDir(self.data_dir).thumbnails)
        self._lock = threading.RLock()
        self._library: Library | None = None
        self._engine: SearchEngine | None = None
        self._engine_key: tuple[str, int] | None = None
        self._engine_opened = 0.0
        self._model_state = NOT_LOADED
        self._model_error: str | None = None
        self._roots_changed: list[Callable[[list[str]], None]] = []

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

    def roots(self) -> list[str]:
        library = self.library()
        return [r.path for r in library.catalog.roots()] if library else []

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
        if error or not self._weights_here(name):
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

    def _weights_here(self, name: str) -> bool:
        try:
            resolve_weights(get_preset(name), self.model_path, allow_download=False)
        except TroveError:
            return False
        return True

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
            raise NoLibraryError(_EMPTY_LIBRARY)
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
                request,
                (),
                0,
                False,
                f"Type some words or drop an image, a sound or a video. {_HINT}",
            )
        library = self.library()
        if library is None or not library.catalog.counts():
            return SearchPage(request, (), 0, False, _empty_library_message(self.jobs.status()))
        query = self._parse(request, library)
        engine = self._search_engine()
        results = engine.search(query, k=page_size + 1, filters=request.filters, offset=offset)
        with self._lock:
            if self._model_state in (NOT_LOADED, "loading"):
                self._model_state = "loaded"
        page = tuple(results[:page_size])
        has_more = len(results) > page_size
        return SearchPage(request, page, offset, has_more, self._summary(request, page, offset))

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
            raise NoLibraryError(_EMPTY_LIBRARY)
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
        )


_HINT = QUERY_HINT
_EMPTY_LIBRARY = (
    "The library is empty. Add a folder in the Library tab (e.g. /home/you/Pictures) and "
    "press Start indexing; results appear here as files are indexed."
)


def _empty_library_message(status: JobStatus) -> str:
    if status.running:
        return (
            f"Indexing has started ({status.done} of {status.total or '?'} files so far); "
            f"search again in a moment."
        )
    return _EMPTY_LIBRARY


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


def make_filters(
    kinds: list[str] | None = None,
    folder: str | None = "",
    after: str | None = "",
    before: str | None = "",
    min_score: float | None = None,
    sort: str | None = "relevance",
    min_duration: float | None = None,
    max_duration: float | None = None,
) -> SearchFilters:
    """SearchFilters from form fields: blanks are "no filter"; a minimum score of 0 (the
    slider's rest) is none; dates are YYYY-MM-DD, both ends included; durations are seconds,
    and an empty field or 0 (where a cleared number field rests) is no limit."""
    return SearchFilters(
        kinds=tuple(kinds or ()),
        folder=(folder or "").strip() or None,
        modified_after=parse_date(after) if (after or "").strip() else None,
        modified_before=parse_date(before, end_of_day=True) if (before or "").strip() else None,
        min_score=float(min_score) if min_score else None,
        sort=sort or "relevance",
        min_duration=float(min_duration) if min_duration else None,
        max_duration=float(max_duration) if max_duration else None,
    )


def file_url(path: str, start: float | None = None, end: float | None = None) -> str:
    """The URL path Gradio serves a (permitted) file under; with `start`, a media fragment
    (`#t=start,end`) so that the browser's player begins at that moment."""
    url = "/gradio_api/file=" + urllib.parse.quote(path)
    if start is not None:
        url += f"#t={start:g}" + (f",{end:g}" if end is not None and end > start else "")
    return url


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).isoformat(sep=" ", timespec="seconds")


def _human_bytes(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def error_line(exc: Exception) -> str:
    """A TroveError's message as the one line the UI shows."""
    return f"**Error:** {_one_line(str(exc))}"


def require_manager(request: gr.Request | None) -> None:
    """Raise NotAllowedError unless the caller may change the library: a logged-in user, or
    a client on this machine that no proxy relayed (search/web/access.py). A handler called
    without a request (none to judge) is refused too."""
    if request is None:
        raise NotAllowedError("A library change needs a request to judge; none was given.")
    client = request.client
    check_manager(client.host if client else None, dict(request.headers), request.username)


# -- rendering ------------------------------------------------------------------------------


def render_progress(status: JobStatus) -> str:
    """The Library tab's progress display for an index run."""
    if status.state == IDLE:
        return "No index run yet. Press **Start indexing** to index the library folders."
    titles = {
        "scanning": "Scanning folders",
        "indexing": "Indexing",
        STOPPING: "Stopping",
        DONE: "Done",
        STOPPED: "Stopped",
        FAILED: "Failed",
    }
    lines = [f"**{titles[status.state]}** with {status.model}"]
    if status.total or status.state in ("indexing", STOPPING, DONE, STOPPED):
        share = status.done / status.total if status.total else 1.0
        filled = int(round(share * 24))
        bar = "█" * filled + "░" * (24 - filled)
        speed = f"{status.rate:.1f} files/s" if status.rate else "measuring speed"
        eta = f"about {_duration(status.eta_s)} left" if status.eta_s is not None else ""
        parts = [f"{status.done} / {status.total} files ({share:.0%})", speed]
        if status.running and eta:
            parts.append(eta)
        lines.append(f"`{bar}` " + " · ".join(parts))
    if status.running and status.current:
        lines.append(f"Now: `{status.current}`")
    if status.message:
        first, *rest = status.message.splitlines()
        lines.append(first if status.state != FAILED else f"**Error:** {_one_line(first)}")
        lines += [line for line in rest if not line.startswith("  failed: ")]
    if status.errors:
        lines.append(f"{len(status.errors)} files failed: see the list below.")
    return "\n\n".join(lines)


def render_library(status: dict, model_line: str) -> str:
    """The Library tab's summary: data folder, model, counts, index size."""
    if not status["exists"]:
        return (
            f"**No library yet** in `{status['data_dir']}`. Add a folder below (its full path, "
            f"e.g. /home/you/Pictures), then press **Start indexing**. New libraries are "
            f"indexed with {status['new_library_model']}."
        )
    counts = ", ".join(f"{n} {kind}" for kind, n in status["counts"].items()) or "no files yet"
    return "\n\n".join(
        [
            f"**Data folder** `{status['data_dir']}`",
            f"**Files** {counts} · **Index** {_human_bytes(status['size_on_disk_bytes'])} on "
            f"disk · **Failed** {len(status['failed'])}",
            f"**{model_line}**",
        ]
    )


def render_detail(
    detail: ItemDetail,
    score: float | None,
    start: float | None = None,
    end: float | None = None,
    snippet: str | None = None,
) -> str:
    """The detail panel's text: path, kind, score and the result's moment or passage, then
    what the catalog knows of the file (duration, sound, codec, pages, camera, dates)."""
    info = detail.details
    head = f"**Kind** {detail.kind}"
    if score is not None:
        head += f" · **Score** {format_score(score)}"
    if start is not None:
        head += f" · **Moment** {moment_text(start, end)}"
    rows = [f"**Path** `{detail.path}`", head]
    if snippet:
        rows.append("> " + _markdown_text(snippet))
    described = [
        ("Title", info.get("title")),
        ("Artist", info.get("artist")),
        ("Album", info.get("album")),
        ("Pages", info.get("pages")),
    ]
    rows.append(_fields(described))
    size = [("Size", _human_bytes(detail.size))]
    if detail.width:
        size.append(("Dimensions", f"{detail.width} × {detail.height}"))
    if detail.duration_s is not None:
        size.append(("Duration", clock(detail.duration_s)))
    rows.append(_fields(size))
    rate = info.get("sample_rate")
    channels = info.get("channels")
    fps = info.get("fps")
    media = [
        ("Sample rate", f"{rate / 1000:g} kHz" if isinstance(rate, int | float) else None),
        ("Channels", _channels(channels) if isinstance(channels, int) else None),
        ("Codec", info.get("codec")),
        ("Frame rate", f"{fps:.3g} fps" if isinstance(fps, int | float) else None),
    ]
    rows.append(_fields(media))
    rows.append(_fields([("Camera", info.get("camera")), ("Lens", info.get("lens"))]))
    dates = [("Taken", _iso(detail.taken_at) if detail.taken_at is not None else None)]
    dates += [("Modified", _iso(detail.modified))]
    dates += [("Indexed", _iso(detail.indexed) if detail.indexed else None)]
    rows.append(_fields(dates))
    if info.get("notice"):
        rows.append(f"**Note** {_markdown_text(str(info['notice']))}")
    timed = detail.kind in ("audio", "video") and start is not None
    link = file_url(detail.path, start, end) if timed else file_url(detail.path)
    label = f"Open the original at {clock(start)}" if timed and start else "Open the original"
    rows.append(f"[{label}]({link})")
    return "\n\n".join(row for row in rows if row)


def _fields(pairs: list[tuple[str, Any]]) -> str:
    """One line of `**Name** value` pairs, leaving out the unknown ones."""
    shown = [f"**{name}** {_markdown_text(str(value))}" for name, value in pairs if value]
    return " · ".join(shown)


def _channels(n: int) -> str:
    return {1: "mono", 2: "stereo"}.get(n, str(n))


def _markdown_text(text: str) -> str:
    """Text from a file (a tag, a passage) shown as itself, not as Markdown or HTML."""
    flat = " ".join(text.split())
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else ch for ch in flat)


_MARKDOWN_SPECIAL = set("\\`*_[]<>|~#")


def moment_text(start: float, end: float | None) -> str:
    """A moment as players show it: "0:20–0:28" (or "0:20" for an instant)."""
    if end is None or clock(end) == clock(start):
        return clock(start)
    return f"{clock(start)}–{clock(end)}"


def caption(result: SearchResult, roots: list[str]) -> str:
    """A gallery caption: kind, score, the moment (sounds, videos, subtitles) and the path
    (from its library folder's name on)."""
    shown = result.path
    for root in sorted(roots, key=len, reverse=True):
        if result.path.startswith(root.rstrip("/") + "/"):
            shown = os.path.join(os.path.basename(root.rstrip("/")), result.path[len(root) + 1 :])
            break
    moment = f" · {moment_text(result.start, result.end)}" if result.start is not None else ""
    return f"{result.kind} · {format_score(result.score)}{moment} · {shown}"


def result_dict(result: SearchResult) -> dict:
    """A result as JSON for the API: the CLI's keys, with `file` for `path` (gradio_client
    takes any dict with a "path" key for a file to download) and `url`, the original's URL
    path on this server."""
    out = result.to_dict()
    out["file"] = out.pop("path")
    out["url"] = file_url(result.path)
    return out


# -- the app --------------------------------------------------------------------------------


def build_app(ui: TroveUI) -> gr.Blocks:
    """The Blocks app: Search, Library and Models tabs, plus the API endpoints."""
    kinds = list(KINDS)
    presets = [spec.name for spec in list_presets()]

    with gr.Blocks(title="Trove", analytics_enabled=False) as demo:
        gr.Markdown("# Trove", elem_id="title")
        header = gr.Markdown(elem_id="header-status")

        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("Search", id="search", elem_id="tab-search"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        query = gr.Textbox(
                            label="Search",
                            placeholder='e.g. a dog in the snow, or "beach at sunset" - people',
                            info=QUERY_HINT,
                            lines=1,
                            max_lines=3,
                            elem_id="query",
                            autofocus=True,
                        )
                        similar_to = gr.Textbox(
                            label="Similar to (a library file; set by Find similar)",
                            placeholder="empty: not searching by a library file",
                            elem_id="similar-to",
                            lines=1,
                        )
                        with gr.Row():
                            search_btn = gr.Button(
                                "Search", variant="primary", scale=3, elem_id="search-btn"
                            )
                            clear_btn = gr.Button("Clear", scale=1, elem_id="clear-btn")
                    with gr.Column(scale=1, min_width=220):
                        image = gr.Image(
                            label="Image query (drop, paste or click)",
                            type="filepath",
                            sources=["upload", "clipboard"],
                            height=190,
                            elem_id="image-query",
                        )
                    with gr.Column(scale=1, min_width=220):
                        query_file = gr.File(
                            label="Sound or video query (or a photo: drop or click)",
                            file_types=QUERY_FILE_TYPES,
                            type="filepath",
                            height=190,
                            elem_id="file-query",
                        )
                with gr.Accordion("Filters and sort", open=False, elem_id="filters"):
                    with gr.Row():
                        kind_box = gr.CheckboxGroup(
                            kinds, label="Kind (none ticked: every kind)", elem_id="kinds"
                        )
                        folder = gr.Textbox(
                            label="Folder",
                            placeholder="only files inside this folder",
                            elem_id="folder-filter",
                        )
                        after = gr.Textbox(
                            label="Modified from", placeholder="YYYY-MM-DD", elem_id="after"
                        )
                        before = gr.Textbox(
                            label="Modified until", placeholder="YYYY-MM-DD", elem_id="before"
                        )
                    with gr.Row():
                        min_duration = gr.Number(
                            None,
                            label="Shortest (seconds)",
                            info="sounds and videos only",
                            minimum=0,
                            elem_id="min-duration",
                        )
                        max_duration = gr.Number(
                            None,
                            label="Longest (seconds)",
                            info="0 or empty: no limit",
                            minimum=0,
                            elem_id="max-duration",
                        )
                        min_score = gr.Slider(
                            0,
                            1,
                            value=0,
                            step=0.01,
                            label="Minimum score (0: none)",
                            elem_id="min-score",
                        )
                        sort = gr.Radio(
                            list(SORTS),
                            value="relevance",
                            label="Sort",
                            info="date: newest first among the best matches",
                            elem_id="sort",
                        )
                status_line = gr.Markdown(elem_id="search-status")
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        gallery = gr.Gallery(
                            label="Results",
                            columns=4,
                            height="auto",
                            object_fit="cover",
                            allow_preview=False,
                            buttons=[],
                            elem_id="results",
                        )
                        more_btn = gr.Button("More results", visible=False, elem_id="more-btn")
                    with gr.Column(scale=2, visible=False, elem_id="detail") as detail_col:
                        detail_image = gr.Image(
                            label="Selected",
                            type="filepath",
                            interactive=False,
                            height=420,
                            buttons=["fullscreen"],
                            elem_id="detail-image",
                        )
                        detail_audio = gr.Audio(
                            label="Listen",
                            type="filepath",
                            interactive=False,
                            visible=False,
                            elem_id="detail-audio",
                        )
                        detail_video = gr.Video(
                            label="Watch",
                            interactive=False,
                            height=420,
                            visible=False,
                            elem_id="detail-video",
                        )
                        detail_meta = gr.Markdown(elem_id="detail-meta")
                        with gr.Row():
                            similar_btn = gr.Button(
                                "Find similar", variant="primary", elem_id="find-similar"
                            )
                            close_btn = gr.Button("Close", elem_id="close-detail")

            with gr.Tab("Library", id="library", elem_id="tab-library"):
                library_md = gr.Markdown(elem_id="library-summary")
                roots_table = gr.Dataframe(
                    headers=["Folder", "Include", "Exclude", "Files"],
                    label="Library folders",
                    interactive=False,
                    wrap=True,
                    column_widths=["52%", "18%", "18%", "12%"],
                    elem_id="roots",
                )
                with gr.Row(elem_classes=["field-row"]):
                    add_path = gr.Textbox(
                        label="Folder to add",
                        placeholder="/home/you/Pictures",
                        info="Its full path; ~ is your home folder.",
                        scale=4,
                        elem_id="add-path",
                    )
                    include = gr.Textbox(
                        label="Include only",
                        placeholder="e.g. *.jpg, 2023/*",
                        info="Globs, comma-separated; empty: every file Trove reads.",
                        scale=2,
                        elem_id="include",
                    )
                    exclude = gr.Textbox(
                        label="Exclude",
                        placeholder="e.g. *.tmp, Screenshots",
                        info="Globs matching files or folders.",
                        scale=2,
                        elem_id="exclude",
                    )
                    add_btn = gr.Button(
                        "Add folder", variant="primary", size="md", scale=1, elem_id="add-btn"
                    )
                with gr.Row(elem_classes=["field-row"]):
                    remove_choice = gr.Dropdown(
                        [],
                        label="Library folder to remove",
                        info="Its files leave the library and the index (not the disk).",
                        elem_id="remove-choice",
                        scale=8,
                    )
                    remove_btn = gr.Button(
                        "Remove folder", variant="stop", size="md", scale=1, elem_id="remove-btn"
                    )
                library_message = gr.Markdown(elem_id="library-message")
                with gr.Row(elem_classes=["field-row"]):
                    model_choice = gr.Dropdown(
                        presets,
                        label="Model",
                        info="Indexing with another model than the library's re-encodes "
                        "every file; searches use the old one until that is done.",
                        elem_id="model-choice",
                        scale=6,
                    )
                    start_btn = gr.Button(
                        "Start indexing", variant="primary", size="md", scale=1, elem_id="start-btn"
                    )
                    stop_btn = gr.Button(
                        "Stop",
                        variant="stop",
                        size="md",
                        scale=1,
                        interactive=False,
                        elem_id="stop-btn",
                    )
                progress = gr.Markdown(elem_id="index-progress")
                failed_table = gr.Dataframe(
                    headers=["File", "Why it failed"],
                    label="Failed files",
                    interactive=False,
                    wrap=True,
                    column_widths=["45%", "55%"],
                    elem_id="failed",
                )
                timer = gr.Timer(1.0, active=False)

            with gr.Tab("Models", id="models", elem_id="tab-models"):
                models_table = gr.Dataframe(
                    headers=["Preset", "Dim", "Weights here", "In use", "About"],
                    label="Presets",
                    interactive=False,
                    wrap=True,
                    column_widths=["17%", "6%", "20%", "7%", "50%"],
                    elem_id="models-table",
                )
                gr.Markdown("### Adding weights on a machine without network\n\n" + OFFLINE_WEIGHTS)
                gr.Markdown(BRIDGE_NOTE, elem_id="bridge-note")

        results_state = gr.State([])
        request_state = gr.State(None)
        selected_state = gr.State(None)

        # -- UI events (private: the API endpoints below are the public surface) --------

        def run_search(
            q, img, file_, sim, kinds_, folder_, after_, before_, shortest, longest, min_s, sort_
        ):
            try:
                request = SearchRequest(
                    query=q or "",
                    image=img,
                    similar_to=sim or "",
                    filters=make_filters(
                        kinds_, folder_, after_, before_, min_s, sort_, shortest, longest
                    ),
                    files=(file_,) if file_ else (),
                )
                page = ui.search(request)
            except TroveError as exc:
                return (
                    gr.Gallery(value=[], selected_index=None),
                    error_line(exc),
                    [],
                    None,
                    gr.Button(visible=False),
                    gr.Column(visible=False),
                    header_line(),
                )
            return _page_outputs(page, [], request)

        def _page_outputs(page: SearchPage, before_: list[dict], request: SearchRequest):
            roots = ui.roots()
            shown = before_ + [_shown_row(r) for r in page.results]
            items = [
                (ui.thumbnail(r["path"], r.get("thumbnail")), caption(_as_result(r), roots))
                for r in shown
            ]
            # A new search drops the old selection; more results keep it.
            gallery_update = (
                gr.Gallery(value=items) if before_ else gr.Gallery(value=items, selected_index=None)
            )
            return (
                gallery_update,
                page.message,
                shown,
                request,
                gr.Button(visible=page.has_more),
                gr.skip() if before_ else gr.Column(visible=False),
                header_line(),
            )

        def more_results(shown, request):
            if request is None:
                hide = gr.Button(visible=False)
                return gr.skip(), "Search first.", shown, request, hide, gr.skip(), gr.skip()
            try:
                page = ui.search(request, offset=len(shown))
            except TroveError as exc:
                failed = error_line(exc)
                return gr.skip(), failed, shown, request, gr.Button(), gr.skip(), gr.skip()
            return _page_outputs(page, shown, request)

        def select_result(shown, evt: gr.SelectData):
            index = evt.index if isinstance(evt.index, int) else evt.index[0]
            if not shown or index >= len(shown):
                return (gr.skip(),) * 7
            picked = shown[index]
            start, end = picked.get("start"), picked.get("end")
            try:
                detail = ui.item_detail(picked["path"], start)
            except TroveError as exc:
                hidden = gr.Audio(value=None, visible=False), gr.Video(value=None, visible=False)
                failed = error_line(exc)
                return None, *hidden, failed, picked["path"], gr.Column(visible=True), gr.Button()
            kind = detail.kind
            # Sounds and videos play in their own player; the picture is for the others.
            return (
                gr.Image(value=detail.preview, visible=kind not in ("audio", "video")),
                gr.Audio(value=detail.path if kind == "audio" else None, visible=kind == "audio"),
                gr.Video(value=detail.path if kind == "video" else None, visible=kind == "video"),
                render_detail(detail, picked["score"], start, end, picked.get("snippet")),
                picked["path"],
                gr.Column(visible=True),
                gr.Button(visible=kind in QUERY_SLOTS),
            )

        def find_similar(path, kinds_, folder_, after_, before_, shortest, longest, min_s, sort_):
            if not path:
                return (gr.skip(),) * 11
            outputs = run_search(
                "",
                None,
                None,
                path,
                kinds_,
                folder_,
                after_,
                before_,
                shortest,
                longest,
                min_s,
                sort_,
            )
            return ("", None, None, path, *outputs)

        filter_inputs = [kind_box, folder, after, before, min_duration, max_duration]
        filter_inputs += [min_score, sort]
        search_inputs = [query, image, query_file, similar_to, *filter_inputs]
        search_outputs = [gallery, status_line, results_state, request_state, more_btn]
        search_outputs += [detail_col, header]
        for trigger in (search_btn.click, query.submit, image.upload, query_file.upload):
            trigger(
                run_search,
                search_inputs,
                search_outputs,
                api_visibility="private",
                show_progress_on=[gallery],
            )
        more_btn.click(
            more_results,
            [results_state, request_state],
            search_outputs,
            api_visibility="private",
        )
        gallery.select(
            select_result,
            [results_state],
            [
                detail_image,
                detail_audio,
                detail_video,
                detail_meta,
                selected_state,
                detail_col,
                similar_btn,
            ],
            api_visibility="private",
        )
        similar_btn.click(
            find_similar,
            [selected_state, *filter_inputs],
            [query, image, query_file, similar_to, *search_outputs],
            api_visibility="private",
        )
        close_btn.click(
            # Stop a playing sound or video with the panel.
            lambda: (gr.Column(visible=False), None, None),
            None,
            [detail_col, detail_audio, detail_video],
            api_visibility="private",
        )
        clear_btn.click(
            lambda: ("", None, None, "", [], "", [], None, gr.Button(visible=False)),
            None,
            [
                query,
                image,
                query_file,
                similar_to,
                gallery,
                status_line,
                results_state,
                request_state,
                more_btn,
            ],
            api_visibility="private",
        )

        def header_line() -> str:
            return f"{ui.data_dir} · {ui.model_status()}"

        def refresh(message: str | None = None, light: bool = False):
            status = ui.index_status()
            lib = ui.library_status(folder_counts=not light)
            roots = [r["folder"] for r in lib["roots"]]
            start_label = "Resume indexing" if status.state == STOPPED else "Start indexing"
            return (
                header_line(),
                render_library(lib, ui.model_status()),
                gr.skip()
                if light
                else [
                    [r["folder"], ", ".join(r["include"]), ", ".join(r["exclude"]), r["files"]]
                    for r in lib["roots"]
                ],
                gr.Dropdown(choices=roots, value=roots[0] if roots else None),
                render_progress(status),
                [[f["file"], f["reason"]] for f in _failures(lib, status)],
                gr.Button(value=start_label, interactive=not status.running),
                gr.Button(interactive=status.running),
                gr.Timer(active=status.running),
                gr.skip() if message is None else message,
            )

        refresh_outputs = [
            header,
            library_md,
            roots_table,
            remove_choice,
            progress,
            failed_table,
            start_btn,
            stop_btn,
            timer,
            library_message,
        ]

        def on_load(request: gr.Request):
            lib = ui.library_status()
            models = [
                [
                    m["name"] + (" (default)" if m["default"] else ""),
                    m["dim"],
                    _weights_label(m),
                    "yes" if m["in_use"] else "",
                    m["description"],
                ]
                for m in ui.list_models()
            ]
            chosen = lib["model"] or lib["new_library_model"]
            # First run: say at once how to add a folder, before anyone searches.
            empty = "" if lib["counts"] else _empty_library_message(ui.index_status())
            try:
                require_manager(request)
                note = None
            except NotAllowedError as exc:  # say so before a change is tried
                note = _one_line(str(exc))
            return (*refresh(note), gr.Dropdown(value=chosen), models, empty)

        def tick():
            running = ui.index_status().running
            # Every second while a run goes: no per-folder counts until its last tick.
            outputs = list(refresh(light=running))
            outputs[3] = gr.skip()  # leave the folder picker alone while the user uses it
            if not running:  # the last tick: "Indexing started." is over
                outputs[-1] = ""
            return tuple(outputs)

        def add_folder(path, include_, exclude_, request: gr.Request):
            try:
                require_manager(request)
                message = ui.add_root(path, include_, exclude_)
            except TroveError as exc:
                return refresh(error_line(exc))
            return refresh(message)

        def remove_folder(path, request: gr.Request):
            if not path:
                return refresh("Choose a library folder to remove.")
            try:
                require_manager(request)
                message = ui.remove_root(path)
            except TroveError as exc:
                return refresh(error_line(exc))
            return refresh(message)

        def start(model, request: gr.Request):
            try:
                require_manager(request)
                status = ui.start_indexing(model or None)
            except TroveError as exc:
                return refresh(error_line(exc))
            return refresh("Indexing started." if status.state != FAILED else "")

        def stop(request: gr.Request):
            try:
                require_manager(request)
            except TroveError as exc:
                return refresh(error_line(exc))
            ui.stop_indexing()
            return refresh("Stopping after the current batch; what is done is kept.")

        demo.load(
            on_load,
            None,
            [*refresh_outputs, model_choice, models_table, status_line],
            api_visibility="private",
        )
        timer.tick(tick, None, refresh_outputs, api_visibility="private", show_progress="hidden")
        add_btn.click(
            add_folder, [add_path, include, exclude], refresh_outputs, api_visibility="private"
        )
        add_path.submit(
            add_folder, [add_path, include, exclude], refresh_outputs, api_visibility="private"
        )
        remove_btn.click(remove_folder, [remove_choice], refresh_outputs, api_visibility="private")
        start_btn.click(start, [model_choice], refresh_outputs, api_visibility="private")
        stop_btn.click(stop, None, refresh_outputs, api_visibility="private")

        _register_api(ui)
    return demo


def _weights_label(model: dict) -> str:
    if not model["weights_here"]:
        return "no"
    return (
        "yes (built locally)"
        if "built locally" in model["weights"]
        else (f"yes ({model['weights']})")
    )


def _shown_row(result: SearchResult) -> dict:
    """A result as the page keeps it between events (gr.State holds plain data)."""
    return {
        "path": result.path,
        "score": result.score,
        "kind": result.kind,
        "start": result.start,
        "end": result.end,
        "snippet": result.snippet,
        "thumbnail": result.thumbnail,
    }


def _as_result(row: dict) -> SearchResult:
    return SearchResult(row["path"], row["kind"], row["score"], row.get("start"), row.get("end"))


def _failures(lib: dict, status: JobStatus) -> list[dict]:
    """The catalog's failed files, plus this run's walk errors (which the catalog lacks)."""
    rows = {f["file"]: f["reason"] for f in lib["failed"]}
    for path, reason in status.errors:
        rows.setdefault(path, reason)
    return [{"file": p, "reason": r} for p, r in sorted(rows.items())]


def _register_api(ui: TroveUI) -> None:
    """The public API: one named endpoint per operation (see the README's Web UI section)."""

    def _call(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except TroveError as exc:
            raise gr.Error(_one_line(str(exc))) from None

    def search(
        query: str = "",
        image: FileData | None = None,
        similar_to: str = "",
        kinds: list[str] | None = None,
        folder: str = "",
        after: str = "",
        before: str = "",
        min_score: float | None = None,
        sort: str = "relevance",
        k: int = PAGE_SIZE,
        offset: int = 0,
        sound: FileData | None = None,
        video: FileData | None = None,
        min_duration: float | None = None,
        max_duration: float | None = None,
    ) -> dict:
        """Search the library: text in the query syntax, an uploaded image, sound or video, a
        library file (similar_to), or any combination, with filters; returns a page of
        results (sounds and videos with their best moment, start/end in seconds; documents
        with their best passage, snippet).

        Args:
            query: words, "phrases", + and -, weights (e.g. '"beach at sunset" - people')
            image: an image to search by (gradio_client.handle_file(path))
            similar_to: the path of a library file to search by
            kinds: only these kinds (default: every kind)
            folder: only files inside this folder
            after: only files modified on or after this date (YYYY-MM-DD)
            before: only files modified on or before this date (YYYY-MM-DD)
            min_score: only results scoring at least this (-1..1)
            sort: "relevance" or "date" (newest first among the best matches)
            k: results per page (1-200)
            offset: how many results to skip (the next page: offset + k)
            sound: a sound to search by (gradio_client.handle_file(path))
            video: a video to search by (gradio_client.handle_file(path))
            min_duration: only sounds and videos at least this long (seconds)
            max_duration: only sounds and videos at most this long (seconds)
        """

        def run() -> dict:
            if not 1 <= k <= 200:
                raise QueryError(f"k must be between 1 and 200, not {k}.")
            path = _file_path(image)
            files = []
            for given, kind in ((sound, "audio"), (video, "video")):
                file_path = _file_path(given)
                if file_path is not None and kind_for_path(file_path) != kind:
                    raise QueryError(
                        f"{Path(file_path).name} is not a {'sound' if kind == 'audio' else kind}"
                        f" file Trove reads: give it as the matching argument."
                    )
                files += [file_path] if file_path else []
            request = SearchRequest(
                query=query or "",
                image=path,
                similar_to=similar_to or "",
                filters=SearchFilters(
                    kinds=tuple(kinds or ()),
                    folder=folder or None,
                    modified_after=parse_date(after) if after else None,
                    modified_before=parse_date(before, end_of_day=True) if before else None,
                    min_score=min_score,
                    sort=sort,
                    min_duration=min_duration,
                    max_duration=max_duration,
                ),
                files=tuple(files),
            )
            page = ui.search(request, offset=offset, page_size=k)
            return {
                "results": [result_dict(r) for r in page.results],
                "offset": page.offset,
                "has_more": page.has_more,
                "message": page.message,
            }

        return _call(run)

    def item_detail(path: str) -> dict:
        """The metadata of a library file: path, kind, size, dimensions, duration, dates
        (taken_at: a photo's EXIF date), details (sample rate, codec, pages, camera...), and
        the URL path of the original (served only for library files)."""
        return _call(lambda: {k: v for k, v in ui.item_detail(path).to_dict().items()})

    def _manage(request: gr.Request | None, fn: Callable[[], Any]) -> Any:
        """`fn` (a library change) for a caller that may change the library only."""

        def run() -> Any:
            require_manager(request)
            return fn()

        return _call(run)

    # The library changes below take the caller's request (Gradio passes it; it is no API
    # argument): they answer only this machine or a logged-in user.
    def add_root(
        path: str,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        request: gr.Request | None = None,
    ) -> dict:
        """Add a library folder (its full path) with optional include/exclude globs; it is
        indexed by the next start_indexing. Returns the library status. Only this machine or
        a logged-in user may."""
        message = _manage(request, lambda: ui.add_root(path, include or [], exclude or []))
        return {"message": message, **ui.library_status()}

    def remove_root(path: str, request: gr.Request | None = None) -> dict:
        """Remove a library folder and drop its files from the library. Returns the library
        status. Only this machine or a logged-in user may."""
        message = _manage(request, lambda: ui.remove_root(path))
        return {"message": message, **ui.library_status()}

    def start_indexing(model: str = "", request: gr.Request | None = None) -> dict:
        """Start (or resume) indexing every library folder in the background, with `model`
        (default: the library's model). Returns the index status at once. Only this machine
        or a logged-in user may."""
        return _manage(request, lambda: ui.start_indexing(model or None)).to_dict()

    def stop_indexing(request: gr.Request | None = None) -> dict:
        """Stop the index run after the batch in hand (what is done is kept). Only this
        machine or a logged-in user may."""
        return _manage(request, ui.stop_indexing).to_dict()

    def index_status() -> dict:
        """The current or last index run: state, done, total, rate (files/s), eta_s,
        current file, errors, message."""
        return ui.index_status().to_dict()

    def library_status() -> dict:
        """Library folders, files per kind, index size on disk, model, failed files."""
        return ui.library_status()

    def list_models() -> list[dict]:
        """Every model preset, whether its weights are on this machine, and which one the
        library uses."""
        return ui.list_models()

    for fn in (
        search,
        item_detail,
        add_root,
        remove_root,
        start_indexing,
        stop_indexing,
        index_status,
        library_status,
        list_models,
    ):
        gr.api(fn, api_name=fn.__name__)


def _file_path(image: Any) -> str | None:
    if not image:
        return None
    if isinstance(image, dict):
        return image.get("path")
    if isinstance(image, FileData):
        return image.path
    raise QueryError("A query file must be a file (gradio_client.handle_file(path)).")


def create_app(ui: TroveUI) -> tuple[gr.Blocks, dict[str, Any]]:
    """The app over `ui`, wired as `serve` runs it, and the options to host it with: the
    media rules (search/web/media.py), the page's CSS, the upload limit. Gradio's `launch` and
    `mount_gradio_app` take these options alike."""
    ui.thumbs.folder.mkdir(parents=True, exist_ok=True)
    demo = build_app(ui)
    allowed, blocked = media_rules(ui)

    def follow_roots(roots: list[str]) -> None:
        # Gradio reads allowed_paths on every request: keep it in step with the folders.
        demo.allowed_paths[:] = [str(ui.thumbs.folder), *roots]
        # The detail panel's players take originals in place, not copied into Gradio's cache
        # (a film would be copied on each click); MediaGuard still checks every request.
        gr.set_static_paths(roots)

    ui.on_roots_changed(follow_roots)
    # Thumbnails are served from their cache as they are, not copied into Gradio's.
    gr.set_static_paths([str(ui.thumbs.folder), *ui.roots()])
    demo.queue(default_concurrency_limit=4)
    options: dict[str, Any] = {
        "allowed_paths": allowed,
        "blocked_paths": blocked,
        "app_kwargs": {"middleware": [Middleware(MediaGuard, policy=MediaPolicy(ui))]},
        "footer_links": ["api"],
        "css": CSS,
        "max_file_size": "64mb",
    }
    return demo, options


def serve(
    data_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 7860,
    model: str | None = None,
    model_path: str | None = None,
    share: bool = False,
    auth: tuple[str, str] | None = None,
    block: bool = True,
) -> tuple[gr.Blocks, TroveUI]:
    """Launch the web UI for the library in `data_dir` on host:port (see README: Web UI).

    Refused (TroveError, before anything starts) where other machines could reach it without
    a login `auth`: a `host` that is not a loopback address, or `share`. With `block`, serves
    until interrupted; otherwise returns once the server is up.
    """
    check_exposure(host, share, auth)
    ui = TroveUI(data_dir, model, model_path)
    demo, options = create_app(ui)
    ui.warm_up()
    try:
        demo.launch(
            server_name=host,
            server_port=port,
            share=share,
            auth=auth,
            quiet=False,
            prevent_thread_lock=not block,
            **options,
        )
    except OSError as exc:
        raise TroveError(
            f"Cannot serve on {host}:{port}: {exc}. Choose another port with --port."
        ) from None
    return demo, ui
