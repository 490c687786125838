#!/usr/bin/env python3
"""Take the README's picture of the web UI: the demo library searched in a real browser.

Indexes `assets/demo/` into a temporary data folder with the untrained test models
(`tiny-clip`, `tiny-clap`: no weights, no network), serves it with `python app.py serve`,
drives Debian's Chromium through Playwright to type a query, and saves the page as a PNG.
The tiny models' rankings mean nothing: the picture shows the interface, not search quality.

    python assets/make_screenshot.py                    # writes assets/screenshot.png
    python assets/make_screenshot.py --query "a cat" --out /tmp/ui.png

Needs /usr/bin/chromium (the Debian package the browser tests use; never
`playwright install`). About two minutes on two cores, most of it indexing.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script: the tests' helpers start the app and browser

from tests.app_process import run_app, serving  # noqa: E402
from tests.browser import CHROMIUM, launch_chromium  # noqa: E402

DEMO = REPO / "assets" / "demo"
OUT = REPO / "assets" / "screenshot.png"
WIDTH, HEIGHT = 1280, 1170  # the query form and two rows of results
WAIT_MS = 120_000  # one UI step, model loading included, on a busy 2-core machine


def photograph(url: str, query: str, out: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.set_default_timeout(WAIT_MS)
            page.goto(url)
            page.locator("#query textarea").fill(query)
            page.locator("#search-btn").click()
            expect(page.locator("#results button.thumbnail-item").first).to_be_visible()
            expect(page.locator("#search-status")).not_to_contain_text("Searching")
            # Thumbnails load lazily: decode every one before the picture is taken.
            page.evaluate(
                """async () => {
                    for (const img of document.querySelectorAll('img')) img.loading = 'eager';
                    await Promise.all([...document.images].map(i => i.decode().catch(() => {})));
                }"""
            )
            png = page.screenshot()
        finally:
            browser.close()
    # 256 colours keep the page legible and the file small.
    picture = Image.open(io.BytesIO(png)).convert("RGB").quantize(256, Image.Quantize.MEDIANCUT)
    out.parent.mkdir(parents=True, exist_ok=True)
    picture.save(out, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--query", default="a photo of the night sky")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).is_file():
        raise SystemExit(f"{CHROMIUM} is missing: install Debian's chromium package")
    with tempfile.TemporaryDirectory(prefix="trove-screenshot-") as tmp:
        base, models = Path(tmp), ["--model", "tiny-clip", "--audio-model", "tiny-clap"]
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        indexed = run_app(
            "index", DEMO, *models, "--quiet", env=env, data_dir=base / "data", timeout=900
        )
        if indexed.returncode != 0:
            raise SystemExit(f"indexing {DEMO} failed:\n{indexed.stderr}")
        with serving(["--library", base / "data", "--model", "tiny-clip"], base) as (url, _, _):
            photograph(url, args.query, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
