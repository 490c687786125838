"""The CLIP <-> CLAP bridge (fit, held-out quality, cache) and cross-space score calibration."""

from __future__ import annotations

import numpy as np
import pytest

from search.models import load_audio_encoder, load_encoder
from search.space import (
    CAPTIONS_PATH,
    fit_map,
    holdout_split,
    load_captions,
    load_or_fit_bridge,
    map_quality,
    standardize,
)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


class CountingTextEncoder:
    """A real tiny encoder whose text calls are counted; its fingerprint can be overridden to
    stand for new weights."""

    def __init__(self, encoder, fingerprint: str | None = None) -> None:
        self._encoder = encoder
        self._fingerprint = fingerprint
        self.texts_encoded = 0

    @property
    def name(self) -> str:
        return self._encoder.name

    @property
    def fingerprint(self) -> str:
        return self._fingerprint or self._encoder.fingerprint

    def encode_texts(self, texts):
        self.texts_encoded += len(texts)
        return self._encoder.encode_texts(texts)


@pytest.mark.parametrize("method", ["procrustes", "ridge"])
def test_fit_recovers_a_known_linear_relation(method):
    rng = np.random.default_rng(0)
    x = unit(rng.normal(size=(600, 24)) + 2 * rng.normal(size=24))
    rotation, _ = np.linalg.qr(rng.normal(size=(24, 24)))
    y = unit(0.5 * (x - x.mean(0)) @ rotation + 3 * rng.normal(size=24) / 24**0.5)
    y = unit(y + 0.01 * rng.normal(size=y.shape))
    train, held = holdout_split(len(x))
    mapped = fit_map(x[train], y[train], method)(x[held])
    quality = map_quality(mapped, y[held])
    assert quality["mean_cosine"] > 0.99 and quality["recall_at_1"] > 0.95
    np.testing.assert_allclose(np.linalg.norm(mapped, axis=1), 1.0, atol=1e-5)


def test_maps_between_spaces_of_different_sizes():
    rng = np.random.default_rng(1)
    x, y = unit(rng.normal(size=(100, 16))), unit(rng.normal(size=(100, 8)))
    linear = fit_map(x, y)
    assert linear(x).shape == (100, 8) and linear(x[0]).shape == (8,)


def test_holdout_split_is_fixed_and_a_fifth():
    train, held = holdout_split(3000)
    again_train, again_held = holdout_split(3000)
    assert len(held) == 600 and not set(train) & set(held)
    assert np.array_equal(held, again_held) and np.array_equal(train, again_train)


def test_caption_set_is_shipped_and_large():
    captions = load_captions()
    assert 2000 <= len(captions) <= 6000 and len(set(captions)) == len(captions)
    assert "a dog barking" in captions and "rain on a tin roof" in captions


@pytest.fixture(scope="module")
def tiny_towers():
    return load_encoder("tiny-clip"), load_audio_encoder("tiny-clap")


@pytest.fixture
def few_captions(tmp_path):
    path = tmp_path / "captions.txt"
    path.write_text("\n".join(load_captions()[::50]) + "\n")
    return path


@pytest.mark.slow
def test_tiny_bridge_beats_identity_and_random_maps_on_held_out_captions(tmp_path, tiny_towers):
    clip, clap = tiny_towers
    subset = tmp_path / "captions.txt"
    subset.write_text("\n".join(load_captions()[::3]) + "\n")
    bridge = load_or_fit_bridge(tmp_path / "cache", clip, clap, captions_path=subset)
    metrics = bridge.metrics
    assert metrics["held_out"] == 200 and metrics["method"] == "procrustes"
    for direction in ("clip_to_clap", "clap_to_clip"):
        row = metrics[direction]
        fitted = row["procrustes"]["mean_cosine"]
        assert fitted > row["random"]["mean_cosine"] + 0.05, row
        assert fitted > row["identity"]["mean_cosine"] + 0.3, row
        assert row["ridge"]["mean_cosine"] > row["random"]["mean_cosine"], row
    sounds = bridge.map_clip_to_clap(clip.encode_texts(["a dog barking", "church bells"]))
    pictures = bridge.map_clap_to_clip(clap.encode_texts(["a dog barking"])[0])
    assert sounds.shape == (2, clap.dim) and pictures.shape == (clip.dim,)
    np.testing.assert_allclose(np.linalg.norm(sounds, axis=1), 1.0, atol=1e-5)


def test_bridge_cache_is_reused_and_refitted_when_either_model_changes(
    tmp_path, tiny_towers, few_captions
):
    clip, clap = (CountingTextEncoder(e) for e in tiny_towers)
    cache = tmp_path / "bridges"
    first = load_or_fit_bridge(cache, clip, clap, captions_path=few_captions)
    (path,) = cache.glob("bridge-*.npz")
    assert clip.fingerprint in path.name and clap.fingerprint in path.name
    assert clip.texts_encoded == clap.texts_encoded == 60

    again = load_or_fit_bridge(cache, clip, clap, captions_path=few_captions)
    assert clip.texts_encoded == 60, "a cached bridge is not fitted again"
    assert again.metrics == first.metrics
    np.testing.assert_array_equal(again.clip_to_clap.matrix, first.clip_to_clap.matrix)

    retrained = CountingTextEncoder(tiny_towers[1], fingerprint="new-weights")
    load_or_fit_bridge(cache, clip, retrained, captions_path=few_captions)
    assert retrained.texts_encoded == 60 and len(list(cache.glob("bridge-*.npz"))) == 2


def test_a_damaged_bridge_cache_is_fitted_again(tmp_path, tiny_towers, few_captions):
    clip, clap = (CountingTextEncoder(e) for e in tiny_towers)
    cache = tmp_path / "bridges"
    load_or_fit_bridge(cache, clip, clap, captions_path=few_captions)
    (path,) = cache.glob("bridge-*.npz")
    path.write_bytes(b"not a zip file")
    bridge = load_or_fit_bridge(cache, clip, clap, captions_path=few_captions)
    assert clip.texts_encoded == 120 and bridge.metrics["captions"] == 60


def test_real_caption_path_is_the_default():
    assert CAPTIONS_PATH.name == "captions.txt" and CAPTIONS_PATH.is_file()


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
