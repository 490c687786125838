"""Trove as a separate process, the way a user runs it: `python app.py ARGS`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def run_app(
    *args: str | Path,
    env: Mapping[str, str],
    data_dir: Path | None = None,
    timeout: float = 240,
) -> subprocess.CompletedProcess:
    """`python app.py ARGS` from the repo root with exactly `env`, except that the data folder
    is `data_dir` (TROVE_DATA_DIR; unset without one, so the caller's own never leaks in)."""
    env = dict(env)
    env.pop("TROVE_DATA_DIR", None)
    if data_dir is not None:
        env["TROVE_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, str(REPO / "app.py"), *map(str, args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(
    args: Sequence[str | Path], base: Path, env: Mapping[str, str] | None = None
) -> Iterator[tuple[str, int, Path]]:
    """`python app.py serve ARGS` on a free port, Gradio's uploads under `base`; yields (url,
    port, log file) once it answers, and stops it afterwards. `env` adds to this process's."""
    port, log = free_port(), base / "server.log"
    full_env = {**os.environ, **(env or {})}
    full_env.pop("TROVE_DATA_DIR", None)
    full_env.update(HF_HUB_OFFLINE="1", GRADIO_TEMP_DIR=str(base / "gradio"), PYTHONUNBUFFERED="1")
    command = [sys.executable, str(REPO / "app.py"), "serve", *map(str, args)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*command, "--port", str(port)], cwd=REPO, env=full_env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 240
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited ({proc.returncode}):\n{log.read_text()}")
            try:
                if httpx.get(url, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer in 240 s:\n{log.read_text()}")
            time.sleep(0.5)
        yield url, port, log
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
