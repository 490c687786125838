"""watchdog against watchfiles, the two file-watching libraries issue 17 names, on what a
library watcher needs: the time to start watching a tree of 20,000 files, CPU while nothing
changes, the delay from a file written to its event, and whether the backend says when a
writer has closed the file (how a half-copied photo is told from a finished one).

    python bench/watch_backends.py     # ~1 min; writes bench/results/watch_backends.json

Both run on the platform's native API (inotify here). Idle CPU is the process's CPU time
(every thread) over the idle window.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

FILES = 20_000
PER_FOLDER = 50
IDLE_S = 20.0
LATENCY_FILES = 20
RESULTS = Path(__file__).resolve().parent / "results" / "watch_backends.json"


def make_tree(root: Path) -> None:
    for i in range(FILES):
        folder = root / f"f{i // PER_FOLDER:04d}"
        if i % PER_FOLDER == 0:
            folder.mkdir()
        (folder / f"p{i:05d}.jpg").write_bytes(b"\xff\xd8" + bytes(200))


class Seen:
    """Paths the backend reported, with the moment each was first seen."""

    def __init__(self) -> None:
        self.when: dict[str, float] = {}
        self.closed: set[str] = set()
        self.lock = threading.Lock()

    def add(self, path: str, closed: bool = False) -> None:
        with self.lock:
            self.when.setdefault(path, time.perf_counter())
            if closed:
                self.closed.add(path)


def run_watchdog(root: Path, seen: Seen):
    from watchdog.events import FileClosedEvent, FileSystemEventHandler
    from watchdog.observers import Observer

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event) -> None:
            seen.add(str(event.src_path), isinstance(event, FileClosedEvent))

    observer = Observer()
    observer.schedule(Handler(), str(root), recursive=True)
    observer.start()
    return observer.stop, True


def run_watchfiles(root: Path, seen: Seen):
    import watchfiles

    stop = threading.Event()

    def loop() -> None:
        # 50 ms: its default step, with the debounce cut to one step so the delay is the
        # delivery's (its default debounce, 1.6 s, would add 1.6 s; a 1 ms step costs ~2 s
        # of CPU a minute while idle)
        for changes in watchfiles.watch(root, stop_event=stop, debounce=50, step=50):
            for _, path in changes:
                seen.add(path)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    time.sleep(0.5)  # watchfiles gives no signal when its watches are in place
    return stop.set, False


def measure(name: str, start) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_tree(root)
        seen = Seen()
        t0 = time.perf_counter()
        stop, knows_when_ready = start(root, seen)
        ready_s = time.perf_counter() - t0 if knows_when_ready else None
        time.sleep(1.0)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        time.sleep(IDLE_S)
        idle_cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0) * 60
        delays = []
        for i in range(LATENCY_FILES):
            path = root / "f0001" / f"new{i}.jpg"
            written = time.perf_counter()
            path.write_bytes(b"\xff\xd8" + bytes(1000))
            while str(path) not in seen.when and time.perf_counter() - written < 5:
                time.sleep(0.0005)
            delays.append(seen.when.get(str(path), written + 5) - written)
        stop()
        return {
            "backend": name,
            # None: the backend does not say when its watches are in place
            "start_watching_s": None if ready_s is None else round(ready_s, 3),
            "idle_cpu_s_per_60s": round(idle_cpu, 3),
            "event_delay_ms_median": round(statistics.median(delays) * 1000, 2),
            "reports_close_after_write": bool(seen.closed),
        }


def main() -> int:
    results = [measure("watchdog", run_watchdog), measure("watchfiles", run_watchfiles)]
    out = {
        "files": FILES,
        "folders": FILES // PER_FOLDER,
        "idle_window_s": IDLE_S,
        "platform": f"{platform.system()} {platform.release()}",
        "cpus": os.cpu_count(),
        "results": results,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
