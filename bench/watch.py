"""What watching a library costs, and how soon a new file is found (issue 17):

- idle CPU: `python app.py watch` over a library of 20,000 indexed photos in 100 folders,
  its CPU seconds (process and reaped children) over 60 seconds in which nothing changes;
- time to searchable: a photo copied into a watched folder, until the catalog (which every
  search reads) holds it; one photo at a time, 50 of them, median and spread.

    python bench/watch.py                  # ~15 min on 2 cores (indexing the 20,000 first)
    python bench/watch.py --files 2000     # a quicker look

Writes bench/results/watch.json (docs/watching.md renders it: bench/figures.py). The indexed
library is kept in bench/.cache/watch-N/ for the next run. Untrained tiny-clip: the
figures are the watcher's and the pipeline's, not a model's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script: make `search` importable
    sys.path.insert(0, str(ROOT))

from search.library import Library  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "watch.json"
CACHE = ROOT / "bench" / ".cache"
FOLDERS = 100
TICKS = os.sysconf("SC_CLK_TCK")


def photo(path: Path, seed: int, side: int = 32) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(path)
    return path


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and of its children it has waited for (decode workers)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICKS


def in_catalog(data: Path, path: Path) -> bool:
    library = Library(data, create=False)
    try:
        item = library.catalog.item_by_path(str(path))
        return item is not None and item.error is None
    finally:
        library.close()


def app(*args: object, env: dict) -> list[str]:
    return [sys.executable, str(ROOT / "app.py"), *map(str, args)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--idle-s", type=float, default=60.0)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    base = CACHE / f"watch-{args.files}"
    library, data = base / "library", base / "data"
    index_s = None
    if not (base / "indexed").exists():
        shutil.rmtree(base, ignore_errors=True)
        for i in range(args.files):
            photo(library / f"f{i % FOLDERS:03d}" / f"p{i:06d}.png", i)
        started = time.monotonic()
        subprocess.run(
            app("index", library, "--model", "tiny-clip", "--quiet", "--batch-size", "128",
                "--data-dir", data, env=env),
            env=env, check=True,
        )  # fmt: skip
        index_s = time.monotonic() - started
        (base / "indexed").write_text(json.dumps({"index_s": index_s}))
    else:
        index_s = json.loads((base / "indexed").read_text())["index_s"]
    new = library / "new"
    shutil.rmtree(new, ignore_errors=True)
    staging = base / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    incoming = [photo(staging / f"n{i:03d}.png", 10**6 + i) for i in range(args.samples)]

    log = base / "watch.log"
    with open(log, "wb") as out:
        started = time.monotonic()
        proc = subprocess.Popen(
            app("watch", "--data-dir", data, env=env), env=env, stdout=out, stderr=out
        )
    try:
        # Ready: said what it watches, and its first scan (nothing to do) has gone quiet.
        while "Ctrl-C stops" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
        quiet = 0
        last = cpu_seconds(proc.pid)
        while quiet < 3:
            time.sleep(1.0)
            now = cpu_seconds(proc.pid)
            quiet = quiet + 1 if now - last < 0.02 else 0
            last = now
        ready_s = time.monotonic() - started

        before, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(args.idle_s)
        idle_cpu = cpu_seconds(proc.pid) - before
        idle_wall = time.monotonic() - t0

        new.mkdir()
        delays = []
        for source in incoming:
            target = new / source.name
            copied = time.monotonic()
            shutil.copy(source, target)
            while not in_catalog(data, target):
                assert time.monotonic() - copied < 120, f"{target} not indexed: {log.read_text()}"
                time.sleep(0.02)
            delays.append(time.monotonic() - copied)
    finally:
        proc.terminate()
        proc.wait(60)
    shutil.rmtree(new, ignore_errors=True)
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "platform": f"{platform.system()} {platform.release()}",
        "cpus": os.cpu_count(),
        "files": args.files,
        "folders": FOLDERS,
        "model": "tiny-clip",
        "debounce_s": 1.0,
        "index_s": round(index_s, 1),
        "watch_ready_s": round(ready_s, 1),
        "idle_window_s": round(idle_wall, 1),
        "idle_cpu_s": round(idle_cpu, 3),
        "samples": len(delays),
        "to_searchable_s": {
            "median": round(statistics.median(delays), 2),
            "min": round(min(delays), 2),
            "max": round(max(delays), 2),
        },
    }
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
