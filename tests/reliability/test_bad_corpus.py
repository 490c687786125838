"""The bad-file corpus (tests/badfiles.py) through a real index run: every broken file is
recorded with a reason and skipped, the good files are indexed, nothing crashes or hangs,
and memory stays bounded. Each decode, run in an isolated worker, ends within its bound.

Root reads a file of mode 000, so when the tests run as root (as CI does) the unreadable
case is checked on its own, with the index run dropped to an unprivileged user.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
import time
from concurrent.futures import wait
from pathlib import Path

import pytest

from search.decode.isolation import IsolatedDecoder
from search.errors import BadFileError
from tests.badfiles import generate, named_pipe, non_utf8_names, unreadable_files
from tests.reliability.harness import Launcher, committed_items, index_args, make_small_photos

pytestmark = pytest.mark.slow

NOBODY = 65534
# The bound a single decode must stay within (IsolatedDecoder's limit in this test), and
# the memory the whole index run may reach: the tiny model, torch and the decode workers.
DECODE_BOUND_S = 10.0
RUN_MEMORY_BOUND_MIB = 2048
# Cases with a test of their own below (each needs its own run to be checked); the corpus
# test leaves them out.
KNOWN_TO_STOP_THE_RUN = [named_pipe, non_utf8_names]
TINY_AUDIO_AND_TEXT = ("--audio-model", "tiny-clap", "--text-model", "tiny-text")
# The decode function each kind's files go through (the video one opens the container and
# reads its streams), as "module:function".
DECODERS = {
    "image": "search.decode.image:load_image",
    "audio": "search.decode.audio:load_audio",
    "video": "search.decode.video:probe_video",
    "document": "search.decode.documents:load_document",
}
# Far past the bound plus a replaced worker's start: only a decode the bound failed to stop
# gets there (the test then fails instead of waiting on it for ever).
HANG_S = 120.0


def decoder_of(kind: str):
    module, _, name = DECODERS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


# What a reason must never be: the machinery failing, not the file.
NOT_A_FILE_PROBLEM = ("ModuleNotFoundError", "ImportError", "Traceback", "forkserver")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The corpus and four good photos."""
    top = tmp_path_factory.mktemp("corpus")
    root = top / "library"
    leave_out = KNOWN_TO_STOP_THE_RUN + ([unreadable_files] if os.geteuid() == 0 else [])
    cases, unavailable = generate(root / "bad", leave_out=leave_out)
    # The tools the corpus needs (ffmpeg) are test requirements: a case left out is a gap.
    assert unavailable == [], unavailable
    make_small_photos(root / "good", range(4))
    return top, root, cases


@pytest.fixture(scope="module")
def launcher():
    launcher = Launcher()
    yield launcher
    launcher.close()


@pytest.fixture(scope="module")
def indexed(corpus, launcher):
    top, root, cases = corpus
    vanishing = [str(p) for c in cases if c.vanishes for p in c.paths]
    env = {"TROVE_TEST_VANISH": "\n".join(vanishing)}
    started = time.monotonic()
    args = index_args(root, top / "data", "--quiet", *TINY_AUDIO_AND_TEXT)
    run = launcher.start(args, top / "run.log", env)
    deadline = started + 300
    while not run.finished():
        if time.monotonic() > deadline:
            run.kill()
            pytest.fail(f"the index run hung on the corpus:\n{run.output()[-3000:]}")
        time.sleep(0.2)
    seconds = time.monotonic() - started
    return run, committed_items(top / "data"), seconds


def test_every_bad_file_is_recorded_with_a_reason_and_the_good_ones_indexed(corpus, indexed):
    _, root, cases = corpus
    run, items, seconds = indexed
    assert run.status == 0, run.output()[-3000:]
    good = sorted(p for p in items if "/good/" in p)
    assert len(good) == 4 and all(items[p] is None for p in good), run.output()[-3000:]
    problems = []
    for case in (c for c in cases if c.active):
        for path in map(str, case.paths):
            if path not in items:
                problems.append(f"{case.name}: {path} is not in the catalog")
            elif case.expect == "fail" and not items[path]:
                problems.append(f"{case.name}: {path} was indexed, expected a failure")
            elif items[path] is not None and not items[path].strip():
                problems.append(f"{case.name}: {path} failed without a reason")
            elif items[path] and any(w in items[path] for w in NOT_A_FILE_PROBLEM):
                problems.append(f"{case.name}: {path} failed for another reason: {items[path]}")
    assert not problems, "\n".join(problems)
    outcomes: dict[tuple[str, str], int] = {}
    for case in (c for c in cases if c.active):
        for path in map(str, case.paths):
            outcome = "indexed" if items.get(path, "") is None else "recorded as failed"
            outcomes[case.kind, outcome] = outcomes.get((case.kind, outcome), 0) + 1
    print(f"\ncorpus outcomes: {outcomes}")
    for path, reason in sorted(items.items()):
        if reason:
            print(f"  {os.path.relpath(path, root)}: {reason}")
    print(f"corpus of {len(cases)} cases indexed in {seconds:.1f} s")


def test_the_run_stays_within_its_memory_bound(indexed):
    run, _, _ = indexed
    assert run.max_rss_mib < RUN_MEMORY_BOUND_MIB, run.max_rss_mib
    print(f"\npeak memory of the index run: {run.max_rss_mib:.0f} MiB")


def test_each_decode_ends_within_its_bound(corpus, tmp_path):
    _, _, cases = corpus
    cases = [*cases, *named_pipe(tmp_path)]  # open() of a FIFO blocks: a hang in C
    slowest: dict[str, tuple[float, str]] = {}
    tried: dict[str, int] = {}
    outcomes: dict[str, str] = {}
    with IsolatedDecoder(workers=2, timeout_s=DECODE_BOUND_S, memory_mib=1024) as decoder:
        for case in (c for c in cases if c.active and not c.vanishes):
            decode = decoder_of(case.kind)
            for path in case.paths:
                started = time.monotonic()
                future = decoder.submit(decode, str(path))
                finished, _ = wait([future], timeout=HANG_S)
                assert finished, f"{path}: the decode went on past its bound"
                try:
                    decoder.result(future)
                    outcome = "decoded"
                except (BadFileError, OSError) as exc:
                    outcome = f"refused: {exc}"
                took = time.monotonic() - started
                outcomes[str(path)] = outcome
                tried[case.kind] = tried.get(case.kind, 0) + 1
                here = (took, f"{path.name} ({outcome})")
                slowest[case.kind] = max(slowest.get(case.kind, here), here)
    # The FIFO never yields a byte: only the bound can end its decode.
    (pipe,) = cases[-1].paths
    refused = f"refused: took longer than {DECODE_BOUND_S:g} s to decode"
    assert outcomes[str(pipe)] == refused, outcomes[str(pipe)]
    print(f"decodes tried per kind: {tried}")
    for kind, (took, what) in slowest.items():
        print(f"slowest {kind} decode: {took:.2f} s, {what}")


def test_a_named_pipe_is_skipped_not_waited_on(tmp_path, launcher):
    (pipe,) = named_pipe(tmp_path / "library")[0].paths
    make_small_photos(tmp_path / "library", range(2))
    run = launcher.start(
        index_args(tmp_path / "library", tmp_path / "data", "--quiet"), tmp_path / "run.log"
    )
    # Long enough for any machine to index two photos: only a run stuck on the pipe is
    # still going then.
    deadline = time.monotonic() + HANG_S
    while not run.finished() and time.monotonic() < deadline:
        time.sleep(0.2)
    hung = run.kill()
    assert not hung, "the index run waited on a named pipe"
    assert run.status == 0, run.output()
    items = committed_items(tmp_path / "data")
    # Left out by the walk, and named in the summary with the reason.
    assert str(pipe) not in items and sum(e is None for e in items.values()) == 2, items
    assert f"failed: {pipe}: cannot read: not a regular file" in run.output(), run.output()


def test_a_file_name_that_is_not_utf8_is_reported_not_fatal(tmp_path, launcher):
    case = non_utf8_names(tmp_path / "library")[0]
    make_small_photos(tmp_path / "library", range(2))
    run = launcher.start(
        index_args(tmp_path / "library", tmp_path / "data", "--quiet"), tmp_path / "run.log"
    )
    run.join()
    assert run.status == 0, run.output()[-3000:]
    output = run.output()
    for path in map(str, case.paths):
        printable = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        assert printable in output, output
    assert len([e for e in committed_items(tmp_path / "data").values() if e is None]) == 2


def test_an_unreadable_file_is_recorded(tmp_path_factory, launcher):
    """Mode 000, indexed by a user who may not read it (root may read anything)."""
    top = Path(tempfile.mkdtemp(prefix="trove-unreadable-"))
    try:
        library = top / "library"
        (private,) = unreadable_files(library)[0].paths
        make_small_photos(library, range(2))
        env = {}
        if os.geteuid() == 0:
            env = {"TROVE_TEST_USER": str(NOBODY), "HOME": str(top)}
            for folder, dirs, files in os.walk(top):
                for name in [*dirs, *files]:
                    os.lchown(os.path.join(folder, name), NOBODY, NOBODY)
            os.chown(top, NOBODY, NOBODY)
        run = launcher.start(index_args(library, top / "data", "--quiet"), top / "run.log", env)
        assert run.join() == 0, run.output()[-3000:]
        items = committed_items(top / "data")
        assert "Permission denied" in (items.get(str(private)) or ""), items
        assert sum(e is None for e in items.values()) == 2
    finally:
        shutil.rmtree(top, ignore_errors=True)
