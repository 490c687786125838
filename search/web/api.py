"""The public API: one named Gradio endpoint per operation (see docs/web.md's API
section), each a thin call into `TroveUI` whose TroveError becomes one line for the client.
The endpoints that change the library pass the caller's request to `require_manager` first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
from gradio import FileData

from search.decode.kinds import kind_for_path
from search.engine import SearchResult
from search.errors import QueryError, TroveError
from search.filters import SearchFilters
from search.web.access import require_local_client, require_manager
from search.web.media import file_url
from search.web.render import one_line
from search.web.service import PAGE_SIZE, SearchRequest, TroveUI

log = logging.getLogger(__name__)


def register_api(ui: TroveUI) -> None:
    """The public API: one named endpoint per operation (see docs/web.md's API section)."""

    def _call(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except TroveError as exc:
            # The caller's mistake (a bad date, a missing folder): one line in the server's log,
            # as the client gets it. A traceback is kept for what is not a TroveError: a bug.
            message = one_line(str(exc))
            log.info("Refused: %s", message)
            raise gr.Error(message, print_exception=False) from None

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
                filters=SearchFilters.from_options(
                    kinds, folder, after, before, min_score, sort, min_duration, max_duration
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
        return _call(lambda: ui.item_detail(path).to_dict())

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

    def open_file(path: str, reveal: bool = False, request: gr.Request | None = None) -> str:
        """Open a library file in its default application on the machine that runs Trove
        (with `reveal`, show it in its folder). Only for a browser on that machine."""

        def run() -> str:
            require_local_client(request)
            return ui.open_file(path, reveal)

        return _call(run)

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
        open_file,
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


def result_dict(result: SearchResult) -> dict:
    """A result as JSON for the API: the CLI's keys, with `file` for `path` (gradio_client
    takes any dict with a "path" key for a file to download) and `url`, the original's URL
    path on this server."""
    out = result.to_dict()
    out["file"] = out.pop("path")
    out["url"] = file_url(result.path)
    return out
