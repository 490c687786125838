"""Serving the app: `create_app` wires it with the media rules (search/web/media.py), the
page's CSS and the upload limit; `serve` launches it where search/web/access.py allows."""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from indexers.watch import DEFAULT_POLL_INTERVAL_S
from search.errors import TroveError
from search.web.access import check_exposure
from search.web.desktop import should_open_browser
from search.web.layout import build_app
from search.web.media import MediaGuard, MediaPolicy, media_rules
from search.web.service import TroveUI
from search.web.watching import LibraryWatch

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
    watch: bool = True,
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    open_browser: bool = True,
) -> tuple[gr.Blocks, TroveUI]:
    """Launch the web UI for the library in `data_dir` on host:port (docs/web.md), with
    its folders watched (search/web/watching.py) unless not `watch`; once it is up, the
    browser opens on it when `open_browser` and `should_open_browser` allow.

    Refused (TroveError, before anything starts) where other machines could reach it without
    a login `auth`: a `host` that is not a loopback address, or `share`. With `block`, serves
    until interrupted; otherwise returns once the server is up.
    """
    check_exposure(host, share, auth)
    check_port(host, port)
    ui = TroveUI(data_dir, model, model_path)
    if watch:  # before the page is built: the Library tab shows it
        ui.watch = LibraryWatch(ui, poll_interval_s=poll_interval_s)
    demo, options = create_app(ui)
    ui.warm_up()
    if ui.watch is not None:
        ui.watch.start()
    try:
        demo.launch(
            server_name=host,
            server_port=port,
            share=share,
            auth=auth,
            quiet=False,
            inbrowser=should_open_browser(host, not open_browser),
            prevent_thread_lock=not block,
            **options,
        )
    except OSError:
        # Gradio's own message points at its launch() arguments; the port was free a moment
        # ago (check_port), so another program has just taken it.
        raise TroveError(_taken(host, port)) from None
    return demo, ui


def check_port(host: str, port: int) -> None:
    """Refuse (TroveError) a `host`:`port` this machine cannot listen on, saying why and
    which option changes it, before the model and the library are opened."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise TroveError(
            f"Cannot serve on {host}:{port}: {host} is not a known address ({exc.strerror}). "
            "Give --host an address of this machine, e.g. 127.0.0.1."
        ) from None
    with socket.socket(family, kind, proto) as probe:
        # As the server binds: a port left in TIME_WAIT by a server just stopped is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise TroveError(_taken(host, port)) from None
            if exc.errno == errno.EACCES:
                why = "ports below 1024 need administrator rights; choose one above with --port"
            elif exc.errno == errno.EADDRNOTAVAIL:
                why = f"{host} is not an address of this machine; give --host one that is"
            else:
                why = f"{exc.strerror or exc}; choose another port with --port"
            raise TroveError(f"Cannot serve on {host}:{port}: {why}.") from None


def _taken(host: str, port: int) -> str:
    other = port + 1 if port < 65535 else port - 1
    return (
        f"Cannot serve on {host}:{port}: port {port} is taken (another program, or another "
        f"Trove, listens there). Stop it, or choose another port, e.g. --port {other}."
    )
