"""The encoder families of issue 19 as presets: the encoder protocol, the weights messages that
name their own options, the text files a multilingual CLIP needs, input checks."""

from __future__ import annotations

import numpy as np
import pytest

from search.errors import TroveError, UnknownModelError, WeightsNotFoundError
from search.models import SoundEncoder, XClipEncoder, get_preset
from search.models.encoders import Encoder, Encoders
from search.models.registry import get_space_preset
from search.models.weights import resolve_weights, text_tower_folder


@pytest.fixture
def no_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))


def test_the_new_encoders_offer_the_encoder_protocol():
    for encoder in (SoundEncoder(get_preset("tiny-ast")), XClipEncoder(get_preset("tiny-xclip"))):
        assert isinstance(encoder, Encoder), type(encoder).__name__
    encoders = Encoders("tiny-clip", "tiny-clap", "tiny-text", sound="tiny-wav2vec2")
    assert encoders.name("video") is None and encoders.unavailable("video") is None
    assert encoders.key("sound") == "tiny-wav2vec2"
    with pytest.raises(TroveError, match="No video model"):
        encoders.get("video")


@pytest.mark.parametrize(
    ("name", "path_option", "trial"),
    [
        ("ast-audioset", "--sound-model-path", "--sound-model tiny-ast"),
        ("wav2vec2-base", "--sound-model-path", "--sound-model tiny-ast"),
        ("xclip-base-patch32", "--video-model-path", "--video-model tiny-xclip"),
        ("mclip-xlmr-b-32", "--model-path", "--model tiny-clip"),
        ("siglip2-vit-b-16", "--model-path", "--model tiny-clip"),
    ],
)
def test_missing_weights_name_the_presets_own_options(no_weights, name, path_option, trial):
    with pytest.raises(WeightsNotFoundError) as caught:
        resolve_weights(get_preset(name))
    message = str(caught.value)
    assert name in message and path_option in message and trial in message
    assert f"python app.py models download {name}" in message


def test_a_model_of_another_space_is_refused_by_name():
    with pytest.raises(UnknownModelError, match="tiny-clap is not a sound-similarity model"):
        get_space_preset("tiny-clap", "sound")
    with pytest.raises(UnknownModelError, match="ast-audioset is not a video model"):
        get_space_preset("ast-audioset", "video")


def test_multilingual_clip_says_which_text_files_it_lacks(no_weights, tmp_path):
    weights = tmp_path / "open_clip_model.safetensors"
    weights.write_bytes(b"")
    with pytest.raises(WeightsNotFoundError, match="config.json, tokenizer.json of hf.co/xlm"):
        text_tower_folder(get_preset("mclip-xlmr-b-32"), weights)
    for name in ("config.json", "tokenizer.json"):
        (tmp_path / name).write_text("{}")
    assert text_tower_folder(get_preset("mclip-xlmr-b-32"), weights) == tmp_path
    assert text_tower_folder(get_preset("clip-vit-b-32"), weights) is None


def test_bad_inputs_are_refused_before_the_model_loads():
    sound = SoundEncoder(get_preset("tiny-ast"))
    with pytest.raises(ValueError, match="mono clips of 1 to 163840 samples"):
        sound.encode_audio([np.zeros((2, 100), np.float32)])
    with pytest.raises(TroveError, match="no text tower"):
        sound.encode_texts(["a dog"])
    video = XClipEncoder(get_preset("tiny-xclip"))
    with pytest.raises(ValueError, match="clips of 8 frames; got 3"):
        video.encode_clips([[np.zeros((8, 8, 3), np.uint8)] * 3])
    assert sound._model is None and video._model is None
