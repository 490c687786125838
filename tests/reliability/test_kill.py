"""Crash safety: index runs killed with SIGKILL at random points of their work and at the
worst moments (inside a catalog commit, right after one, between an index file and its
sidecar, before an index file's rename) lose nothing, leave a consistent library whose index
loads or is rebuilt exactly when it should, and resume to exactly the result of an
uninterrupted run. Ctrl-C stops cleanly and says how to resume.

The runs are real `app.py index` processes, forked from tests/reliability/launcher.py so
that two dozen of them fit in a few minutes. Every run finds new photos to index (the
library grows by NEW_PER_RUN before each), so each kill lands on live work. Every kill is
made while the run is held at a pause point (search/testhooks.py), so it lands whatever the
speed of the machine: a random kill is at the N-th SQL statement of the run's work, N drawn
from the number an uninterrupted run from the same state issues.
"""

from __future__ import annotations

import random
import shutil
import signal
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.badfiles import not_an_image, truncated_images
from tests.reliability.harness import (
    Launcher,
    Run,
    catalog_generation,
    check_indexes,
    cli,
    committed_items,
    index_args,
    integrity,
    make_small_photos,
    search_all,
)

pytestmark = pytest.mark.slow

FIRST_PHOTOS = 60
NEW_PER_RUN = 24
RANDOM_KILLS = 12
# (pause point, which hit): `sqlite.*` surround every COMMIT (launcher.py), `store.*` are
# the pause points in search/storage/store.py's atomic save.
# A run over NEW_PER_RUN new photos commits at least 7 times (its folder, then a batch per
# 4 photos; a failed file is not retried while unchanged, so it adds no commit): every hit
# below is reached.
POINT_KILLS = [
    ("sqlite.before-commit", 2),
    ("sqlite.before-commit", 4),
    ("sqlite.before-commit", 7),
    ("sqlite.after-commit", 3),
    ("sqlite.after-commit", 5),
    ("sqlite.after-commit", 7),
    ("store.write.before-rename", 1),
    ("store.write.before-rename", 2),
    ("store.save.between-index-and-sidecar", 1),
    ("store.save.between-index-and-sidecar", 1),
]
# The one vector key a library of photos indexed with tiny-clip has.
KEY = "tiny-clip"
# What opening the index does after the kills (docs/reliability.md's figures): the
# test is deterministic, so these change only with what a run does.
OUTCOMES = {"loaded": 5, "rebuilt": 16}


@dataclass(frozen=True)
class IndexOnDisk:
    """What the runs have left of the library's index, as the test follows it from where
    each run was stopped: the catalog generation the index file's header reflects (None
    while there is no file) and whether its sidecar exists."""

    generation: int | None = None
    sidecar: bool = False

    def expected(self, catalog_generation: int) -> str:
        """What opening it must do (search/storage/store.py: open_store): load it when it reflects
        the catalog's generation, else rebuild it, naming why."""
        if self.generation is None or not self.sidecar:
            return "rebuilt: the index file is missing"
        if self.generation == catalog_generation:
            return "loaded"
        return (
            f"rebuilt: it reflects catalog generation {self.generation}, now {catalog_generation}"
        )

    def after_kill(
        self, point: str, hit: int, at_start: int, vectors_at_start: bool, at_kill: int
    ) -> IndexOnDisk:
        """The index a run leaves when killed at `point`@`hit`, the catalog being at
        generation `at_start` when it began and at `at_kill` when it was killed.

        A run saves the index (the index file, then its sidecar) at most twice: when it
        opens an index that does not load, the one it rebuilds (at `at_start`, before any
        commit of its own); after its last commit, the index at the catalog's generation then
        (`at_kill`, for a kill inside that save). `work.sql` and the `sqlite.*` points are
        reached between the two: after the first save, before the last.
        """
        saves = [at_start] if vectors_at_start and self.expected(at_start) != "loaded" else []
        saves.append(at_kill)
        if point == "store.write.before-rename":  # twice a save: index file, then sidecar
            done, index_renamed = (hit - 1) // 2, hit % 2 == 0
        elif point == "store.save.between-index-and-sidecar":  # once a save
            done, index_renamed = hit - 1, True
        else:
            done, index_renamed = len(saves) - 1, False
        disk = self
        for generation in saves[:done]:
            disk = IndexOnDisk(generation, sidecar=True)
        if index_renamed:
            disk = IndexOnDisk(saves[done], disk.sidecar)
        return disk


@pytest.fixture(scope="module")
def launcher():
    launcher = Launcher()
    yield launcher
    launcher.close()


def stop_at_pause(run: Run, point: str, sig: int = signal.SIGKILL) -> None:
    """Send `sig` to the run once it is held at `point`: the kill lands there, or the test
    fails (the run ended without reaching it)."""
    reached = run.wait_for(f"trove-test-pause: {point}")
    assert reached, f"the run ended before pause point {point}:\n{run.output()}"
    assert run.kill(sig), f"the run held at {point} had ended:\n{run.output()}"


def statements_of_an_uninterrupted_run(launcher, root: Path, data: Path, scratch: Path) -> int:
    """How many `work.sql` points the next run over `data` passes: the same run to its end
    on a copy of the library."""
    if data.exists():
        shutil.copytree(data, scratch)
    args = index_args(root, scratch, "--batch-size", "4")
    return launcher.count_hits(args, scratch.with_suffix(".log"))["work.sql"]


def assert_consistent(data_dir: Path, before: dict, label: str) -> dict:
    """The catalog is intact and keeps every item committed before; returns its items."""
    assert integrity(data_dir) == "ok", label
    after = committed_items(data_dir)
    lost = {p: e for p, e in before.items() if p not in after or (e is None) != (after[p] is None)}
    assert not lost, f"{label}: committed items lost or changed: {sorted(lost)[:5]}"
    return after


def test_sigkill_at_random_and_at_commit_and_save_points(tmp_path, launcher):
    rng = random.Random(8)
    root = tmp_path / "photos"
    data = tmp_path / "data"
    make_small_photos(root, range(FIRST_PHOTOS))
    truncated_images(root / "broken")
    not_an_image(root / "broken")
    trials = [("random", 0)] * RANDOM_KILLS + POINT_KILLS
    rng.shuffle(trials)

    committed: dict = {}
    disk = IndexOnDisk()
    kills: Counter = Counter()
    outcomes: Counter = Counter()
    next_seed = FIRST_PHOTOS
    for n, (kind, hit) in enumerate(trials):
        make_small_photos(root, range(next_seed, next_seed + NEW_PER_RUN))
        next_seed += NEW_PER_RUN
        if kind == "random":
            total = statements_of_an_uninterrupted_run(launcher, root, data, tmp_path / f"c{n}")
            point, hit = "work.sql", rng.randint(1, total)
        else:
            point = kind
        at_start = catalog_generation(data) if data.exists() else 0
        vectors_at_start = any(e is None for e in committed.values())
        env = {"TROVE_TEST_PAUSE_AT": f"{point}@{hit}"}
        run = launcher.start(
            index_args(root, data, "--batch-size", "4"), tmp_path / f"run-{n}.log", env
        )
        stop_at_pause(run, point)
        kills[kind] += 1

        label = f"after run {n} ({point}@{hit})"
        committed = assert_consistent(data, committed, label)
        at_kill = catalog_generation(data)
        disk = disk.after_kill(point, hit, at_start, vectors_at_start, at_kill)
        indexed = any(e is None for e in committed.values())
        # The index loads, or is rebuilt for the reason expected, holding exactly the
        # catalog's vectors; any other failure to load fails here.
        expected = {KEY: disk.expected(at_kill)} if indexed else {}
        outcome = check_indexes(data)
        assert outcome == expected, label
        outcomes.update(o.split(":")[0] for o in outcome.values())
        print(f"{label}: {outcome}")

    print(f"\n{sum(kills.values())} kills: {dict(kills)}; index after a kill: {dict(outcomes)}")
    assert kills == {"random": RANDOM_KILLS, **Counter(point for point, _ in POINT_KILLS)}
    assert outcomes == OUTCOMES, "update OUTCOMES and docs/reliability.md"
    final = launcher.start(index_args(root, data), tmp_path / "final.log")
    assert final.join() == 0, final.output()
    assert "Done" in final.output()
    assert_consistent(data, committed, "after the final run")
    assert check_indexes(data) == {KEY: "loaded"}

    reference = tmp_path / "reference"
    proc = cli(*index_args(root, reference, "--quiet"))
    assert proc.returncode == 0, proc.stderr
    assert committed_items(data) == committed_items(reference)
    assert search_all(data) == search_all(reference)
    leftovers = [p.name for p in (data / "indexes").iterdir() if p.suffix == ".tmp"]
    assert not leftovers


@pytest.mark.parametrize(
    ("moment", "batches_kept", "index_saved"),
    [
        # Between two batches (before the third is encoded): both committed ones are kept
        # and the index is saved with them.
        ("work.encode@3", 2, True),
        # Inside the second batch's transaction (add_root's is the run's first commit): it
        # is rolled back; the run stopped between a catalog change and its index update, so
        # the index is not saved and the next open rebuilds it.
        ("sqlite.before-commit@3", 1, False),
        # Just after the second batch's COMMIT: it is kept; the index is not saved either.
        ("sqlite.after-commit@3", 2, False),
    ],
)
def test_ctrl_c_commits_what_is_done_and_says_how_to_resume(
    tmp_path, launcher, moment, batches_kept, index_saved
):
    """Ctrl-C (SIGINT) while the run is held at a pause point in the middle of its work, on
    a library that a first run has indexed."""
    root = tmp_path / "photos"
    data = tmp_path / "data"
    make_small_photos(root, range(40))
    first = launcher.start(index_args(root, data), tmp_path / "first.log")
    assert first.join() == 0, first.output()
    before = committed_items(data)
    at_start = catalog_generation(data)
    make_small_photos(root, range(40, 120))

    args = index_args(root, data, "--batch-size", "4")
    run = launcher.start(args, tmp_path / "run.log", {"TROVE_TEST_PAUSE_AT": moment})
    stop_at_pause(run, moment.split("@")[0], signal.SIGINT)
    out = run.output()
    assert run.status == 130, out
    assert "Traceback" not in out, out
    assert "Interrupted" in out and "run the same command again to resume" in out, out
    kept = assert_consistent(data, before, "after Ctrl-C")
    assert len(kept) == 40 + 4 * batches_kept
    now = catalog_generation(data)
    assert now == at_start + batches_kept
    saved = IndexOnDisk(now if index_saved else at_start, sidecar=True)
    assert check_indexes(data) == {KEY: saved.expected(now)}

    resumed = launcher.start(index_args(root, data, "--quiet"), tmp_path / "resumed.log")
    assert resumed.join() == 0, resumed.output()
    assert f"{120 - len(kept)} indexed" in resumed.output(), resumed.output()
    reference = launcher.start(index_args(root, tmp_path / "ref", "--quiet"), tmp_path / "ref.log")
    assert reference.join() == 0, reference.output()
    assert search_all(data) == search_all(tmp_path / "ref")
