"""Hybrid ranking through the real path: the labelled corpus of bench/fusion.py written as
real files, indexed by the real Indexer into a library on disk with the real
all-MiniLM-L6-v2, and searched by SearchEngine at each alpha (1 meaning only, 0 words only).

docs/ranking.md's tables are rendered from bench/results/fusion.json
(`python bench/fusion.py`, then `python bench/figures.py`); the figures recomputed here must
match it. The demo documents (assets/demo/documents) answer their queries the same way.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import fusion
from indexers.pipeline import Indexer
from search.decode.ocr import ocr_unavailable_reason
from search.engine import SearchEngine
from search.fusion import BLEND_ALPHA, calibrated_blend, fuse_on_semantic_scale
from search.library import Library
from search.models.encoders import Encoders
from search.segments import SegmentSettings
from search.storage.catalog import Root

# Figures recomputed here may differ from the committed ones by at most this much (each
# nDCG@10 and MRR, a mean over 20 queries): room for one query's ranking to move a place
# between machines (the sentence model runs in fp32 everywhere, so bf16 and fp32 CLIP paths
# give the same figures), far less than the margins the claims below rest on.
TOLERANCE = 0.005
DEMO_DOCUMENTS = Path(__file__).resolve().parents[2] / "assets" / "demo" / "documents"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Library]:
    tmp = tmp_path_factory.mktemp("fusion")
    folder = fusion.write_corpus(tmp / "documents")
    library = fusion.index_corpus(folder, tmp / "data")
    yield folder, library
    library.close()


@pytest.fixture(scope="module")
def figures(corpus) -> dict:
    folder, library = corpus
    return fusion.measure(fusion.rank(library, folder))


def _row(figures: dict, alpha: float) -> dict:
    (row,) = [r for r in figures["rows"] if r["alpha"] == alpha]
    return row


def _names(results, folder: Path) -> list[str]:
    return [str(Path(r.path).relative_to(folder)) for r in results]


@pytest.mark.slow
def test_the_blend_beats_meaning_only_and_words_only(figures):
    blend, meaning, words = (_row(figures, a) for a in (BLEND_ALPHA, 1.0, 0.0))
    assert blend["ndcg_at_10"] > meaning["ndcg_at_10"] + 0.02
    assert blend["ndcg_at_10"] > words["ndcg_at_10"] + 0.02
    assert blend["mrr"] > meaning["mrr"] and blend["mrr"] > words["mrr"]


@pytest.mark.slow
def test_the_file_named_for_the_query_ranks_first(corpus):
    folder, library = corpus
    texts = dict(fusion.CORPUS)
    # Its text never says "invoice" or "2023"; only its name does.
    assert "invoice" not in texts["finance/invoice-2023.pdf"].lower()
    assert "2023" not in texts["finance/invoice-2023.pdf"]
    engine = SearchEngine(library)
    for query, named in [
        ("invoice 2023", "finance/invoice-2023.pdf"),
        ("HX-4471", "home/insurance-HX-4471.pdf"),
        ("MX-2291", "car/motor-certificate-MX-2291.pdf"),
    ]:
        assert _names(engine.search(query, k=3), folder)[0] == named, query
    # By meaning alone, a note about "every invoice from 2023" wins instead.
    meaning = SearchEngine(library, alpha=1.0).search("invoice 2023", k=3)
    assert _names(meaning, folder)[0] != "finance/invoice-2023.pdf"


@pytest.mark.slow
def test_figures_match_the_committed_json(figures):
    committed = json.loads(fusion.RESULT.read_text())
    assert committed["used_alpha"] == BLEND_ALPHA
    assert [r["alpha"] for r in committed["rows"]] == [r["alpha"] for r in figures["rows"]]
    for ours, theirs in zip(figures["rows"], committed["rows"], strict=True):
        for key in ("ndcg_at_10", "mrr"):
            assert ours[key] == pytest.approx(theirs[key], abs=TOLERANCE), (ours, theirs)
    for key in ("ndcg_at_10", "mrr"):
        assert figures["leave_one_out"][key] == pytest.approx(
            committed["leave_one_out"][key], abs=TOLERANCE
        )


@pytest.mark.slow
def test_words_only_and_meaning_only_are_what_they_say(corpus):
    folder, library = corpus
    words = SearchEngine(library, alpha=0.0)
    (hit,) = words.search("HX-4471", k=10)  # the only file holding the word
    assert _names([hit], folder) == ["home/insurance-HX-4471.pdf"] and hit.score == 1.0
    assert words.search("feline", k=10) == []  # no file says it
    # With no word matching, the blend is the ranking by meaning, scores included.
    meaning = SearchEngine(library, alpha=1.0).search("feline", k=5)
    assert _names(meaning, folder)[0] == "notes/miso.txt"
    assert SearchEngine(library).search("feline", k=5) == meaning
    with pytest.raises(ValueError, match="alpha"):
        SearchEngine(library, alpha=1.5)


def test_blend_maps_each_list_onto_its_own_scale():
    semantic = [("a", 0.65), ("b", 0.40), ("c", 0.15)]
    lexical = [("c", 12.0), ("b", 6.0)]
    blended = dict(calibrated_blend(semantic, lexical, alpha=0.5, cosine_floor=0.15))
    assert blended["a"] == pytest.approx(0.5)  # best cosine, no word match
    assert blended["c"] == pytest.approx(0.5)  # word match only: its cosine is at the floor
    assert blended["b"] == pytest.approx(0.5 * 0.5 + 0.5 * 0.5)
    assert calibrated_blend([], [], alpha=0.5, cosine_floor=0.15) == []


def test_on_the_semantic_scale_a_word_match_is_a_bonus():
    semantic = [("a", 0.65), ("b", 0.40), ("c", 0.15)]
    lexical = [("b", 6.0)]
    fused = dict(fuse_on_semantic_scale(semantic, lexical, floor=0.15, alpha=0.5))
    assert fused["a"] == pytest.approx(0.65)  # no word match: its own similarity
    # Its similarity plus (1 - a) / a * (best - floor) * 1 is 0.90, past the best similarity
    # (0.65): the 0.25 beyond it is compressed into the 0.35 left below 1.
    assert fused["b"] == pytest.approx(0.65 + 0.35 * (1 - math.exp(-0.25 / 0.35)))
    assert fuse_on_semantic_scale(semantic, lexical, floor=0.15, alpha=0.0) == [("b", 1.0)]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(-1, 1), min_size=1, max_size=12),
    st.lists(st.floats(0.01, 50), max_size=12),
    st.floats(-0.5, 0.9),
    st.sampled_from([0.1, BLEND_ALPHA, 0.5, 0.9, 1.0]),
)
def test_fused_scores_never_pass_one_and_keep_the_blend_order(sims, bm25, floor, alpha):
    semantic = [(f"s{i}", s) for i, s in enumerate(sims)]
    lexical = [(f"s{i}", b) for i, b in enumerate(bm25)]
    fused = fuse_on_semantic_scale(semantic, lexical, floor=floor, alpha=alpha)
    blended = calibrated_blend(semantic, lexical, alpha=alpha, cosine_floor=floor)
    assert [k for k, _ in fused] == [k for k, _ in blended]
    scores = [score for _, score in fused]
    assert max(scores) <= 1.0
    assert scores == sorted(scores, reverse=True)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[SearchEngine, bool]:
    """The demo documents indexed by the real indexer (OCR on where tesseract is)."""
    ocr = ocr_unavailable_reason() is None
    library = Library(tmp_path_factory.mktemp("demo"))
    Indexer(
        library,
        Encoders("tiny-clip", text=fusion.TEXT_MODEL),
        settings=SegmentSettings(ocr=ocr),
        progress=False,
    ).run([Root(str(DEMO_DOCUMENTS), (), ())])
    yield SearchEngine(library), ocr
    library.close()


def _first(engine: SearchEngine, query: str):
    return engine.search(query, k=1)[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    "query, expected",
    [
        ("feline", "cats.txt"),
        ("invoice 2023", "invoice-2023.pdf"),
        ("ferry tickets to the island", "harbour-walk.html"),
        ("how to make soup", "tomato-soup.md"),
        ("tyre change", "car-maintenance.txt"),
    ],
)
def test_demo_documents_answer_their_queries(demo, query, expected):
    engine, _ = demo
    assert Path(_first(engine, query).path).name == expected


@pytest.mark.slow
def test_demo_subtitle_hit_points_at_its_moment(demo):
    engine, _ = demo
    hit = _first(engine, "let the dough rise overnight")
    assert Path(hit.path).name == "bread-baking.srt" and hit.start == 40.0


@pytest.mark.slow
def test_demo_text_in_images_and_scans_is_found_by_ocr(demo):
    engine, ocr = demo
    if not ocr:
        pytest.skip("tesseract is not installed")
    assert Path(_first(engine, "bakery opening hours").path).name == "bakery-sign.png"
    assert Path(_first(engine, "ladder paint").path).name == "scanned-receipt.pdf"
