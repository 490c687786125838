"""Fusing the semantic ranking (similarities) with the word ranking (BM25) into one list.

The calibrated blend: score = alpha * semantic + (1 - alpha) * words, each first mapped to
[0, 1]: a similarity by (s - floor) / (best - floor), with `floor` what an unrelated item
scores (the engine passes the query's mean similarity to a sample of the library), and BM25
by score / best score times the share of the query the item holds (a match of one incidental
word of a sentence counts little). The engine shows the blend in the similarity's own units
(`fuse_on_semantic_scale`) and takes alpha as an option (`SearchEngine(alpha=...)`): 1 ranks
by meaning alone, 0 by words alone.

`BLEND_ALPHA` was chosen by running the engine at every alpha on a labelled corpus of
documents and queries: `python bench/fusion.py` writes bench/results/fusion.json, and the
docs/ranking.md's "Hybrid ranking" table is rendered from it.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

# The weight of meaning against words, chosen by running the engine at each alpha: the
# measured plateau is in bench/results/fusion.json.
BLEND_ALPHA = 0.3

Scored = Sequence[tuple[Hashable, float]]


def calibrated_blend(
    semantic: Scored,
    lexical: Scored,
    alpha: float,
    cosine_floor: float,
    coverage: Mapping[Hashable, float] | None = None,
) -> list[tuple[Hashable, float]]:
    """(key, similarity) and (key, BM25 score, higher better) lists -> (key, blended in
    [0, 1]) best first. A key missing from one list scores 0 there; ties keep the order of
    the semantic list, then the lexical one.

    `coverage`: the share of the query each lexical key holds (search/storage/lexical.py
    `term_coverage`; a key missing from it: all), which scales its word score. BM25 over the
    best match says who matches the words best, not whether that is the query: without it,
    the one note holding "night" of "how to fall asleep at night" (a night train) took the
    full word score and outranked the note about sleep, which shares none of its words. A
    name or an identifier typed whole still counts fully."""
    sem = _normalise(semantic, cosine_floor)
    lex = _normalise(lexical, 0.0)
    if coverage is not None:
        lex = {k: v * coverage.get(k, 1.0) for k, v in lex.items()}
    keys = dict.fromkeys([k for k, _ in semantic] + [k for k, _ in lexical])
    blended = {k: alpha * sem.get(k, 0.0) + (1 - alpha) * lex.get(k, 0.0) for k in keys}
    return sorted(blended.items(), key=lambda kv: -kv[1])


def _normalise(scored: Scored, floor: float) -> dict[Hashable, float]:
    if not scored:
        return {}
    best = max(score for _, score in scored)
    span = best - floor
    if span <= 0:
        return {key: 0.0 for key, _ in scored}
    return {key: min(1.0, max(0.0, (score - floor) / span)) for key, score in scored}


def fuse_on_semantic_scale(
    semantic: Scored,
    lexical: Scored,
    floor: float,
    alpha: float = BLEND_ALPHA,
    coverage: Mapping[Hashable, float] | None = None,
) -> list[tuple[Hashable, float]]:
    """The blend's ranking, on the similarity scale and never past 1. A key's score is its
    similarity (clipped at `floor`, what an unrelated item scores) plus a bonus for its word
    match, (1 - alpha) / alpha * (best - floor) * normalised BM25; past the best similarity
    the bonus is compressed (1 - exp) into what is left below 1, so a strong word match
    comes close to 1 and never passes it. The engine shows this as the score: monotonic in
    the blend, so the order is the blend's, and the minimum-score filter's -1..1 covers
    every score.

    `alpha` 1 is the semantic ranking alone; `alpha` 0 is the word ranking alone, scored by
    BM25 relative to the best word match, in [0, 1]; keys without a word match are left out.
    `coverage` as in `calibrated_blend`.
    """
    if alpha <= 0:
        return calibrated_blend([], lexical, alpha=0.0, cosine_floor=floor, coverage=coverage)
    best = max((score for _, score in semantic), default=floor)
    span = best - floor
    blended = calibrated_blend(semantic, lexical, alpha, floor, coverage)
    if span <= 0:
        raw = [(key, floor + (1 - alpha) * blend) for key, blend in blended]
    else:
        raw = [(key, floor + blend * span / alpha) for key, blend in blended]
    ceiling = max(best, floor)  # what meaning alone reaches
    return [(key, _below_one(score, ceiling)) for key, score in raw]


def _below_one(score: float, ceiling: float) -> float:
    """`score` up to `ceiling`; above it, the excess compressed into what is left below 1."""
    if score <= ceiling:
        return score
    headroom = 1.0 - ceiling
    if headroom <= 0:
        return 1.0
    return ceiling + headroom * -math.expm1(-(score - ceiling) / headroom)
