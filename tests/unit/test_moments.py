"""Merging time-ranged hits of one file into moments."""

from __future__ import annotations

import pytest

from search.moments import Moment, merge_moments


def test_overlapping_windows_merge_into_one_moment_with_the_best_score():
    hits = [(0.0, 10.0, 0.4), (5.0, 15.0, 0.9), (10.0, 20.0, 0.5)]
    assert merge_moments(hits, max_gap_s=0) == [Moment(0.0, 20.0, 0.9, hits=3)]


def test_separate_moments_are_ordered_best_first():
    hits = [(40.0, 50.0, 0.7), (0.0, 10.0, 0.5), (5.0, 15.0, 0.6), (100.0, 110.0, 0.8)]
    assert merge_moments(hits, max_gap_s=2) == [
        Moment(100.0, 110.0, 0.8),
        Moment(40.0, 50.0, 0.7),
        Moment(0.0, 15.0, 0.6, hits=2),
    ]


def test_gap_tolerance_joins_frames_a_few_seconds_apart():
    frames = [(1.0, 1.0, 0.3), (3.0, 3.0, 0.5), (5.5, 5.5, 0.4), (20.0, 20.0, 0.9)]
    assert merge_moments(frames, max_gap_s=2.5) == [
        Moment(20.0, 20.0, 0.9),
        Moment(1.0, 5.5, 0.5, hits=3),
    ]
    assert len(merge_moments(frames, max_gap_s=1.0)) == 4


def test_equal_scores_keep_time_order_and_bad_input_is_refused():
    assert [m.start for m in merge_moments([(30, 31, 0.5), (0, 1, 0.5)], 0)] == [0, 30]
    assert merge_moments([], 1.0) == []
    with pytest.raises(ValueError):
        merge_moments([(5.0, 1.0, 0.2)], 0)
    with pytest.raises(ValueError):
        merge_moments([(0.0, 1.0, 0.2)], -1)
