"""The app as a desktop program: the browser opened on it at start, and a library file (or
its folder) opened in this machine's own applications, for a browser on this machine only
(search/web/access.py's `require_local_client`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from search.errors import TroveError
from search.web.access import is_loopback


def should_open_browser(
    host: str, no_browser: bool, env: Mapping[str, str] = os.environ, platform: str = sys.platform
) -> bool:
    """Whether `serve` opens the browser on the app: not with --no-browser, never for a
    `host` other machines reach (the browser that matters is elsewhere), and on Linux only
    with a display to show it on (a server, a service or a test run has none)."""
    if no_browser or not is_loopback(host):
        return False
    if platform.startswith("linux"):
        return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))
    return True


def open_path(path: str, reveal: bool = False, platform: str = sys.platform) -> str:
    """Open `path` in its default application, or with `reveal` show it in its folder (the
    file selected where the system can: macOS, Windows; its folder opened on Linux). Returns
    what was done, in a line. TroveError when this system has no way to do it."""
    target = Path(path)
    if platform == "darwin":
        command = ["open", "-R", str(target)] if reveal else ["open", str(target)]
    elif platform.startswith("win"):
        if reveal:
            command = ["explorer", f"/select,{target}"]
        else:
            os.startfile(str(target))  # type: ignore[attr-defined]  # Windows only
            return f"Opened {target.name}."
    else:
        opener = shutil.which("xdg-open")
        if opener is None:
            raise TroveError(
                "Opening files needs xdg-open (the xdg-utils package), which this machine "
                "lacks: install it (e.g. `sudo apt install xdg-utils`)."
            )
        command = [opener, str(target.parent if reveal else target)]
    # Detached: the application outlives the request, and its output is not the server's.
    subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return f"Showed {target.name} in its folder." if reveal else f"Opened {target.name}."
