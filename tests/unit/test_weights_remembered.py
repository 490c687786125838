"""A library indexed with --model-path/--audio-model-path remembers where the weights were,
so later commands need not say it again, and says plainly when they have moved."""

from __future__ import annotations

import pytest

from search.errors import WeightsNotFoundError
from search.models.encoders import meta_key


def test_the_weights_path_is_remembered_and_a_move_is_named(library, tmp_path):
    weights = tmp_path / "models" / "vit-b-32.safetensors"
    weights.parent.mkdir()
    weights.write_bytes(b"weights")
    library.catalog.set_meta(meta_key("clip"), "clip-vit-b-32")
    assert library.weights_path("clip") is None  # none given yet

    library.remember_weights_path("clip", "clip-vit-b-32", str(weights))
    assert library.weights_path("clip") == str(weights)
    assert library.search_encoder(None, None).model_path == str(weights)
    assert library.weights_path("clip", "/given/now") == "/given/now"  # an option wins
    # Remembered for that model only: another model's weights are not these.
    assert library.weights_path("clip", None, "clip-vit-l-14") is None

    moved = tmp_path / "elsewhere.safetensors"
    weights.rename(moved)
    with pytest.raises(WeightsNotFoundError) as error:
        library.search_encoder(None, None)
    message = str(error.value)
    assert f"clip-vit-b-32 weights were at {weights} when it was indexed" in message
    assert "--model-path NEW_PATH" in message

    library.remember_weights_path("clip", "clip-vit-b-32", str(moved))
    assert library.search_encoder(None, None).model_path == str(moved)


def test_the_sound_models_path_too(library, tmp_path):
    folder = tmp_path / "clap"
    folder.mkdir()
    library.catalog.set_meta(meta_key("clap"), "clap-htsat-unfused")
    library.remember_weights_path("clap", "clap-htsat-unfused", str(folder))
    assert library.weights_path("clap") == str(folder)
    folder.rmdir()
    with pytest.raises(WeightsNotFoundError, match="--audio-model-path NEW_PATH"):
        library.weights_path("clap")
