"""Downloading weights, end to end: the real `app.py` CLI and the real huggingface_hub client
against a Hugging Face hub on loopback (`tests/hubserver.py`, `HF_ENDPOINT` pointing at it).

The hub serves the default presets' repos in their real file layout and at real size (about
600 MB each), with seeded random weights of the real architectures: laion/CLIP-ViT-B-32-
laion2B-s34B-b79K's open_clip files and laion/clap-htsat-unfused's transformers folder. Each
command runs with its own HF_HOME under tmp_path; "offline" means HF_HUB_OFFLINE=1 with the
server stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tqdm import tqdm

from search.models.registry import CLAP_SUPPORT_FILES
from tests.app_process import run_app
from tests.checkpoints import save_random_clap_htsat_unfused, save_random_vit_b32_repo
from tests.hubserver import Fault, HubServer, Repo, hub_env
from tests.media import make_photo
from tests.media_audio import chirp, tone, write_audio

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CLIP = "clip-vit-b-32"
CLAP = "clap-htsat-unfused"
CLIP_REPO = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
CLAP_REPO = "laion/clap-htsat-unfused"
CLIP_WEIGHTS = "open_clip_model.safetensors"
CLAP_WEIGHTS = "model.safetensors"
SUMMARY = re.compile(r"^Done in [0-9.]+ s with (?P<model>\S+): (?P<indexed>\d+) indexed", re.M)


@dataclass(frozen=True)
class Repos:
    clip: Repo
    clap: Repo


@pytest.fixture(scope="module")
def repos(tmp_path_factory) -> Iterator[Repos]:
    """Both repos, generated once for the module (about 20 s and 1.8 GB, removed after)."""
    base = tmp_path_factory.mktemp("hub")
    clip = save_random_vit_b32_repo(base / "clip")
    clap = save_random_clap_htsat_unfused(base / "clap")
    yield Repos(
        Repo.from_files(CLIP_REPO, {p.name: p for p in clip.iterdir()}),
        Repo.from_files(CLAP_REPO, {p.name: p for p in clap.iterdir()}),
    )
    shutil.rmtree(base)


@pytest.fixture
def hf(tmp_path: Path) -> Iterator[Path]:
    """The test's own HF_HOME; its downloaded weights (over 1 GB) are removed after."""
    yield tmp_path / "hf"
    shutil.rmtree(tmp_path / "hf", ignore_errors=True)


def trove(*args: str | Path, env: dict[str, str], data_dir: Path | None = None):
    """`python app.py ARGS` from the repo root with `env` (see `online` and `offline`)."""
    return run_app(*args, env=env, data_dir=data_dir, timeout=400)


def online(hub: HubServer, hf_home: Path) -> dict[str, str]:
    return hub_env(os.environ, hub.url, hf_home)


def offline(hf_home: Path) -> dict[str, str]:
    return hub_env(os.environ, None, hf_home)


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    return proc


def one_error(proc: subprocess.CompletedProcess) -> str:
    """The single `error:` paragraph of a failed command (and no traceback)."""
    assert proc.returncode == 1, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def snapshot(hf_home: Path, repo: Repo) -> Path:
    """Where the hub client puts the repo's files: the cache layout every HF tool reads."""
    folder = "models--" + repo.repo_id.replace("/", "--")
    return hf_home / "hub" / folder / "snapshots" / repo.commit


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def assert_cached(hf_home: Path, repo: Repo, names: list[str]) -> None:
    """The files are in the snapshot, each a link to a blob named by its hub ETag, with the
    served bytes, and `refs/main` names the commit."""
    folder = snapshot(hf_home, repo)
    for name in names:
        served = repo.files[name]
        link = folder / name
        assert link.is_symlink(), f"{name} is not in the cache's snapshot"
        assert link.resolve().parent.name == "blobs" and link.resolve().name == served.etag
        if served.lfs:
            assert sha256(link) == served.etag
        else:
            assert link.read_bytes() == served.path.read_bytes()
    assert (folder.parent.parent / "refs" / "main").read_text() == repo.commit
    assert not list((hf_home / "hub").rglob("*.incomplete"))


def finished_bar(stderr: str, name: str, size: int) -> str:
    """The progress bar's last state for one file: 100%, its size, and a transfer rate."""
    total = tqdm.format_sizeof(size)
    pattern = re.compile(
        rf"^{re.escape(name)}: 100%\|.*\| {re.escape(total)}/{re.escape(total)} "
        rf"\[[^\]]*, *[0-9.]+ ?[kMGTP]?B/s\]$"
    )
    states = [s.strip() for s in re.split(r"[\r\n]", stderr)]
    done = [s for s in states if pattern.match(s)]
    assert done, f"no finished progress bar for {name} ({total}) in stderr:\n{stderr[-3000:]}"
    return done[-1]


def fetched(hub: HubServer) -> list[str]:
    """The repo files whose bytes the client asked for, once per request, sorted."""
    names = {name for repo in hub.state.repos.values() for name in repo.files}
    return sorted(name for name in names for _ in hub.downloads(name))


def photos(folder: Path) -> list[Path]:
    return [
        make_photo(folder / "beach.jpg", 1, quality=90).resolve(),
        make_photo(folder / "forest.png", 2).resolve(),
        make_photo(folder / "2023" / "snow.jpg", 3, quality=90).resolve(),
    ]


def sounds(folder: Path) -> list[Path]:
    rate = 48_000
    return [
        write_audio(folder / "bell.wav", tone(660, 4.0, rate), rate).resolve(),
        write_audio(folder / "birds.flac", chirp(2000, 5000, 6.0, rate), rate).resolve(),
    ]


def search(*args: str | Path, env: dict[str, str], data_dir: Path) -> list[dict]:
    return json.loads(ok(trove("search", *args, "--json", env=env, data_dir=data_dir)).stdout)


def test_models_download_clip_then_search_offline(repos: Repos, hf: Path, tmp_path: Path) -> None:
    with HubServer([repos.clip, repos.clap]) as hub:
        proc = ok(trove("models", "download", CLIP, env=online(hub, hf)))
        asked = fetched(hub)

    weights = snapshot(hf, repos.clip) / CLIP_WEIGHTS
    assert proc.stdout.strip() == f"{CLIP}: downloaded at {weights}"
    assert_cached(hf, repos.clip, [CLIP_WEIGHTS])
    assert asked == [CLIP_WEIGHTS], "only the weights Trove loads are fetched (not the .bin)"
    finished_bar(proc.stderr, CLIP_WEIGHTS, repos.clip.files[CLIP_WEIGHTS].size)
    assert f"Downloading the {CLIP} weights from " in proc.stderr

    # The server is gone and the hub is off: the cache alone serves every command.
    env = offline(hf)
    again = ok(trove("models", "download", CLIP, env=env))
    assert again.stdout.strip() == f"{CLIP}: Hugging Face cache at {weights}"

    lib, data = tmp_path / "photos", tmp_path / "data"
    shots = photos(lib)
    index = ok(trove("index", lib, env=env, data_dir=data))
    assert SUMMARY.search(index.stdout)["model"] == CLIP
    assert SUMMARY.search(index.stdout)["indexed"] == str(len(shots))

    hits = search("--image", shots[2], "-k", "3", env=env, data_dir=data)
    assert hits[0]["path"] == str(shots[2]) and hits[0]["score"] > 0.99
    assert sorted(r["path"] for r in hits) == sorted(map(str, shots))


def test_models_download_clap_then_search_offline(repos: Repos, hf: Path, tmp_path: Path) -> None:
    with HubServer([repos.clip, repos.clap]) as hub:
        proc = ok(trove("models", "download", CLAP, env=online(hub, hf)))
        asked = fetched(hub)

    weights = snapshot(hf, repos.clap) / CLAP_WEIGHTS
    assert proc.stdout.strip() == f"{CLAP}: downloaded at {weights}"
    assert_cached(hf, repos.clap, [CLAP_WEIGHTS, *CLAP_SUPPORT_FILES])
    assert asked == sorted([CLAP_WEIGHTS, *CLAP_SUPPORT_FILES])
    finished_bar(proc.stderr, CLAP_WEIGHTS, repos.clap.files[CLAP_WEIGHTS].size)

    env = offline(hf)
    info = ok(trove("models", "info", CLAP, env=env)).stdout
    assert f"on this machine: yes (Hugging Face cache: {weights})" in info

    # tiny-clip for the pictures' side: this test is about the sound model's weights.
    lib, data = tmp_path / "sounds", tmp_path / "data"
    bell, birds = sounds(lib)
    index = ok(trove("index", lib, "--model", "tiny-clip", env=env, data_dir=data))
    assert SUMMARY.search(index.stdout)["indexed"] == "2", index.stdout

    # Words, not a sound, as the query: a sound query also fits the CLIP <-> CLAP bridge,
    # 3000 captions through both real-size text towers, minutes on two cores.
    by_text = search("a bell ringing", "--kind", "audio", env=env, data_dir=data)
    assert sorted(r["path"] for r in by_text) == sorted([str(bell), str(birds)])


def test_first_index_downloads_the_weights_it_needs(repos: Repos, hf: Path, tmp_path: Path) -> None:
    shots = photos(tmp_path / "photos")
    sounds(tmp_path / "sounds")
    with HubServer([repos.clip, repos.clap]) as hub:
        env = online(hub, hf)
        index = ok(trove("index", tmp_path / "photos", env=env, data_dir=tmp_path / "d1"))
        assert fetched(hub) == [CLIP_WEIGHTS], "photos alone need no sound model"
        url = hub.url
        # A folder of sounds on a machine that already has the CLIP weights: only CLAP's.
        quiet = ok(
            trove("index", tmp_path / "sounds", "--quiet", env=env, data_dir=tmp_path / "d2")
        )
        assert fetched(hub) == sorted([CLIP_WEIGHTS, CLAP_WEIGHTS, *CLAP_SUPPORT_FILES])

    assert SUMMARY.search(index.stdout)["indexed"] == str(len(shots))
    assert f"Downloading the {CLIP} weights from {url}/{CLIP_REPO}" in index.stderr
    finished_bar(index.stderr, CLIP_WEIGHTS, repos.clip.files[CLIP_WEIGHTS].size)
    assert_cached(hf, repos.clip, [CLIP_WEIGHTS])

    assert SUMMARY.search(quiet.stdout)["indexed"] == "2", quiet.stdout
    assert f"Downloading the {CLAP} weights" in quiet.stderr
    assert "100%|" not in quiet.stderr, "--quiet shows no progress bar, the download's neither"
    assert_cached(hf, repos.clap, [CLAP_WEIGHTS, *CLAP_SUPPORT_FILES])


@pytest.mark.parametrize("kind", ["cut", "status"], ids=["connection-lost-half-way", "http-500"])
def test_a_failed_weights_download_leaves_nothing_taken_for_weights(
    repos: Repos, hf: Path, tmp_path: Path, kind: str
) -> None:
    fault = Fault.cut(CLIP_WEIGHTS) if kind == "cut" else Fault.http_status(CLIP_WEIGHTS, 500)
    with HubServer([repos.clip], [fault]) as hub:
        failed = trove("models", "download", CLIP, env=online(hub, hf))
        asked = fetched(hub)

    error = one_error(failed)
    assert error.startswith(f"error: No weights for model {CLIP}")
    assert f"failed while fetching {CLIP_WEIGHTS} (" in error
    assert f"run `python app.py models download {CLIP}` again" in error
    assert set(asked) == {CLIP_WEIGHTS}, "after a failed transfer the .bin is not tried"
    # Cut half-way, the client tries to resume (and is dropped again); a 500 is final.
    assert ("Trying to resume download" in failed.stderr) == (kind == "cut")
    size = repos.clip.files[CLIP_WEIGHTS].size
    # Nothing of the half-received file stays in the cache, under any name.
    cached = [p for p in (hf / "hub").rglob("*") if p.is_file()]
    assert all(p.stat().st_size < size // 4 for p in cached), cached
    assert not (snapshot(hf, repos.clip) / CLIP_WEIGHTS).exists()

    env = offline(hf)
    info = ok(trove("models", "info", CLIP, env=env)).stdout
    assert f"on this machine: no. No weights for model {CLIP}" in info
    assert f"{CLIP_REPO} ({CLIP_WEIGHTS} or open_clip_pytorch_model.bin): not there" in info
    lib, data = tmp_path / "photos", tmp_path / "data"
    photos(lib)
    error = one_error(trove("index", lib, env=env, data_dir=data))
    assert error.startswith(f"error: No weights for model {CLIP}")
    assert "HF_HUB_OFFLINE is set" in error
    assert not data.exists(), "a failed index run leaves no half-made library"

    with HubServer([repos.clip]) as hub:
        ok(trove("models", "download", CLIP, env=online(hub, hf)))
    assert_cached(hf, repos.clip, [CLIP_WEIGHTS])
    info = ok(trove("models", "info", CLIP, env=env)).stdout
    assert "on this machine: yes (Hugging Face cache: " in info


def test_a_repo_half_fetched_is_not_taken_for_weights_and_completes_later(
    repos: Repos, hf: Path, tmp_path: Path
) -> None:
    """The weights arrive but a tokenizer file fails (a 500): a transformers folder without
    its tokenizer is not a model. The next run fetches only what is missing."""
    with HubServer([repos.clap], [Fault.http_status("tokenizer_config.json", 500)]) as hub:
        failed = trove("models", "download", CLAP, env=online(hub, hf))
    error = one_error(failed)
    assert "failed while fetching tokenizer_config.json (" in error and "500" in error

    env = offline(hf)
    info = ok(trove("models", "info", CLAP, env=env)).stdout
    assert f"on this machine: no. No weights for model {CLAP}" in info
    assert f"{CLAP_WEIGHTS} without tokenizer_config.json, vocab.json, merges.txt" in info, (
        "the lookup names what the cache lacks"
    )
    lib, data = tmp_path / "sounds", tmp_path / "data"
    sounds(lib)
    index = ok(trove("index", lib, "--model", "tiny-clip", env=env, data_dir=data))
    assert SUMMARY.search(index.stdout)["indexed"] == "0", index.stdout
    assert f"CLAP model unavailable: No weights for model {CLAP}" in index.stdout

    with HubServer([repos.clap]) as hub:
        ok(trove("models", "download", CLAP, env=online(hub, hf)))
        assert fetched(hub) == ["merges.txt", "tokenizer_config.json", "vocab.json"]
    assert_cached(hf, repos.clap, [CLAP_WEIGHTS, *CLAP_SUPPORT_FILES])
    info = ok(trove("models", "info", CLAP, env=env)).stdout
    assert "on this machine: yes (Hugging Face cache: " in info
