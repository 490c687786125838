"""Pause points that let tests kill the process at an exact moment (inert unless asked).

With TROVE_TEST_PAUSE_AT=POINT (or POINT@N: its N-th hit; several comma-separated), a
process reaching POINT prints `trove-test-pause: POINT` on stderr and sleeps, so a test
can SIGKILL it there: during a catalog commit, between an index file and its sidecar, ...
Without the variable a pause point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter

PAUSE_ENV = "TROVE_TEST_PAUSE_AT"
_hits: Counter[str] = Counter()
_hits_lock = threading.Lock()


def pause_point(name: str) -> None:
    """Sleep here for an hour, announced on stderr, when TROVE_TEST_PAUSE_AT names `name`."""
    wanted = os.environ.get(PAUSE_ENV)
    if not wanted:
        return
    with _hits_lock:
        _hits[name] += 1
        hit = _hits[name]
    for spec in wanted.split(","):
        point, _, nth = spec.strip().partition("@")
        if point == name and hit == int(nth or 1):
            print(f"trove-test-pause: {name}", file=sys.stderr, flush=True)
            time.sleep(3600)
