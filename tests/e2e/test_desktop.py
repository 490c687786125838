"""The desktop feel: the detail panel's Open and Show in folder act on this machine only for
a browser on this machine (refused for any other client, a logged-in one too), and `serve`
opens the browser on the app once it is up, unless --no-browser or another --host.

The machine's opener (xdg-open) and browser ($BROWSER, which Python's webbrowser honours) are
small scripts that write down what they were asked to open: a headless test machine has no
desktop to show a file on."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from search.web.desktop import should_open_browser
from tests.app_process import serving
from tests.e2e.test_access import LOGIN, LOOPBACK, REMOTE, in_process

pytestmark = pytest.mark.slow


def recorder(folder: Path, name: str, log: Path) -> Path:
    script = folder / name
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@pytest.fixture
def opener(tmp_path, monkeypatch) -> Path:
    """An xdg-open first on PATH that writes its arguments to the returned file."""
    log = tmp_path / "opened.txt"
    recorder(tmp_path / "bin", "xdg-open", log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return log


def wait_for_file(path: Path, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} was not written"
        time.sleep(0.1)
    return path.read_text()


@pytest.mark.parametrize("auth", [None, LOGIN])
def test_open_and_reveal_only_for_a_browser_on_this_machine(tmp_path, photo_library, opener, auth):
    photo = str((photo_library / "beach.jpg").resolve())
    with in_process(tmp_path / "data", auth=auth) as trove:
        local = trove.client(LOOPBACK)
        if auth:
            local.login(*auth)
        assert local.call("add_root", str(photo_library), [], [])[0] == "complete"
        assert local.call("start_indexing", "tiny-clip")[0] == "complete"
        trove.ui.jobs.wait(timeout=120)

        remote = trove.client(REMOTE)
        if auth:
            remote.login(*auth)  # a login lets it search and manage, not open files here
        kind, message = remote.call("open_file", photo, False)
        assert kind == "error" and f"this request came from {REMOTE}" in message, message
        kind, message = remote.call("open_file", photo, True)
        assert kind == "error" and "only for a browser on that machine" in message, message
        assert not opener.exists()

        proxied = trove.client(LOOPBACK, {"X-Forwarded-For": "127.0.0.1"})
        if auth:
            proxied.login(*auth)
        kind, message = proxied.call("open_file", photo, False)
        assert kind == "error" and "through a proxy" in message, message

        assert local.call("open_file", photo, False) == ("complete", "Opened beach.jpg.")
        assert wait_for_file(opener).splitlines() == [photo]
        opener.unlink()
        shown = local.call("open_file", photo, True)
        assert shown == ("complete", "Showed beach.jpg in its folder.")
        assert wait_for_file(opener).splitlines() == [str(Path(photo).parent)]

        kind, message = local.call("open_file", "/etc/passwd", False)
        assert kind == "error" and "is not a file of this library" in message


def test_the_browser_opens_on_the_app_once_it_is_up(tmp_path):
    opened = tmp_path / "browser.txt"
    browser = recorder(tmp_path / "bin", "browser", opened)
    desktop = {"DISPLAY": ":99", "BROWSER": f"{browser} %s"}
    with serving(["--data-dir", tmp_path / "data"], tmp_path, env=desktop) as (url, _, _):
        assert wait_for_file(opened).strip() == url.rstrip("/") + "/"
    opened.unlink()
    no = tmp_path / "no"
    no.mkdir()
    args = ["--data-dir", tmp_path / "data", "--no-browser"]
    with serving(args, no, env=desktop) as (url, _, log):
        time.sleep(3)  # the moment it would have opened has passed
        assert "Running on" in log.read_text()
    assert not opened.exists()


def test_when_the_browser_is_opened():
    display = {"DISPLAY": ":0"}
    assert should_open_browser("127.0.0.1", False, display, "linux")
    assert not should_open_browser("127.0.0.1", True, display, "linux")  # --no-browser
    assert not should_open_browser("0.0.0.0", False, display, "linux")  # another --host
    assert not should_open_browser("192.168.1.5", False, display, "darwin")
    assert not should_open_browser("127.0.0.1", False, {}, "linux")  # no display: a server
    assert should_open_browser("::1", False, {}, "darwin")
