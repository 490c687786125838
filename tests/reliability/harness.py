"""Running the real CLI against generated libraries, and checking a library after a fault."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from search.testhooks import COUNT_ENV
from tests.app_process import run_app

REPO = Path(__file__).resolve().parents[2]
MODEL = "tiny-clip"


def make_small_photos(folder: Path, seeds: range, size: tuple[int, int] = (96, 72)) -> None:
    """Distinct small photos (noise over a gradient), fast to write and to decode."""
    folder.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        rng = np.random.default_rng(seed)
        w, h = size
        ramp = np.linspace(0, 1, h)[:, None, None]
        base = rng.integers(0, 256, 3) * (1 - ramp) + rng.integers(0, 256, 3) * ramp
        pixels = base + rng.normal(0, 25, (h, w, 3))
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(
            folder / f"photo-{seed:05d}.jpg", quality=85
        )


def cli(
    *args: str, timeout: float = 180, env: dict | None = None, **kw
) -> subprocess.CompletedProcess:
    """`python app.py ARGS` in a fresh process, as a user would run it (the data folder is
    given with --data-dir)."""
    return run_app(*args, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}, timeout=timeout)


def index_args(root: Path, data_dir: Path, *extra: str) -> list[str]:
    return ["index", str(root), "--model", MODEL, "--data-dir", str(data_dir), *extra]


class Launcher:
    """tests/reliability/launcher.py: forks CLI runs from a process that imported Trove once."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.launcher"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)},
        )

    def _ask(self, request: dict) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the launcher died (status {self.proc.wait()})")
        return json.loads(line)

    def start(self, argv: list[str], log: Path, env: dict | None = None) -> Run:
        return Run(self, self._ask({"run": argv, "env": env or {}, "log": str(log)})["pid"], log)

    def count_hits(self, argv: list[str], log: Path) -> dict[str, int]:
        """How many times the run `argv` passes each pause point, run to its end (its data
        folder must be a scratch copy: the run changes it)."""
        run = self.start(argv, log, {COUNT_ENV: "1"})
        assert run.join() == 0, run.output()
        marker = "trove-test-hits: "
        lines = [line for line in run.output().splitlines() if line.startswith(marker)]
        assert len(lines) == 1, run.output()
        return json.loads(lines[0][len(marker) :])

    def wait(self, pid: int) -> tuple[int, float]:
        reply = self._ask({"wait": pid})
        return reply["status"], reply["max_rss_mib"]

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


@dataclass
class Run:
    launcher: Launcher
    pid: int
    log: Path
    status: int | None = None
    max_rss_mib: float | None = None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for(self, marker: str, timeout: float = 120) -> bool:
        """True once `marker` is in the output; False if the run ended first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker in self.output():
                return True
            if self.finished():
                return marker in self.output()
            time.sleep(0.02)
        raise TimeoutError(f"{marker!r} not seen in {timeout} s:\n{self.output()[-2000:]}")

    def finished(self) -> bool:
        if self.status is None:
            # The launcher reaps its children, so an ended run is a zombie until it does.
            state = Path(f"/proc/{self.pid}/stat").read_text().split(") ", 1)[1][0]
            if state != "Z":
                return False
            self.status, self.max_rss_mib = self.launcher.wait(self.pid)
        return True

    def kill(self, sig: int = signal.SIGKILL) -> bool:
        """Send `sig`; True if the run was still going (a real kill), False if it had ended."""
        if self.finished():
            return False
        os.kill(self.pid, sig)
        self.status, self.max_rss_mib = self.launcher.wait(self.pid)
        return True

    def join(self) -> int:
        if self.status is None:
            self.status, self.max_rss_mib = self.launcher.wait(self.pid)
        return self.status


# -- checking a library --------------------------------------------------------------------


def integrity(data_dir: Path) -> str:
    db = sqlite3.connect(data_dir / "catalog.sqlite3")
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


def committed_items(data_dir: Path) -> dict[str, str | None]:
    """path -> error (None for an indexed item), as committed in the catalog."""
    if not (data_dir / "catalog.sqlite3").exists():
        return {}
    db = sqlite3.connect(f"file:{data_dir / 'catalog.sqlite3'}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT path, error FROM items"))
    finally:
        db.close()


def catalog_generation(data_dir: Path) -> int:
    """The catalog generation an index must reflect to be loaded (0 before any vector)."""
    db = sqlite3.connect(f"file:{data_dir / 'catalog.sqlite3'}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0
    finally:
        db.close()


def check_indexes(data_dir: Path) -> dict[str, str]:
    """Open every vector index the way a search does; each must hold exactly the catalog's
    vectors for its key. Returns key -> "loaded", or "rebuilt: REASON" with the reason the
    store gave for not loading the file (nothing is written)."""
    from search.library import Library
    from search.storage.store import open_store

    library = Library(data_dir, create=False)
    store_log = logging.getLogger("search.storage.store")
    rebuilds = _Records()
    store_log.addHandler(rebuilds)
    level = store_log.level
    store_log.setLevel(logging.WARNING)
    try:
        outcome = {}
        db = library.catalog
        keys = [r[0] for r in db._query("SELECT DISTINCT model FROM vectors")]
        for key in keys:
            ids, vectors = db.vectors(key)
            rebuilds.messages.clear()
            path = library.index_path(key)
            store = open_store(db, path, key, vectors.shape[1], save_if_rebuilt=False)
            assert _ids(store) == {int(i) for i in ids}, f"index {key} differs from the catalog"
            prefix = f"Rebuilding the {key} index from the catalog: "
            assert len(rebuilds.messages) <= 1, rebuilds.messages
            assert all(m.startswith(prefix) for m in rebuilds.messages), rebuilds.messages
            reasons = [m[len(prefix) :].removesuffix(".") for m in rebuilds.messages]
            outcome[key] = f"rebuilt: {reasons[0]}" if reasons else "loaded"
        return outcome
    finally:
        store_log.removeHandler(rebuilds)
        store_log.setLevel(level)
        library.close()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _ids(store) -> set[int]:
    import faiss

    index = store.index
    if hasattr(index, "id_map"):
        return {int(i) for i in faiss.vector_to_array(index.id_map)}
    invlists = faiss.extract_index_ivf(index).invlists
    ids: set[int] = set()
    for lst in range(invlists.nlist):
        n = invlists.list_size(lst)
        if n:
            ptr = invlists.get_ids(lst)
            ids.update(int(i) for i in faiss.rev_swig_ptr(ptr, n))
    return ids


def search_all(data_dir: Path, query: str = "a photo") -> list[tuple[str, float]]:
    """Every result of a text query through the CLI, as (path, score) sorted by path."""
    proc = cli("search", query, "--data-dir", str(data_dir), "-k", "100000", "--json")
    assert proc.returncode == 0, proc.stderr
    return sorted((r["path"], round(r["score"], 4)) for r in json.loads(proc.stdout))
