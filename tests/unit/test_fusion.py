"""Hybrid ranking measured: semantic (real MiniLM), lexical (FTS5 BM25), RRF and the blend,
by nDCG@10 and MRR on a small labelled corpus of documents and queries.

Run `python -m tests.unit.test_fusion` to print the comparison table that the README quotes.
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from search.fusion import calibrated_blend, fuse, reciprocal_rank_fusion
from search.lexical import item_fts_row, search_lexical

FTS_DDL = """
CREATE TABLE items (id INTEGER PRIMARY KEY, path TEXT NOT NULL);
CREATE TABLE segments (
    id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL, start_s REAL, end_s REAL, text TEXT
);
CREATE VIRTUAL TABLE items_fts USING fts5(
    name, folder, meta, tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE segments_fts USING fts5(
    body, tokenize = 'porter unicode61 remove_diacritics 2'
);
"""

# (path, text): a personal document folder. Names carry identifiers that the text may not.
CORPUS = [
    (
        "finance/invoice-2023.pdf",
        "Consulting services for March. Total due 2,108.00 EUR, "
        "payable within 30 days to the account below.",
    ),
    (
        "finance/invoice-2022.pdf",
        "Invoice for design work delivered in November. Total due 860.00 EUR.",
    ),
    (
        "finance/receipt-hardware-store.txt",
        "Receipt: two tins of paint, brushes and a ladder. Paid by card.",
    ),
    (
        "finance/tax-return-notes.md",
        "Notes for this year's tax return: collect every invoice "
        "from 2023, the bank statements and the pension letters.",
    ),
    (
        "notes/miso.txt",
        "Our cat Miso sleeps all day on the windowsill and purrs when she is "
        "brushed. Kittens need their vaccinations early.",
    ),
    (
        "notes/dog-training.md",
        "Teaching a puppy to sit: short sessions, treats and patience. Walks twice a day.",
    ),
    (
        "notes/car.txt",
        "The car needs new tyres and an oil change before the long drive to the coast.",
    ),
    (
        "notes/bicycle.md",
        "Fixing a flat tyre: remove the wheel, find the puncture, patch the "
        "inner tube and pump it up.",
    ),
    (
        "recipes/lasagne.md",
        "Layer pasta sheets with tomato ragu and bechamel, then bake for "
        "40 minutes at 180 degrees.",
    ),
    (
        "recipes/sourdough.md",
        "Feed the starter, mix flour and water, let the dough rise "
        "overnight and bake it in a very hot oven.",
    ),
    (
        "travel/lisbon-2019.txt",
        "Trams up the hills, custard tarts in Belem, the castle at sunset and fado in Alfama.",
    ),
    (
        "travel/kyoto.txt",
        "Visited temples, walked through the bamboo forest and ate ramen near the station.",
    ),
    (
        "work/meeting-q3.md",
        "Quarterly planning: budget review, hiring two engineers, the "
        "launch date moves to October.",
    ),
    (
        "home/lease-agreement.pdf",
        "Residential lease between landlord and tenant. Monthly rent "
        "950 EUR, deposit of two months.",
    ),
    (
        "health/appointment.txt",
        "Appointment with Dr. Okafor about back pain; physiotherapy twice a week recommended.",
    ),
    (
        "home/garden-plan.md",
        "Plant tomatoes and basil in May; prune the roses in early spring before new growth.",
    ),
    (
        "home/router.txt",
        "Router admin page 192.168.1.1, network name Trove-Home, the key is "
        "on the sticker underneath.",
    ),
    (
        "work/apollo-readme.md",
        "A command line tool that converts spreadsheets to charts. "
        "Install it with pip and run apollo --help.",
    ),
    (
        "family/wedding-speech.txt",
        "How Anna and Tom met at university, and a toast to their future together.",
    ),
    (
        "home/insurance-HX-4471.pdf",
        "Home cover against fire, flood and theft. Renewal every "
        "January; call the claims line first.",
    ),
    (
        "family/invitation.html",
        "You are invited to Lena's 7th birthday at the park on Saturday! Cake, balloons and games.",
    ),
    (
        "work/thesis-draft.md",
        "Chapter 2: neural networks that predict how proteins fold, methods and evaluation.",
    ),
    (
        "car/motor-certificate-MX-2291.pdf",
        "Certificate of motor insurance for the Volkswagen Golf, valid for 2023.",
    ),
    (
        "pets/vet-bill.pdf",
        "Veterinary clinic: vaccination and check-up for Miso, 85 EUR, paid in cash.",
    ),
]

# query -> {path: graded relevance (2 = what the user wants, 1 = also fine)}
QUERIES = {
    "invoice 2023": {"finance/invoice-2023.pdf": 2, "finance/tax-return-notes.md": 1},
    "feline": {"notes/miso.txt": 2},
    "HX-4471": {"home/insurance-HX-4471.pdf": 2},
    "automobile maintenance": {"notes/car.txt": 2, "notes/bicycle.md": 1},
    "pasta dish": {"recipes/lasagne.md": 2},
    "baking": {"recipes/sourdough.md": 2, "recipes/lasagne.md": 1},
    "pet health": {"pets/vet-bill.pdf": 2, "notes/miso.txt": 1, "notes/dog-training.md": 1},
    "Okafor": {"health/appointment.txt": 2},
    "rent deposit": {"home/lease-agreement.pdf": 2},
    "holiday in Portugal": {"travel/lisbon-2019.txt": 2, "travel/kyoto.txt": 1},
    "Miso": {"notes/miso.txt": 2, "pets/vet-bill.pdf": 2},
    "apollo charts": {"work/apollo-readme.md": 2},
    "wifi password": {"home/router.txt": 2},
    "MX-2291": {"car/motor-certificate-MX-2291.pdf": 2},
    "insurance": {"home/insurance-HX-4471.pdf": 2, "car/motor-certificate-MX-2291.pdf": 2},
    "kids party": {"family/invitation.html": 2},
    "gardening": {"home/garden-plan.md": 2},
    "fixing a puncture": {"notes/bicycle.md": 2},
    "machine learning research": {"work/thesis-draft.md": 2},
    "wedding toast": {"family/wedding-speech.txt": 2},
}


def build_corpus_db() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.executescript(FTS_DDL)
    for item_id, (path, text) in enumerate(CORPUS, start=1):
        db.execute("INSERT INTO items (id, path) VALUES (?, ?)", (item_id, path))
        db.execute(
            "INSERT INTO items_fts (rowid, name, folder, meta) VALUES (?, ?, ?, ?)",
            (item_id, *item_fts_row(path, {})),
        )
        db.execute(
            "INSERT INTO segments (id, item_id, text) VALUES (?, ?, ?)", (item_id, item_id, text)
        )
        db.execute("INSERT INTO segments_fts (rowid, body) VALUES (?, ?)", (item_id, text))
    return db


def ndcg_at(ranked: list[int], relevance: dict[int, int], k: int = 10) -> float:
    gains = sum(
        (2 ** relevance.get(key, 0) - 1) / math.log2(i + 2) for i, key in enumerate(ranked[:k])
    )
    ideal = sorted(relevance.values(), reverse=True)[:k]
    best = sum((2**rel - 1) / math.log2(i + 2) for i, rel in enumerate(ideal))
    return gains / best


def reciprocal_rank(ranked: list[int], relevance: dict[int, int]) -> float:
    for i, key in enumerate(ranked, start=1):
        if relevance.get(key, 0) > 0:
            return 1.0 / i
    return 0.0


ALPHAS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def run_rankings(encoder) -> dict[str, dict[str, list[int]]]:
    """method -> query -> ranked item ids, over the whole corpus."""
    db = build_corpus_db()
    doc_vectors = encoder.encode_texts([text for _, text in CORPUS])
    ids = np.arange(1, len(CORPUS) + 1)
    rankings: dict[str, dict[str, list[int]]] = {}
    for query in QUERIES:
        cosines = doc_vectors @ encoder.encode_texts([query])[0]
        order = np.argsort(-cosines, kind="stable")
        semantic = [(int(ids[i]), float(cosines[i])) for i in order]
        lexical = [(hit.item_id, hit.score) for hit in search_lexical(db, query, 100)]
        methods = {
            "semantic only": [k for k, _ in semantic],
            "lexical only": [k for k, _ in lexical],
            "RRF (k=60)": [
                k
                for k, _ in reciprocal_rank_fusion(
                    [[k for k, _ in semantic], [k for k, _ in lexical]]
                )
            ],
        }
        for alpha in ALPHAS:
            blend = calibrated_blend(semantic, lexical, alpha=alpha)
            methods[f"blend (alpha={alpha})"] = [k for k, _ in blend]
        methods["fuse (chosen)"] = [k for k, _ in fuse(semantic, lexical)]
        for method, ranked in methods.items():
            rankings.setdefault(method, {})[query] = ranked
    return rankings


def per_query_scores(rankings) -> dict[str, dict[str, tuple[float, float]]]:
    """method -> query -> (nDCG@10, reciprocal rank)."""
    path_ids = {path: i for i, (path, _) in enumerate(CORPUS, start=1)}
    scores: dict[str, dict[str, tuple[float, float]]] = {}
    for method, per_query in rankings.items():
        for query, labels in QUERIES.items():
            relevance = {path_ids[p]: rel for p, rel in labels.items()}
            scores.setdefault(method, {})[query] = (
                ndcg_at(per_query[query], relevance),
                reciprocal_rank(per_query[query], relevance),
            )
    return scores


def score_table(rankings) -> dict[str, tuple[float, float]]:
    """method -> (mean nDCG@10, MRR), plus the blend with alpha chosen by leave-one-query-out
    (alpha picked on the other 19 queries, scored on the one left out): the figure to expect
    on queries the constants were not fitted to."""
    scores = per_query_scores(rankings)
    table = {
        method: tuple(float(np.mean([s[i] for s in per_query.values()])) for i in (0, 1))
        for method, per_query in scores.items()
    }
    held_out = []
    for query in QUERIES:

        def others(alpha, query=query):
            return np.mean(
                [s[0] for q, s in scores[f"blend (alpha={alpha})"].items() if q != query]
            )

        best = max(ALPHAS, key=others)
        held_out.append(scores[f"blend (alpha={best})"][query])
    table["blend, alpha by leave-one-out"] = tuple(
        float(np.mean([s[i] for s in held_out])) for i in (0, 1)
    )
    return table


@pytest.fixture(scope="module")
def minilm():
    from search.models.text import load_text_encoder

    return load_text_encoder("all-minilm-l6-v2")


@pytest.fixture(scope="module")
def rankings(minilm):
    return run_rankings(minilm)


@pytest.mark.slow
def test_fusion_beats_semantic_only_and_lexical_only(rankings):
    table = score_table(rankings)
    for method, (ndcg, mrr) in table.items():
        print(f"{method:22s} nDCG@10 {ndcg:.3f}  MRR {mrr:.3f}")
    chosen_ndcg, chosen_mrr = table["fuse (chosen)"]
    assert chosen_ndcg > table["semantic only"][0] + 0.02
    assert chosen_ndcg > table["lexical only"][0] + 0.02
    assert chosen_mrr >= max(table["semantic only"][1], table["lexical only"][1])


@pytest.mark.slow
def test_file_named_for_the_query_ranks_first(rankings):
    invoice = 1 + [p for p, _ in CORPUS].index("finance/invoice-2023.pdf")
    # The file's text never says "invoice 2023"; only its name does.
    assert rankings["fuse (chosen)"]["invoice 2023"][0] == invoice


def test_rrf_rewards_agreement_between_lists():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "c", "d"]])
    assert [k for k, _ in fused][:2] == ["b", "c"]
    assert dict(fused)["a"] == pytest.approx(1 / 61)
    weighted = reciprocal_rank_fusion([["a"], ["b"]], weights=[1.0, 2.0])
    assert [k for k, _ in weighted] == ["b", "a"]


def test_blend_maps_each_list_onto_its_own_scale():
    semantic = [("a", 0.65), ("b", 0.40), ("c", 0.15)]
    lexical = [("c", 12.0), ("b", 6.0)]
    blended = dict(calibrated_blend(semantic, lexical, alpha=0.5, cosine_floor=0.15))
    assert blended["a"] == pytest.approx(0.5)  # best cosine, no word match
    assert blended["c"] == pytest.approx(0.5)  # word match only: its cosine is at the floor
    assert blended["b"] == pytest.approx(0.5 * 0.5 + 0.5 * 0.5)
    assert calibrated_blend([], []) == []


DEMO_DOCUMENTS = Path(__file__).resolve().parents[2] / "assets" / "demo" / "documents"


@pytest.fixture(scope="module")
def demo_index(minilm):
    """The demo documents read, chunked, OCR'd, put in FTS tables and embedded: what the
    indexer does with them, component by component."""
    from PIL import Image

    from indexers.ocr import ocr_image, ocr_unavailable_reason
    from indexers.text import chunk_document, load_document

    ocr = None if ocr_unavailable_reason() else ocr_image
    db = sqlite3.connect(":memory:")
    db.executescript(FTS_DDL)
    chunks: list[tuple[int, int, str, float | None]] = []  # (segment, item, text, start_s)
    for item_id, path in enumerate(sorted(DEMO_DOCUMENTS.rglob("*.*")), start=1):
        if path.suffix == ".png":
            texts, info, starts = ([ocr(Image.open(path))] if ocr else []), {}, [None]
        else:
            doc = load_document(path, ocr=ocr)
            pieces = chunk_document(doc)
            texts, info = [c.text for c in pieces], doc.info
            starts = [c.start_s for c in pieces]
        db.execute("INSERT INTO items (id, path) VALUES (?, ?)", (item_id, str(path)))
        db.execute(
            "INSERT INTO items_fts (rowid, name, folder, meta) VALUES (?, ?, ?, ?)",
            (item_id, *item_fts_row(str(path), info)),
        )
        for text, start in zip(texts, starts, strict=False):
            segment = len(chunks) + 1
            chunks.append((segment, item_id, text, start))
            db.execute(
                "INSERT INTO segments (id, item_id, start_s, text) VALUES (?, ?, ?, ?)",
                (segment, item_id, start, text),
            )
            db.execute("INSERT INTO segments_fts (rowid, body) VALUES (?, ?)", (segment, text))
    vectors = minilm.encode_texts([text for _, _, text, _ in chunks])
    return db, chunks, vectors, ocr is not None


def hybrid_search(demo_index, encoder, query: str) -> list[tuple[str, float | None]]:
    """(file name, best chunk's start_s) best first: the best chunk per item by cosine,
    fused with the lexical hits."""
    db, chunks, vectors, _ = demo_index
    cosines = vectors @ encoder.encode_texts([query])[0]
    best: dict[int, tuple[float, int]] = {}
    for (segment, item, _, _), cosine in zip(chunks, cosines, strict=True):
        if item not in best or cosine > best[item][0]:
            best[item] = (float(cosine), segment)
    semantic = sorted(((item, c) for item, (c, _) in best.items()), key=lambda kv: -kv[1])
    lexical = [(hit.item_id, hit.score) for hit in search_lexical(db, query, 50)]
    paths = dict(db.execute("SELECT id, path FROM items"))
    starts = {segment: start for segment, _, _, start in chunks}
    return [
        (Path(paths[item]).name, starts[best[item][1]] if item in best else None)
        for item, _ in fuse(semantic, lexical)
    ]


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
def test_demo_documents_answer_their_queries(demo_index, minilm, query, expected):
    assert hybrid_search(demo_index, minilm, query)[0][0] == expected


@pytest.mark.slow
def test_demo_subtitle_hit_points_at_its_moment(demo_index, minilm):
    name, start_s = hybrid_search(demo_index, minilm, "let the dough rise overnight")[0]
    assert name == "bread-baking.srt" and start_s == 40.0


@pytest.mark.slow
def test_demo_text_in_images_and_scans_is_found_by_ocr(demo_index, minilm):
    if not demo_index[3]:
        pytest.skip("tesseract is not installed")
    assert hybrid_search(demo_index, minilm, "bakery opening hours")[0][0] == "bakery-sign.png"
    assert hybrid_search(demo_index, minilm, "ladder paint")[0][0] == "scanned-receipt.pdf"


if __name__ == "__main__":
    from search.models.text import load_text_encoder

    results = score_table(run_rankings(load_text_encoder("all-minilm-l6-v2")))
    print("| method | nDCG@10 | MRR |\n|---|---|---|")
    for name, (ndcg, mrr) in results.items():
        print(f"| {name} | {ndcg:.3f} | {mrr:.3f} |")
