"""The measured figures in README.md and docs/*.md are what their JSON results render
(bench/figures.py): a table edited by hand, or a result rerun without rendering, fails here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bench import figures


def test_every_generated_block_matches_its_json():
    assert figures.check() == []


def test_every_kind_of_block_is_in_the_documents():
    # Markers removed from a table would otherwise stop its check without a word.
    assert figures.blocks_in() == set(figures.BLOCKS)


def test_a_figure_edited_by_hand_is_reported(tmp_path: Path):
    text = (figures.ROOT / "docs" / "performance.md").read_text()
    start = text.index("<!-- figures: perf -->")
    edited = text[:start] + text[start:].replace("| 1938 |", "| 1800 |", 1)
    assert edited != text
    (tmp_path / "performance.md").write_text(edited)
    assert figures.check([tmp_path / "performance.md"]) == [
        "performance.md: block 'perf' differs from bench/results/latest.json"
    ]


def test_a_result_measured_again_changes_its_tables(tmp_path: Path):
    results = shutil.copytree(figures.RESULTS, tmp_path / "results")
    fusion = json.loads((results / "fusion.json").read_text())
    (used,) = [row for row in fusion["rows"] if row["alpha"] == fusion["used_alpha"]]
    used["ndcg_at_10"] = 0.5
    (results / "fusion.json").write_text(json.dumps(fusion))
    docs = [figures.ROOT / "docs" / "models.md", figures.ROOT / "docs" / "ranking.md"]
    assert figures.check(docs, results) == [
        "ranking.md: block 'fusion-full' differs from bench/results/fusion.json",
    ]
    rendered, problems = figures.render(docs[1].read_text(), results)
    assert problems == [] and "| **blend, alpha = 0.3 (used)** | **0.500** |" in rendered


def test_unknown_unclosed_and_unmeasured_blocks_are_reported(tmp_path: Path):
    text = "<!-- figures: nonsense -->\nold\n<!-- /figures -->\n<!-- figures: perf -->\nold\n"
    _, problems = figures.render(text)
    assert problems == [
        "unclosed block(s): ['perf']",
        "unknown block 'nonsense'; known: " + ", ".join(figures.BLOCKS),
    ]
    _, problems = figures.render("<!-- figures: perf -->\n<!-- /figures -->\n", tmp_path)
    assert problems == [f"block 'perf': {tmp_path / 'latest.json'} is missing (run bench/run.py)"]
