from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import open_clip
import pytest

from search.errors import UnknownModelError, WeightsNotFoundError
from search.library import Library
from search.models import ClapEncoder, ClipEncoder, get_preset, list_presets
from search.models.registry import DEFAULT_CLIP_MODEL, trial_partner
from search.models.weights import resolve_weights, weights_fingerprint, weights_present


def test_presets_and_default():
    names = [s.name for s in list_presets()]
    assert {"clip-vit-b-32", "mobileclip2-s0", "clip-vit-l-14", "tiny-clip"} <= set(names)
    assert DEFAULT_CLIP_MODEL == "clip-vit-b-32"
    spec = get_preset("clip-vit-b-32")
    assert (spec.architecture, spec.pretrained, spec.embed_dim) == (
        "ViT-B-32",
        "laion2b_s34b_b79k",
        512,
    )


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(UnknownModelError, match="clip-vit-b-32.*tiny-clip"):
        get_preset("clip-vit-z")


@pytest.mark.parametrize(
    "spec", [s for s in list_presets() if not s.is_tiny and s.family == "open_clip"], ids=str
)
def test_real_presets_match_open_clips_pretrained_table(spec):
    cfg = open_clip.get_pretrained_cfg(spec.architecture, spec.pretrained)
    assert cfg["hf_hub"].rstrip("/") == spec.hf_repo
    assert tuple(cfg["mean"]) == spec.mean and tuple(cfg["std"]) == spec.std
    assert cfg["interpolation"] == spec.interpolation
    assert cfg["resize_mode"] == spec.resize_mode
    model_cfg = open_clip.get_model_config(spec.architecture)
    assert model_cfg["embed_dim"] == spec.embed_dim
    assert model_cfg["vision_cfg"]["image_size"] == spec.image_size


def test_tiny_clip_is_reproducible_and_normalised():
    a = ClipEncoder(get_preset("tiny-clip")).encode_texts(["a red circle", "a blue square"])
    b = ClipEncoder(get_preset("tiny-clip")).encode_texts(["a red circle", "a blue square"])
    assert a.shape == (2, 64) and np.array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_missing_weights_message_names_model_places_and_fix(monkeypatch, tmp_path):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as err:
        resolve_weights(get_preset("clip-vit-b-32"))
    message = str(err.value)
    for needle in (
        "clip-vit-b-32",
        str(tmp_path / "hub"),
        "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
        "HF_HUB_OFFLINE is set",
        "python app.py models download clip-vit-b-32",
        "--model-path",
    ):
        assert needle in message


def test_tiny_is_never_a_fallback(monkeypatch, tmp_path):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    library = Library(tmp_path / "data")
    encoder = library.search_encoder(None, None)
    assert encoder.name == "clip-vit-b-32"
    with pytest.raises(WeightsNotFoundError):
        encoder.encode_texts(["a cat"])


def test_explicit_path_file_and_folder(tmp_path, vit_b32_checkpoint):
    spec = get_preset("clip-vit-b-32")
    assert resolve_weights(spec, vit_b32_checkpoint).path == vit_b32_checkpoint
    assert resolve_weights(spec, vit_b32_checkpoint.parent).path == vit_b32_checkpoint
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        resolve_weights(spec, tmp_path / "nope.safetensors")
    (tmp_path / "a.bin").write_bytes(b"x")
    (tmp_path / "b.bin").write_bytes(b"x")
    with pytest.raises(WeightsNotFoundError, match="cannot tell which file"):
        resolve_weights(spec, tmp_path)


def test_weights_found_in_hugging_face_cache_offline(monkeypatch, tmp_path, vit_b32_checkpoint):
    """The cache layout the hub client writes: refs/main -> snapshots/<commit>/file."""
    spec = get_preset("clip-vit-b-32")
    repo = tmp_path / "hub" / ("models--" + spec.hf_repo.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    shutil.copy(vit_b32_checkpoint, snapshot / "open_clip_model.safetensors")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    weights = resolve_weights(spec)
    assert weights.source == "Hugging Face cache"
    from_cache = ClipEncoder(spec).encode_texts(["a dog"])
    from_path = ClipEncoder(spec, vit_b32_checkpoint).encode_texts(["a dog"])
    np.testing.assert_array_equal(from_cache, from_path)


def test_weights_present_looks_without_downloading(monkeypatch, tmp_path, vit_b32_checkpoint):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))

    def no_download(spec):
        raise AssertionError(f"weights_present tried to download {spec.name}")

    monkeypatch.setattr("search.models.weights._download", no_download)
    spec = get_preset("clip-vit-b-32")
    assert weights_present(get_preset("tiny-clip"))
    assert not weights_present(spec)
    assert weights_present(spec, vit_b32_checkpoint)
    assert not weights_present(spec, tmp_path / "nope.safetensors")


def test_an_untrained_model_pairs_with_the_untrained_model_of_the_other_space():
    tiny_clip, tiny_clap = get_preset("tiny-clip"), get_preset("tiny-clap")
    assert trial_partner(tiny_clip, "clap") == "tiny-clap"
    assert trial_partner(tiny_clap, "clip") == "tiny-clip"
    tuned = dataclasses.replace(tiny_clip, name="shapes", base="tiny-clip", adapter="a.st")
    assert trial_partner(tuned, "clap") == "tiny-clap"
    assert trial_partner(get_preset("clip-vit-b-32"), "clap") is None


def test_model_fingerprints_are_those_existing_bridge_caches_are_named_by(tmp_path):
    """The CLIP <-> CLAP bridges a library has fitted are cached under both models'
    fingerprints: the values of earlier releases, so no library fits its bridge again."""
    assert ClipEncoder(get_preset("tiny-clip")).fingerprint == "012ac94470033148"
    assert ClapEncoder(get_preset("tiny-clap")).fingerprint == "6eb2789b7ba96c33"
    adapter = tmp_path / "adapter.safetensors"
    adapter.write_bytes(b"trove adapter bytes")
    for base, expected in (("tiny-clip", "2b5de5f7cdc8ff81"), ("tiny-clap", "26284ce82c9c0b5d")):
        spec = dataclasses.replace(get_preset(base), name="tuned", base=base, adapter=str(adapter))
        encoder = ClipEncoder(spec) if spec.space == "clip" else ClapEncoder(spec)
        assert encoder.fingerprint == expected
    retrained = dataclasses.replace(get_preset("tiny-clip"), base="tiny-clip", adapter=str(adapter))
    before = ClipEncoder(retrained).fingerprint
    adapter.write_bytes(b"trained again")
    assert ClipEncoder(retrained).fingerprint != before


def test_a_weight_file_is_known_by_its_path_size_and_time(tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"\0" * 64)
    os.utime(weights, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    first = weights_fingerprint("m", weights)
    assert weights_fingerprint("m", tmp_path / "." / "model.safetensors") == first
    assert weights_fingerprint("other", weights) != first
    os.utime(weights, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_001))
    assert weights_fingerprint("m", weights) != first


def test_importing_the_app_loads_no_model_and_no_torch():
    code = "import sys, app; print('torch' in sys.modules, 'open_clip' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("module", ["search.models", "search.models.encoders"])
def test_the_model_registry_imports_without_torch(module):
    """Presets, the registry and the encoder table are plain data: listing them, or parsing
    app.py's arguments, must not pay for torch (seconds at every start)."""
    code = f"import sys, {module}; print('torch' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.split() == ["False"]


def test_every_kind_of_encoder_offers_the_encoder_protocol():
    from search.models.encoders import Encoder, Encoders
    from search.models.text import load_text_encoder

    minilm = load_text_encoder("all-minilm-l6-v2")
    kinds = [
        ClipEncoder(get_preset("tiny-clip")),
        ClapEncoder(get_preset("tiny-clap")),
        load_text_encoder("tiny-text"),
        minilm,
        load_text_encoder(f"hf:{minilm.resolve()}@cls"),
        load_text_encoder("openai:local-model", base_url="http://127.0.0.1:9", dim=8),
    ]
    for encoder in kinds:
        assert isinstance(encoder, Encoder), type(encoder).__name__
    encoders = Encoders("tiny-clip", "tiny-clap", "tiny-text")
    assert all(isinstance(encoders.get(space), Encoder) for space in ("clip", "clap", "text"))
    assert not isinstance(object(), Encoder)


def test_fine_tuned_presets_come_from_the_data_folder_in_use(tmp_path, monkeypatch):
    from search.errors import UnknownModelError
    from search.models import presets_from

    monkeypatch.setenv("TROVE_DATA_DIR", str(tmp_path / "default"))
    folder = tmp_path / "library" / "models" / "bella"
    folder.mkdir(parents=True)
    (folder / "adapter.safetensors").write_bytes(b"weights")
    manifest = {"base": "tiny-clip", "adapter": "adapter.safetensors", "objective": "clip"}
    (folder / "manifest.json").write_text(json.dumps(manifest))

    with presets_from(tmp_path / "library"):
        spec = get_preset("bella")
        assert (spec.base, spec.adapter) == ("tiny-clip", str(folder / "adapter.safetensors"))
        assert "bella" in [s.name for s in list_presets()]
    with pytest.raises(UnknownModelError, match="bella"):
        get_preset("bella")
    assert "bella" not in [s.name for s in list_presets()]
