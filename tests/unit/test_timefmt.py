"""Time as Trove shows it: the player clock of moments, durations and waveform labels, the
words of an index run's time left, and dates in the detail panel and the API."""

from __future__ import annotations

from datetime import datetime

from search.timefmt import clock, duration_words, local_time


def test_clock_reads_like_a_player():
    assert [clock(s) for s in (0, 0.9, 8.0, 59.99, 60, 125.5)] == [
        "0:00",
        "0:00",
        "0:08",
        "0:59",
        "1:00",
        "2:05",
    ]
    assert clock(3599.9) == "59:59"
    assert clock(3600) == "1:00:00"
    assert clock(2 * 3600 + 3 * 60 + 4) == "2:03:04"


def test_duration_words_round_to_what_matters_for_a_wait():
    assert duration_words(44.6) == "45 s"
    assert duration_words(59.6) == "1 min 00 s"
    assert duration_words(185) == "3 min 05 s"
    assert duration_words(3600 + 125) == "1 h 02 min"


def test_local_time_to_the_second():
    when = datetime(2024, 6, 30, 18, 5, 9, 900_000)
    assert local_time(when.timestamp()) == "2024-06-30 18:05:09"
