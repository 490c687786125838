"""Watching as a user runs it: `python app.py serve` keeps its library current (the issue's
done-when: a photo copied in is found first by `search --image` within seconds, and gone
once deleted), and `python app.py watch` does it headless, polling what it cannot watch."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from search.library import Library
from search.storage.datadir import DataDir
from tests.app_process import REPO, run_app, serving
from tests.media import make_photo

pytestmark = pytest.mark.slow


def env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def in_catalog(data: Path, path: Path) -> bool:
    if not DataDir(data).catalog.exists():
        return False  # the command has not created the library yet
    library = Library(data, create=False)
    try:
        item = library.catalog.item_by_path(str(path))
        return item is not None and item.error is None
    finally:
        library.close()


def wait_for(check, what: str, timeout: float = 60.0) -> float:
    """Seconds until `check()` held; fails after `timeout`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"not within {timeout:.0f} s: {what}"
        time.sleep(0.2)
    return time.monotonic() - started


def search_image(photo: Path, data: Path) -> list[str]:
    import json

    proc = run_app("search", "--image", photo, "--json", "-k", "3", env=env(), data_dir=data)
    assert proc.returncode == 0, proc.stderr
    return [hit["path"] for hit in json.loads(proc.stdout)]


def test_serve_finds_a_copied_photo_and_forgets_a_deleted_one(tmp_path: Path):
    photos, data = tmp_path / "photos", tmp_path / "data"
    for i in range(4):
        make_photo(photos / f"old{i}.jpg", i, quality=90)
    index = run_app("index", photos, "--model", "tiny-clip", "--quiet", env=env(), data_dir=data)
    assert index.returncode == 0, index.stderr
    outside = make_photo(tmp_path / "camera" / "new.jpg", 99, quality=90)
    copied = photos / "new.jpg"
    with serving(["--data-dir", data, "--model", "tiny-clip"], tmp_path) as (_, _, log):
        shutil.copy(outside, copied)
        seconds = wait_for(lambda: in_catalog(data, copied), "the copied photo is indexed")
        assert seconds < 30, log.read_text()
        assert search_image(copied, data)[0] == str(copied)
        copied.unlink()
        wait_for(lambda: not in_catalog(data, copied), "the deleted photo leaves the catalog")
        assert str(copied) not in search_image(outside, data)


def start_watch(*args, data: Path, log: Path, wrap: tuple[str, ...] = ()) -> subprocess.Popen:
    command = [*wrap, sys.executable, str(REPO / "app.py"), "watch", *map(str, args)]
    full = env()
    full["TROVE_DATA_DIR"] = str(data)
    with open(log, "wb") as out:
        return subprocess.Popen(command, cwd=REPO, env=full, stdout=out, stderr=out)


def stop(proc: subprocess.Popen, log: Path) -> str:
    """SIGTERM, as systemd and launchd stop a service: it must end cleanly."""
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, log.read_text()
    return log.read_text()


def test_watch_headless_indexes_new_files_and_stops_on_sigterm(tmp_path: Path):
    photos, data, log = tmp_path / "photos", tmp_path / "data", tmp_path / "watch.log"
    make_photo(photos / "first.jpg", 1, quality=90)
    proc = start_watch(photos, "--model", "tiny-clip", data=data, log=log)
    try:
        wait_for(lambda: in_catalog(data, photos / "first.jpg"), "the first scan", 120)
        assert f"watching {photos} (live)" in log.read_text()
        make_photo(tmp_path / "second.jpg", 2, quality=90)
        shutil.move(tmp_path / "second.jpg", photos / "second.jpg")
        wait_for(lambda: in_catalog(data, photos / "second.jpg"), "a photo moved in")
    finally:
        text = stop(proc, log)
    assert "Stopping" in text


@pytest.mark.skipif(not shutil.which("unshare"), reason="needs util-linux's unshare")
def test_past_the_watch_limit_a_folder_is_polled_and_the_fix_is_said(tmp_path: Path):
    photos, data, log = tmp_path / "photos", tmp_path / "data", tmp_path / "watch.log"
    for i in range(6):
        make_photo(photos / f"album{i}" / "p.jpg", i, quality=90)
    # A user namespace has its own inotify limit (user.max_inotify_watches), which its root
    # may lower: 3 watches for 7 folders, the way a big library meets the system's limit.
    probe = subprocess.run(["unshare", "-Ur", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"user namespaces are not allowed here: {probe.stderr.decode().strip()}")
    script = 'echo 3 > /proc/sys/user/max_inotify_watches && exec "$@"'
    wrap = ("unshare", "-Ur", "sh", "-c", script, "sh")
    proc = start_watch(
        photos, "--model", "tiny-clip", "--poll-interval", "1", data=data, log=log, wrap=wrap
    )
    try:
        wait_for(lambda: in_catalog(data, photos / "album0" / "p.jpg"), "the first scan", 120)
        text = log.read_text()
        assert f"polling {photos} (the OS limit on watches is reached)" in text
        assert "sudo sysctl fs.inotify.max_user_watches=524288" in text
        assert "/etc/sysctl.d/" in text
        make_photo(photos / "album5" / "later.jpg", 9, quality=90)
        wait_for(lambda: in_catalog(data, photos / "album5" / "later.jpg"), "the poll finds it")
    finally:
        stop(proc, log)
