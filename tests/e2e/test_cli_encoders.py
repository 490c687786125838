"""End to end through `python app.py`: the encoder presets of issue 19 are listed with their
weights status, explained by `models info`, refused with the weights message when absent,
and their tiny variants index and search a library offline."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.app_process import run_app
from tests.media import make_photo
from tests.media_audio import chirp, noise_burst, tone, write_audio

pytestmark = pytest.mark.slow

NEW_PRESETS = {
    "mclip-xlmr-b-32": "clip",
    "siglip2-vit-b-16": "clip",
    "tiny-mclip": "clip",
    "tiny-siglip2": "clip",
    "ast-audioset": "sound",
    "wav2vec2-base": "sound",
    "xclip-base-patch32": "video",
    "tiny-xclip": "video",
    "tiny-ast": "sound",
    "tiny-wav2vec2": "sound",
}


def trove(*args: str | Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """`python app.py ARGS` offline with an empty Hugging Face home: no weights but the ones
    built locally."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf")}
    return run_app(*args, env=env, data_dir=tmp_path / "data")


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_models_list_shows_each_new_preset_with_its_weights_status(tmp_path):
    listing = ok(trove("models", "list", tmp_path=tmp_path))
    rows = {line.split()[0]: line for line in listing.splitlines() if line.strip()}
    for name, space in NEW_PRESETS.items():
        assert name in rows, listing
        assert rows[name].split()[1] == space, rows[name]
        status = "built locally" if name.startswith("tiny-") else "weights: not here"
        assert status in rows[name], rows[name]


def test_a_sound_model_without_weights_is_explained(tmp_path):
    info = ok(trove("models", "info", "ast-audioset", tmp_path=tmp_path))
    assert re.search(r"^space:\s+sound, embedding dim 768$", info, re.MULTILINE), info
    assert "on this machine: no" in info
    assert "python app.py models download ast-audioset" in info
    assert "--sound-model-path /path/to/ast-audioset-folder" in info
    assert "--sound-model tiny-ast" in info
    download = trove("models", "download", "wav2vec2-base", tmp_path=tmp_path)
    assert download.returncode == 1
    assert "HF_HUB_OFFLINE is set" in download.stderr


def test_index_and_search_with_a_tiny_sound_model(tmp_path):
    folder = tmp_path / "library"
    folder.mkdir()
    write_audio(folder / "tone.wav", tone(440, 3))
    write_audio(folder / "chirp.flac", chirp(200, 6000, 5))
    write_audio(folder / "noise.wav", noise_burst(2, 3))
    make_photo(folder / "lake.jpg", 2)
    models = ("--model", "tiny-clip", "--audio-model", "tiny-clap", "--text-model", "tiny-text")
    ok(
        trove(
            "index", folder, *models, "--sound-model", "tiny-wav2vec2", "--quiet", tmp_path=tmp_path
        )
    )
    status = json.loads(ok(trove("status", "--json", tmp_path=tmp_path)))
    assert status["models"]["sound"] == "tiny-wav2vec2", status

    query = folder / "chirp.flac"
    hits = json.loads(ok(trove("search", "--audio", query, "--json", tmp_path=tmp_path)))
    assert hits[0]["path"] == str(query) and hits[0]["score"] == pytest.approx(1.0, abs=1e-3)

    refused = trove("search", "--audio", query, "--sound-model", "tiny-ast", tmp_path=tmp_path)
    assert refused.returncode != 0
    assert "indexed with tiny-wav2vec2" in refused.stderr
    assert "index --sound-model tiny-ast" in refused.stderr


@pytest.mark.parametrize("model", ["tiny-mclip", "tiny-siglip2"])
def test_index_and_search_with_a_tiny_picture_model(tmp_path, model):
    folder = tmp_path / "library"
    folder.mkdir()
    for i, name in enumerate(("lake", "forest", "street")):
        make_photo(folder / f"{name}.jpg", i)
    models = ("--model", model, "--audio-model", "tiny-clap", "--text-model", "tiny-text")
    ok(trove("index", folder, *models, "--quiet", tmp_path=tmp_path))
    status = json.loads(ok(trove("status", "--json", tmp_path=tmp_path)))
    assert status["models"]["clip"] == model, status

    query = folder / "forest.jpg"
    hits = json.loads(ok(trove("search", "--image", query, "--json", tmp_path=tmp_path)))
    assert hits[0]["path"] == str(query) and hits[0]["score"] == pytest.approx(1.0, abs=1e-3)
    # A query in another language runs through the model's own tokenizer and text tower.
    words = json.loads(ok(trove("search", "ein Hund im Schnee", "--json", tmp_path=tmp_path)))
    assert {hit["path"] for hit in words} == {
        str(folder / f) for f in ("lake.jpg", "forest.jpg", "street.jpg")
    }


def test_a_video_model_without_weights_is_explained(tmp_path):
    info = ok(trove("models", "info", "xclip-base-patch32", tmp_path=tmp_path))
    assert re.search(r"^space:\s+video, embedding dim 512$", info, re.MULTILINE), info
    assert "--video-model-path /path/to/xclip-base-patch32-folder" in info
    assert "--video-model tiny-xclip" in info


def test_index_and_search_with_the_tiny_video_model(tmp_path):
    from tests.media_video import make_video

    folder = tmp_path / "library"
    folder.mkdir()
    make_video(folder / "clip.mp4", duration_s=10.0)
    make_photo(folder / "lake.jpg", 2)
    models = ("--model", "tiny-clip", "--audio-model", "tiny-clap", "--text-model", "tiny-text")
    ok(trove("index", folder, *models, "--video-model", "tiny-xclip", "--quiet", tmp_path=tmp_path))
    status = json.loads(ok(trove("status", "--json", tmp_path=tmp_path)))
    assert status["models"]["video"] == "tiny-xclip", status
    hits = json.loads(ok(trove("search", "a person jumping", "--json", tmp_path=tmp_path)))
    assert str(folder / "clip.mp4") in {hit["path"] for hit in hits}
