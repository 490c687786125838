"""Paraphrased questions over a library of notes: does the engine rank the documents at least
as well as its sentence model alone, and does an uninformative space (untrained CLIP and
CLAP) change anything?

    python bench/paraphrase.py      # writes bench/results/paraphrase.json (a few minutes)
    python bench/figures.py         # renders docs/ranking.md's tables from it

The labelled corpus is tests/data/paraphrase.json: 64 short notes and 44 questions asked the
way a person would, graded (2 = the answer, 1 = also fine); 24 share no word with their
answer (tests/unit/test_ranking_evidence.py checks it through the word index), the others
are sentences whose words also appear in other notes. Two libraries are indexed by the real
Indexer with the real all-MiniLM-L6-v2 and the untrained tiny-clip and tiny-clap: the notes
alone, and the notes with photos, sounds and a video (mixed). Measured:

- "MiniLM alone": the notes ranked by the cosine of all-MiniLM-L6-v2 (the same encoder the
  library uses) between the question and each note, as a user would ask the model directly;
- the engine (`SearchEngine.search`, kind document) at each alpha, in both libraries: the
  fusion table recomputed on paraphrases through the real path;
- in the mixed library without a kind filter: the kind of each question's first result.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fusion import ALPHAS, ndcg_at, reciprocal_rank  # noqa: E402
from search.evidence import EVIDENCE, ROLE_NAMES  # noqa: E402
from search.fusion import BLEND_ALPHA  # noqa: E402

if TYPE_CHECKING:
    from search.library import Library

RESULT = ROOT / "bench" / "results" / "paraphrase.json"
CORPUS = ROOT / "tests" / "data" / "paraphrase.json"
TEXT_MODEL = "all-minilm-l6-v2"
CLIP_MODEL = "tiny-clip"
CLAP_MODEL = "tiny-clap"
# The other kinds of the mixed library.
PHOTOS = 12
SOUNDS = 4


def load_corpus(path: Path = CORPUS) -> tuple[dict[str, str], list[dict]]:
    """(note name -> text, [{query, relevant: {name: grade}, word_overlap}])."""
    data = json.loads(path.read_text())
    return data["documents"], data["queries"]


def write_library(folder: Path, mixed: bool) -> Path:
    """The notes as text files under folder/notes; with `mixed`, photos, sounds and a video
    beside them (synthetic: untrained models see them as noise, which is the point)."""
    from tests.media import make_photo
    from tests.media_audio import chirp, noise_burst, tone, write_audio

    documents, _ = load_corpus()
    notes = folder / "notes"
    notes.mkdir(parents=True, exist_ok=True)
    for name, text in documents.items():
        (notes / name).write_text(text + "\n")
    if mixed:
        from tests.media_video import make_video

        for i in range(PHOTOS):
            make_photo(folder / "photos" / f"photo-{i:02d}.jpg", 100 + i)
        rate = 48_000
        sounds = [
            tone(440, 4.0, rate),
            chirp(500, 4000, 5.0, rate),
            noise_burst(6.0, seed=1, rate=rate),
            tone(880, 3.0, rate),
        ]
        for i, wave in enumerate(sounds[:SOUNDS]):
            write_audio(folder / "sounds" / f"sound-{i:02d}.wav", wave, rate)
        make_video(folder / "videos" / "clip-00.mp4", duration_s=6.0, fps=2, tone=(1.0, 5.0))
    return folder


def index_library(folder: Path, data_dir: Path) -> Library:
    """The folder indexed by the real indexer; the caller closes the library."""
    from indexers.pipeline import Indexer
    from search.library import Library
    from search.models.encoders import Encoders
    from search.segments import SegmentSettings
    from search.storage.catalog import Root

    library = Library(data_dir)
    encoders = Encoders(CLIP_MODEL, CLAP_MODEL, text=TEXT_MODEL)
    # Synthetic tones hold no speech: listening for it would only cost time.
    settings = SegmentSettings(speech=False)
    indexer = Indexer(library, encoders, settings=settings, progress=False)
    summary = indexer.run([Root(str(folder), (), ())])
    if summary.failed:
        library.close()
        raise RuntimeError(f"The library did not index cleanly: {summary.report()}")
    return library


def minilm_alone() -> dict[str, list[str]]:
    """query -> note names ranked by all-MiniLM-L6-v2's cosine alone."""
    import numpy as np

    from search.models.text import load_text_encoder

    documents, queries = load_corpus()
    encoder = load_text_encoder(TEXT_MODEL)
    names = list(documents)
    notes = encoder.encode_texts([documents[n] for n in names])
    asked = encoder.encode_texts([q["query"] for q in queries])
    return {
        q["query"]: [names[i] for i in np.argsort(-(notes @ v), kind="stable")]
        for q, v in zip(queries, asked, strict=True)
    }


def engine_rankings(library: Library, alpha: float, kinds: tuple[str, ...] = ("document",)):
    """query -> the engine's results as (note name or path, kind), best first."""
    from search.engine import SearchEngine
    from search.filters import SearchFilters

    _, queries = load_corpus()
    out = {}
    with SearchEngine(library, alpha=alpha) as engine:
        for q in queries:
            results = engine.search(q["query"], k=20, filters=SearchFilters(kinds=kinds))
            out[q["query"]] = [(Path(r.path).name, r.kind) for r in results]
    return out


def scores(rankings: dict[str, list[str]]) -> dict:
    """Mean nDCG@10 and MRR over the queries, how many answers came first, per query."""
    _, queries = load_corpus()
    per = {
        q["query"]: (
            ndcg_at(rankings[q["query"]], q["relevant"]),
            reciprocal_rank(rankings[q["query"]], q["relevant"]),
        )
        for q in queries
    }
    return {
        "ndcg_at_10": statistics.fmean(n for n, _ in per.values()),
        "mrr": statistics.fmean(r for _, r in per.values()),
        "first": sum(1 for _, r in per.values() if r == 1.0),
        "per_query": {q: {"ndcg_at_10": n, "rr": r} for q, (n, r) in per.items()},
    }


def names(ranked: list[tuple[str, str]]) -> list[str]:
    return [name for name, _ in ranked]


def run() -> dict:
    """Writes, indexes and searches both libraries in a temporary folder."""
    documents, queries = load_corpus()
    result: dict = {
        "text_model": TEXT_MODEL,
        "clip_model": CLIP_MODEL,
        "clap_model": CLAP_MODEL,
        "documents": len(documents),
        "queries": len(queries),
        "no_word_overlap": sum(1 for q in queries if not q["word_overlap"]),
        "used_alpha": BLEND_ALPHA,
        "evidence": EVIDENCE,
        "role_names": ROLE_NAMES,
        "minilm_alone": scores(minilm_alone()),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for label, mixed in (("notes", False), ("mixed", True)):
            folder = write_library(Path(tmp) / label, mixed)
            library = index_library(folder, Path(tmp) / f"{label}-data")
            try:
                result[label] = {
                    "counts": library.catalog.counts(),
                    "engine": [
                        {
                            "alpha": alpha,
                            **scores(
                                {q: names(r) for q, r in engine_rankings(library, alpha).items()}
                            ),
                        }
                        for alpha in ALPHAS
                    ],
                }
                if mixed:
                    every_kind = engine_rankings(library, BLEND_ALPHA, kinds=())
                    meaning = engine_rankings(library, 1.0, kinds=())
                    result[label]["first_kind"] = dict(
                        Counter(r[0][1] for r in every_kind.values() if r)
                    )
                    result[label]["first_kind_meaning_only"] = dict(
                        Counter(r[0][1] for r in meaning.values() if r)
                    )
                    result[label]["top10_kinds"] = dict(
                        Counter(kind for r in every_kind.values() for _, kind in r[:10])
                    )
            finally:
                library.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    started = time.perf_counter()
    result = run()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    alone = result["minilm_alone"]
    print(f"MiniLM alone       nDCG@10 {alone['ndcg_at_10']:.3f}  MRR {alone['mrr']:.3f}")
    for label in ("notes", "mixed"):
        for row in result[label]["engine"]:
            print(
                f"{label:<6} alpha {row['alpha']:.1f}  nDCG@10 {row['ndcg_at_10']:.3f}  "
                f"MRR {row['mrr']:.3f}  first {row['first']}/{result['queries']}"
            )
    print("first result's kind (mixed):", result["mixed"]["first_kind"])
    print(f"written to {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
