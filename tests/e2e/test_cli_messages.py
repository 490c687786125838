"""End-to-end: what the real `app.py` CLI tells a user who makes an ordinary mistake (issue 21):
one clear paragraph naming what is wrong, never a traceback, refused before anything starts."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest

from tests.app_process import free_port, run_app, serving
from tests.media import make_photo
from tests.media_audio import tone, write_audio

pytestmark = pytest.mark.slow


def trove(*args: str | Path, data_dir: Path | None = None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return run_app(*args, env=env, data_dir=data_dir)


def refused(proc, *fragments: str) -> str:
    """The error of a command that failed without a traceback, checked to name `fragments`."""
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "Traceback" not in out, out
    for fragment in fragments:
        assert fragment in out, f"{fragment!r} not in:\n{out}"
    return out


def test_out_of_range_numbers_are_refused_as_the_command_is_read(tmp_path: Path) -> None:
    out = refused(trove("search", "cat", "-k", "0", data_dir=tmp_path), "-k", "at least 1")
    assert "nothing matches" not in out
    for rate in ("-1", "0"):
        refused(
            trove("index", tmp_path, "--frame-rate", rate, data_dir=tmp_path / "data"),
            "--frame-rate",
            "above 0",
        )
    assert not (tmp_path / "data").exists(), "a refused command must not create the library"
    # The bare command is `serve`: its options work without the word, and a port that cannot
    # exist is refused by name.
    for argv in (["serve", "--port", "99999"], ["--port", "99999"]):
        refused(trove(*argv, data_dir=tmp_path), "--port", "1 to 65535")


def test_a_port_in_use_is_named_with_the_way_out(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        out = refused(
            trove("serve", "--port", port, "--model", "tiny-clip", data_dir=tmp_path),
            f"port {port}",
            "--port",
        )
    assert "launch()" not in out and "GRADIO_SERVER_PORT" not in out, out


def test_paged_results_are_numbered_from_the_offset_on(tmp_path: Path) -> None:
    lib, data = tmp_path / "photos", tmp_path / "data"
    for i in range(6):
        make_photo(lib / f"photo{i}.jpg", seed=i, quality=90)
    assert trove("index", lib, "--model", "tiny-clip", data_dir=data).returncode == 0
    proc = trove("search", "a photo", "--offset", "3", "-k", "2", data_dir=data)
    ranks = [int(m[1]) for m in re.finditer(r"^\s*(\d+)\s", proc.stdout, re.MULTILINE)]
    assert ranks == [4, 5], proc.stdout + proc.stderr


def test_a_junk_checkpoint_is_named_with_what_is_wrong(tmp_path: Path) -> None:
    lib = tmp_path / "photos"
    make_photo(lib / "one.jpg", seed=1, quality=90)
    for name in ("junk.safetensors", "junk.pt"):
        junk = tmp_path / name
        junk.write_text("this is not a checkpoint\n")
        args = ("--model", "clip-vit-b-32", "--model-path", junk)
        out = refused(trove("index", lib, *args, data_dir=tmp_path / "data"), str(junk))
        assert len(out.strip().splitlines()) == 1, out
        assert not (tmp_path / "data").exists()
    info = trove("models", "info", "clip-vit-b-32", "--model-path", tmp_path / "junk.safetensors")
    assert "on this machine: no" in info.stdout, info.stdout + info.stderr
    assert "on this machine: yes" not in info.stdout


def test_the_server_logs_one_line_per_user_error(tmp_path: Path) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    lib, data = tmp_path / "photos", tmp_path / "data"
    make_photo(lib / "one.jpg", seed=1, quality=90)
    assert trove("index", lib, "--model", "tiny-clip", "--quiet", data_dir=data).returncode == 0
    missing = tmp_path / "no-such-folder"
    with serving(["--library", data, "--model", "tiny-clip"], tmp_path) as (url, _, log):
        client = Client(url, verbose=False)
        with pytest.raises(AppError, match="not-a-date"):
            client.predict(query="a photo", after="not-a-date", api_name="/search")
        with pytest.raises(AppError, match="no-such-folder"):
            client.predict(path=str(missing), api_name="/add_root")
        served = log.read_text()
    assert "Traceback" not in served, served
    refusals = [line for line in served.splitlines() if "not-a-date" in line or "no-such" in line]
    assert len(refusals) == 2, served


def test_quiet_silences_weight_bars_and_decoder_notes(tmp_path: Path) -> None:
    lib = tmp_path / "sounds"
    song = write_audio(lib / "song.mp3", tone(440, 4.0))
    # Bytes after the last frame: mpg123 notes on stderr that its header's size is off.
    song.write_bytes(song.read_bytes() + bytes(range(256)) * 16)
    models = ("--model", "tiny-clip", "--audio-model", "tiny-clap")
    loud = trove("index", lib, *models, data_dir=tmp_path / "loud")
    assert loud.returncode == 0 and "Xing" in loud.stderr, loud.stderr  # the note to silence
    quiet = trove("index", lib, *models, "--quiet", data_dir=tmp_path / "quiet")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    # The demo loads its text model (transformers' "Loading weights" bar) before it indexes.
    demo = trove("demo", "--model", "tiny-clip", "--quiet", data_dir=tmp_path / "demo")
    assert demo.returncode == 0, demo.stderr
    assert "Loading weights" not in demo.stderr and "%|" not in demo.stderr, demo.stderr
    # What goes wrong is still said under --quiet.
    refused(trove("index", tmp_path / "nowhere", "--quiet", data_dir=tmp_path / "q2"), "nowhere")
