"""A Hugging Face hub on loopback: the part of its HTTP protocol that `hf_hub_download` speaks.

Point `HF_ENDPOINT` at `HubServer.url` and the real `huggingface_hub` client downloads from
here exactly as from huggingface.co (read from huggingface_hub 2.4.0's file_download.py):

- `HEAD /{org}/{name}/resolve/{revision}/{file}` gives the file's metadata. A small (git)
  file answers 200 with `ETag` (its git blob sha1), `X-Repo-Commit` and `Content-Length`. A
  large (LFS) file answers 302 to the CDN, a second server on another port (so, as with
  huggingface.co and its CDN, another origin: the client does not follow the redirect on
  HEAD), with `X-Linked-Etag` (the content's sha256, which names the cache blob),
  `X-Linked-Size` and `X-Repo-Commit`.
- `GET` of the same path, or of the CDN location, sends the bytes; the CDN honours `Range`
  (the client resumes a dropped transfer with `Range: bytes=N-`).
- A missing file is 404 with `X-Error-Code: EntryNotFound` (and `X-Repo-Commit`, which the
  client uses to remember the absence), an unknown revision 404 `RevisionNotFound`, an
  unknown repo 401 `RepoNotFound`, as the hub answers an anonymous client.

No `X-Xet-*` headers are sent, so the client uses plain HTTP even with hf_xet installed.
Every request is recorded (`requests`), including ones this server does not know, so a test
can see what the client asked for. `Fault`s make one file's transfer fail the ways a network
or a hub does.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

# Files at least this large are stored in LFS and served through the CDN redirect, as on
# the hub (which moves files over 10 MB to LFS; weights always are).
LFS_THRESHOLD = 10 * 1024 * 1024
RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<file>.+)$")
CDN_PATH = re.compile(r"^/repos/(?P<sha256>[0-9a-f]{64})$")
AGENT_HARNESSES = b'{"standardEnvVars": [], "harnesses": {}}'


@dataclass(frozen=True)
class RepoFile:
    """One file of a repo, with the identities the hub reports for it."""

    name: str
    path: Path
    size: int
    lfs: bool
    # git blob sha1 for a small file; the content's sha256 for an LFS file.
    etag: str

    @classmethod
    def of(cls, name: str, path: Path) -> RepoFile:
        size = path.stat().st_size
        lfs = size >= LFS_THRESHOLD
        digest = hashlib.sha256() if lfs else hashlib.sha1(b"blob %d\0" % size)
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        return cls(name, path, size, lfs, digest.hexdigest())


@dataclass(frozen=True)
class Repo:
    """A model repo at one commit: repo file name -> file on disk."""

    repo_id: str
    files: dict[str, RepoFile]
    commit: str

    @classmethod
    def from_files(cls, repo_id: str, files: dict[str, Path]) -> Repo:
        entries = {name: RepoFile.of(name, path) for name, path in sorted(files.items())}
        commit = hashlib.sha1(
            "".join(f"{e.name}:{e.etag}\n" for e in entries.values()).encode()
        ).hexdigest()
        return cls(repo_id, entries, commit)


@dataclass
class Fault:
    """How the download (GET) of one file fails.

    `cut`: the first transfer stops after `fraction` of the bytes and the connection drops;
    every later request for the file (the client's resume) is dropped before any answer, as
    when the network went away. `status`: every GET answers that HTTP status.
    """

    filename: str
    kind: str
    fraction: float = 0.5
    status: int = 500
    # Set once the cut has happened.
    cut_done: bool = False

    @classmethod
    def cut(cls, filename: str, fraction: float = 0.5) -> Fault:
        return cls(filename, "cut", fraction=fraction)

    @classmethod
    def http_status(cls, filename: str, status: int = 500) -> Fault:
        return cls(filename, "status", status=status)


@dataclass(frozen=True)
class Request:
    server: str  # "hub" or "cdn"
    method: str
    path: str
    range: str | None
    status: int | None  # None: dropped without an answer


@dataclass
class _State:
    repos: dict[str, Repo]
    faults: dict[str, Fault]
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    cdn_url: str = ""

    def record(self, request: Request) -> None:
        with self.lock:
            self.requests.append(request)

    def blob(self, sha256: str) -> tuple[Repo, RepoFile] | None:
        for repo in self.repos.values():
            for entry in repo.files.values():
                if entry.lfs and entry.etag == sha256:
                    return repo, entry
        return None


class _Handler(BaseHTTPRequestHandler):
    server_version = "trove-test-hub"
    protocol_version = "HTTP/1.1"
    role = "hub"

    @property
    def state(self) -> _State:
        return self.server.state  # type: ignore[attr-defined]

    def log_message(self, format: str, *args) -> None:
        pass  # the test reads `requests`; the console stays quiet

    def do_HEAD(self) -> None:
        self._route(send_body=False)

    def do_GET(self) -> None:
        self._route(send_body=True)

    def _route(self, send_body: bool) -> None:
        path = urlsplit(self.path).path
        if self.role == "cdn":
            match = CDN_PATH.match(path)
            found = self.state.blob(match["sha256"]) if match else None
            if found is None:
                self._answer(404, {}, b"no such blob")
                return
            self._send_file(found[1], send_body)
            return
        if path == "/api/agent-harnesses":
            # The client asks once a day, for its user-agent header; nothing is known here.
            self._answer(200, {"Content-Type": "application/json"}, AGENT_HARNESSES)
            return
        match = RESOLVE.match(path)
        if match is None:
            self._answer(404, {}, b"this test hub serves only /{repo}/resolve/{rev}/{file}")
            return
        repo = self.state.repos.get(unquote(match["repo"]))
        if repo is None:
            self._answer(401, {"X-Error-Code": "RepoNotFound"}, b"Repository not found")
            return
        if unquote(match["revision"]) not in ("main", repo.commit):
            self._answer(404, {"X-Error-Code": "RevisionNotFound"}, b"Invalid rev id")
            return
        entry = repo.files.get(unquote(match["file"]))
        commit = {"X-Repo-Commit": repo.commit}
        if entry is None:
            self._answer(404, {**commit, "X-Error-Code": "EntryNotFound"}, b"Entry not found")
            return
        if entry.lfs:
            pointer = (
                f"version https://git-lfs.github.com/spec/v1\noid sha256:{entry.etag}\n"
                f"size {entry.size}\n"
            ).encode()
            pointer_sha1 = hashlib.sha1(b"blob %d\0" % len(pointer) + pointer).hexdigest()
            self._answer(
                302,
                {
                    **commit,
                    "Location": f"{self.state.cdn_url}/repos/{entry.etag}",
                    "ETag": f'"{pointer_sha1}"',
                    "X-Linked-Etag": f'"{entry.etag}"',
                    "X-Linked-Size": str(entry.size),
                },
                b"Found. Redirecting",
                send_body,
            )
            return
        self._send_file(entry, send_body, {**commit, "ETag": f'"{entry.etag}"'})

    def _answer(
        self, status: int, headers: dict[str, str], body: bytes, send_body: bool = True
    ) -> None:
        self.state.record(
            Request(self.role, self.command, self.path, self.headers.get("Range"), status)
        )
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body and self.command != "HEAD":
            self.wfile.write(body)

    def _send_file(self, entry: RepoFile, send_body: bool, headers: dict | None = None) -> None:
        headers = dict(headers or {})
        fault = self.state.faults.get(entry.name) if self.command == "GET" else None
        if fault is not None and fault.kind == "status":
            self._answer(fault.status, {}, b"Internal Error")
            return
        if fault is not None and fault.kind == "cut" and fault.cut_done:
            self.state.record(
                Request(self.role, self.command, self.path, self.headers.get("Range"), None)
            )
            self.close_connection = True
            return
        start = 0
        ranged = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if ranged and self.command == "GET":
            start = int(ranged[1])
        length = entry.size - start
        status = 206 if ranged and self.command == "GET" else 200
        self.state.record(
            Request(self.role, self.command, self.path, self.headers.get("Range"), status)
        )
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        # As the hub and its CDN name the file (the client labels its progress bar with it).
        self.send_header(
            "Content-Disposition",
            f"inline; filename*=UTF-8''{quote(entry.name)}; filename=\"{entry.name}\";",
        )
        self.send_header("Content-Length", str(length))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{entry.size - 1}/{entry.size}")
        self.end_headers()
        if not send_body or self.command == "HEAD":
            return
        count = length
        if fault is not None and fault.kind == "cut":
            count = int(length * fault.fraction)
            fault.cut_done = True
            self.close_connection = True
        with entry.path.open("rb") as f:
            self.wfile.flush()
            self.connection.sendfile(f, offset=start, count=count)


class _CdnHandler(_Handler):
    role = "cdn"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler, state: _State) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.state = state


class HubServer:
    """The hub and its CDN on two free loopback ports; a context manager, or start()/stop()."""

    def __init__(self, repos: list[Repo], faults: list[Fault] = ()) -> None:
        self.state = _State({r.repo_id: r for r in repos}, {f.filename: f for f in faults})
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        host, port = self._servers[0].server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[Request]:
        with self.state.lock:
            return list(self.state.requests)

    def downloads(self, filename: str) -> list[Request]:
        """The GETs that asked for a file's bytes (on the hub or the CDN)."""
        names = {}
        for repo in self.state.repos.values():
            for entry in repo.files.values():
                names[f"/repos/{entry.etag}"] = entry.name
        out = []
        for r in self.requests:
            path = urlsplit(r.path).path
            name = names.get(path) or (m["file"] if (m := RESOLVE.match(path)) else None)
            if r.method == "GET" and name is not None and unquote(name) == filename:
                out.append(r)
        return out

    def start(self) -> HubServer:
        for handler in (_Handler, _CdnHandler):
            server = _Server(handler, self.state)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
        host, port = self._servers[1].server_address[:2]
        self.state.cdn_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        """Stop both servers and close their ports (a later connection is refused)."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def hub_env(base: dict[str, str], endpoint: str | None, hf_home: Path) -> dict[str, str]:
    """An environment for a subprocess: its own Hugging Face home, online against `endpoint`
    (offline, HF_HUB_OFFLINE=1, when it is None), no token and no proxy."""
    env = dict(base)
    for name in (
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "HF_TOKEN",
        "HF_HUB_CACHE",
        "HF_HUB_DISABLE_PROGRESS_BARS",
    ):
        env.pop(name, None)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        env.pop(name, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["HF_HOME"] = str(hf_home)
    if endpoint is None:
        env["HF_HUB_OFFLINE"] = "1"
        env.pop("HF_ENDPOINT", None)
    else:
        env["HF_ENDPOINT"] = endpoint
    return env
