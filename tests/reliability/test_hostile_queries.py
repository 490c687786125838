"""Query files uploaded to the web API are decoded like indexed files: in the server's decode
workers, bounded in time and memory. A video that hangs the decoder and a sound that needs
more memory than the cap each get a clear error within the limit, and the server goes on
answering every kind of query.

The hang is held at the video decoder's pause point (search/testhooks.py), standing in for a
file that sends FFmpeg into an endless loop; the memory case is a real file: 40 minutes of
384 kHz FLAC (3.5 MB of silence), which decodes to 3.7 GB of samples.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from search.decode.isolation import DEFAULT_MEMORY_MIB
from search.segments import NATIVE_TIMEOUT_S
from tests.app_process import run_app, serving
from tests.media import make_photo
from tests.media_audio import noise_burst, tone, write_audio
from tests.media_video import make_video

pytestmark = pytest.mark.slow


def long_hires_flac(path: Path, minutes: int = 40, rate: int = 384_000) -> Path:
    """A valid, tiny FLAC whose samples at its own rate far exceed the decode cap."""
    block = np.zeros(rate * 30, dtype=np.int16)
    with sf.SoundFile(path, "w", rate, 1, format="FLAC", subtype="PCM_16") as out:
        for _ in range(minutes * 2):
            out.write(block)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile-queries")
    library = base / "library"
    library.mkdir()
    photos = [make_photo(library / f"p{i}.jpg", seed=i) for i in range(3)]
    sound = write_audio(library / "tone.wav", tone(440, 4.0))
    data = base / "data"
    models = ["--model", "tiny-clip", "--audio-model", "tiny-clap"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    indexed = run_app("index", library, *models, "--quiet", env=env, data_dir=data)
    assert indexed.returncode == 0, indexed.stderr
    hang = {"TROVE_TEST_PAUSE_AT": "decode.video"}
    with serving(["--library", data, "--model", "tiny-clip"], base, hang) as (url, _, log):
        yield url, base, photos, sound, log


def test_hostile_query_files_get_clear_errors_and_the_server_keeps_serving(server):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    url, base, photos, sound, log = server
    client = Client(url, verbose=False)
    hanging = make_video(base / "hangs.mp4", duration_s=2.0)
    huge = long_hires_flac(base / "huge.flac")

    started = time.monotonic()
    with pytest.raises(AppError) as hung:
        client.predict(video=handle_file(str(hanging)), api_name="/search")
    seconds = time.monotonic() - started
    assert "as a query video" in str(hung.value)
    assert f"took longer than {NATIVE_TIMEOUT_S:g} s to decode" in str(hung.value)
    # Cut at the limit, not after the hour the held decoder would sleep.
    assert NATIVE_TIMEOUT_S <= seconds < NATIVE_TIMEOUT_S + 60, seconds
    assert "trove-test-pause: decode.video" in log.read_text()

    with pytest.raises(AppError) as too_big:
        client.predict(sound=handle_file(str(huge)), api_name="/search")
    assert "as a query sound" in str(too_big.value)
    assert f"needed more than {DEFAULT_MEMORY_MIB} MiB to decode" in str(too_big.value)

    # The server is still whole: words, a photo and a sound (decoded by a fresh worker) work.
    by_words = client.predict(query="a photo", k=10, api_name="/search")
    assert len(by_words["results"]) == 4
    by_photo = client.predict(image=handle_file(str(photos[1])), k=1, api_name="/search")
    assert by_photo["results"][0]["file"] == str(photos[1])
    assert by_photo["results"][0]["score"] > 0.999
    other = write_audio(base / "noise.wav", noise_burst(3.0, seed=5))
    by_sound = client.predict(sound=handle_file(str(sound)), k=4, api_name="/search")
    assert by_sound["results"][0]["file"] == str(sound)
    assert client.predict(sound=handle_file(str(other)), k=4, api_name="/search")["results"]
