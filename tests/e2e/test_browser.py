"""End-to-end: `python app.py serve` in a subprocess, driven by Debian's Chromium through
Playwright, by gradio_client through the API, and by plain HTTP against the file route.

Each server gets a library the test generates and the tiny-clip preset, offline, on a free
port of 127.0.0.1. Screenshots of each browser step go to the test's tmp_path and are copied
to .screenshots/ at the repository root (ignored by git) for people to look at.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.app_process import serving
from tests.browser import launch_chromium
from tests.contract import API_NAMES
from tests.media import make_photo

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / ".screenshots"
WAIT_MS = 60_000  # one UI step on a busy 2-core machine
# The folder indexed while the test watches: small photos with a large scan (a 16 MP PNG,
# slow to decode: see make_scan) every 16 files, about 6 s of indexing on 2 cores: long
# enough to see several progress updates (the display refreshes every second).
SMALL, SCANS = 500, 30
BIG = SMALL + SCANS
CAPTION = re.compile(r"^image · (?P<score>-?\d\.\d{4}) · (?P<path>photos/.+)$")


@dataclass(frozen=True)
class Served:
    url: str
    port: int
    base: Path
    photos: Path  # the library folder (resolved)
    files: list[Path]  # its photos (resolved), symlink excluded
    outside: Path  # a photo outside the library, which a symlink inside points at
    data: Path
    log: Path


def make_scan(path: Path, side: int, block: int) -> Path:
    """A side x side 1-bit PNG of black and white squares `block` pixels wide: a few kB on
    disk but `side`**2 pixels to decode, like a large scanned page."""
    import struct
    import zlib

    import numpy as np

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    light = np.packbits((np.arange(side) // block) % 2 == 0).tobytes()
    dark = bytes(255 - b for b in light)
    packer = zlib.compressobj(9)
    rows = (b"\x00" + (light if (y // block) % 2 == 0 else dark) for y in range(side))
    idat = b"".join(packer.compress(row) for row in rows) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


def make_library(base: Path) -> tuple[Path, list[Path], Path]:
    """Eight photos (four in 2023/), a symlink to a photo outside, a hidden text file."""
    photos = base / "photos"
    files = [
        make_photo(photos / ("2023" if i >= 4 else "") / f"photo{i:02d}.jpg", 200 + i, quality=90)
        for i in range(8)
    ]
    outside = make_photo(base / "outside.jpg", 299, quality=90)
    os.symlink(outside, photos / "link-out.jpg")
    (photos / ".secret.txt").write_text("not for the web\n")
    return photos.resolve(), [f.resolve() for f in files], outside.resolve()


@contextmanager
def serve(base: Path, env: dict[str, str] | None = None) -> Iterator[Served]:
    """`python app.py serve` on a free port with an empty data folder; stopped afterwards."""
    photos, files, outside = make_library(base)
    data = base / "data"
    args = ["--library", data, "--model", "tiny-clip"]
    with serving(args, base, env) as (url, port, log):
        yield Served(url, port, base, photos, files, outside, data, log)


class Shots:
    """Numbered full-page screenshots under tmp_path, copied to .screenshots/."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        SCREENSHOTS.mkdir(exist_ok=True)
        for old in SCREENSHOTS.glob("*.png"):  # a previous run's, possibly other steps
            old.unlink()
        self.count = 0

    def take(self, page, name: str) -> Path:
        # Thumbnails load lazily: bring each into view so the full-page picture has them all.
        page.evaluate(
            """async () => {
                for (const img of document.querySelectorAll('img')) img.loading = 'eager';
                await Promise.all([...document.images].map(img => img.decode().catch(() => {})));
            }"""
        )
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        shutil.copy(path, SCREENSHOTS / path.name)
        return path


def caption_of(thumb) -> re.Match:
    text = thumb.locator(".caption-label").inner_text().strip()
    match = CAPTION.match(text)
    assert match, f"unexpected caption {text!r}"
    return match


def test_search_in_a_real_browser(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    big = tmp_path / "big"
    for i in range(SMALL):
        make_photo(big / f"b{i:04d}.png", 1000 + i, size=(96, 72))
    for i in range(SCANS):
        make_scan(big / f"b{16 * i + 8:04d}-scan.png", side=4000, block=100 + 20 * i)
    big = big.resolve()
    expect.set_options(timeout=WAIT_MS)
    # Each progress report of an index run waits 0.8 s, so the big folder's run lasts long
    # enough to watch its progress and ETA on any machine (tiny-clip alone ends it in seconds).
    slowed = {"TROVE_TEST_DELAY_AT": "index.progress=0.8"}
    with serve(tmp_path, slowed) as served, sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(WAIT_MS)
            hosts: set[str] = set()
            page.on("request", lambda r: hosts.add(urllib.parse.urlsplit(r.url).netloc))
            shots = Shots(tmp_path / "screenshots")
            query = page.locator("#query textarea")
            status = page.locator("#search-status")
            thumbs = page.locator("#results button.thumbnail-item")
            progress = page.locator("#index-progress")
            summary = page.locator("#library-summary")
            page.goto(served.url)

            # An empty library: the page says how to add a folder, and so does a search.
            expect(status).to_contain_text("library is empty")
            expect(page.locator("#header-status")).to_contain_text("tiny-clip: not loaded yet")
            query.fill("a dog in the snow")
            query.press("Enter")
            expect(status).to_contain_text("library is empty")
            expect(status).to_contain_text("Library tab")
            shots.take(page, "empty-library")

            # Library tab: a bad path is refused with a reason, the real one is added.
            page.get_by_role("tab", name="Library").click()
            expect(summary).to_contain_text("No library yet")
            add_path = page.locator("#add-path textarea")
            add_path.fill(str(served.base / "no-such-folder"))
            page.locator("#add-btn").click()
            expect(page.locator("#library-message")).to_contain_text("does not exist")
            add_path.fill(str(served.photos))
            page.locator("#add-btn").click()
            expect(page.locator("#library-message")).to_contain_text("Added")
            expect(page.locator("#roots")).to_contain_text(str(served.photos))

            # Index from the page; the progress display follows it to the end.
            page.locator("#start-btn").click()
            expect(progress).to_contain_text("Done")
            n = len(served.files) + 1  # and the symlink, which lies inside the folder
            expect(progress).to_contain_text(f"{n} / {n} files (100%)")
            expect(progress).to_contain_text("files/s")
            expect(summary).to_contain_text(f"{n} image")
            expect(page.locator("#start-btn")).to_be_enabled()
            shots.take(page, "library-indexed")

            # A text query fills the gallery, each result captioned with kind, score, path.
            page.get_by_role("tab", name="Search").click()
            query.fill('"a red car" + beach - people')
            page.locator("#search-btn").click()
            expect(thumbs).to_have_count(n)
            expect(status).to_contain_text(f"{n} results")
            scores = [float(caption_of(thumbs.nth(i))["score"]) for i in range(n)]
            assert scores == sorted(scores, reverse=True)
            shots.take(page, "text-query")

            # Filters: only the 2023 folder, newest first.
            page.locator("#filters").get_by_text("Filters and sort").click()
            folder_filter = page.locator("#folder-filter textarea")
            folder_filter.fill(str(served.photos / "2023"))
            page.locator("#sort").get_by_label("date", exact=True).check()
            page.locator("#search-btn").click()
            expect(thumbs).to_have_count(4)
            expect(status).to_contain_text("4 results, newest first")
            for i in range(4):
                assert caption_of(thumbs.nth(i))["path"].startswith("photos/2023/")
            shots.take(page, "filters")
            folder_filter.fill("")
            page.locator("#sort").get_by_label("relevance", exact=True).check()

            # An uploaded image finds its own file first (identical image: score 1.0000).
            page.locator("#clear-btn").click()
            expect(thumbs).to_have_count(0)
            target = served.files[5]
            page.locator("#image-query input[type=file]").set_input_files(str(target))
            first = thumbs.first
            rel_target = target.relative_to(served.photos.parent).as_posix()
            expect(first.locator(".caption-label")).to_have_text(
                re.compile(rf"· 1\.0000 · {re.escape(rel_target)}$")
            )
            shots.take(page, "image-query")

            # Selecting another result opens its detail panel: image, metadata, original.
            second = thumbs.nth(1)
            chosen = served.photos.parent / caption_of(second)["path"]
            second.click()
            detail = page.locator("#detail")
            expect(detail).to_be_visible()
            meta = page.locator("#detail-meta")
            expect(meta).to_contain_text(str(chosen))
            expect(meta).to_contain_text("320 × 240")
            expect(meta).to_contain_text("Modified")
            picture = page.locator("#detail-image img")
            expect(picture).to_be_visible()
            page.wait_for_function(
                "() => document.querySelector('#detail-image img')?.naturalWidth > 0"
            )
            original = meta.locator("a", has_text="Open the original").get_attribute("href")
            assert page.request.get(urllib.parse.urljoin(served.url, original)).body() == (
                chosen.read_bytes()
            )
            shots.take(page, "detail")

            # Find similar: the selected item becomes the query, and comes first.
            page.locator("#find-similar").click()
            expect(page.locator("#similar-to textarea")).to_have_value(str(chosen))
            rel_chosen = chosen.relative_to(served.photos.parent).as_posix()
            expect(first.locator(".caption-label")).to_have_text(
                re.compile(rf"· 1\.0000 · {re.escape(rel_chosen)}$")
            )
            expect(query).to_have_value("")
            shots.take(page, "find-similar")

            # A bigger folder takes long enough to watch: done/total, speed, ETA, the file.
            page.get_by_role("tab", name="Library").click()
            add_path.fill(str(big))
            page.locator("#add-btn").click()
            expect(page.locator("#library-message")).to_contain_text("Added")
            page.locator("#start-btn").click()
            expect(progress).to_contain_text("Now: ")
            expect(progress).to_contain_text(re.compile(rf"\d+ / {BIG} files \(\d+%\)"))
            expect(progress).to_contain_text(re.compile(r"[\d.]+ files/s"))
            expect(progress).to_contain_text(re.compile(r"about .+ left"))
            expect(page.locator("#stop-btn")).to_be_enabled()
            expect(page.locator("#start-btn")).to_be_disabled()
            shots.take(page, "indexing-progress")

            # A reload finds the run (still going, or finished meanwhile), kept on the server.
            page.reload()
            page.get_by_role("tab", name="Library").click()
            expect(progress).to_contain_text(re.compile(rf"(Indexing|Done)[\s\S]* / {BIG} files"))
            shots.take(page, "reload-during-indexing")
            expect(progress).to_contain_text(f"{BIG} / {BIG} files (100%)")
            expect(progress).to_contain_text("Done")
            expect(summary).to_contain_text(f"{n + BIG} image")
            expect(page.locator("#roots")).to_contain_text(str(served.photos))
            shots.take(page, "after-reload")

            # Paging: a page of results, then more.
            page.get_by_role("tab", name="Search").click()
            page.locator("#clear-btn").click()
            # Clear's update arrives asynchronously: typing before it lands would be wiped.
            expect(thumbs).to_have_count(0)
            expect(query).to_have_value("")
            query.fill("a small green square")
            query.press("Enter")
            expect(thumbs).to_have_count(24)
            page.locator("#more-btn").click()
            expect(thumbs).to_have_count(48)
            expect(status).to_contain_text("Results 25-48")
            shots.take(page, "more-results")

            page.get_by_role("tab", name="Models").click()
            expect(page.locator("#models-table")).to_contain_text("tiny-clip")
            expect(page.locator("#bridge-note")).to_contain_text("CLAP")
            shots.take(page, "models")

            assert hosts == {f"127.0.0.1:{served.port}"}, "the page fetched from elsewhere"
        finally:
            browser.close()


@pytest.fixture(scope="module")
def indexed(tmp_path_factory) -> Iterator[Served]:
    """A server whose library was added and indexed through the API."""
    from gradio_client import Client

    with serve(tmp_path_factory.mktemp("api")) as served:
        client = Client(served.url, verbose=False)
        client.predict(str(served.photos), api_name="/add_root")
        client.predict(api_name="/start_indexing")
        deadline = time.monotonic() + 120
        while client.predict(api_name="/index_status")["running"]:
            assert time.monotonic() < deadline, "indexing did not finish in 120 s"
            time.sleep(0.3)
        yield served


def test_api_endpoints(indexed: Served) -> None:
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(indexed.url, verbose=False)
    api = client.view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == {f"/{name}" for name in API_NAMES}
    assert not api["unnamed_endpoints"]
    search_params = [p["parameter_name"] for p in api["named_endpoints"]["/search"]["parameters"]]
    assert search_params == [
        "query", "image", "similar_to", "kinds", "folder", "after", "before", "min_score",
        "sort", "k", "offset", "sound", "video", "min_duration", "max_duration",
    ]  # fmt: skip

    n = len(indexed.files) + 1
    status = client.predict(api_name="/index_status")
    assert (status["state"], status["done"], status["total"]) == ("done", n, n)
    library = client.predict(api_name="/library_status")
    assert library["counts"] == {"image": n}
    assert library["model"] == "tiny-clip"
    assert [r["folder"] for r in library["roots"]] == [str(indexed.photos)]

    first = client.predict(query="a beach", k=4, api_name="/search")
    assert len(first["results"]) == 4 and first["has_more"] is True
    assert set(first["results"][0]) >= {"file", "kind", "score", "modified", "url"}
    rest = client.predict(query="a beach", k=10, offset=4, api_name="/search")
    assert rest["has_more"] is False
    paths = [r["file"] for r in first["results"] + rest["results"]]
    assert len(paths) == n and len(set(paths)) == n

    target = indexed.files[3]
    by_image = client.predict(image=handle_file(str(target)), k=3, api_name="/search")
    assert by_image["results"][0]["file"] == str(target)
    assert by_image["results"][0]["score"] > 0.999
    similar = client.predict(similar_to=str(indexed.files[6]), k=3, api_name="/search")
    assert similar["results"][0]["file"] == str(indexed.files[6])
    in_2023 = client.predict(query="x", folder=str(indexed.photos / "2023"), api_name="/search")
    assert sorted(r["file"] for r in in_2023["results"]) == sorted(map(str, indexed.files[4:]))
    by_date = client.predict(query="x", sort="date", kinds=["image"], api_name="/search")
    dates = [r["modified"] for r in by_date["results"]]
    assert dates == sorted(dates, reverse=True)

    detail = client.predict(str(indexed.files[0]), api_name="/item_detail")
    assert (detail["file"], detail["width"], detail["height"]) == (
        str(indexed.files[0]),
        320,
        240,
    )
    assert detail["size"] == indexed.files[0].stat().st_size

    models = {m["name"]: m for m in client.predict(api_name="/list_models")}
    assert models["tiny-clip"]["in_use"] and models["tiny-clip"]["weights_here"]

    with pytest.raises(AppError, match="does not exist"):
        client.predict(str(indexed.base / "nope"), api_name="/add_root")
    with pytest.raises(AppError, match="YYYY-MM-DD"):
        client.predict(query="x", after="yesterday", api_name="/search")
    with pytest.raises(AppError, match="not a file of this library"):
        client.predict(str(indexed.outside), api_name="/item_detail")
    # A client naming a server path as its query image, instead of uploading one, is
    # refused (by Gradio's upload check, and by Trove's own after it).
    stream = _search_with_a_file_never_uploaded(indexed, str(target))
    assert "event: error" in stream and "results" not in stream

    # A second folder: added, indexed, then removed again.
    more = indexed.base / "more"
    make_photo(more / "extra.jpg", 777, quality=90)
    added = client.predict(str(more), ["*.jpg"], [], api_name="/add_root")
    assert "Added" in added["message"]
    assert client.predict(api_name="/start_indexing")["running"] is True
    deadline = time.monotonic() + 120
    while (status := client.predict(api_name="/index_status"))["running"]:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert (status["state"], status["total"]) == ("done", 1)
    assert client.predict(api_name="/library_status")["counts"] == {"image": n + 1}
    removed = client.predict(str(more.resolve()), api_name="/remove_root")
    assert "1 files left the library" in removed["message"]
    assert removed["counts"] == {"image": n}
    assert client.predict(api_name="/stop_indexing")["running"] is False


def _search_with_a_file_never_uploaded(served: Served, path: str) -> str:
    """Call /search over plain HTTP with a FileData naming a server path that was never
    uploaded, as a hostile client would (gradio_client always uploads); returns the
    event stream."""
    image = {"path": path, "meta": {"_type": "gradio.FileData"}}
    payload = {
        "data": ["", image, "", None, "", "", "", None, "relevance", 24, 0, None, None, None, None]
    }
    call = httpx.post(f"{served.url}gradio_api/call/search", json=payload, timeout=30)
    call.raise_for_status()
    event = call.json()["event_id"]
    return httpx.get(f"{served.url}gradio_api/call/search/{event}", timeout=60).text


def test_file_route_serves_library_files_and_refuses_the_rest(indexed: Served) -> None:
    def get(path: str) -> httpx.Response:
        return httpx.get(f"{indexed.url}gradio_api/file={path}", timeout=30)

    library_file = indexed.files[2]
    served = get(str(library_file))
    assert served.status_code == 200
    assert served.content == library_file.read_bytes()
    # What the gallery shows: a thumbnail from the cache, made when a file's detail is shown.
    from gradio_client import Client

    Client(indexed.url, verbose=False).predict(str(library_file), api_name="/item_detail")
    thumbs = sorted((indexed.data / "thumbnails").rglob("*.jpg"))
    assert thumbs, "showing a file's detail made no thumbnail"
    assert get(str(thumbs[0])).status_code == 200

    photos = indexed.photos
    refused = {
        "parent folder": f"{photos}/../outside.jpg",
        "parent, encoded": f"{photos}/%2e%2e/outside.jpg",
        "deeper parent": f"{photos}/2023/../../outside.jpg",
        "absolute outside": str(indexed.outside),
        "symlink pointing out": str(photos / "link-out.jpg"),
        "hidden file inside": str(photos / ".secret.txt"),
        "catalog": str(indexed.data / "catalog.sqlite3"),
        "system file": "/etc/passwd",
        "a URL": "https://example.com/x.jpg",
    }
    for what, path in refused.items():
        response = get(path)
        assert response.status_code == 403, f"{what}: {path} -> {response.status_code}"
        assert b"not for the web" not in response.content
    legacy = httpx.get(f"{indexed.url}gradio_api/file/{indexed.outside}", timeout=30)
    assert legacy.status_code in (403, 404)


def index_mixed_library(base: Path) -> Path:
    """Two photos, two sounds, a video with a tone from 6 s to 10 s and two documents,
    indexed into base/data (the folder `serve` serves) with the tiny CLIP, CLAP and text
    models; returns the library folder."""
    from indexers.pipeline import Indexer
    from search.library import Library
    from search.models.encoders import Encoders
    from search.storage.catalog import Root
    from tests.media_audio import chirp, tone, write_audio
    from tests.media_docs import make_text_pdf
    from tests.media_video import make_video

    root = base / "mixed"
    make_photo(root / "beach.jpg", 10, quality=90)
    make_photo(root / "forest.jpg", 11, quality=90)
    write_audio(root / "sounds" / "bell.wav", tone(660, 4.0), tags={"title": "Bell"})
    write_audio(root / "sounds" / "birds.flac", chirp(2000, 5000, 6.0))
    make_video(root / "videos" / "late-tone.mp4", duration_s=12.0, fps=2, tone=(6.0, 10.0))
    (root / "docs").mkdir()
    (root / "docs" / "cat-notes.md").write_text(
        "# Cat notes\n\nOur cat Miso sleeps on the windowsill all afternoon and purrs."
    )
    make_text_pdf(
        root / "docs" / "harbour.pdf",
        ["The harbour at dawn: fishing boats come back, gulls circle.", "Page two."],
        title="Harbour notes",
    )
    root = root.resolve()
    library = Library(base / "data")
    encoders = Encoders("tiny-clip", "tiny-clap", "tiny-text")
    summary = Indexer(library, encoders, batch_size=4, progress=False).run(
        [Root(str(root), (), ())]
    )
    assert not summary.failed, summary.failed
    library.close()
    return root


def thumb_with(thumbs, pattern: str):
    """The gallery item whose caption matches `pattern` (a regular expression)."""
    for i in range(thumbs.count()):
        label = thumbs.nth(i).locator(".caption-label").inner_text().strip()
        if re.search(pattern, label):
            return thumbs.nth(i), label
    raise AssertionError(f"no result captioned like {pattern!r}")


def test_a_mixed_library_in_a_real_browser(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    root = index_mixed_library(tmp_path)
    expect.set_options(timeout=WAIT_MS)
    with serve(tmp_path) as served, sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(WAIT_MS)
            shots = Shots(tmp_path / "screenshots")
            query = page.locator("#query textarea")
            status = page.locator("#search-status")
            thumbs = page.locator("#results button.thumbnail-item")
            meta = page.locator("#detail-meta")
            page.goto(served.url)

            # Words find every kind: each shown with its picture, sounds and videos with
            # their moment.
            query.fill("a bell ringing in the harbour")
            query.press("Enter")
            expect(thumbs).to_have_count(7)
            expect(status).to_contain_text("7 results")
            captions = [thumbs.nth(i).locator(".caption-label").inner_text() for i in range(7)]
            assert {c.split(" · ")[0] for c in captions} == {"image", "audio", "video", "document"}
            page.wait_for_function(
                "() => [...document.querySelectorAll('#results img')]"
                ".every(img => img.complete && img.naturalWidth > 0)"
            )
            shots.take(page, "mixed-results")

            # A sound: its player and what the catalog knows of it.
            # Every window of a sound is timed: its caption and panel show the moment.
            sound, _ = thumb_with(
                thumbs, r"^audio · -?\d\.\d{4} · \d:\d\d(–\d:\d\d)? · mixed/sounds/bell\.wav$"
            )
            sound.click()
            expect(page.locator("#detail-audio")).to_be_visible()
            expect(page.locator("#detail-video")).to_be_hidden()
            expect(page.locator("#detail-image")).to_be_hidden()
            expect(meta).to_contain_text("bell.wav")
            expect(meta).to_contain_text("Duration 0:04")
            expect(meta).to_contain_text("Sample rate 44.1 kHz")
            expect(meta).to_contain_text("Title Bell")
            expect(meta).to_contain_text("Moment")
            player = page.locator("#detail-audio")
            expect(player.locator("audio, .waveform-container, button").first).to_be_attached()
            shots.take(page, "sound-detail")

            # A video: its still in the gallery, a player and the moment in the panel.
            video, _ = thumb_with(
                thumbs, r"^video · -?\d\.\d{4} · \d:\d\d(–\d:\d\d)? · mixed/videos/late-tone\.mp4$"
            )
            still = video.locator("img").get_attribute("src")
            assert "thumbnails" in urllib.parse.unquote(still)
            assert page.request.get(urllib.parse.urljoin(served.url, still)).ok
            video.click()
            expect(page.locator("#detail-video")).to_be_visible()
            expect(page.locator("#detail-audio")).to_be_hidden()
            expect(page.locator("#detail-video video")).to_be_attached()
            expect(meta).to_contain_text("Moment")
            expect(meta).to_contain_text("Codec h264")
            link = meta.locator("a", has_text="Open the original").get_attribute("href")
            assert "#t=" in link
            original = page.request.get(urllib.parse.urljoin(served.url, link.split("#")[0]))
            assert original.body() == (root / "videos" / "late-tone.mp4").read_bytes()
            page.wait_for_function(
                "() => document.querySelector('#detail-video video')?.readyState >= 1"
            )
            shots.take(page, "video-detail")

            # A document: its card, passage and pages.
            document, _ = thumb_with(thumbs, r"^document · .* · mixed/docs/harbour\.pdf$")
            document.click()
            expect(page.locator("#detail-image")).to_be_visible()
            expect(page.locator("#detail-video")).to_be_hidden()
            expect(meta).to_contain_text("Pages 2")
            expect(page.locator("#find-similar")).to_be_hidden()
            shots.take(page, "document-detail")

            # A dropped sound is the query: the same sound comes first.
            page.locator("#clear-btn").click()
            expect(thumbs).to_have_count(0)
            page.locator("#file-query input[type=file]").set_input_files(
                str(root / "sounds" / "bell.wav")
            )
            expect(thumbs.first.locator(".caption-label")).to_have_text(
                re.compile(r"^audio · 1\.0000 · .*mixed/sounds/bell\.wav$")
            )
            shots.take(page, "sound-query")

            # Filters: videos and sounds of at least 5 s.
            page.locator("#clear-btn").click()
            expect(thumbs).to_have_count(0)
            page.locator("#filters").get_by_text("Filters and sort").click()
            page.locator("#kinds").get_by_label("audio", exact=True).check()
            page.locator("#kinds").get_by_label("video", exact=True).check()
            page.locator("#min-duration input").fill("5")
            query.fill("birds")
            query.press("Enter")
            expect(status).to_contain_text("2 results")
            expect(thumbs).to_have_count(2)
            names = {
                thumbs.nth(i).locator(".caption-label").inner_text().rsplit("/", 1)[1]
                for i in range(2)
            }
            assert names == {"birds.flac", "late-tone.mp4"}
            shots.take(page, "duration-filter")

            # The API takes a sound and the duration range too.
            from gradio_client import Client, handle_file

            client = Client(served.url, verbose=False)
            by_sound = client.predict(
                sound=handle_file(str(root / "sounds" / "birds.flac")), api_name="/search"
            )
            assert by_sound["results"][0]["file"] == str(root / "sounds" / "birds.flac")
            long_ones = client.predict(query="x", min_duration=5.0, api_name="/search")
            assert {Path(r["file"]).name for r in long_ones["results"]} == names
            timed = next(r for r in long_ones["results"] if r["kind"] == "video")
            # Its frames are timed: the hit has its moment, and the still of that moment.
            assert timed["start"] < timed["end"] and timed["thumbnail"], timed
        finally:
            browser.close()


# What the transcript test's memo says, a second apart: two neighbours are more words than
# one passage of speech holds (search/segments.py SPEECH_CHUNK_WORDS), so the dentist's
# sentence is a moment of its own, at about 10-14 s.
MEMO_LINES = (
    "Remember to water the tomatoes in the greenhouse this evening.",
    "The hardware shop closes early on Saturday, so buy the paint and the brushes on Friday.",
    "Your appointment with the dentist is moved to Thursday morning.",
)


def index_spoken_library(base: Path) -> Path:
    """A voice memo of three sentences (MEMO_LINES), and the demo's birthday video (two
    voices from 1 s and 5.6 s), transcribed by the real whisper-tiny-en into base/data. The
    text model is the real all-MiniLM-L6-v2 (its weights come with its package): with an
    untrained one every passage would look alike and a hit's moment span the whole file.
    Tiny CLIP and CLAP do the rest. Returns the library folder."""
    import numpy as np
    import soundfile as sf
    import soxr

    from indexers.pipeline import Indexer
    from search.library import Library
    from search.models.encoders import Encoders
    from search.segments import SegmentSettings
    from search.storage.catalog import Root
    from tests.media_audio import RATE, silence, speech, write_audio

    root = base / "spoken"
    memo = [silence(0.5)]
    for text in MEMO_LINES:
        said, rate = sf.read(speech(text, base / "said.wav"), dtype="float32")
        memo += [soxr.resample(said, rate, RATE), silence(1.0)]
    write_audio(root / "memos" / "monday.wav", np.concatenate(memo))
    video = REPO / "assets" / "demo" / "videos" / "grandma-birthday.mp4"
    shutil.copy(video, root / "grandma-birthday.mp4")
    root = root.resolve()
    library = Library(base / "data")
    summary = Indexer(
        library,
        Encoders("tiny-clip", "tiny-clap"),
        progress=False,
        settings=SegmentSettings(speech=True),
    ).run([Root(str(root), (), ())])
    assert not summary.failed and summary.transcribed == 2, summary.report()
    library.close()
    return root


def test_a_transcript_in_a_real_browser(tmp_path: Path) -> None:
    """The detail panel of a spoken hit shows what was said, line by line with its time; the
    hit's lines are marked; clicking a line plays the sound or the video from there."""
    from playwright.sync_api import expect, sync_playwright

    index_spoken_library(tmp_path)
    expect.set_options(timeout=WAIT_MS)
    with serve(tmp_path) as served, sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(WAIT_MS)
            shots = Shots(tmp_path / "screenshots")
            query = page.locator("#query textarea")
            thumbs = page.locator("#results button.thumbnail-item")
            lines = page.locator("#detail-transcript .transcript-line")
            page.goto(served.url)

            # Words said in the memo's second sentence: the hit is that sentence's moment.
            query.fill('"dentist"')
            query.press("Enter")
            expect(thumbs.filter(has_text="monday.wav")).to_have_count(1)
            memo, label = thumb_with(thumbs, r"^audio · .* · spoken/memos/monday\.wav$")
            at = re.search(r" · (\d+):(\d\d)(?:–(\d+):(\d\d))? · ", label)
            assert at and 9 <= int(at[1]) * 60 + int(at[2]) <= 11, label
            memo.click()
            expect(page.locator("#detail-audio")).to_be_visible()
            expect(lines).to_have_count(3)
            expect(lines.nth(0)).to_contain_text("0:00")
            expect(lines.nth(0)).to_contain_text("greenhouse")
            expect(lines.nth(2)).to_contain_text("dentist")
            hit = re.compile(r"\bhit\b")
            expect(lines.nth(2)).to_have_class(hit)
            expect(lines.nth(0)).not_to_have_class(hit)
            expect(lines.nth(1)).not_to_have_class(hit)
            shots.take(page, "transcript-sound")

            # A line plays the sound from its time.
            start = float(lines.nth(2).get_attribute("data-start"))
            assert 9.0 <= start <= 11.5, start
            lines.nth(2).click()
            page.wait_for_function(
                """(start) => {
                    const box = document.querySelector('#detail-audio');
                    let media = box.querySelector('audio');
                    for (const node of box.querySelectorAll('*'))
                        media = media || node.shadowRoot?.querySelector('audio');
                    return media && !media.paused && media.currentTime >= start
                        && media.currentTime < start + 3;
                }""",
                arg=start,
            )
            expect(lines.nth(2)).to_have_class(re.compile(r"\bplaying\b"))

            # A video: its sound track's lines, the hit's marked; a line seeks the video.
            page.locator("#clear-btn").click()
            expect(thumbs).to_have_count(0)
            query.fill('"village hall"')
            query.press("Enter")
            expect(thumbs.filter(has_text="grandma-birthday.mp4")).to_have_count(1)
            video, _ = thumb_with(thumbs, r"^video · .* · spoken/grandma-birthday\.mp4$")
            video.click()
            expect(page.locator("#detail-video")).to_be_visible()
            expect(lines.first).to_contain_text("Grandma")
            expect(lines.filter(has_text="village hall")).to_have_class(hit)
            expect(lines.filter(has_text="stepped on")).not_to_have_class(hit)
            first = float(lines.first.get_attribute("data-start"))
            assert first < 2.0, first
            lines.first.click()
            page.wait_for_function(
                """(start) => {
                    const media = document.querySelector('#detail-video video');
                    return media && !media.paused && media.currentTime >= start
                        && media.currentTime < start + 3;
                }""",
                arg=first,
            )
            shots.take(page, "transcript-video")
        finally:
            browser.close()
