"""What the web UI shows of the library, and nothing else.

The browser is only ever handed thumbnails and previews from the thumbnail cache
(`DATA_DIR/thumbnails`), and originals of library files through "open the original". Every
request to Gradio's file route (`/gradio_api/file=PATH`) passes `MediaPolicy` first: the
thumbnail cache, Gradio's own upload folder, or a file the catalog lists that really lies
inside a library folder (so `../`, other absolute paths, hidden or non-media files in a
library folder, and symlinks pointing outside are refused); Gradio's `allowed_paths` and
`blocked_paths` (`media_rules`) say the same a second time.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import Protocol

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from search.library import Library
from search.storage.datadir import DataDir
from search.thumbnails import Thumbnails

FILE_ROUTES = ("/gradio_api/file=", "/gradio_api/file/")


def file_url(path: str, start: float | None = None, end: float | None = None) -> str:
    """The URL path Gradio serves a (permitted) file under; with `start`, a media fragment
    (`#t=start,end`) so that the browser's player begins at that moment."""
    url = FILE_ROUTES[0] + urllib.parse.quote(path)
    if start is not None:
        url += f"#t={start:g}" + (f",{end:g}" if end is not None and end > start else "")
    return url


class ServedLibrary(Protocol):
    """What the policy asks of the web service (search/web/service.py's TroveUI)."""

    data_dir: Path
    thumbs: Thumbnails

    def library(self) -> Library | None: ...

    def roots(self) -> list[str]: ...


class MediaPolicy:
    """Which paths Gradio's file route may serve: see the module docstring."""

    def __init__(self, ui: ServedLibrary) -> None:
        self.ui = ui
        self.thumbs = ui.thumbs.folder

    def allows(self, target: str) -> bool:
        from gradio.utils import get_upload_folder

        if "://" in target or target.startswith(("http:", "https:", "data:")):
            return False  # Gradio would fetch a URL for the caller: not our media
        path = Path(os.path.abspath(target))
        real = path.resolve()
        for folder in (self.thumbs, Path(get_upload_folder())):
            if real.is_relative_to(folder.resolve()):
                return True
        library = self.ui.library()
        if library is None:
            return False
        item = library.catalog.item_by_path(str(path))
        if item is None or item.error is not None:
            return False
        return any(real.is_relative_to(Path(r).resolve()) for r in self.ui.roots())


class MediaGuard:
    """ASGI middleware: requests to Gradio's file route pass `MediaPolicy` or get a 403."""

    def __init__(self, app: ASGIApp, policy: MediaPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            for prefix in FILE_ROUTES:
                if path.startswith(prefix) and not self.policy.allows(path[len(prefix) :]):
                    response = PlainTextResponse("Not a file of this library.", status_code=403)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def media_rules(ui: ServedLibrary) -> tuple[list[str], list[str]]:
    """Gradio's allowed_paths (thumbnail cache and library folders) and blocked_paths
    (Trove's own catalog, indexes and lock files)."""
    blocked = [str(path) for path in DataDir(ui.data_dir).private()]
    return [str(ui.thumbs.folder), *ui.roots()], blocked
