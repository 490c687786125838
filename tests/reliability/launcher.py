"""Starts `app.py` commands as forked children of one process that imported Trove once.

Importing torch and open_clip takes ~8 s on the 2-core test machine; a kill test that runs
the CLI two dozen times would spend most of its minutes importing. The launcher imports
them once, then forks: each child is a real, separate `app.py` process (its own pid, its
own catalog connection and lock), started in milliseconds, that the test can SIGKILL.

Protocol, one JSON object per line: {"run": argv, "env": {...}, "log": path} -> {"pid": n};
{"wait": pid} -> {"status": exit status or -signal, "max_rss_mib": peak resident memory}.

Test-only environment the child acts on before it runs the command (never set by Trove):
TROVE_TEST_USER=uid (drop root, so file permissions mean something), TROVE_TEST_VANISH=
paths, one a line (deleted the moment the walk has listed every file), and pause points for
TROVE_TEST_PAUSE_AT (search/testhooks.py) beside Trove's own: `sqlite.before-commit` /
`sqlite.after-commit` around every COMMIT, `work.sql` before every statement the run issues
while it does its work and `work.encode` before each batch is encoded. With
TROVE_TEST_COUNT_HITS=1 a run that ends prints how many times it passed each point:
`trove-test-hits: {"point": n, ...}` (on stderr).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

from search.testhooks import COUNT_ENV, PAUSE_ENV, hit_counts, pause_point


def main() -> None:
    import app  # noqa: F401  (the imports are the point)
    import indexers.pipeline  # noqa: F401
    import search.engine  # noqa: F401
    import search.models  # noqa: F401

    with contextlib.suppress(ImportError):
        import open_clip  # noqa: F401
    for line in sys.stdin:
        request = json.loads(line)
        if "run" in request:
            reply = {"pid": _start(request["run"], request.get("env", {}), request["log"])}
        else:
            _, status, usage = os.wait4(request["wait"], 0)
            reply = {
                "status": os.waitstatus_to_exitcode(status),
                "max_rss_mib": usage.ru_maxrss / 1024,
            }
        print(json.dumps(reply), flush=True)


def _start(argv: list[str], env: dict[str, str], log: str) -> int:
    pid = os.fork()
    if pid:
        return pid
    try:
        os.environ.update(env)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(0)
        sys.stdout = os.fdopen(1, "w", buffering=1)
        sys.stderr = os.fdopen(2, "w", buffering=1)
        if env.get(PAUSE_ENV) or env.get(COUNT_ENV):
            _add_pause_points()
        if env.get("TROVE_TEST_VANISH"):
            _vanish_after_walk(env["TROVE_TEST_VANISH"].splitlines())
        if env.get("TROVE_TEST_USER"):
            uid = int(env["TROVE_TEST_USER"])
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        import app

        code = app.main(argv)
        if env.get(COUNT_ENV):
            print(f"trove-test-hits: {json.dumps(hit_counts())}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    except SystemExit as exc:
        os._exit(exc.code if isinstance(exc.code, int) else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        os._exit(70)


def _add_pause_points() -> None:
    """Pause points in the run's work, on every SQLite connection it opens whatever module
    opens it: `sqlite.before-commit` and `sqlite.after-commit` around every COMMIT, and
    `work.sql` before every statement of the thread running Indexer._run: the run's work
    (the walk's bookkeeping, failed files, batches) between opening its indexes and saving
    them. A kill at the N-th `work.sql` is a kill at a point of the run's own progress,
    whatever the speed of the machine: mid-transaction, just before a COMMIT, between two
    transactions. `work.encode`, before each batch is encoded, is between two batches."""
    import functools
    import sqlite3
    import threading

    from indexers.pipeline import Indexer

    working: dict[str, int | None] = {"thread": None}
    # Indexer._commit encodes a batch, then commits it.
    run, commit = Indexer._run, Indexer._commit

    @functools.wraps(run)
    def tracked_run(self, *args, **kwargs):
        working["thread"] = threading.get_ident()
        try:
            return run(self, *args, **kwargs)
        finally:
            working["thread"] = None

    @functools.wraps(commit)
    def paused_commit(self, *args, **kwargs):
        pause_point("work.encode")
        return commit(self, *args, **kwargs)

    Indexer._run = tracked_run
    Indexer._commit = paused_commit

    class PausingConnection(sqlite3.Connection):
        def execute(self, sql, *args):
            if working["thread"] == threading.get_ident():
                pause_point("work.sql")
            if sql.strip().upper() not in ("COMMIT", "END", "END TRANSACTION"):
                return super().execute(sql, *args)
            pause_point("sqlite.before-commit")
            cursor = super().execute(sql, *args)
            pause_point("sqlite.after-commit")
            return cursor

        def commit(self):
            pause_point("sqlite.before-commit")
            super().commit()
            pause_point("sqlite.after-commit")

    sqlite3.connect = functools.partial(sqlite3.connect, factory=PausingConnection)


def _vanish_after_walk(paths: list[str]) -> None:
    """Delete `paths` once the walk has listed everything: between the walk and the read."""
    import indexers.walk

    listed = indexers.walk.walk

    def walk_then_vanish(*args, **kwargs):
        yield from listed(*args, **kwargs)
        for path in paths:
            os.unlink(path)

    for module in list(sys.modules.values()):
        if getattr(module, "walk", None) is listed and module.__name__.startswith("indexers"):
            module.walk = walk_then_vanish


if __name__ == "__main__":
    main()
