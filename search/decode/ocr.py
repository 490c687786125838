"""Text in photos, screenshots and scanned pages, read by the tesseract command-line program.

Tesseract runs as a subprocess (no pytesseract: it is a thin wrapper around the same call):
the image goes in as PNG on stdin, words come back as TSV with a confidence per word, and
words under MIN_CONFIDENCE are dropped: on a photo with no text, tesseract still "reads"
texture as short nonsense words at low confidence.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from functools import lru_cache

from PIL import Image, ImageOps

from search.errors import TroveError

DEFAULT_LANGUAGES = "eng"
MIN_CONFIDENCE = 60.0
# Tesseract reads best with text 20-40 px tall, and its time grows with pixels. Small images
# (thumbnails, cropped screenshots) are enlarged to 1200 px; camera photos are reduced to
# 2400 px, where a sign 50 px tall in a 12 MP photo is still ~30 px. Measured on a 4000x3000
# photo: 3.5 s at 3500 px, 1.6 s at 2400 px, same words read.
MIN_LONG_SIDE = 1200
MAX_LONG_SIDE = 2400
TIMEOUT_S = 120


class OcrError(TroveError):
    pass


def ocr_languages() -> str:
    """Tesseract languages, `+`-joined (TROVE_OCR_LANGS, default eng)."""
    return os.environ.get("TROVE_OCR_LANGS", "").strip() or DEFAULT_LANGUAGES


def ocr_unavailable_reason() -> str | None:
    """None when OCR can run here, else one line saying why not and how to fix it."""
    return _unavailable_reason(ocr_languages())


@lru_cache(maxsize=4)
def _unavailable_reason(languages: str) -> str | None:
    exe = shutil.which("tesseract")
    if exe is None:
        return (
            "OCR needs the tesseract program, which is not installed "
            "(Debian/Ubuntu: sudo apt install tesseract-ocr tesseract-ocr-eng)"
        )
    try:
        listed = subprocess.run(
            [exe, "--list-langs"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"tesseract is installed but does not run: {exc}"
    installed = set(listed.split()[1:]) if listed else set()  # first line is a header
    missing = [lang for lang in languages.split("+") if lang not in installed]
    if missing:
        packages = " ".join(f"tesseract-ocr-{m}" for m in missing)
        return (
            f"tesseract has no data for language(s) {', '.join(missing)} "
            f"(Debian/Ubuntu: sudo apt install {packages})"
        )
    return None


def prepare_for_ocr(image: Image.Image) -> Image.Image:
    """Greyscale, long side between MIN_LONG_SIDE and MAX_LONG_SIDE."""
    grey = ImageOps.grayscale(image.convert("RGB") if image.mode not in ("RGB", "L") else image)
    long_side = max(grey.size)
    if long_side < MIN_LONG_SIDE:
        scale = min(4.0, MIN_LONG_SIDE / long_side)
    elif long_side > MAX_LONG_SIDE:
        scale = MAX_LONG_SIDE / long_side
    else:
        return grey
    size = (max(1, round(grey.width * scale)), max(1, round(grey.height * scale)))
    return grey.resize(size, Image.Resampling.LANCZOS)


def ocr_image(image: Image.Image, languages: str | None = None) -> str:
    """The text tesseract reads in an image, one line per text line ("" when none).

    Raises OcrError when tesseract is missing or fails; callers that treat OCR as optional
    check `ocr_unavailable_reason()` first.
    """
    languages = languages or ocr_languages()
    reason = _unavailable_reason(languages)
    if reason:
        raise OcrError(reason)
    png = io.BytesIO()
    prepare_for_ocr(image).save(png, format="PNG", compress_level=1)
    # One thread per call: the indexer runs several decode workers, and tesseract's OpenMP
    # threads would oversubscribe the cores (measured slower, not faster, on 2 cores).
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        done = subprocess.run(
            ["tesseract", "stdin", "stdout", "-l", languages, "--psm", "3", "tsv"],
            input=png.getvalue(),
            capture_output=True,
            timeout=TIMEOUT_S,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise OcrError(f"tesseract took longer than {TIMEOUT_S} s on this image") from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise OcrError(f"tesseract failed: {detail[-1] if detail else done.returncode}")
    return words_from_tsv(done.stdout.decode("utf-8", "replace"))


def words_from_tsv(tsv: str, min_confidence: float = MIN_CONFIDENCE) -> str:
    """Tesseract TSV -> text: confident words, grouped into their lines."""
    lines: dict[tuple[str, str, str, str], list[str]] = {}
    for row in tsv.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5":  # level 5 = a word
            continue
        word = cols[11].strip()
        try:
            confidence = float(cols[10])
        except ValueError:
            continue
        if word and confidence >= min_confidence and re.search(r"\w", word):
            lines.setdefault((cols[1], cols[2], cols[3], cols[4]), []).append(word)
    return "\n".join(" ".join(words) for words in lines.values())
