"""Serving the app: `create_app` wires it with the media rules (search/web/media.py), the
page's CSS and the upload limit; `serve` launches it where search/web/access.py allows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from search.errors import TroveError
from search.web.access import check_exposure
from search.web.layout import build_app
from search.web.media import MediaGuard, MediaPolicy, media_rules
from search.web.service import TroveUI

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
    """Launch the web UI for the library in `data_dir` on host:port (docs/web.md).

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
