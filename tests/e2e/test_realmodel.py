"""With the real clip-vit-b-32 weights, each demo photo is found by its obvious description.

Skipped where the weights are not on this machine (`python app.py models download
clip-vit-b-32` on a machine with network, or copy the Hugging Face cache here).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexers.pipeline import Indexer
from search.engine import SearchEngine
from search.models import load_encoder
from search.models.encoders import Encoders
from search.models.weights import weights_present
from search.storage.catalog import Root

DEMO = Path(__file__).resolve().parents[2] / "assets" / "demo"
DESCRIPTIONS = json.loads((DEMO / "descriptions.json").read_text())

pytestmark = pytest.mark.realmodel


@pytest.fixture(scope="module")
def demo_engine(tmp_path_factory):
    encoder = load_encoder("clip-vit-b-32")
    if not weights_present(encoder.spec):
        pytest.skip("real clip-vit-b-32 weights are not on this machine")
    from search.library import Library

    library = Library(tmp_path_factory.mktemp("realmodel"))
    Indexer(library, Encoders(encoder), progress=False).run([Root(str(DEMO), (), ())])
    return SearchEngine(library)


@pytest.mark.parametrize("name, description", sorted(DESCRIPTIONS.items()))
def test_demo_photo_is_first_for_its_description(demo_engine, name, description):
    top = demo_engine.search(description, k=3)
    assert Path(top[0].path) == DEMO / name, [(Path(r.path).name, r.score) for r in top]
