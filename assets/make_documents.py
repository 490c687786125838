#!/usr/bin/env python3
"""Generate the documents of the Trove demo library into ``assets/demo/documents/``.

Every text here was written for Trove and is dedicated to the public domain (CC0), like
this script. The PDFs are written by the same small PDF writer the tests use
(tests/media_docs.py); the sign image and the scanned page are drawn with Pillow in
DejaVu Sans (Debian's fonts-dejavu-core). Running it again gives the same files.

Run from the repository root:

    python assets/make_documents.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.media_docs import (  # noqa: E402
    make_html,
    make_scanned_pdf,
    make_srt,
    make_text_pdf,
    render_text_image,
)

OUT = ROOT / "assets" / "demo" / "documents"

INVOICE = [
    "Northwind Design Studio\n12 Harbour Lane, Porto\n\n"
    "INVOICE 2023-0042\nDate: 14 March 2023\nBill to: Trove Example Ltd\n\n"
    "Consulting, two days: 1,200.00 EUR\nLogo redesign: 650.00 EUR\n"
    "Printing of 500 leaflets: 258.00 EUR\n\nTotal due: 2,108.00 EUR\n"
    "Please pay within 30 days to the account on the back of this page.",
]

CATS = """\
Notes on living with cats

Miso, our tabby, sleeps most of the day on the windowsill in the sun and wakes up for
dinner at six o'clock sharp. She purrs when she is brushed and hides under the bed when
the vacuum cleaner comes out.

The kitten, Tofu, still needs her second vaccination at the vet in April. She chases
anything that moves, climbs the curtains, and has already knocked two plants off the
bookshelf. A scratching post in the hallway has saved the sofa so far.
"""

CARS = """\
Car maintenance log

The old hatchback needs new front tyres before the summer drive to the coast, and the oil
change is due at 90,000 km. The garage also said the brake pads are at about thirty percent.

Fuel consumption on the motorway was 5.8 litres per 100 km last month; in town it is closer
to 7. The insurance renewal for the car arrives every January.
"""

RECIPE = """\
# Roasted tomato soup

A thick, sweet soup for cold evenings. Serves four.

## Ingredients

- 1 kg ripe **tomatoes**, halved
- 2 red onions and 4 cloves of garlic
- 2 tablespoons of olive oil, salt and black pepper
- 500 ml vegetable stock
- a handful of fresh basil

## Method

1. Roast the tomatoes, onions and garlic at 200 °C for 40 minutes.
2. Blend with the hot stock until smooth, then season.
3. Serve with basil leaves and a slice of [sourdough bread](bread-baking.srt).
"""

BREAD_CUES = [
    (1.0, 4.0, "Welcome back to the kitchen. Today we bake sourdough bread."),
    (4.5, 8.5, "First, feed the starter and wait until it is bubbly."),
    (9.0, 13.0, "Mix five hundred grams of flour with three hundred and fifty of water."),
    (13.5, 17.0, "Add the starter and a spoon of salt, then knead for ten minutes."),
    (40.0, 44.0, "Let the dough rise overnight in a cool place."),
    (45.0, 49.5, "In the morning, shape the loaf and bake it at two hundred and forty degrees."),
    (50.0, 54.0, "After forty minutes the crust is dark and the bread sounds hollow."),
]

HARBOUR = [
    "The walk starts at the old fish market and follows the quay past the lighthouse.",
    "Boats to the island leave at nine and at two; tickets cost &euro;5 &amp; children "
    "travel free.",
    "Stop at the café by the lifeboat station for grilled sardines and a view of the bay.",
]

SIGN = ["FRESH BREAD DAILY", "Open 7am to 6pm", "Closed on Mondays"]
RECEIPT = ["HARDWARE STORE", "2 tins of blue paint 31.80", "1 ladder 64.00", "TOTAL 95.80"]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    make_text_pdf(OUT / "invoice-2023.pdf", INVOICE, title="Invoice 2023-0042")
    (OUT / "notes").mkdir(exist_ok=True)
    (OUT / "notes" / "cats.txt").write_text(CATS, encoding="utf-8")
    (OUT / "notes" / "car-maintenance.txt").write_text(CARS, encoding="utf-8")
    (OUT / "tomato-soup.md").write_text(RECIPE, encoding="utf-8")
    make_srt(OUT / "bread-baking.srt", BREAD_CUES)
    make_html(OUT / "harbour-walk.html", "Harbour walk", HARBOUR)
    render_text_image(SIGN, size=(900, 330), font_size=56).save(OUT / "bakery-sign.png")
    receipt = render_text_image(RECEIPT, size=(800, 360), font_size=40)
    make_scanned_pdf(OUT / "scanned-receipt.pdf", receipt)
    for path in sorted(OUT.rglob("*")):
        if path.is_file():
            print(f"{path.relative_to(ROOT)}  {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
