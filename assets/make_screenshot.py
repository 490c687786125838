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
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "assets" / "demo"
OUT = REPO / "assets" / "screenshot.png"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTH, HEIGHT = 1280, 1170  # the query form and two rows of results
WAIT_MS = 120_000  # one UI step, model loading included, on a busy 2-core machine
SERVER_START_S = 240


def app(*args: str, env: dict[str, str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "app.py"), *args], env=env, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def index_demo(data: Path, env: dict[str, str]) -> None:
    command = ["index", str(DEMO), "--data-dir", str(data)]
    proc = app(*command, "--model", "tiny-clip", "--audio-model", "tiny-clap", "--quiet", env=env)
    if proc.wait() != 0:
        raise SystemExit(f"indexing {DEMO} failed (exit status {proc.returncode})")


def wait_until_served(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited ({server.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server did not answer in {SERVER_START_S} s:\n{log.read_text()}")


def photograph(url: str, query: str, out: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
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
    # 256 colours keep the page legible and the file small enough for a README.
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
        base = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k != "TROVE_DATA_DIR"}
        env.update(HF_HUB_OFFLINE="1", GRADIO_TEMP_DIR=str(base / "gradio"))
        data, log = base / "data", base / "server.log"
        index_demo(data, env)
        port = free_port()
        with open(log, "wb") as out:
            server = app(
                *("serve", "--library", str(data), "--port", str(port), "--model", "tiny-clip"),
                env=env,
                stdout=out,
                stderr=out,
            )
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_until_served(url, server, log)
            photograph(url, args.query, args.out)
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
