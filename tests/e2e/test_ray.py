"""Index runs on Ray (`index --ray`): a real local Ray instance, one per test session.

The instance has 2 CPUs and a small object store, like the 2-core machines the tests run
on: a run that sized its actor pool wrongly would hang here rather than pass. Every test of
this file runs in one pytest-xdist worker (the file is the unit of `--dist loadfile`), and
the `ray` group keeps them together under `--dist loadgroup` too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import app
from indexers.pipeline import Indexer, ProgressEvent
from indexers.ray_runner import RayRunner, runtime_env
from search.engine import SearchEngine
from search.errors import TroveError
from search.library import Library
from search.models.encoders import Encoders
from search.storage.catalog import Root
from tests.media import make_photo
from tests.media_audio import speech, tone, write_audio
from tests.media_docs import make_srt, make_text_pdf
from tests.media_video import make_video

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.xdist_group("ray")


@pytest.fixture(scope="session")
def ray_address() -> str:
    """A local Ray instance for the whole session; its GCS address, for CLI runs to join."""
    ray = pytest.importorskip("ray")
    ray.init(
        num_cpus=2,
        object_store_memory=100 * 2**20,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env=runtime_env(),
    )
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _library_of_every_kind(root: Path) -> Path:
    for i, name in enumerate(["beach.jpg", "forest.png", "nested/snow.jpg"]):
        make_photo(root / name, 20 + i)
    rate = 48_000
    write_audio(root / "bell.wav", tone(660, 4.0, rate), rate, {"title": "Bell"})
    # Spoken words: the transcript must come out word for word as in a local run.
    speech(
        "Your appointment moved to Thursday at ten. Bring your insurance card.", root / "memo.wav"
    )
    make_video(root / "scenes.mp4", duration_s=6.0, fps=4, tone=(1.0, 5.0))
    (root / "notes.txt").write_text("Our cat sleeps on the windowsill all afternoon.")
    make_text_pdf(root / "invoice.pdf", ["Amount due: 120 EUR. Thank you."])
    make_srt(root / "film.srt", [(1.0, 3.0, "Hello there."), (4.0, 6.0, "Goodbye.")])
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not really a JPEG")
    return root


def _contents(library: Library, root: Path) -> dict:
    """Everything a run wrote that a search can see: items and their details, failures with
    their reasons, and every vector by (path, segment span, text, key)."""
    catalog = library.catalog
    items = {
        item.path: (item.kind, item.size, item.width, item.height, item.duration_s, item.info)
        for item in catalog.items_under(str(root)).values()
    }
    vectors = {}
    for key in catalog.vector_keys():
        ids, matrix = catalog.vectors(key)
        where = catalog.resolve_segments([int(i) for i in ids])
        for segment_id, vector in zip(ids, matrix, strict=True):
            item, segment = where[int(segment_id)]
            vectors[(item.path, segment.start_s, segment.end_s, segment.text, key)] = vector
    return {"items": items, "failures": sorted(catalog.failures()), "vectors": vectors}


def _index(library: Library, root: Path, runner=None, **options):
    encoders = Encoders("tiny-clip", "tiny-clap")
    indexer = Indexer(library, encoders, batch_size=2, progress=False, runner=runner, **options)
    return indexer.run([Root(str(root), (), ())])


@pytest.mark.slow
def test_a_ray_run_equals_a_local_run(ray_address, tmp_path):
    root = _library_of_every_kind(tmp_path / "library")
    local, remote = Library(tmp_path / "local"), Library(tmp_path / "remote")
    _index(local, root)
    with RayRunner("auto", [str(root)]) as runner:
        summary = _index(remote, root, runner)
    assert summary.indexed == 9 and [p for p, _ in summary.failed] == [str(root / "broken.jpg")]
    here, there = _contents(local, root), _contents(remote, root)
    assert there["items"] == here["items"]
    assert there["failures"] == here["failures"]
    memo = local.catalog.item_by_path(str(root / "memo.wav"))
    heard = local.catalog.transcript(memo.id)
    assert heard is not None and heard.lines  # the words were heard
    assert remote.catalog.transcript(remote.catalog.item_by_path(memo.path).id) == heard
    assert there["vectors"].keys() == here["vectors"].keys()
    for where, vector in here["vectors"].items():
        # The same code on the same machine; batches may be grouped otherwise.
        np.testing.assert_allclose(there["vectors"][where], vector, atol=1e-5, err_msg=str(where))
    for query in ("a cat on a windowsill", "invoice", "bell"):
        found = [
            [(r.path, round(r.score, 3)) for r in SearchEngine(lib, "tiny-clip").search(query)]
            for lib in (local, remote)
        ]
        assert found[0] == found[1] and found[0]


def _map_worker_pids() -> list[int]:
    """The processes of Ray Data's encoding actors on this machine."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if command.startswith(b"ray::MapWorker"):
                pids.append(int(entry.name))
    return pids


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_no_file(ray_address, tmp_path):
    root = tmp_path / "photos"
    for i in range(24):
        make_photo(root / f"p{i:02}.jpg", 100 + i)
    library = Library(tmp_path / "data")
    killed: list[tuple[int, int]] = []

    def kill_one_actor(event: ProgressEvent) -> None:
        if event.done and not killed:
            pid = _map_worker_pids()[0]
            os.kill(pid, signal.SIGKILL)
            killed.append((pid, event.done))

    with RayRunner("auto", [str(root)]) as runner:
        summary = _index(library, root, runner, on_progress=kill_one_actor)
    assert killed and killed[0][1] < 24  # the kill came mid-run
    assert summary.indexed == 24 and summary.failed == []
    items = library.catalog.items_under(str(root))
    assert sorted(items) == sorted(str(p) for p in root.iterdir())
    # Each file once in the index: 24 photos, 24 vectors.
    assert library.catalog.vector_count("tiny-clip") == 24


@pytest.mark.slow
def test_a_file_that_kills_its_worker_every_time_is_recorded_failed(
    ray_address, tmp_path, monkeypatch
):
    root = tmp_path / "photos"
    for i in range(5):
        make_photo(root / f"p{i}.jpg", 300 + i)
    make_photo(root / "poison.jpg", 399)
    # The worker that takes poison.jpg exits there, every time, like a crash in a decoder.
    monkeypatch.setenv("TROVE_TEST_CRASH_AT", "ray.encode:poison.jpg")
    library = Library(tmp_path / "data")
    with RayRunner("auto", [str(root)]) as runner:
        summary = _index(library, root, runner)
    assert summary.indexed == 5
    ((path, reason),) = summary.failed
    assert path == str(root / "poison.jpg")
    assert "the Ray worker decoding or encoding it died each of 6 times" in reason
    # Its batch-mates were indexed on their own, once each.
    assert library.catalog.vector_count("tiny-clip") == 5
    assert library.catalog.failures() == [(str(root / "poison.jpg"), reason)]


def _cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO / "app.py"), *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_a_killed_driver_resumes_where_it_stopped(ray_address, tmp_path):
    root = tmp_path / "photos"
    for i in range(12):
        make_photo(root / f"p{i:02}.jpg", 200 + i)
    data = tmp_path / "data"
    index = ["index", str(root), "--ray", ray_address, "--data-dir", str(data), "--quiet"]
    index += ["--model", "tiny-clip", "--audio-model", "tiny-clap", "--batch-size", "2"]
    # Paused as the 5th file comes back: the first two batches (4 files) are committed.
    first = _cli(index, {"TROVE_TEST_PAUSE_AT": "ray.result@5"})
    deadline = time.monotonic() + 240
    while "trove-test-pause: ray.result" not in first.stderr.readline():
        assert first.poll() is None and time.monotonic() < deadline, "never paused"
    first.send_signal(signal.SIGKILL)
    first.wait()
    library = Library(data, create=False)
    assert len(library.catalog.items_under(str(root))) == 4
    library.close()

    second = _cli(index)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    assert "4 unchanged" in out and "8 indexed" in out and "0 failed" in out
    library = Library(data, create=False)
    assert len(library.catalog.items_under(str(root))) == 12
    assert library.catalog.vector_count("tiny-clip") == 12
    library.close()


def test_an_unreachable_address_is_one_paragraph_and_writes_nothing(tmp_path, capsys):
    photos = tmp_path / "photos"
    make_photo(photos / "a.jpg", 1)
    data = tmp_path / "data"
    started = time.monotonic()
    code = app.main(
        ["index", str(photos), "--ray", "127.0.0.1:9", "--data-dir", str(data)]
        + ["--model", "tiny-clip"]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "error: Cannot reach a Ray cluster at 127.0.0.1:9: " in err
    assert "Nothing was indexed or changed." in err and "Traceback" not in err
    assert not data.exists()
    assert time.monotonic() - started < 60  # not Ray's minutes of retries


def test_a_folder_the_workers_cannot_read_is_named(ray_address, tmp_path):
    missing = tmp_path / "not-mounted-on-the-workers"
    with pytest.raises(TroveError, match="cannot read .*not-mounted-on-the-workers") as caught:
        RayRunner("auto", [str(missing)]).start()
    assert "mount the library at the same path on every machine" in str(caught.value)


def test_a_worker_without_a_requirement_is_named(ray_address, tmp_path):
    runner = RayRunner("auto", [str(tmp_path)])
    runner.needed_modules = ("numpy", "trove_requirement_not_installed")
    with pytest.raises(TroveError, match="cannot import trove_requirement_not_installed"):
        runner.start()


def test_an_address_that_is_a_folder_is_refused(tmp_path, capsys):
    make_photo(tmp_path / "photos" / "a.jpg", 1)
    args = ["index", str(tmp_path / "photos"), "--ray", str(tmp_path), "--model", "tiny-clip"]
    code = app.main([*args, "--data-dir", str(tmp_path / "d")])
    assert code == 1 and not (tmp_path / "d").exists()
    assert "Library folders go before --ray" in capsys.readouterr().err
