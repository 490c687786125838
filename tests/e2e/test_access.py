"""Who may change a served library, through the HTTP API.

Trove's app (search.web.server.create_app, wired as `serve` runs it) is hosted in process and
called over HTTP by clients at any address: the ASGI scope carries the client's address as a
server would put it there, so a client on another machine (203.0.113.7, a documentation address) is
one line away. Library changes (folders, index runs), through the API endpoints and the UI's
events alike, answer only a client on this machine or a logged-in one; a forwarded-for header
never makes a client local. A real server on loopback (`serve`) shows the same over TCP, and
`python app.py serve` refuses to listen beyond this machine without a login.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import anyio.from_thread
import gradio as gr
import httpx
import pytest
from fastapi import FastAPI

from search.web.jobs import DONE
from search.web.server import create_app, serve
from search.web.service import TroveUI
from tests.media import make_photo

REMOTE = "203.0.113.7"  # TEST-NET-3: never this machine
LOOPBACK = "127.0.0.1"
LOGIN = ("ann", "s3cret")
REFUSED = "taken only from this machine or a logged-in user"
# What every refusal tells the user to do.
HINTS = ("--auth user:password", "TROVE_AUTH")


class Served:
    """Trove's app in process, with its queue running on one event loop, and a way in for
    clients at any address."""

    def __init__(self, ui: TroveUI, demo: gr.Blocks, app: FastAPI, portal) -> None:
        self.ui, self.demo, self.app, self.portal = ui, demo, app, portal

    def client(self, host: str, headers: dict[str, str] | None = None) -> Client:
        return Client(self, host, headers or {})

    def event_index(self, handler: str) -> int:
        """The id of the first UI event that runs the handler called `handler`."""
        return next(
            fn._id for fn in self.demo.fns.values() if getattr(fn.fn, "__name__", "") == handler
        )


class Client:
    """An HTTP client at `host` (its address as the server sees it), keeping its cookies."""

    def __init__(self, served: Served, host: str, headers: dict[str, str]) -> None:
        self.served, self.host, self.headers = served, host, headers
        self.cookies = httpx.Cookies()
        self.session = f"page-at-{host}"  # one open page

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.served.app, client=(self.host, 50123))
            async with httpx.AsyncClient(
                transport=transport,
                base_url="http://trove.test",
                headers=self.headers,
                cookies=self.cookies,
            ) as http:
                response = await http.request(method, url, **kwargs)
                self.cookies.update(http.cookies)
                return response

        return self.served.portal.call(send)

    def login(self, user: str, password: str) -> None:
        response = self.request("POST", "/login", data={"username": user, "password": password})
        assert response.status_code == 200, response.text

    def call(self, api_name: str, *data: Any) -> tuple[str, Any]:
        """Call a named API endpoint the way gradio_client does (POST, then read the event
        stream); returns ("complete", the value) or ("error", the message)."""
        joined = self.request("POST", f"/gradio_api/call/{api_name}", json={"data": list(data)})
        assert joined.status_code == 200, joined.text
        event_id = joined.json()["event_id"]
        stream = self.request("GET", f"/gradio_api/call/{api_name}/{event_id}").text
        kind, payload = _last_event(stream)
        if kind == "complete":
            return kind, payload[0]
        return kind, payload["error"]

    def ui_event(self, handler: str, *data: Any) -> list:
        """Run a UI event the way the open page does (join the queue in its session, read
        the session's stream); returns its outputs."""
        body = {
            "data": list(data),
            "fn_index": self.served.event_index(handler),
            "session_hash": self.session,
            "event_data": None,
            "trigger_id": None,
        }
        joined = self.request("POST", "/gradio_api/queue/join", json=body)
        assert joined.status_code == 200, joined.text
        params = {"session_hash": self.session}
        stream = self.request("GET", "/gradio_api/queue/data", params=params)
        lines = stream.text.splitlines()
        messages = [json.loads(line[5:]) for line in lines if line.startswith("data:")]
        done = [m for m in messages if m["msg"] == "process_completed"]
        assert len(done) == 1 and done[0]["success"], messages
        return done[0]["output"]["data"]


def search_data(query: str, k: int) -> list:
    """/search's arguments for a text query (a raw call passes every one of them)."""
    # query, image, similar_to, kinds, folder, after, before, min_score, sort, k, offset,
    # sound, video, min_duration, max_duration
    return [query, None, "", [], "", "", "", None, "relevance", k, 0, None, None, None, None]


def _last_event(stream: str) -> tuple[str, Any]:
    events = [block for block in stream.split("\n\n") if block.startswith("event:")]
    kind_line, data_line = events[-1].splitlines()[:2]
    return kind_line.removeprefix("event:").strip(), json.loads(data_line.removeprefix("data:"))


@contextmanager
def in_process(data_dir: Path, auth: tuple[str, str] | None = None) -> Iterator[Served]:
    """Trove's app over `data_dir`, hosted as `serve` hosts it, its queue started on the
    event loop every client's requests run on."""
    ui = TroveUI(data_dir, model="tiny-clip")
    demo, options = create_app(ui)
    app = gr.mount_gradio_app(FastAPI(), demo, "/", auth=auth, **options)
    with ExitStack() as stack:
        stack.callback(ui.close)
        stack.callback(lambda: ui.jobs.wait(timeout=120))
        portal = stack.enter_context(anyio.from_thread.start_blocking_portal())
        stack.enter_context(portal.wrap_async_context_manager(app.router.lifespan_context(app)))
        stack.callback(lambda: demo.close(verbose=False))
        yield Served(ui, demo, app, portal)


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    """A folder nobody added to the library: a photo and a text file with a password."""
    folder = tmp_path / "home" / "ann"
    make_photo(folder / "passport.jpg", 11, quality=90)
    (folder / "passwords.txt").write_text("bank: hunter2\n")
    return folder


@pytest.fixture
def served(tmp_path: Path, photo_library: Path) -> Iterator[Served]:
    """Trove without a login, its library (the photos) added and indexed from loopback."""
    with in_process(tmp_path / "data") as trove:
        local = trove.client(LOOPBACK)
        assert local.call("add_root", str(photo_library), [], [])[0] == "complete"
        assert local.call("start_indexing", "")[0] == "complete"
        assert trove.ui.jobs.wait(timeout=120).state == DONE
        yield trove


def library_state(ui: TroveUI) -> dict:
    """What a library change would change: its folders, files, model and last run."""
    status = ui.library_status()
    run = ui.index_status()
    return {
        "roots": status["roots"],
        "counts": status["counts"],
        "model": status["model"],
        "run": (run.state, run.started_at, run.finished_at),
    }


def assert_refused(outcome: tuple[str, Any], source: str) -> None:
    kind, message = outcome
    assert kind == "error", outcome
    assert REFUSED in message and f"came {source}" in message, message
    for hint in HINTS:
        assert hint in message, message


def test_a_client_on_another_machine_cannot_change_the_library(served, photo_library, secrets):
    before = library_state(served.ui)
    remote = served.client(REMOTE)

    assert_refused(remote.call("add_root", str(secrets), [], []), f"from {REMOTE}")
    assert_refused(remote.call("start_indexing", ""), f"from {REMOTE}")
    assert_refused(remote.call("start_indexing", "tiny-clip"), f"from {REMOTE}")
    assert_refused(remote.call("stop_indexing"), f"from {REMOTE}")
    assert_refused(remote.call("remove_root", str(photo_library)), f"from {REMOTE}")

    assert library_state(served.ui) == before
    assert served.ui.roots() == [str(photo_library.resolve())]
    # So the folder it asked for is not served either.
    for name in ("passwords.txt", "passport.jpg"):
        got = remote.request("GET", f"/gradio_api/file={secrets / name}")
        assert got.status_code == 403, got.text
    # Reading stays open to whoever reaches the server.
    kind, page = remote.call("search", *search_data("a photo", 3))
    assert kind == "complete" and len(page["results"]) == 3, page


def test_the_ui_events_refuse_it_too(served, photo_library, secrets):
    before = library_state(served.ui)
    remote = served.client(REMOTE)
    # The page says so as it opens, before a change is tried.
    assert REFUSED in remote.ui_event("on_load")[9]
    assert served.client(LOOPBACK).ui_event("on_load")[9] == {"__type__": "update"}  # as it is

    outputs = [
        remote.ui_event("add_folder", str(secrets), "", ""),
        remote.ui_event("remove_folder", str(photo_library)),
        remote.ui_event("start", "tiny-clip"),
        remote.ui_event("stop"),
    ]
    for output in outputs:
        message = output[-1]  # the Library tab's message line
        assert message.startswith("**Error:**") and REFUSED in message, message
        assert all(hint in message for hint in HINTS), message
    assert library_state(served.ui) == before

    # The same event from a page on this machine adds the folder.
    local = served.client(LOOPBACK)
    local.ui_event("on_load")
    assert local.ui_event("add_folder", str(secrets), "", "")[-1].startswith("Added `")
    both = sorted(str(folder.resolve()) for folder in (photo_library, secrets))
    assert sorted(served.ui.roots()) == both


@pytest.mark.parametrize(
    "peer, headers, source",
    [
        (REMOTE, {"X-Forwarded-For": LOOPBACK}, "through a proxy"),
        (REMOTE, {"X-Forwarded-For": f"{LOOPBACK}, {LOOPBACK}"}, "through a proxy"),
        (REMOTE, {"Forwarded": f"for={LOOPBACK}"}, "through a proxy"),
        (REMOTE, {"X-Real-IP": LOOPBACK}, "through a proxy"),
        # A proxy on this machine relays other machines' requests from a loopback address.
        (LOOPBACK, {"X-Forwarded-For": REMOTE}, "through a proxy"),
        (LOOPBACK, {"X-Real-IP": REMOTE}, "through a proxy"),
        (LOOPBACK, {"Forwarded": f"for={REMOTE};proto=https"}, "through a proxy"),
        ("::ffff:203.0.113.7", {}, "from ::ffff:203.0.113.7"),
        ("192.0.2.2", {}, "from 192.0.2.2"),
    ],
)
def test_a_forwarded_for_header_never_makes_a_client_local(
    tmp_path, secrets, peer, headers, source
):
    with in_process(tmp_path / "data") as trove:
        before = library_state(trove.ui)
        client = trove.client(peer, headers)
        assert_refused(client.call("add_root", str(secrets), [], []), source)
        assert_refused(client.call("start_indexing", ""), source)
        assert library_state(trove.ui) == before


@pytest.mark.parametrize("peer", [LOOPBACK, "127.0.0.2", "::1", "::ffff:127.0.0.1"])
def test_this_machine_manages_the_library(tmp_path, secrets, peer):
    with in_process(tmp_path / "data") as trove:
        local = trove.client(peer)
        kind, status = local.call("add_root", str(secrets), [], [])
        assert kind == "complete", status
        assert [r["folder"] for r in status["roots"]] == [str(secrets.resolve())]
        assert local.call("start_indexing", "tiny-clip")[0] == "complete"
        assert trove.ui.jobs.wait(timeout=120).state == DONE
        assert trove.ui.library_status()["counts"] == {"image": 1, "document": 1}
        assert local.call("stop_indexing")[0] == "complete"
        kind, status = local.call("remove_root", str(secrets))
        assert kind == "complete" and status["roots"] == [], status


def test_with_a_login_other_machines_search_and_manage(tmp_path, photo_library, secrets):
    with in_process(tmp_path / "data", auth=LOGIN) as trove:
        remote = trove.client(REMOTE)
        # Before logging in, nothing answers (Gradio's login guards every route).
        denied = remote.request("POST", "/gradio_api/call/add_root", json={"data": ["/", [], []]})
        assert denied.status_code == 401
        remote.login(*LOGIN)

        assert remote.call("add_root", str(photo_library), [], [])[0] == "complete"
        assert remote.call("start_indexing", "tiny-clip")[0] == "complete"
        assert trove.ui.jobs.wait(timeout=120).state == DONE
        kind, page = remote.call("search", *search_data("a photo", 24))
        assert kind == "complete" and len(page["results"]) == 6, page
        # Logged in through a proxy too: the login is what counts.
        proxied = trove.client(REMOTE, {"X-Forwarded-For": LOOPBACK})
        proxied.login(*LOGIN)
        assert proxied.call("remove_root", str(photo_library))[0] == "complete"
        assert trove.ui.roots() == []


# -- a real server: `serve` on loopback, over TCP -------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def test_the_real_server_takes_changes_from_this_machine_only(
    tmp_path, photo_library, secrets, monkeypatch
):
    from gradio_client import Client as GradioClient

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    demo, ui = serve(tmp_path / "data", port=_free_port(), model="tiny-clip", block=False)
    try:
        url = demo.local_url
        GradioClient(url, verbose=False).predict(str(photo_library), api_name="/add_root")
        assert ui.roots() == [str(photo_library.resolve())]

        # A proxy on this machine relaying another machine's request: uvicorn takes the
        # client's address from its X-Forwarded-For, and the request is refused.
        with httpx.Client(base_url=url, headers={"X-Forwarded-For": REMOTE}) as proxied:
            joined = proxied.post("gradio_api/call/add_root", json={"data": [str(secrets), [], []]})
            event = joined.json()["event_id"]
            kind, message = _last_event(proxied.get(f"gradio_api/call/add_root/{event}").text)
        assert kind == "error" and REFUSED in message["error"], message
        assert ui.roots() == [str(photo_library.resolve())]
    finally:
        demo.close(verbose=False)
        ui.close()


# -- `python app.py serve` ------------------------------------------------------------------


@pytest.fixture
def launches(monkeypatch) -> list[dict]:
    """The servers `serve` launched (recorded: a launched one would block the test)."""
    calls: list[dict] = []
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **options: calls.append(options))
    monkeypatch.delenv("TROVE_AUTH", raising=False)
    return calls


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.2", "::", "", "trove.example"])
def test_serving_beyond_this_machine_needs_a_login(tmp_path, capsys, launches, host):
    import app

    data = tmp_path / "data"
    assert app.main(["serve", "--library", str(data), "--host", host]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Serving on ") and "without a login" in err, err
    assert all(hint in err for hint in HINTS), err
    assert launches == [] and not data.exists()


def test_a_share_link_needs_a_login(tmp_path, capsys, launches):
    import app

    assert app.main(["serve", "--library", str(tmp_path / "data"), "--share"]) == 1
    err = capsys.readouterr().err
    assert "--share" in err and all(hint in err for hint in HINTS), err
    assert launches == []


def test_with_a_login_it_serves_anywhere(tmp_path, monkeypatch, launches):
    import app

    lib = str(tmp_path / "data")
    assert app.main(["serve", "--library", lib, "--host", "0.0.0.0", "--auth", "ann:pw"]) == 0
    monkeypatch.setenv("TROVE_AUTH", "bo:pw")
    assert app.main(["serve", "--library", lib, "--host", "192.0.2.2", "--share"]) == 0
    assert [(c["server_name"], c["auth"], c["share"]) for c in launches] == [
        ("0.0.0.0", ("ann", "pw"), False),
        ("192.0.2.2", ("bo", "pw"), True),
    ]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_on_this_machine_it_serves_without_a_login(tmp_path, launches, host):
    import app

    assert app.main(["serve", "--library", str(tmp_path / "data"), "--host", host]) == 0
    assert [(c["server_name"], c["auth"]) for c in launches] == [(host, None)]
