"""Time-ranged hits inside one file (audio windows, video frames) merged into moments."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Moment:
    """A stretch of one file that matched: its time range and its best hit's score."""

    start: float
    end: float
    score: float
    hits: int = 1


def merge_moments(hits: Sequence[tuple[float, float, float]], max_gap_s: float) -> list[Moment]:
    """Merge (start_s, end_s, score) hits of one file into moments, best first.

    Hits that overlap, touch, or leave a gap of at most `max_gap_s` between them join one
    moment spanning them all, scored by its best hit: a sound heard across three
    overlapping windows, or a scene seen in consecutive frames, is one result, not three.
    A point hit (a video frame) has start == end. Ties in score keep time order.
    """
    if max_gap_s < 0:
        raise ValueError(f"max_gap_s must be >= 0; got {max_gap_s}")
    moments: list[Moment] = []
    for start, end, score in sorted(hits, key=lambda h: (h[0], h[1])):
        if end < start:
            raise ValueError(f"a hit ends before it starts: ({start}, {end})")
        last = moments[-1] if moments else None
        if last is not None and start <= last.end + max_gap_s:
            moments[-1] = Moment(
                last.start, max(last.end, end), max(last.score, score), last.hits + 1
            )
        else:
            moments.append(Moment(float(start), float(end), float(score)))
    return sorted(moments, key=lambda m: (-m.score, m.start))
