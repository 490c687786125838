"""The web server against hostile clients: it listens on this machine only unless told
otherwise, and refuses oversized uploads with a message. (Path traversal and symlink
escapes through the file route: tests/e2e/test_browser.py and tests/unit/test_ui_handlers.py.)
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.app_process import serving

pytestmark = pytest.mark.slow

# search/web/server.py launches Gradio with max_file_size="64mb", which Gradio reads as 64 MiB.
UPLOAD_LIMIT_BYTES = 64 * 2**20


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a socket listening on `port` (IPv4 and IPv6), from /proc."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("serve")
    with serving(["--library", base / "data", "--model", "tiny-clip"], base) as (url, port, _):
        yield url, port


def test_the_server_listens_on_this_machine_only_by_default(server):
    _, port = server
    addresses = listening_addresses(port)
    # 0100007F is 127.0.0.1 as /proc writes it; an IPv6 loopback would end in 01000000.
    assert addresses and all(
        a in ("0100007F", "00000000000000000000000001000000") for a in addresses
    ), addresses


def test_an_oversized_upload_is_refused_with_a_message(server):
    url, _ = server
    big = b"\x89PNG\r\n\x1a\n" + bytes(UPLOAD_LIMIT_BYTES + 2**20)
    response = httpx.post(
        f"{url}gradio_api/upload", files={"files": ("big.png", big, "image/png")}, timeout=120
    )
    assert response.status_code == 413, (response.status_code, response.text[:300])
    assert "size" in response.text.lower(), response.text[:300]
    small = httpx.post(
        f"{url}gradio_api/upload",
        files={"files": ("small.png", big[:1000], "image/png")},
        timeout=60,
    )
    assert small.status_code == 200, small.text[:300]
