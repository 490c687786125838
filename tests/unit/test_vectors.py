"""Vector arithmetic: unit length, one vector per file, scores on one scale across spaces."""

from __future__ import annotations

import numpy as np
import pytest

from search.vectors import normalise, pool, standardize


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_normalise_gives_unit_float32_rows_and_leaves_zero_vectors_zero():
    rows = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float64)
    out = normalise(rows)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]], atol=1e-7)
    one = normalise(np.array([0.0, 2.0], dtype=np.float32))
    assert one.shape == (2,) and np.array_equal(one, np.array([0.0, 1.0], np.float32))


def test_pool_is_the_weighted_mean_at_unit_length():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    np.testing.assert_allclose(pool(vectors), [2**-0.5, 2**-0.5], atol=1e-6)
    np.testing.assert_allclose(pool(vectors, [3.0, 1.0]), unit(np.array([3.0, 1.0])), atol=1e-6)
    with pytest.raises(ValueError, match="nothing to pool"):
        pool(np.zeros((0, 2), np.float32))


def test_standardize_is_a_z_score_against_the_background():
    background = np.array([0.1, 0.2, 0.3, 0.4, 0.5], dtype=np.float32)
    z = standardize(np.array([0.3, 0.3 + background.std()]), background)
    np.testing.assert_allclose(z, [0.0, 1.0], atol=1e-5)
    assert np.array_equal(standardize(np.array([0.7]), np.array([])), np.array([0.7], np.float32))
    np.testing.assert_allclose(standardize(np.array([0.9]), np.array([0.5, 0.5])), [0.4], atol=1e-6)


def test_mixed_list_is_not_dominated_by_the_space_whose_cosines_run_higher():
    """A CLAP-like space (every vector near one direction: unrelated items score ~0.8) and a
    CLIP-like one (spread out: unrelated ~0.0), each holding one item that truly matches."""
    rng = np.random.default_rng(7)
    dim, n = 64, 2000
    common = unit(rng.normal(size=dim))
    crowded = unit(3 * common + rng.normal(size=(n, dim)) * 0.2)
    spread = unit(rng.normal(size=(n, dim)))
    q_crowded = unit(3 * common + rng.normal(size=dim) * 0.2)
    q_spread = unit(rng.normal(size=dim))
    crowded[0] = unit(q_crowded + 0.03 * rng.normal(size=dim))  # the matching sound
    spread[0] = unit(q_spread + 0.12 * rng.normal(size=dim))  # the matching photo

    raw_crowded, raw_spread = crowded @ q_crowded, spread @ q_spread
    merged_raw = sorted(
        [(s, "sound", i) for i, s in enumerate(raw_crowded)]
        + [(s, "photo", i) for i, s in enumerate(raw_spread)],
        reverse=True,
    )[:10]
    assert all(kind == "sound" for _, kind, _ in merged_raw), "raw cosines: one space wins"
    assert ("photo", 0) not in [(k, i) for _, k, i in merged_raw]

    z_crowded = standardize(raw_crowded, background(crowded) @ q_crowded)
    z_spread = standardize(raw_spread, background(spread) @ q_spread)
    merged = sorted(
        [(s, "sound", i) for i, s in enumerate(z_crowded)]
        + [(s, "photo", i) for i, s in enumerate(z_spread)],
        reverse=True,
    )
    assert {(k, i) for _, k, i in merged[:2]} == {("sound", 0), ("photo", 0)}
    kinds_top = [k for _, k, _ in merged[:50]]
    assert 0.3 < kinds_top.count("sound") / 50 < 0.7, "unrelated items interleave evenly"


def background(vectors: np.ndarray, size: int = 1024) -> np.ndarray:
    """A fixed random sample of an index's vectors, as the engine draws one."""
    rows = np.random.default_rng(0).choice(len(vectors), min(size, len(vectors)), replace=False)
    return vectors[rows]
