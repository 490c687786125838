"""Hybrid ranking measured through the engine: meaning only, words only and the blend at each
alpha, by nDCG@10 and MRR on a small labelled corpus of documents and queries.

    python bench/fusion.py      # writes bench/results/fusion.json (about a minute)
    python bench/figures.py     # renders docs/ranking.md's tables from it

The corpus (24 personal documents whose file names carry identifiers their text may lack; 20
queries with graded relevance, a third of them names or identifiers) is written as real files
(PDFs with a text layer, HTML, Markdown, plain text), indexed by the real Indexer into a real
library with the real all-MiniLM-L6-v2 as the text model (tiny-clip for the CLIP space, which
a text query over documents does not reach), and searched by SearchEngine at each `alpha`:
1 is meaning only, 0 words only. tests/unit/test_fusion.py recomputes the figures and checks
them against the committed JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from search.fusion import BLEND_ALPHA  # noqa: E402

if TYPE_CHECKING:
    from search.library import Library

# The engine, the indexer and the models import torch: they are imported where used, since
# the indexer's decode workers start from a fork server that imports this script again and
# must stay small (their address space is capped).

RESULT = ROOT / "bench" / "results" / "fusion.json"
TEXT_MODEL = "all-minilm-l6-v2"
CLIP_MODEL = "tiny-clip"
# 1 is meaning only, 0 words only; the blends between.
ALPHAS = (1.0, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
BLENDS = tuple(a for a in ALPHAS if 0 < a < 1)
NDCG_K = 10

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
QUERIES: dict[str, dict[str, int]] = {
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

Rankings = dict[float, dict[str, list[str]]]  # alpha -> query -> relative paths, best first


def write_corpus(folder: Path) -> Path:
    """The corpus as the files a user would have: PDFs with a text layer, a web page,
    Markdown and plain text. Returns `folder`."""
    from tests.media_docs import make_text_pdf

    for path, text in CORPUS:
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.suffix == ".pdf":
            make_text_pdf(target, [text])
        elif target.suffix == ".html":
            target.write_text(f"<!DOCTYPE html>\n<html><body><p>{text}</p></body></html>\n")
        else:
            target.write_text(text + "\n")
    return folder


def index_corpus(folder: Path, data_dir: Path) -> Library:
    """A library holding the corpus, indexed by the real indexer; the caller closes it."""
    from indexers.pipeline import Indexer
    from search.library import Library
    from search.models.encoders import Encoders
    from search.storage.catalog import Root

    library = Library(data_dir)
    encoders = Encoders(CLIP_MODEL, text=TEXT_MODEL)
    summary = Indexer(library, encoders, progress=False).run([Root(str(folder), (), ())])
    if summary.indexed != len(CORPUS) or summary.failed:
        library.close()
        raise RuntimeError(f"The corpus did not index cleanly: {summary.report()}")
    return library


def rank(library: Library, folder: Path, alphas: Sequence[float] = ALPHAS) -> Rankings:
    """alpha -> query -> the engine's results (paths relative to `folder`), best first."""
    from search.engine import SearchEngine

    rankings: Rankings = {}
    for alpha in alphas:
        engine = SearchEngine(library, alpha=alpha)
        rankings[alpha] = {
            query: [str(Path(r.path).relative_to(folder)) for r in engine.search(query, k=100)]
            for query in QUERIES
        }
    return rankings


def ndcg_at(ranked: Sequence[str], relevance: Mapping[str, int], k: int = NDCG_K) -> float:
    """Normalised discounted cumulative gain of the first k results (gain 2^rel - 1)."""
    gains = sum(
        (2 ** relevance.get(key, 0) - 1) / math.log2(i + 2) for i, key in enumerate(ranked[:k])
    )
    ideal = sorted(relevance.values(), reverse=True)[:k]
    best = sum((2**rel - 1) / math.log2(i + 2) for i, rel in enumerate(ideal))
    return gains / best


def reciprocal_rank(ranked: Sequence[str], relevance: Mapping[str, int]) -> float:
    """1 / the rank of the first relevant result (0 when none is returned)."""
    for i, key in enumerate(ranked, start=1):
        if relevance.get(key, 0) > 0:
            return 1.0 / i
    return 0.0


def _method(alpha: float) -> str:
    if alpha == 1:
        return "meaning only"
    if alpha == 0:
        return "words only"
    return "blend"


def measure(rankings: Rankings) -> dict:
    """The study's figures: per alpha, mean nDCG@10 and MRR over the queries; and the blend
    with alpha picked by leave-one-query-out (alpha chosen on the other queries by nDCG@10,
    the lowest of equals, scored on the one left out): what to expect on queries the
    constant was not fitted to."""
    per_query = {
        alpha: {
            q: (ndcg_at(ranked[q], labels), reciprocal_rank(ranked[q], labels))
            for q, labels in QUERIES.items()
        }
        for alpha, ranked in rankings.items()
    }
    rows = [
        {
            "method": _method(alpha),
            "alpha": alpha,
            "ndcg_at_10": statistics.fmean(s[0] for s in scores.values()),
            "mrr": statistics.fmean(s[1] for s in scores.values()),
        }
        for alpha, scores in per_query.items()
    ]
    held_out, picked = [], []
    for query in QUERIES:

        def others(alpha: float, query: str = query) -> float:
            return statistics.fmean(s[0] for q, s in per_query[alpha].items() if q != query)

        best = max(BLENDS, key=others)
        picked.append(best)
        held_out.append(per_query[best][query])
    return {
        "rows": rows,
        "leave_one_out": {
            "ndcg_at_10": statistics.fmean(s[0] for s in held_out),
            "mrr": statistics.fmean(s[1] for s in held_out),
            "alphas_picked": sorted(set(picked)),
        },
        "first_result": {
            q: (ranked[0] if ranked else None) for q, ranked in rankings[BLEND_ALPHA].items()
        },
    }


def run() -> dict:
    """Writes, indexes and searches the corpus in a temporary folder; returns the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_corpus(Path(tmp) / "documents")
        library = index_corpus(folder, Path(tmp) / "data")
        try:
            figures = measure(rank(library, folder))
        finally:
            library.close()
    return {
        "text_model": TEXT_MODEL,
        "clip_model": CLIP_MODEL,
        "documents": len(CORPUS),
        "queries": len(QUERIES),
        "used_alpha": BLEND_ALPHA,
        **figures,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    started = time.perf_counter()
    result = run()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for row in result["rows"]:
        print(
            f"{row['method']:<13} alpha {row['alpha']:.1f}  nDCG@10 {row['ndcg_at_10']:.3f}  "
            f"MRR {row['mrr']:.3f}"
        )
    loo = result["leave_one_out"]
    print(f"leave-one-out             nDCG@10 {loo['ndcg_at_10']:.3f}  MRR {loo['mrr']:.3f}")
    print(f"written to {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
