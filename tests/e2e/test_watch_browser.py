"""The live library in a real browser: a photo copied into a watched folder appears in the
shown results without a reload, and the Library tab says the folder is watched live."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.app_process import run_app, serving
from tests.browser import launch_chromium
from tests.e2e.test_watch_cli import env
from tests.media import make_photo

pytestmark = [pytest.mark.browser, pytest.mark.slow]
WAIT_MS = 60_000


def test_a_copied_photo_joins_the_shown_results(tmp_path: Path):
    from playwright.sync_api import expect, sync_playwright

    photos, data = tmp_path / "photos", tmp_path / "data"
    for i in range(3):
        make_photo(photos / f"old{i}.jpg", i, quality=90)
    index = run_app("index", photos, "--model", "tiny-clip", "--quiet", env=env(), data_dir=data)
    assert index.returncode == 0, index.stderr
    expect.set_options(timeout=WAIT_MS)
    with (
        serving(["--data-dir", data, "--model", "tiny-clip"], tmp_path) as (url, _, _),
        sync_playwright() as pw,
    ):
        browser = launch_chromium(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(WAIT_MS)
            page.goto(url)
            thumbs = page.locator("#results button.thumbnail-item")
            page.locator("#query textarea").fill("a photo")
            page.locator("#search-btn").click()
            expect(thumbs).to_have_count(3)

            shutil.copy(make_photo(tmp_path / "camera" / "new.jpg", 50, quality=90), photos)
            expect(thumbs).to_have_count(4)  # no reload, no click
            expect(page.locator("#results")).to_contain_text("new.jpg")

            page.get_by_role("tab", name="Library").click()
            watch = page.locator("#watch-state")
            expect(watch).to_contain_text("Watching: 1 folder(s) live, 0 polled")
            page.locator("#pause-btn").click()
            expect(watch).to_contain_text("Watching paused")
            expect(page.locator("#pause-btn")).to_have_text("Resume watching")
        finally:
            browser.close()
