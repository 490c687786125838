"""Fine-tuning the text model on a domain MiniLM reads poorly: invented product codes and jargon.

    python bench/text_finetune.py   # writes bench/results/text_finetune.json (minutes)
    python bench/figures.py         # renders docs/finetuning.md's text table from it

The domain: the service manuals of an invented maker, 16 products with codes (`KV-310`,
`KV-318`, ...) and made-up part names, three pages each (thermal limits, mounting, fault
codes), 48 Markdown pages that differ mostly in the codes and the jargon. Each page has two
questions written from different templates: one for training pairs, one held out (never
trained on). General-domain questions: the paraphrase corpus of bench/paraphrase.py (64
notes, 44 questions), which fine-tuning must not spoil.

Methods, each from all-MiniLM-L6-v2 with the same seed and epochs: supervised pairs (the
training questions with their pages), unsupervised from the pages alone (`headings`: each
heading with its passage; `simcse`: each passage with itself under dropout), and pairs with
distillation towards the base on the shipped caption set. Measured by the encoder's cosine
ranking: nDCG@10 and MRR on the held-out domain questions, and on the general ones.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fusion import ndcg_at, reciprocal_rank  # noqa: E402
from bench.paraphrase import load_corpus  # noqa: E402

RESULT = ROOT / "bench" / "results" / "text_finetune.json"
BASE = "all-minilm-l6-v2"
EPOCHS = 4
DISTILL = 1.0

# code, part name (jargon), what it is, cut-off temperature, mounting, fault letters
PRODUCTS = [
    ("KV-310", "vardle drive", "a sealed gear motor for conveyor belts", 85, "four M8 bolts", "E7"),
    ("KV-318", "vardle drive", "a geared motor for lift doors", 90, "a clamp ring", "E9"),
    ("QX-21", "skerrow valve", "a pressure valve for steam lines", 140, "a flange", "F2"),
    ("QX-24", "skerrow valve", "a relief valve for compressed air", 70, "a threaded port", "F4"),
    ("TL-7A", "brannet sensor", "a level sensor for grain silos", 60, "a side bracket", "S1"),
    ("TL-9C", "brannet sensor", "a flow sensor for irrigation pipes", 55, "a pipe saddle", "S3"),
    ("MZ-400", "orrick pump", "a dosing pump for chlorine", 45, "a wall plate", "P6"),
    ("MZ-450", "orrick pump", "a sump pump for flooded basements", 50, "a float cage", "P8"),
    ("RG-12", "pellis heater", "a band heater for plastic extruders", 300, "a steel strap", "H1"),
    ("RG-15", "pellis heater", "a cartridge heater for moulds", 350, "a bored hole", "H5"),
    ("DN-3", "quillon fan", "a cooling fan for server racks", 65, "rail clips", "C2"),
    ("DN-5", "quillon fan", "an exhaust fan for paint booths", 80, "a ducted collar", "C7"),
    ("BX-60", "tarrow gearbox", "a worm gearbox for mixers", 95, "a foot mount", "G3"),
    ("BX-64", "tarrow gearbox", "a planetary gearbox for winches", 110, "a face flange", "G6"),
    ("LS-2", "frennic switch", "a limit switch for gates", 75, "a DIN rail", "L1"),
    ("LS-8", "frennic switch", "a pressure switch for boilers", 120, "a capillary fitting", "L4"),
]

# topic -> (page heading, page text, training question, held-out question); {c} code,
# {j} jargon, {w} what, {t} temperature, {m} mounting, {f} fault letters.
TOPICS = {
    "thermal": (
        "{c} thermal cut-off",
        "The {c} {j} is {w}. Its thermistor opens the supply at {t} C and closes again "
        "after cooling by ten degrees; a tripped {j} shows a steady amber lamp.",
        "what temperature trips the {c}",
        "{c} keeps switching itself off when it gets hot",
    ),
    "mounting": (
        "Mounting the {c}",
        "Fix the {c} {j} with {m}. Leave a hand's width of free air around the housing "
        "and torque the fixings evenly in a cross pattern before wiring.",
        "how is the {c} fastened",
        "installing a {c} on the machine frame",
    ),
    "faults": (
        "{c} fault codes",
        "Code {f}1 on the {c} {j} means the supply is out of range; {f}2 means the "
        "internal fuse has blown and the board must be replaced by a service partner.",
        "{c} error {f}1",
        "what does the blinking code on my {c} mean",
    ),
}


def domain() -> tuple[dict[str, str], list[dict], list[dict]]:
    """(page name -> Markdown text, training questions, held-out questions); a question is
    {"query", "relevant": {page: 2}}."""
    pages, train, held_out = {}, [], []
    for code, jargon, what, temp, mount, fault in PRODUCTS:
        values = {"c": code, "j": jargon, "w": what, "t": temp, "m": mount, "f": fault}
        for topic, (heading, text, asked, held) in TOPICS.items():
            name = f"{code.lower()}-{topic}.md"
            pages[name] = f"# {heading.format(**values)}\n\n{text.format(**values)}\n"
            train.append({"query": asked.format(**values), "relevant": {name: 2}})
            held_out.append({"query": held.format(**values), "relevant": {name: 2}})
    return pages, train, held_out


def measure(encoder, documents: dict[str, str], questions: list[dict]) -> dict:
    import numpy as np

    names = list(documents)
    vectors = encoder.encode_texts([documents[n] for n in names])
    asked = encoder.encode_texts([q["query"] for q in questions])
    ndcg, rr = [], []
    for q, v in zip(questions, asked, strict=True):
        ranked = [names[i] for i in np.argsort(-(vectors @ v), kind="stable")]
        ndcg.append(ndcg_at(ranked, q["relevant"]))
        rr.append(reciprocal_rank(ranked, q["relevant"]))
    return {"ndcg_at_10": statistics.fmean(ndcg), "mrr": statistics.fmean(rr)}


def run() -> dict:
    from search.finetune.text import TextFinetuneConfig, finetune_text
    from search.models import presets_from
    from search.models.text import load_text_encoder

    pages, train, held_out = domain()
    notes, general = load_corpus()
    general_docs = notes
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "manuals"
        folder.mkdir()
        for name, text in pages.items():
            (folder / name).write_text(text)
        pairs = Path(tmp) / "pairs.jsonl"
        pairs.write_text(
            "".join(
                json.dumps({"query": q["query"], "passage": pages[next(iter(q["relevant"]))]})
                + "\n"
                for q in train
            )
        )
        base = load_text_encoder(BASE)
        rows.append(
            {
                "method": "base",
                "domain": measure(base, pages, held_out),
                "general": measure(base, general_docs, general),
                "seconds": 0.0,
            }
        )
        runs = [
            ("pairs", {"pairs": str(pairs)}),
            ("headings", {"documents": str(folder), "method": "headings"}),
            ("simcse", {"documents": str(folder), "method": "simcse"}),
            ("pairs + distillation", {"pairs": str(pairs), "distill": DISTILL}),
        ]
        data = Path(tmp) / "data"
        for i, (label, options) in enumerate(runs):
            out = f"bench-text-{i}"
            started = time.perf_counter()
            config = TextFinetuneConfig(
                base=BASE, out=out, epochs=EPOCHS, data_dir=str(data), **options
            )
            result = finetune_text(config, progress=False)
            seconds = time.perf_counter() - started
            with presets_from(data):
                tuned = load_text_encoder(out)
                rows.append(
                    {
                        "method": label,
                        "pairs": result.pairs,
                        "domain": measure(tuned, pages, held_out),
                        "general": measure(tuned, general_docs, general),
                        "seconds": seconds,
                    }
                )
    return {
        "base": BASE,
        "epochs": EPOCHS,
        "distill": DISTILL,
        "pages": len(pages),
        "train_questions": len(train),
        "held_out_questions": len(held_out),
        "general_questions": len(general),
        "rows": rows,
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
        d, g = row["domain"], row["general"]
        print(
            f"{row['method']:<22} domain nDCG@10 {d['ndcg_at_10']:.3f} MRR {d['mrr']:.3f}  "
            f"general nDCG@10 {g['ndcg_at_10']:.3f} MRR {g['mrr']:.3f}"
        )
    print(f"written to {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
