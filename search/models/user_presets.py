"""Fine-tuned models as presets: <data dir>/models/NAME/ holds manifest.json + the adapter.

A fine-tuned preset is its built-in base preset (architecture, preprocessing, weights
lookup) with an adapter file laid over the base weights once they are loaded. The models
folder belongs to the user's data folder (TROVE_DATA_DIR), not to one library, so the
same fine-tuned model can index any library.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path

from search.errors import TroveError, UnknownModelError
from search.models.registry import PRESETS, ModelSpec
from search.storage.datadir import DataDir

MANIFEST = "manifest.json"
ADAPTER_FILE = "adapter.safetensors"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

log = logging.getLogger(__name__)


def user_models_dir() -> Path:
    return DataDir.default().models


def preset_dir(name: str) -> Path:
    return user_models_dir() / name


def check_preset_name(name: str) -> None:
    """A name that is a folder name everywhere and does not hide a built-in preset."""
    if not NAME_PATTERN.fullmatch(name):
        raise TroveError(
            f"--out {name!r}: use letters, digits, '.', '_' or '-' (up to 64), e.g. bella-clip."
        )
    if name in PRESETS:
        raise TroveError(f"--out {name}: that is a built-in preset; pick another name.")


class UserPresets:
    """The fine-tuned presets in the default data folder's models folder, looked up at each
    call (TROVE_DATA_DIR may change while a process runs): a source for the registry
    (`add_preset_source`)."""

    def find(self, name: str) -> ModelSpec | None:
        """The fine-tuned preset called `name`, or None when there is none."""
        if not NAME_PATTERN.fullmatch(name):
            return None
        folder = preset_dir(name)
        if not (folder / MANIFEST).is_file():
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
        folder = user_models_dir()
        if not folder.is_dir():
            return []
        specs = []
        for entry in sorted(folder.iterdir()):
            if (entry / MANIFEST).is_file():
                try:
                    specs.append(spec_from_manifest(entry))
                except (OSError, ValueError, KeyError, TypeError, TroveError) as exc:
                    log.warning("skipping fine-tuned model %s: %s", entry, exc)
        return specs


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
