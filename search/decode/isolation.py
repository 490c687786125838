"""Decoding untrusted files in worker processes, each call bounded in time and memory.

Native decoders (libav, libjpeg, poppler, ...) hold the GIL or sit in C loops where Python
signals and timeouts never reach them, and a bad file can make them spin, allocate without
end or segfault. So a decode that must be bounded runs in a separate process: pebble's
ProcessPool gives each call a wall-clock limit and terminates (SIGTERM, then SIGKILL) and
replaces a worker that overruns or dies; each worker caps its own address space with
RLIMIT_AS, so an allocation past the cap fails inside the worker (MemoryError in Python, a
NULL malloc or an abort in C) instead of swapping the machine.

Every failure of that kind comes back as BadFileError with a one-line reason; whatever
the decode function raises itself (BadFileError included) passes through unchanged.
"""

from __future__ import annotations

import multiprocessing
import resource
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from pebble import ProcessExpired, ProcessPool

from search.errors import BadFileError

R = TypeVar("R")

# A photo, a song or a few minutes of video decode in well under a second to a few seconds
# on a laptop; 30 s is far past any healthy file and short enough that a library full of
# traps still finishes.
DEFAULT_TIMEOUT_S = 30.0
# Address space, not resident memory: a Python worker with numpy and Pillow maps ~300 MiB
# before it decodes anything, and a 50 MP photo needs ~150 MiB more as RGB.
DEFAULT_MEMORY_MIB = 2048
MIB = 2**20


def _limit_memory(memory_mib: int) -> None:
    limit = memory_mib * MIB
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    # Ctrl-C goes to the whole process group: the parent decides what stops, not the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class IsolatedDecoder:
    """A pool of decode worker processes. Thread-safe: several decode threads may share it.

    `run(fn, *args)` calls `fn(*args)` in a worker and returns its result. `fn` and its
    arguments and result must be picklable (a top-level function; paths, bytes, arrays).
    Use as a context manager, or call `close()`: it stops the workers.
    """

    def __init__(
        self,
        workers: int = 1,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        memory_mib: int = DEFAULT_MEMORY_MIB,
        start_method: str = "forkserver",
    ) -> None:
        # forkserver, not fork: the indexer process runs torch and decode threads, and a
        # child forked from a threaded process can inherit a lock some other thread held.
        self.timeout_s = timeout_s
        self.memory_mib = memory_mib
        self._workers = workers
        self._context = multiprocessing.get_context(start_method)
        # Started on the first call: a search with no files in it, or a page whose
        # thumbnails are all cached, never pays for the worker processes.
        self._pool: ProcessPool | None = None
        self._lock = threading.Lock()
        self._closed = threading.Event()

    @property
    def workers(self) -> int:
        """How many worker processes run at once (a decoder that uses several threads
        shares the cores among them)."""
        return self._workers

    def submit(self, fn: Callable[..., R], *args: Any, timeout_s: float | None = None) -> Future:
        """Schedule `fn(*args)`; the future's result() is what `run` returns or raises."""
        limit = self.timeout_s if timeout_s is None else timeout_s
        with self._lock:
            if self._closed.is_set():
                raise RuntimeError("IsolatedDecoder is closed")
            if self._pool is None:
                self._pool = ProcessPool(
                    max_workers=self._workers,
                    initializer=_limit_memory,
                    initargs=(self.memory_mib,),
                    context=self._context,
                )
            return self._pool.schedule(fn, args=args, timeout=limit)

    def run(
        self, fn: Callable[..., R], *args: Any, timeout_s: float | None = None, verb: str = "decode"
    ) -> R:
        """`fn(*args)` in a worker, or BadFileError when it overran, ran out of memory or
        crashed. `timeout_s` overrides the pool's limit for this call."""
        limit = self.timeout_s if timeout_s is None else timeout_s
        return self.result(self.submit(fn, *args, timeout_s=limit), limit, verb)

    def result(self, future: Future, timeout_s: float | None = None, verb: str = "decode") -> Any:
        """The result of a `submit`ted call, with the failures translated as in `run`."""
        limit = self.timeout_s if timeout_s is None else timeout_s
        try:
            return future.result()
        except FutureTimeout:
            raise BadFileError(f"took longer than {limit:g} s to {verb}") from None
        except MemoryError:
            raise BadFileError(f"needed more than {self.memory_mib} MiB to {verb}") from None
        except ProcessExpired as exc:
            code = exc.exitcode
            if code is not None and code < 0:
                raise BadFileError(
                    f"the decoder crashed (signal {-code}, {signal.Signals(-code).name})"
                ) from None
            raise BadFileError(f"the decoder crashed (exit status {code})") from None

    def close(self) -> None:
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()
            pool.join()

    def __enter__(self) -> IsolatedDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
