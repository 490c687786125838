"""`pip install .` installs a `trove` command that does what `python app.py` does: the wheel
built from a copy of the tree is installed into a fresh virtual environment (its
dependencies are this one's, already installed), and `trove` indexes and searches from a
folder far from the repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from search import __version__
from tests.app_process import REPO
from tests.media import make_photo

pytestmark = pytest.mark.slow
SOURCES = ["pyproject.toml", "requirements.txt", "app.py", "search", "indexers", "assets"]


def run(*command, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_pip_install_gives_a_trove_command(tmp_path: Path):
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tree / name)
    # Offline: the build uses this environment's setuptools instead of fetching one.
    run(sys.executable, "-m", "pip", "wheel", str(tree), "--no-deps", "--no-build-isolation",
        "-w", str(tmp_path / "dist"), "-q")  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("trove-*.whl")
    assert wheel.name.startswith(f"trove-{__version__}-")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = zf.read(f"trove-{__version__}.dist-info/entry_points.txt").decode()
    assert "trove = app:main" in entry_points
    assert {"app.py", "indexers/watch.py", "assets/captions/captions.txt"} <= names

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", str(venv))
    site = Path(
        run(
            str(venv / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ).stdout.strip()  # noqa: E501
    )
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-index", "-q",
        str(wheel))  # fmt: skip

    trove = str(venv / "bin" / "trove")
    elsewhere = tmp_path / "elsewhere"
    photo = make_photo(elsewhere / "photos" / "cat.jpg", 5, quality=90)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TROVE_DATA_DIR": str(tmp_path / "data")}
    env.pop("PYTHONPATH", None)
    assert "watch" in run(trove, "--help", cwd=elsewhere, env=env).stdout
    run(trove, "index", "photos", "--model", "tiny-clip", "--quiet", cwd=elsewhere, env=env)
    found = run(trove, "search", "--image", str(photo), "--json", cwd=elsewhere, env=env)
    assert json.loads(found.stdout)[0]["path"] == str(photo)
    shown = run(trove, "status", "--json", cwd=elsewhere, env=env)
    assert json.loads(shown.stdout)["items"] == {"image": 1}
