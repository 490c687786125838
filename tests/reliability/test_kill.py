"""Crash safety: index runs killed with SIGKILL at random moments and at the worst moments
(inside a catalog commit, right after one, between an index file and its sidecar, before
an index file's rename) lose nothing, leave a consistent library, and resume to exactly the
result of an uninterrupted run. Ctrl-C stops cleanly and says how to resume.

The runs are real `app.py index` processes, forked from tests/reliability/launcher.py so
that two dozen of them fit in a few minutes. Every run finds new photos to index (the
library grows by NEW_PER_RUN before each), so each kill lands on live work.
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter

import pytest

from tests.badfiles import not_an_image, truncated_images
from tests.reliability.harness import (
    Launcher,
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
# the pause points in search/store.py's atomic save.
POINT_KILLS = [
    ("sqlite.before-commit", 3),
    ("sqlite.before-commit", 6),
    ("sqlite.before-commit", 9),
    ("sqlite.after-commit", 4),
    ("sqlite.after-commit", 7),
    ("sqlite.after-commit", 10),
    ("store.write.before-rename", 1),
    ("store.write.before-rename", 2),
    ("store.save.between-index-and-sidecar", 1),
    ("store.save.between-index-and-sidecar", 1),
]


@pytest.fixture(scope="module")
def launcher():
    launcher = Launcher()
    yield launcher
    launcher.close()


def assert_consistent(data_dir, before: dict, label: str, indexes: Counter | None = None) -> dict:
    assert integrity(data_dir) == "ok", label
    after = committed_items(data_dir)
    lost = {p: e for p, e in before.items() if p not in after or (e is None) != (after[p] is None)}
    assert not lost, f"{label}: committed items lost or changed: {sorted(lost)[:5]}"
    if after:
        # The index loads, or is rebuilt, and holds exactly the catalog's vectors.
        outcome = check_indexes(data_dir)
        if indexes is not None:
            indexes.update(outcome.values())
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
    kills = []
    indexes: Counter = Counter()
    next_seed = FIRST_PHOTOS
    for n, (point, hit) in enumerate(trials):
        make_small_photos(root, range(next_seed, next_seed + NEW_PER_RUN))
        next_seed += NEW_PER_RUN
        env = {} if point == "random" else {"TROVE_TEST_PAUSE_AT": f"{point}@{hit}"}
        run = launcher.start(
            index_args(root, data, "--batch-size", "4"), tmp_path / f"run-{n}.log", env
        )
        if point == "random":
            if run.wait_for("Indexing"):
                time.sleep(rng.uniform(0.0, 1.0))
        else:
            reached = run.wait_for(f"trove-test-pause: {point}")
            assert reached, f"run {n} ended before pause point {point}@{hit}:\n{run.output()}"
        if run.kill():
            kills.append(point)
        else:
            assert run.status == 0, run.output()
        label = f"after run {n} ({point}@{hit})"
        committed = assert_consistent(data, committed, label, indexes)

    assert len(kills) >= 20, kills
    print(f"\n{len(kills)} kills: {dict(Counter(kills))}; index after a kill: {dict(indexes)}")
    final = launcher.start(index_args(root, data), tmp_path / "final.log")
    assert final.join() == 0, final.output()
    assert "Done" in final.output()
    assert_consistent(data, committed, "after the final run")

    reference = tmp_path / "reference"
    proc = cli(*index_args(root, reference, "--quiet"))
    assert proc.returncode == 0, proc.stderr
    assert committed_items(data) == committed_items(reference)
    assert search_all(data) == search_all(reference)
    leftovers = [p.name for p in (data / "indexes").iterdir() if p.suffix == ".tmp"]
    assert not leftovers


@pytest.mark.parametrize(
    "moment",
    [
        "sqlite.before-commit@8",
        "sqlite.after-commit@8",
    ],
)
def test_ctrl_c_commits_what_is_done_and_says_how_to_resume(tmp_path, launcher, moment):
    """Ctrl-C (SIGINT) while the run is held at a pause point in the middle of its work."""
    root = tmp_path / "photos"
    make_small_photos(root, range(120))
    data = tmp_path / "data"
    args = index_args(root, data, "--batch-size", "4")
    run = launcher.start(args, tmp_path / "run.log", {"TROVE_TEST_PAUSE_AT": moment})
    assert run.wait_for(f"trove-test-pause: {moment.split('@')[0]}"), run.output()
    assert run.kill(signal.SIGINT), "the run ended before Ctrl-C"
    out = run.output()
    assert run.status == 130, out
    assert "Traceback" not in out, out
    assert "Interrupted" in out and "run the same command again to resume" in out, out
    kept = assert_consistent(data, {}, "after Ctrl-C")
    assert 0 < len(kept) < 120

    resumed = cli(*index_args(root, data, "--quiet"))
    assert resumed.returncode == 0, resumed.stderr
    assert f"{120 - len(kept)} indexed" in resumed.stdout, resumed.stdout
    reference = tmp_path / "reference"
    assert cli(*index_args(root, reference, "--quiet")).returncode == 0
    assert search_all(data) == search_all(reference)
