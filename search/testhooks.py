"""Pause points that let tests kill the process at an exact moment (inert unless asked).

With TROVE_TEST_PAUSE_AT=POINT (or POINT@N: its N-th hit; several comma-separated), a
process reaching POINT prints `trove-test-pause: POINT` on stderr and sleeps, so a test
can SIGKILL it there: during a catalog commit, between an index file and its sidecar, ...
With TROVE_TEST_COUNT_HITS=1 the points only count their hits (`hit_counts`), so a test can
measure how many times an uninterrupted run passes each one and pick a hit that a run in
the same state is sure to reach. Without either variable a pause point costs two
dictionary lookups.

With TROVE_TEST_CRASH_AT=POINT (several comma-separated), a process reaching a crash point
of that name exits at once, as a process killed by the kernel would, every time it gets
there: a file that kills the worker handling it (tests/e2e/test_ray.py).

With TROVE_TEST_DELAY_AT=POINT=SECONDS (several comma-separated), a process sleeps SECONDS at
every hit of a delay point: a run long enough for a browser to watch its progress, however
fast the machine (tests/e2e/test_browser.py).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter

PAUSE_ENV = "TROVE_TEST_PAUSE_AT"
COUNT_ENV = "TROVE_TEST_COUNT_HITS"
CRASH_ENV = "TROVE_TEST_CRASH_AT"
DELAY_ENV = "TROVE_TEST_DELAY_AT"
_hits: Counter[str] = Counter()
_hits_lock = threading.Lock()


def pause_point(name: str) -> None:
    """Sleep here for an hour, announced on stderr, when TROVE_TEST_PAUSE_AT names `name`."""
    wanted = os.environ.get(PAUSE_ENV)
    if not wanted and not os.environ.get(COUNT_ENV):
        return
    with _hits_lock:
        _hits[name] += 1
        hit = _hits[name]
    for spec in (wanted or "").split(","):
        point, _, nth = spec.strip().partition("@")
        if point == name and hit == int(nth or 1):
            print(f"trove-test-pause: {name}", file=sys.stderr, flush=True)
            time.sleep(3600)


def hit_counts() -> dict[str, int]:
    """How many times this process has passed each pause point (counted only while
    TROVE_TEST_PAUSE_AT or TROVE_TEST_COUNT_HITS is set)."""
    with _hits_lock:
        return dict(_hits)


def crash_point(name: str) -> None:
    """Exit the process here, without cleaning up, when TROVE_TEST_CRASH_AT names `name`."""
    wanted = os.environ.get(CRASH_ENV)
    if wanted and name in (point.strip() for point in wanted.split(",")):
        print(f"trove-test-crash: {name}", file=sys.stderr, flush=True)
        os._exit(70)


def delay_point(name: str) -> None:
    """Sleep here for the seconds TROVE_TEST_DELAY_AT gives `name`, at every hit."""
    wanted = os.environ.get(DELAY_ENV)
    if not wanted:
        return
    for spec in wanted.split(","):
        point, _, seconds = spec.strip().partition("=")
        if point == name:
            time.sleep(float(seconds))
