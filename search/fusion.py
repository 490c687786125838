"""Fusing ranked lists (semantic by cosine, lexical by BM25) into one ranking.

Two methods, measured against each other on a labelled corpus (tests/unit/test_fusion.py,
figures in the README):

- `reciprocal_rank_fusion`: score = sum over lists of weight / (k + rank). Uses ranks only,
  so it needs no calibration between cosine and BM25 scales.
- `calibrated_blend`: score = alpha * semantic + (1 - alpha) * lexical, each first mapped to
  [0, 1]: cosine by (cos - floor) / (best cos - floor), with `floor` the cosine an unrelated
  text gets from the encoder (calibrated per encoder), and BM25 by score / best score.

`fuse` is the one the engine uses: the blend (see CHOSEN for why).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

RRF_K = 60
# Blend constants for all-MiniLM-L6-v2, measured on the labelled corpus (README table): nDCG@10
# is flat at its best for alpha 0.1-0.4 with floors 0.1-0.2; 0.3 and 0.1 sit inside that
# plateau, not on an edge. MiniLM gives unrelated English texts cosines around 0.0-0.15.
BLEND_ALPHA = 0.3
MINILM_COSINE_FLOOR = 0.1

Scored = Sequence[tuple[Hashable, float]]


def reciprocal_rank_fusion(
    ranked_lists: Iterable[Sequence[Hashable]],
    k: float = RRF_K,
    weights: Sequence[float] | None = None,
) -> list[tuple[Hashable, float]]:
    """Keys of several best-first lists -> (key, fused score) best first. Ties keep the order
    in which keys were first seen."""
    scores: dict[Hashable, float] = {}
    for i, keys in enumerate(ranked_lists):
        weight = 1.0 if weights is None else weights[i]
        for rank, key in enumerate(keys, start=1):
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])


def calibrated_blend(
    semantic: Scored,
    lexical: Scored,
    alpha: float = BLEND_ALPHA,
    cosine_floor: float = MINILM_COSINE_FLOOR,
) -> list[tuple[Hashable, float]]:
    """(key, cosine) and (key, BM25 score, higher better) lists -> (key, blended) best first.
    A key missing from one list scores 0 there."""
    sem = _normalise(semantic, cosine_floor)
    lex = _normalise(lexical, 0.0)
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


# RRF scored nDCG@10 0.958 against the blend's 0.972, and it ranks a file named for the query
# below documents the embedding likes: with only ranks to go on, a strong name match (BM25
# far ahead of the rest) counts no more than a weak one.
CHOSEN = "calibrated_blend"


def fuse(
    semantic: Scored, lexical: Scored, cosine_floor: float = MINILM_COSINE_FLOOR
) -> list[tuple[Hashable, float]]:
    """The engine's hybrid ranking: semantic (key, cosine) and lexical (key, BM25, higher
    better) lists -> (key, fused score in [0, 1]) best first. Pass the cosine floor of the
    encoder that produced `semantic` when it is not MiniLM."""
    return calibrated_blend(semantic, lexical, alpha=BLEND_ALPHA, cosine_floor=cosine_floor)


def fuse_on_semantic_scale(
    semantic: Scored, lexical: Scored, floor: float, alpha: float = BLEND_ALPHA
) -> list[tuple[Hashable, float]]:
    """The blend's ranking, in the semantic scores' own units: a key's similarity plus a
    bonus for its word match, (1 - alpha) / alpha * (best - floor) * normalised BM25, so a
    key with no word match keeps its similarity (clipped at `floor`, the similarity of an
    unrelated item). The engine shows this as the score: monotonic in the blend."""
    best = max((score for _, score in semantic), default=floor)
    span = best - floor
    blended = calibrated_blend(semantic, lexical, alpha=alpha, cosine_floor=floor)
    if span <= 0:
        return [(key, floor + (1 - alpha) * score) for key, score in blended]
    return [(key, floor + score * span / alpha) for key, score in blended]
