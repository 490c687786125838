"""Plain vector arithmetic shared by the indexer, the queries and the bridge: unit length,
one vector for a whole file, and scores put on one scale across embedding spaces.

Score calibration: raw cosines are not comparable across spaces (each model and tower has
its own typical similarity for unrelated pairs, and its own spread). `standardize` turns each
score into a z-score against the same query's similarities to a fixed random sample of that
index's vectors (its background), so "3 standard deviations above this query's typical
match" means the same in every space.
"""

from __future__ import annotations

import numpy as np


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Each row (or the one vector) scaled to unit L2 length, as float32. A zero vector stays
    zero rather than becoming NaN."""
    vectors = np.asarray(vectors)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def pool(vectors: np.ndarray, weights=None) -> np.ndarray:
    """One vector for a whole file (a sound's windows, a video's frames, a query clip): the
    re-normalised mean of its segments' vectors, weighted (e.g. by the seconds each video
    frame stands for, so a long still shot is not outvoted by a burst of scene-cut frames)."""
    if len(vectors) == 0:
        raise ValueError("nothing to pool: a file with no vectors has no file vector")
    vectors = np.asarray(vectors, dtype=np.float32)
    if weights is not None and float(np.sum(weights)) > 0:
        mean = np.average(vectors, axis=0, weights=np.asarray(weights, dtype=np.float64))
    else:
        mean = vectors.mean(axis=0)
    return normalise(mean)


def standardize(scores: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Z-scores of `scores` against `background`: the same query's similarities to a fixed
    random sample of the index searched (the engine draws it once per index from the
    catalog, `Catalog.sample_vectors`, so a query's background is one small matrix product).

    (score - mean(background)) / std(background). The background includes the relevant items
    in proportion to how often they occur, which for a library is rare, so it estimates the
    distribution of unrelated matches. A background with fewer than two values or no spread
    (a one-item index) gives no scale; scores are then only centred.
    """
    scores = np.asarray(scores, dtype=np.float32)
    background = np.asarray(background, dtype=np.float64)
    if background.size == 0:
        return scores.copy()
    mean = float(background.mean())
    std = float(background.std()) if background.size > 1 else 0.0
    return ((scores - mean) / (std if std > 1e-6 else 1.0)).astype(np.float32)
