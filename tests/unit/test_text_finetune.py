"""Fine-tuning the sentence model (search/finetune/text.py): reading pairs and documents,
training the real all-MiniLM-L6-v2, the saved text preset and a library indexed with it.

The measured gain on a domain corpus is bench/text_finetune.py's (docs/finetuning.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from search.errors import TroveError
from search.finetune.text import (
    TextFinetuneConfig,
    finetune_text,
    heading_pairs,
    read_pairs,
    training_pairs,
)


def test_pairs_are_read_from_csv_jsonl_and_json(tmp_path: Path):
    (tmp_path / "p.csv").write_text('query,passage\nKV-310 trips,"The KV-310, at 85 C"\nb,c\n')
    assert read_pairs(tmp_path / "p.csv") == [("KV-310 trips", "The KV-310, at 85 C"), ("b", "c")]
    lines = [{"query": "q1", "passage": "p1"}, {"query": "q2", "passage": "p2"}]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert read_pairs(tmp_path / "p.jsonl") == [("q1", "p1"), ("q2", "p2")]
    (tmp_path / "p.json").write_text(json.dumps([["q1", "p1"], ["q2", "p2"]]))
    assert read_pairs(tmp_path / "p.json") == [("q1", "p1"), ("q2", "p2")]


def test_bad_pairs_are_named_with_where_they_are_wrong(tmp_path: Path):
    (tmp_path / "p.jsonl").write_text('{"query": "q", "passage": "p"}\nnot json\n')
    with pytest.raises(TroveError, match=r"line 2: not JSON"):
        read_pairs(tmp_path / "p.jsonl")
    (tmp_path / "p.json").write_text(json.dumps([{"query": "q"}, ["a", "b"]]))
    with pytest.raises(TroveError, match=r"pair 1: expected a query and a passage"):
        read_pairs(tmp_path / "p.json")
    (tmp_path / "p.txt").write_text("q\tp\n")
    with pytest.raises(TroveError, match=r"\.csv, \.jsonl or \.json"):
        read_pairs(tmp_path / "p.txt")
    with pytest.raises(TroveError, match="no such file"):
        read_pairs(tmp_path / "missing.csv")


def test_headings_and_file_names_are_paired_with_their_passages(tmp_path: Path):
    (tmp_path / "kv-310.md").write_text(
        "# KV-310 thermal cut-off\n\nOpens at 85 C.\n\n## Mounting\n\nFour M8 bolts.\n"
    )
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "qx_21-valve.txt").write_text("A skerrow valve for steam lines.\n")
    pairs = heading_pairs(tmp_path)
    assert ("KV-310 thermal cut-off", "Opens at 85 C.") in pairs
    assert ("Mounting", "Four M8 bolts.") in pairs
    assert ("qx 21 valve", "A skerrow valve for steam lines.") in pairs


def test_one_source_of_pairs_is_needed(tmp_path: Path):
    with pytest.raises(TroveError, match="one of --pairs"):
        training_pairs(TextFinetuneConfig(base="all-minilm-l6-v2", out="x"))
    both = TextFinetuneConfig(base="all-minilm-l6-v2", out="x", pairs="a", documents="b")
    with pytest.raises(TroveError, match="one of --pairs"):
        training_pairs(both)
    wrong = TextFinetuneConfig(base="all-minilm-l6-v2", out="x", documents=str(tmp_path))
    wrong.method = "pairs"
    with pytest.raises(TroveError, match="--method pairs needs --pairs"):
        training_pairs(wrong)


@pytest.mark.slow
def test_a_fine_tuned_text_preset_is_saved_loaded_and_indexed_with(tmp_path: Path):
    from indexers.pipeline import Indexer
    from search.engine import SearchEngine
    from search.library import Library
    from search.models import presets_from
    from search.models.encoders import Encoders
    from search.models.text import load_text_encoder
    from search.storage.catalog import Root

    pages = {
        "kv-310.md": "# KV-310 thermal cut-off\n\nThe vardle drive opens its supply at 85 C.\n",
        "qx-21.md": "# QX-21 mounting\n\nFix the skerrow valve to the steam line flange.\n",
        "ls-8.md": "# LS-8 fault codes\n\nCode L41 on the frennic switch: supply out of range.\n",
    }
    docs = tmp_path / "manuals"
    docs.mkdir()
    for name, text in pages.items():
        (docs / name).write_text(text)
    data = tmp_path / "data"
    config = TextFinetuneConfig(
        base="all-minilm-l6-v2", out="manuals", documents=str(docs), epochs=2, batch_size=4
    )
    config.data_dir = str(data)
    result = finetune_text(config, progress=False)
    manifest = json.loads((result.folder / "manifest.json").read_text())
    assert manifest["space"] == "text" and manifest["base"] == "all-minilm-l6-v2"
    assert result.method == "headings" and result.pairs == 6
    with pytest.raises(TroveError, match="exists; add --force"):
        finetune_text(config, progress=False)

    with presets_from(data):
        tuned = load_text_encoder("manuals")
        base = load_text_encoder("all-minilm-l6-v2")
        texts = list(pages.values())
        after, before = tuned.encode_texts(texts), base.encode_texts(texts)
        assert np.allclose(np.linalg.norm(after, axis=1), 1.0, atol=1e-5)
        assert not np.allclose(after, before, atol=1e-3)  # the adapter changed the model
        assert tuned.fingerprint != base.fingerprint

        library = Library(data)
        encoders = Encoders("tiny-clip", "tiny-clap", text="manuals")
        summary = Indexer(library, encoders, progress=False).run([Root(str(docs), (), ())])
        assert summary.indexed == 3 and not summary.failed
        assert library.model("text") == "manuals"
        with SearchEngine(library, alpha=1.0) as engine:
            first = engine.search("KV-310 overheating", k=1)[0]
        assert Path(first.path).name == "kv-310.md"
        library.close()
