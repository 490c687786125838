"""End-to-end: the real `app.py` CLI, run as a subprocess over libraries the tests generate.

Every command runs offline (HF_HUB_OFFLINE=1) with its data directory under tmp_path, so
nothing here touches the user's library or the network. Each subprocess pays a few seconds
of imports, so assertions are grouped per command rather than one command per assertion.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.app_process import run_app
from tests.media import make_photo

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PRESETS = ("clip-vit-b-32", "mobileclip2-s0", "clip-vit-l-14", "tiny-clip")
SUMMARY = re.compile(
    r"^Done in [0-9.]+ s with (?P<model>\S+): (?P<indexed>\d+) indexed \([0-9.]+/s\), "
    r"(?P<unchanged>\d+) unchanged, (?P<moved>\d+) moved, (?P<touched>\d+) touched, "
    r"(?P<removed>\d+) removed, (?P<failed>\d+) failed\.$",
    re.MULTILINE,
)
RANKED_LINE = re.compile(r"^\s*(?P<rank>\d+)\s+(?P<score>-?\d+\.\d{4})\s+image\s+(?P<path>\S.*)$")


def trove(
    *args: str | Path,
    data_dir: Path | None = None,
    hf_home: Path | None = None,
    timeout: float = 240,
):
    """Run `python app.py ARGS` from the repo root, offline, with TROVE_DATA_DIR=data_dir
    (and, with `hf_home`, an empty Hugging Face cache: a machine without weights)."""
    env = os.environ.copy()
    env["HF_HUB_OFFLINE"] = "1"
    if hf_home is not None:
        env["HF_HOME"] = str(hf_home)
    return run_app(*args, env=env, data_dir=data_dir, timeout=timeout)


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    return proc


def summary(stdout: str) -> dict[str, int | str]:
    """The counts of the index summary line (fails the test when there is no summary)."""
    match = SUMMARY.search(stdout)
    assert match, f"no index summary in stdout:\n{stdout}"
    return {k: (v if k == "model" else int(v)) for k, v in match.groupdict().items()}


def failed_lines(stdout: str) -> dict[str, str]:
    """`  failed: PATH: REASON` lines of the index summary, as {path: reason}."""
    out = {}
    for line in stdout.splitlines():
        if line.startswith("  failed: "):
            path, _, reason = line[len("  failed: ") :].partition(": ")
            out[path] = reason
    return out


def search_json(proc: subprocess.CompletedProcess) -> list[dict]:
    ok(proc)
    results = json.loads(proc.stdout)  # stdout must be pure JSON: logs go to stderr
    assert isinstance(results, list)
    return results


@dataclass(frozen=True)
class Indexed:
    lib: Path
    data: Path
    photos: list[Path]
    index: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def indexed(tmp_path_factory) -> Indexed:
    """Twelve photos in nested folders, indexed once with tiny-clip through the CLI."""
    base = tmp_path_factory.mktemp("cli")
    lib, data = base / "photos", base / "data"
    photos = []
    for i in range(12):
        folder = lib / ("" if i < 4 else "2023" if i < 8 else "2023/summer")
        if i % 3 == 2:
            photos.append(make_photo(folder / f"photo{i:02d}.png", seed=100 + i))
        else:
            photos.append(make_photo(folder / f"photo{i:02d}.jpg", seed=100 + i, quality=90))
    index = trove("index", lib, "--model", "tiny-clip", data_dir=data)
    return Indexed(lib, data, [p.resolve() for p in photos], index)


def test_index_then_status(indexed: Indexed) -> None:
    n = len(indexed.photos)
    counts = summary(ok(indexed.index).stdout)
    assert counts["model"] == "tiny-clip"
    assert (counts["indexed"], counts["failed"]) == (n, 0)
    assert "Rebuilding" not in indexed.index.stderr, "a new library is not a damaged one"

    status = json.loads(ok(trove("status", "--json", data_dir=indexed.data)).stdout)
    assert status["model"] == "tiny-clip"
    assert status["items"] == {"image": n}
    assert status["roots"] == [str(indexed.lib.resolve())]
    assert status["index_vectors"] == n and status["indexes"] == {"tiny-clip": n}
    assert status["models"] == {"clip": "tiny-clip"}
    assert status["failed"] == []
    assert Path(status["data_dir"]) == indexed.data.resolve()
    assert status["size_on_disk_bytes"] > 0

    human = ok(trove("status", data_dir=indexed.data)).stdout
    assert "{" not in human, "plain `status` should not print JSON"
    assert re.search(r"^Models:\s+tiny-clip \(clip\)$", human, re.MULTILINE), human
    assert re.search(rf"^Items:\s+{n} image$", human, re.MULTILINE), human
    assert re.search(rf"^Indexes:\s+{n} vectors in 1 index;", human, re.MULTILINE), human
    assert str(indexed.lib.resolve()) in human
    assert re.search(r"^Failed:\s+0$", human, re.MULTILINE), human


def test_text_search(indexed: Indexed) -> None:
    results = search_json(
        trove("search", "a beach", "--model", "tiny-clip", "--json", data_dir=indexed.data)
    )
    assert len(results) == 10  # the default k, with 12 photos indexed
    for r in results:
        assert r["kind"] == "image"
        assert isinstance(r["score"], float)
        assert Path(r["path"]).is_relative_to(indexed.lib.resolve())
        assert Path(r["path"]) in indexed.photos
    assert len({r["path"] for r in results}) == len(results), "a file listed twice"
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)

    # No --model: the library's own model (tiny-clip), and human-readable ranked lines.
    proc = ok(trove("search", "a beach", "-k", "2", data_dir=indexed.data))
    lines = [RANKED_LINE.match(line) for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 2 and all(lines), proc.stdout
    assert [int(m["rank"]) for m in lines] == [1, 2]
    assert [m["path"] for m in lines] == [r["path"] for r in results[:2]]
    assert [float(m["score"]) for m in lines] == pytest.approx(scores[:2], abs=1e-4)


def test_image_search_and_combined_query(indexed: Indexed) -> None:
    target = indexed.photos[5]
    results = search_json(trove("search", "--image", target, "--json", data_dir=indexed.data))
    assert results[0]["path"] == str(target)
    assert results[0]["score"] > 0.999
    assert all(r["score"] < 0.999 for r in results[1:]), "another photo embeds identically"

    # The query language from the shell, with the image given as a path relative to the cwd.
    relative = os.path.relpath(target, REPO)
    query = f'"a beach" + {relative} - "people"'
    combined = search_json(trove("search", query, "-k", "5", "--json", data_dir=indexed.data))
    assert len(combined) == 5
    assert all(Path(r["path"]) in indexed.photos for r in combined)
    by_path = {r["path"]: r["score"] for r in combined}
    assert str(target) in by_path, "the query's image term did not count"
    # The text terms count too: a pure image query would score the image itself ~1.0.
    assert by_path[str(target)] < 0.99


def test_incremental_index_from_the_cli(tmp_path: Path) -> None:
    lib, data = tmp_path / "photos", tmp_path / "data"
    keep = make_photo(lib / "keep.jpg", 1, quality=90)
    doomed = make_photo(lib / "doomed.jpg", 2, quality=90)
    before = make_photo(lib / "trip" / "before.jpg", 3, quality=90)
    make_photo(lib / "trip" / "other.png", 4)

    counts = summary(ok(trove("index", lib, "--model", "tiny-clip", data_dir=data)).stdout)
    assert (counts["indexed"], counts["failed"]) == (4, 0)

    counts = summary(ok(trove("index", lib, "--model", "tiny-clip", data_dir=data)).stdout)
    assert (counts["indexed"], counts["unchanged"]) == (0, 4)

    doomed.unlink()
    after = before.rename(lib / "trip" / "after.jpg")
    # No folder, no --model: the library's roots and model.
    counts = summary(ok(trove("index", data_dir=data)).stdout)
    assert counts["model"] == "tiny-clip"
    assert (counts["removed"], counts["moved"]) == (1, 1)
    assert (counts["indexed"], counts["unchanged"], counts["failed"]) == (0, 2, 0)

    results = search_json(trove("search", "a beach", "--json", data_dir=data))
    paths = {r["path"] for r in results}
    assert str(doomed.resolve()) not in paths
    assert str(before.resolve()) not in paths
    assert str(after.resolve()) in paths
    assert str(keep.resolve()) in paths
    assert len(results) == 3


def test_bad_files_are_reported_and_skipped(tmp_path: Path) -> None:
    lib, data, decoy = tmp_path / "photos", tmp_path / "data", tmp_path / "env-data"
    good = [make_photo(lib / f"good{i}.jpg", 10 + i, quality=90) for i in range(3)]
    broken = lib / "broken.jpg"
    broken.write_text("this is a text file, not a JPEG\n")
    empty = lib / "empty.jpg"
    empty.write_bytes(b"")

    # --data-dir wins over TROVE_DATA_DIR.
    proc = ok(trove("index", lib, "--model", "tiny-clip", "--data-dir", data, data_dir=decoy))
    counts = summary(proc.stdout)
    assert (counts["indexed"], counts["failed"]) == (len(good), 2)
    reasons = failed_lines(proc.stdout)
    assert set(reasons) == {str(broken.resolve()), str(empty.resolve())}
    assert "text" in reasons[str(broken.resolve())]
    assert "empty (0 bytes)" in reasons[str(empty.resolve())]
    assert not decoy.exists(), "index wrote to TROVE_DATA_DIR despite --data-dir"

    status = json.loads(ok(trove("status", "--json", "--data-dir", data)).stdout)
    assert status["items"] == {"image": len(good)}
    assert status["index_vectors"] == len(good)
    failed = {f["path"]: f["reason"] for f in status["failed"]}
    assert set(failed) == {str(broken.resolve()), str(empty.resolve())}
    assert all(reason.strip() for reason in failed.values())


def test_search_with_another_model_than_the_library_is_refused(indexed: Indexed) -> None:
    proc = trove("search", "x", "--model", "clip-vit-b-32", data_dir=indexed.data)
    assert proc.returncode != 0
    assert proc.stdout.strip() == "", "results were printed despite the model mismatch"
    assert "indexed with tiny-clip" in proc.stderr
    assert "index --model clip-vit-b-32" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_index_without_weights_fails_clearly(tmp_path: Path) -> None:
    lib, data = tmp_path / "photos", tmp_path / "data"
    make_photo(lib / "one.jpg", 1, quality=90)
    make_photo(lib / "two.jpg", 2, quality=90)

    proc = trove("index", lib, data_dir=data, hf_home=tmp_path / "empty-hf")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "clip-vit-b-32" in proc.stderr
    assert "Hugging Face cache" in proc.stderr
    assert "models download clip-vit-b-32" in proc.stderr
    assert "--model-path" in proc.stderr
    assert SUMMARY.search(proc.stdout) is None, "indexed anyway (a silent model fallback?)"

    assert not data.exists(), "a failed index run must not create a library"
    status = trove("status", data_dir=data)
    assert status.returncode == 1 and "No Trove library" in status.stderr
    assert not data.exists(), "status must not create a library either"


def test_second_writer_is_refused(indexed: Indexed, tmp_path: Path) -> None:
    from search.library import Library

    data = tmp_path / "data"
    shutil.copytree(indexed.data, data)
    more = tmp_path / "more"
    make_photo(more / "new.jpg", 99, quality=90)

    library = Library(data)
    try:
        before = (library.catalog.counts(), library.catalog.roots(), library.clip_model)
        with library.writer():
            proc = trove("index", more, "--model", "tiny-clip", data_dir=data)
        assert proc.returncode == 1
        assert "Already indexing" in proc.stderr
        assert f"pid {os.getpid()}" in proc.stderr, "the message should say who holds the lock"
        assert SUMMARY.search(proc.stdout) is None
    finally:
        library.close()

    after = Library(data)
    try:
        assert (after.catalog.counts(), after.catalog.roots(), after.clip_model) == before
        assert after.catalog.item_by_path(str((more / "new.jpg").resolve())) is None
    finally:
        after.close()


def test_models_commands(tmp_path: Path) -> None:
    listing = ok(trove("models", "list", data_dir=tmp_path / "data")).stdout
    names = [line.split()[0] for line in listing.splitlines() if line.strip()]
    assert set(PRESETS) <= set(names), listing
    assert re.search(r"^clip-vit-b-32\b.*\(default\)$", listing, re.MULTILINE), listing

    info = ok(trove("models", "info", "tiny-clip", data_dir=tmp_path / "data")).stdout
    assert re.search(r"^name:\s+tiny-clip$", info, re.MULTILINE), info
    assert "embedding dim" in info

    proc = trove("models", "info", "nope", data_dir=tmp_path / "data")
    assert proc.returncode != 0
    assert "nope" in proc.stderr
    assert all(name in proc.stderr for name in PRESETS), proc.stderr
    assert "Traceback" not in proc.stderr


def test_demo_without_weights_explains_what_works(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = trove(
        "demo", "--data-dir", data, data_dir=tmp_path / "env-data", hf_home=tmp_path / "hf"
    )
    # A script running the demo learns from the exit status that nothing was searched.
    assert proc.returncode == 1
    assert proc.stdout == ""
    out = proc.stderr
    assert "works now" in out
    assert "needs weights" in out
    assert "models download clip-vit-b-32" in out
    assert "--model tiny-clip" in out
    assert "Traceback" not in proc.stderr


def test_index_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "folder"
    proc = trove("index", missing, "--model", "tiny-clip", data_dir=tmp_path / "data")
    assert proc.returncode == 1
    assert str(missing) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert SUMMARY.search(proc.stdout) is None
    assert not (tmp_path / "data").exists(), "a failed index run must not create a library"


def test_index_refuses_a_folder_holding_the_data_folder(tmp_path: Path) -> None:
    # Its thumbnails and catalog would be indexed as the user's own files.
    lib = tmp_path / "photos"
    make_photo(lib / "beach.jpg", seed=1, quality=90)
    data = lib / "trove-data"
    proc = trove(
        "index", lib, "--data-dir", data, "--model", "tiny-clip", data_dir=tmp_path / "env"
    )
    assert proc.returncode == 1
    assert f"{lib} holds Trove's data folder ({data})" in proc.stderr, proc.stderr
    assert "--data-dir or TROVE_DATA_DIR" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert SUMMARY.search(proc.stdout) is None
    assert sorted(p.name for p in lib.iterdir()) == ["beach.jpg"], "nothing may be created"
    assert not (tmp_path / "env").exists()


def test_remove_a_library_folder(tmp_path: Path) -> None:
    from search.library import Library

    trips = [make_photo(tmp_path / "trips" / f"t{i}.jpg", 300 + i, quality=90) for i in range(3)]
    pets = [make_photo(tmp_path / "pets" / f"p{i}.jpg", 400 + i, quality=90) for i in range(2)]
    trips_dir, pets_dir = (tmp_path / "trips").resolve(), (tmp_path / "pets").resolve()
    data = tmp_path / "data"
    ok(trove("index", trips_dir, pets_dir, "--model", "tiny-clip", data_dir=data))

    unknown = trove("remove", tmp_path / "music", data_dir=data)
    assert unknown.returncode == 1 and "Traceback" not in unknown.stderr
    assert "is not a library folder. Library folders: " in unknown.stderr, unknown.stderr
    assert str(trips_dir) in unknown.stderr and str(pets_dir) in unknown.stderr
    library = Library(data)
    try:
        with library.writer():  # another process indexing
            busy = trove("remove", trips_dir, data_dir=data)
    finally:
        library.close()
    assert busy.returncode == 1 and "Already indexing" in busy.stderr, busy.stderr
    status = json.loads(ok(trove("status", "--json", data_dir=data)).stdout)
    assert status["items"] == {"image": 5}, "a refused remove changes nothing"

    # --data-dir names the library, whatever TROVE_DATA_DIR says.
    removed = ok(trove("remove", trips_dir, "--data-dir", data, data_dir=tmp_path / "other"))
    assert removed.stdout.startswith(f"Removed {trips_dir}: 3 files left the library"), removed
    assert not (tmp_path / "other").exists()
    assert all(p.exists() for p in trips), "the files themselves stay on disk"

    status = json.loads(ok(trove("status", "--json", data_dir=data)).stdout)
    assert status["roots"] == [str(pets_dir)]
    assert status["items"] == {"image": 2}
    assert status["indexes"] == {"tiny-clip": 2}
    results = search_json(trove("search", "a photo", "-k", "20", "--json", data_dir=data))
    assert sorted(r["path"] for r in results) == sorted(str(p.resolve()) for p in pets)


def test_index_folder_again_keeps_its_remembered_globs(tmp_path: Path) -> None:
    """Issue 21 item 8: `index FOLDER` without --exclude keeps the folder's remembered globs;
    new ones given replace them."""
    lib, data = tmp_path / "photos", tmp_path / "data"
    make_photo(lib / "keep.jpg", 1, quality=90)
    make_photo(lib / "drafts" / "draft.jpg", 2, quality=90)

    counts = summary(
        ok(trove("index", lib, "--model", "tiny-clip", "--exclude", "drafts", data_dir=data)).stdout
    )
    assert counts["indexed"] == 1
    counts = summary(ok(trove("index", lib, data_dir=data)).stdout)
    assert (counts["indexed"], counts["unchanged"], counts["removed"]) == (0, 1, 0)
    counts = summary(ok(trove("index", lib, "--exclude", "*.tmp", data_dir=data)).stdout)
    assert (counts["indexed"], counts["unchanged"]) == (1, 1)


def test_second_writer_is_refused_before_any_model_loads(indexed: Indexed, tmp_path: Path):
    """Issue 21 item 8: the refusal comes at once, before models (here: weights that are not
    on this machine, which would fail with their own message) are looked at."""
    from search.library import Library

    data = tmp_path / "data"
    shutil.copytree(indexed.data, data)
    library = Library(data)
    try:
        with library.writer():
            proc = trove(
                "index", "--model", "clip-vit-b-32", data_dir=data, hf_home=tmp_path / "no-hf"
            )
    finally:
        library.close()
    assert proc.returncode == 1
    assert "Already indexing" in proc.stderr, proc.stderr


def test_index_with_an_invalid_model_choice_fails_before_saving_anything(tmp_path: Path) -> None:
    lib, data = tmp_path / "photos", tmp_path / "data"
    make_photo(lib / "one.jpg", 1, quality=90)
    for option, name, message in (
        ("--audio-model", "tiny-clip", "tiny-clip is not an audio model"),
        ("--audio-model", "nosuch", "Unknown model 'nosuch'"),
        ("--text-model", "nosuch", "Unknown text model 'nosuch'"),
        ("--model", "tiny-clap", "tiny-clap is not a picture model"),
    ):
        proc = trove("index", lib, "--model", "tiny-clip", option, name, data_dir=data)
        assert proc.returncode == 1, (option, name, proc.stdout, proc.stderr)
        assert message in proc.stderr
        assert "Traceback" not in proc.stderr
        assert SUMMARY.search(proc.stdout) is None
        assert not data.exists(), "an invalid model choice must not create a library"


def test_search_checks_the_models_it_is_given(indexed: Indexed) -> None:
    """Issue 21 item 7: an unknown or wrong-space model on `search` is named as such (not
    sent to `index`), and --audio-model/--text-model are checked, not ignored."""
    for option, name, message in (
        ("--model", "nosuch", "Unknown model 'nosuch'"),
        ("--audio-model", "nosuch", "Unknown model 'nosuch'"),
        ("--audio-model", "tiny-clip", "tiny-clip is not an audio model"),
        ("--text-model", "nosuch", "Unknown text model 'nosuch'"),
    ):
        proc = trove("search", "cat", option, name, data_dir=indexed.data)
        assert proc.returncode == 1, (option, name, proc.stdout, proc.stderr)
        assert message in proc.stderr
        assert f"index {option} {name}" not in proc.stderr
        assert proc.stdout == ""


def test_status_loads_no_model_and_the_summary_times_the_whole_command(tmp_path: Path) -> None:
    """Issue 21 item 8: `status` imports no torch (it reads the catalog and index sidecars
    only), and an unchanged rescan's "Done in" counts the whole command, model loading too."""
    import subprocess
    import sys
    import time

    lib, data = tmp_path / "photos", tmp_path / "data"
    make_photo(lib / "one.jpg", 1, quality=90)
    ok(trove("index", lib, "--model", "tiny-clip", data_dir=data))

    started = time.monotonic()
    rescan = ok(trove("index", data_dir=data))
    wall_s = time.monotonic() - started
    reported_s = float(re.search(r"^Done in ([0-9.]+) s", rescan.stdout, re.MULTILINE)[1])
    assert reported_s >= 0.5 * wall_s, (reported_s, wall_s)

    probe = (
        "import sys, app; rc = app.main(['status', '--data-dir', sys.argv[1]]); "
        "print('torch loaded' if 'torch' in sys.modules else 'no torch')"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(data)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("no torch"), proc.stdout
