"""The CLIP <-> CLAP bridge: fit, held-out quality, cache."""

from __future__ import annotations

import numpy as np
import pytest

from search.bridge import (
    CAPTIONS_PATH,
    fit_map,
    holdout_split,
    load_captions,
    load_or_fit_bridge,
    map_quality,
)
from search.models import load_audio_encoder, load_encoder


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
