"""Fine-tuned models as presets: <data dir>/models/NAME/ holds manifest.json + the adapter.

A fine-tuned preset is its built-in base preset (architecture, preprocessing, weights
lookup) with an adapter file laid over the base weights once they are loaded. The presets
live in the models folder of the data folder in use: the one a command's --data-dir names,
else the user's data folder (TROVE_DATA_DIR, or the platform's).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from search.errors import TroveError, UnknownModelError
from search.models.registry import PRESETS, ModelSpec
from search.storage.datadir import DataDir

MANIFEST = "manifest.json"
ADAPTER_FILE = "adapter.safetensors"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

log = logging.getLogger(__name__)


def check_preset_name(name: str) -> None:
    """A name that is a folder name everywhere and does not hide a built-in preset."""
    if not NAME_PATTERN.fullmatch(name):
        raise TroveError(
            f"--out {name!r}: use letters, digits, '.', '_' or '-' (up to 64), e.g. bella-clip."
        )
    if name in PRESETS:
        raise TroveError(f"--out {name}: that is a built-in preset; pick another name.")


class UserPresets:
    """The fine-tuned presets of the data folder in use: a source for the registry
    (`add_preset_source`). Outside `using(...)` that is the default data folder, looked up
    at each call (TROVE_DATA_DIR may change while a process runs)."""

    def __init__(self) -> None:
        self._data_dir: DataDir | None = None

    @property
    def folder(self) -> Path:
        """The models folder presets are read from now."""
        return (self._data_dir or DataDir.default()).models

    @contextmanager
    def using(self, data_dir: str | Path | None) -> Iterator[None]:
        """Read presets from `data_dir`'s models folder while the block runs (None: the
        default data folder). A process works in one data folder at a time: the CLI for one
        command, the web UI for the library it serves."""
        previous = self._data_dir
        self._data_dir = DataDir(data_dir) if data_dir is not None else None
        try:
            yield
        finally:
            self._data_dir = previous

    def find(self, name: str) -> ModelSpec | None:
        """The fine-tuned preset called `name`, or None when there is none."""
        if not NAME_PATTERN.fullmatch(name):
            return None
        folder = self.folder / name
        if not (folder / MANIFEST).is_file() or is_text_preset(folder):
            return None
        try:
            return spec_from_manifest(folder)
        except (OSError, ValueError, KeyError, TypeError, TroveError) as exc:
            raise UnknownModelError(
                f"The fine-tuned model {name} in {folder} cannot be read ({exc}). Train it "
                f"again (`python app.py finetune ... --out {name} --force`) or delete that "
                f"folder."
            ) from None

    def presets(self) -> list[ModelSpec]:
        """Every readable fine-tuned preset; unreadable ones are logged and left out."""
        folder = self.folder
        if not folder.is_dir():
            return []
        specs = []
        for entry in sorted(folder.iterdir()):
            if (entry / MANIFEST).is_file() and not is_text_preset(entry):
                try:
                    specs.append(spec_from_manifest(entry))
                except (OSError, ValueError, KeyError, TypeError, TroveError) as exc:
                    log.warning("skipping fine-tuned model %s: %s", entry, exc)
        return specs


def is_text_preset(folder: Path) -> bool:
    """A fine-tuned sentence model (search/finetune/text.py), which the text encoders load
    (search/models/text.py), not the picture and sound registry."""
    try:
        return json.loads((folder / MANIFEST).read_text()).get("space") == "text"
    except (OSError, ValueError, AttributeError):
        return False


def spec_from_manifest(folder: Path) -> ModelSpec:

    manifest = json.loads((folder / MANIFEST).read_text())
    base = PRESETS.get(manifest["base"])
    if base is None:
        raise TroveError(f"its base model {manifest['base']!r} is not a built-in preset")
    adapter = folder / manifest["adapter"]
    if not adapter.is_file():
        raise TroveError(f"the adapter file {adapter.name} is missing")
    after = manifest.get("metrics", {}).get("after", {}).get("t2i_r1")
    before = manifest.get("metrics", {}).get("before", {}).get("t2i_r1")
    figures = (
        f"; held-out text->image R@1 {100 * before:.1f}% -> {100 * after:.1f}%"
        if after is not None and before is not None
        else ""
    )
    return dataclasses.replace(
        base,
        name=folder.name,
        base=base.name,
        adapter=str(adapter),
        description=f"Fine-tuned from {base.name} ({manifest.get('trained')}, "
        f"{manifest.get('objective')} loss, {manifest.get('train_pairs')} pairs){figures}.",
    )
