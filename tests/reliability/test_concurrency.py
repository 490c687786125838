"""Readers and writers at once: searches keep working while an index run writes, a second
writer is told who holds the library, and a reader never sees a half-written index."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from search.storage.store import VectorStore
from tests.reliability.harness import (
    Launcher,
    cli,
    index_args,
    make_small_photos,
)


def test_a_reader_never_sees_a_half_written_index(tmp_path):
    """A writer saves ever larger indexes while readers load them: every load succeeds and
    holds exactly the vectors its sidecar describes."""
    path = tmp_path / "indexes" / "m.faiss"
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(400, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    VectorStore.build("m", 16, np.arange(1), vectors[:1]).save(path, 1)
    done = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def write() -> None:
        # Passes of ever larger saves until the readers have loaded many different ones: a
        # slow or busy machine gets more passes, not a failure.
        for _ in range(50):
            for n in range(2, 400, 3):
                VectorStore.build("m", 16, np.arange(n), vectors[:n]).save(path, n)
                time.sleep(0.002)  # an indexer saves after batches, not back to back
            if len(set(seen)) > 10 or done.is_set():
                break
        done.set()

    def read() -> None:
        try:
            while not done.is_set():
                store, info = VectorStore.load(path)
                assert len(store) == info.count == info.generation
                _, ids = store.search(vectors[info.count - 1], 1)
                assert ids[0] == info.count - 1  # the contents are the ones the sidecar names
                seen.append(info.count)
        except BaseException as exc:
            errors.append(exc)
            done.set()

    threads = [threading.Thread(target=read) for _ in range(2)] + [threading.Thread(target=write)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads), "a reader or the writer hung"
    assert not errors, errors[0]
    assert len(set(seen)) > 10  # the readers really overlapped many saves


def test_an_index_saved_before_headers_loads_with_its_sidecar(tmp_path):
    import faiss

    path = tmp_path / "m.faiss"
    store = VectorStore.build("m", 4, np.arange(3), np.eye(4, dtype=np.float32)[:3])
    store.save(path, 7)
    path.write_bytes(faiss.serialize_index(store.index).tobytes())  # the old format
    loaded, info = VectorStore.load(path)
    assert (len(loaded), info.generation) == (3, 7)


@pytest.mark.slow
def test_searches_work_and_a_second_writer_is_refused_while_indexing(tmp_path):
    root = tmp_path / "photos"
    make_small_photos(root, range(30))
    data = tmp_path / "data"
    assert cli(*index_args(root, data, "--quiet")).returncode == 0
    make_small_photos(root, range(30, 100))
    launcher = Launcher()
    try:
        # The writer stops (holding the lock) right after a commit in the middle of its run,
        # so the readers below certainly overlap it.
        pause = {"TROVE_TEST_PAUSE_AT": "sqlite.after-commit@6"}
        args = index_args(root, data, "--batch-size", "4")
        run = launcher.start(args, tmp_path / "run.log", pause)
        assert run.wait_for("trove-test-pause: sqlite.after-commit"), run.output()
        search = ("search", "a photo", "--data-dir", str(data), "--json", "-k", "1000")
        status = ("status", "--data-dir", str(data))
        commands = [index_args(root, data, "--quiet"), search, search, status]
        with ThreadPoolExecutor(len(commands)) as pool:
            second, *searches, status = pool.map(lambda args: cli(*args), commands)
        still_running = not run.finished()
        run.kill()
    finally:
        launcher.close()
    assert still_running
    assert second.returncode == 1
    assert "Already indexing" in second.stderr and f"pid {run.pid}" in second.stderr
    assert "Traceback" not in second.stderr
    for proc in searches:
        assert proc.returncode == 0, proc.stderr
        assert len(json.loads(proc.stdout)) >= 30
    assert status.returncode == 0, status.stderr
