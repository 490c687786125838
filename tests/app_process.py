"""Trove as a separate process, the way a user runs it: `python app.py ARGS`."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

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
