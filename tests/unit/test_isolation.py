"""Decodes run in worker processes with a time and memory bound, and survive crashes."""

from __future__ import annotations

import ctypes
import os
import time

import pytest

from search.decode.isolation import IsolatedDecoder
from search.errors import BadFileError


def echo(value):
    return value


def worker_pid():
    return os.getpid()


# Long past the 1 s limit, and short enough that a limit that does not work makes the hang
# tests fail (the call returns instead of raising) rather than hang.
HANG_S = 60


def sleep_in_python():
    time.sleep(HANG_S)


def sleep_in_c():
    # libc's sleep() never returns to the interpreter: no Python signal or timeout reaches it.
    ctypes.CDLL(None).sleep(HANG_S)


def allocate(n_bytes):
    return len(bytearray(n_bytes))


def segfault():
    ctypes.string_at(0)


def refuse():
    raise BadFileError("not a sound file")


@pytest.fixture(scope="module")
def decoder():
    with IsolatedDecoder(workers=1, timeout_s=1.0, memory_mib=512) as d:
        d.run(echo, 0)  # start the worker outside the timed tests
        yield d


def test_returns_the_result(decoder):
    assert decoder.run(echo, {"a": [1, 2]}) == {"a": [1, 2]}


def test_own_errors_pass_through_and_the_worker_stays(decoder):
    pid = decoder.run(worker_pid)
    with pytest.raises(BadFileError, match="not a sound file"):
        decoder.run(refuse)
    assert decoder.run(worker_pid) == pid


@pytest.mark.parametrize("hang", [sleep_in_python, sleep_in_c])
def test_a_hang_is_cut_at_the_time_limit_and_the_worker_replaced(decoder, hang):
    pid = decoder.run(worker_pid)
    # Only the pool's timeout raises this: the call was cut, not waited out.
    with pytest.raises(BadFileError, match=r"^took longer than 1 s to decode$"):
        decoder.run(hang)
    assert decoder.run(echo, "still working") == "still working"
    assert decoder.run(worker_pid) != pid


def test_per_call_time_limit(decoder):
    with pytest.raises(BadFileError, match="longer than 0.3 s"):
        decoder.run(sleep_in_c, timeout_s=0.3)


def test_allocation_past_the_cap_is_refused(decoder):
    with pytest.raises(BadFileError, match=r"^needed more than 512 MiB to decode$"):
        decoder.run(allocate, 1024 * 2**20)
    assert decoder.run(allocate, 64 * 2**20) == 64 * 2**20


def test_parent_is_not_capped(decoder):
    assert len(bytearray(600 * 2**20)) == 600 * 2**20


def test_a_segfault_is_reported_and_the_worker_replaced(decoder):
    with pytest.raises(BadFileError, match=r"the decoder crashed \(signal 11"):
        decoder.run(segfault)
    assert decoder.run(echo, 7) == 7


def test_concurrent_calls_from_threads():
    from concurrent.futures import ThreadPoolExecutor

    with IsolatedDecoder(workers=2, timeout_s=2.0) as d, ThreadPoolExecutor(4) as threads:
        results = list(threads.map(lambda i: d.run(echo, i), range(40)))
    assert results == list(range(40))
