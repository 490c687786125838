"""Pictures of library files, cached in the data folder: photo thumbnails, video stills at a
moment, a sound's waveform and a document's page card. The web UI shows them and search
results point at a video moment's still."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from search.decode.audio import load_audio
from search.decode.documents import load_document
from search.decode.image import load_image
from search.decode.isolation import IsolatedDecoder
from search.decode.kinds import kind_for_path
from search.errors import TroveError
from search.timefmt import clock

THUMB_SIZE = 384
# The cache's size cap (TROVE_THUMBNAIL_CACHE_MB overrides); past it, the pictures least
# recently shown go first, down to 90% of the cap so that one new picture does not prune again.
DEFAULT_CACHE_BYTES = 2 * 2**30
# A temporary file younger than this may still be being written by another thread.
TMP_GRACE_S = 3600.0
# A sound's waveform is drawn from its first few minutes (an hour-long recording is not
# decoded whole to show a picture), at a rate that keeps what is heard up to 11 kHz: a lower
# one would filter out a bird's song or a whistle and draw it as silence.
WAVEFORM_MAX_S = 300.0
WAVEFORM_RATE = 22_050
# A document's card shows its title and the start of its text, as much as fits.
CARD_TEXT_CHARS = 1500
WAVE_BACKGROUND, WAVE_AXIS, WAVE_COLOUR, WAVE_TEXT = (
    (24, 32, 44),
    (60, 72, 88),
    (94, 196, 214),
    (220, 228, 236),
)
CARD_BACKGROUND, CARD_FOLD, CARD_OUTSIDE = (250, 249, 244), (214, 210, 198), (236, 236, 236)
CARD_TITLE, CARD_TEXT, CARD_BADGE = (28, 28, 28), (80, 80, 80), (170, 60, 50)


class Thumbnails:
    """The pictures the gallery and the detail panel show, made on first view and kept in a
    folder: a downscaled photo, a still of a video (at a moment, or its first frame), the
    waveform of a sound, or a page card of a document's first lines.

    Kept per file (a folder named by a hash of its path, so `prune` can drop the pictures
    of files gone) and keyed by size, modification time, box size and moment, so a changed
    file gets a new one. Undecodable files raise BadFileError (or OSError); `missing()` stands in.
    Pictures are made in `decoder`'s worker processes, bounded in time and memory like
    every decode of a file Trove did not make (an upload included).
    """

    def __init__(self, folder: Path, decoder: IsolatedDecoder) -> None:
        self.folder = folder
        self.decoder = decoder

    def get(self, path: str, box: int = THUMB_SIZE, at_s: float | None = None) -> Path:
        """The picture of a library file; with `at_s`, the still of a video at that second."""
        st = os.stat(path)
        moment = "" if at_s is None else f"\0{at_s:.3f}"
        key = hashlib.blake2b(
            f"{st.st_size}\0{st.st_mtime_ns}\0{box}{moment}".encode(), digest_size=16
        ).hexdigest()
        owner = path_key(path)
        out = self.folder / owner[:2] / owner / f"{key}.jpg"
        if out.exists():
            # Its modification time is when it was last shown: `prune` drops the oldest.
            with contextlib.suppress(OSError):  # a read-only data folder serves what it has
                os.utime(out)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".{out.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            try:
                self.decoder.run(_render, path, box, at_s, str(tmp))
                os.replace(tmp, out)
            finally:
                tmp.unlink(missing_ok=True)
        return out

    def prune(self, library_files: Iterable[str], max_bytes: int | None = None) -> Pruned:
        """Drop the pictures of files the library no longer holds (and anything else that
        is not a picture of a library file), then, while the cache is over `max_bytes`
        (default: TROVE_THUMBNAIL_CACHE_MB or 2 GiB), those least recently shown."""
        cap = cache_cap() if max_bytes is None else max_bytes
        keep = {path_key(p) for p in library_files}
        pruned = Pruned()
        kept: list[tuple[float, int, Path]] = []
        if not self.folder.is_dir():
            return pruned
        now = time.time()
        for shard in self.folder.iterdir():
            if not (shard.is_dir() and len(shard.name) == 2):
                continue  # missing.png, and anything else at the top is left alone
            for entry in shard.iterdir():
                if entry.is_dir() and entry.name in keep:
                    for picture in entry.iterdir():
                        st = picture.stat()
                        if picture.name.startswith(".") and now - st.st_mtime < TMP_GRACE_S:
                            continue
                        kept.append((st.st_mtime, st.st_size, picture))
                    continue
                pruned.add(entry)
        total = sum(size for _, size, _ in kept)
        if total > cap:
            for _, size, picture in sorted(kept):
                if total <= cap * 0.9:
                    break
                pruned.add(picture)
                total -= size
        pruned.kept_bytes = total
        return pruned

    def missing(self) -> Path:
        """A grey square standing in for a file that cannot be shown."""
        out = self.folder / "missing.png"
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (THUMB_SIZE, THUMB_SIZE), (200, 200, 200)).save(out)
        return out


@dataclass
class Pruned:
    """What `Thumbnails.prune` removed: files, bytes freed, and the bytes left."""

    files: int = 0
    freed_bytes: int = 0
    kept_bytes: int = 0

    def add(self, entry: Path) -> None:
        files = [entry] if not entry.is_dir() else [p for p in entry.rglob("*") if p.is_file()]
        size = 0
        for f in files:
            with contextlib.suppress(OSError):  # gone meanwhile
                size += f.stat().st_size
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        self.files += len(files)
        self.freed_bytes += size


def path_key(path: str) -> str:
    """The cache folder name of a file's pictures."""
    return hashlib.blake2b(path.encode("utf-8", "surrogateescape"), digest_size=12).hexdigest()


def cache_cap() -> int:
    """The cache's size cap in bytes: TROVE_THUMBNAIL_CACHE_MB, else DEFAULT_CACHE_BYTES."""
    given = os.environ.get("TROVE_THUMBNAIL_CACHE_MB")
    if not given:
        return DEFAULT_CACHE_BYTES
    try:
        megabytes = float(given)
    except ValueError:
        raise TroveError(
            f"TROVE_THUMBNAIL_CACHE_MB={given!r} is not a number of megabytes (e.g. 500)"
        ) from None
    return int(megabytes * 2**20)


def _render(path: str, box: int, at_s: float | None, out: str) -> None:
    """Runs in a decode worker: the picture of `path` saved as a JPEG at `out`."""
    image = _picture(path, box, at_s)
    image.thumbnail((box, box), Image.Resampling.LANCZOS)
    image.save(out, "JPEG", quality=85)


def _picture(path: str, box: int, at_s: float | None) -> Image.Image:
    kind = kind_for_path(path)
    if kind == "video" or at_s is not None:
        from search.decode.video import frame_at

        return frame_at(path, at_s or 0.0, box)
    if kind == "audio":
        clip = load_audio(path, WAVEFORM_RATE, WAVEFORM_MAX_S)
        label = clock(clip.duration_s) if clip.decoded_all else f"first {clock(clip.duration_s)}"
        return waveform_picture(clip.samples, box, label)
    if kind == "document":
        doc = load_document(path)  # no OCR: a scanned page's card shows its name only
        return page_card(doc.title or Path(path).name, doc.text, box, Path(path).suffix)
    image, _, _ = load_image(path, min_side=box)
    return image


def waveform_picture(samples: np.ndarray, box: int, label: str = "") -> Image.Image:
    """A square picture of a sound (the gallery crops to squares): each column spans the
    loudest and quietest sample of its slice (peaks scaled to the loudest, so a quiet
    recording still shows), a line at the middle, and `label` (its length) in the top corner
    (the gallery's caption covers the bottom)."""
    width = height = box
    picture = Image.new("RGB", (width, height), WAVE_BACKGROUND)
    draw = ImageDraw.Draw(picture)
    middle = height // 2
    draw.line([(0, middle), (width, middle)], fill=WAVE_AXIS)
    if samples.size:
        columns = np.array_split(samples.astype(np.float32, copy=False), min(width, samples.size))
        tops = np.array([c.max() for c in columns])
        bottoms = np.array([c.min() for c in columns])
        peak = float(max(np.abs(tops).max(), np.abs(bottoms).max(), 1e-4))
        reach = (height // 2 - height // 10) / peak
        step = width / len(columns)
        for i, (top, bottom) in enumerate(zip(tops, bottoms, strict=True)):
            x = int(i * step)
            y0 = middle - int(max(top, 0.0) * reach)
            y1 = middle - int(min(bottom, 0.0) * reach)
            draw.line([(x, y0), (x, max(y1, y0 + 1))], fill=WAVE_COLOUR, width=max(1, int(step)))
    if label:
        font = ImageFont.load_default(size=max(10, box // 14))
        draw.text((box // 32, box // 32), label, font=font, fill=WAVE_TEXT, anchor="lt")
    return picture


def page_card(title: str, text: str, box: int, suffix: str = "") -> Image.Image:
    """A document as a square paper card (the gallery crops to squares): its title, then
    its first lines, wrapped, and its format under the folded corner."""
    width = height = box
    card = Image.new("RGB", (width, height), CARD_BACKGROUND)
    draw = ImageDraw.Draw(card)
    margin = max(4, box // 16)
    fold = box // 8
    draw.polygon([(width - fold, 0), (width, fold), (width - fold, fold)], fill=CARD_FOLD)
    draw.polygon([(width - fold, 0), (width, 0), (width, fold)], fill=CARD_OUTSIDE)
    title_font = ImageFont.load_default(size=max(10, box // 13))
    body_font = ImageFont.load_default(size=max(8, box // 24))
    y = margin
    for line in _wrap(draw, title, title_font, width - 2 * margin - fold)[:3]:
        draw.text((margin, y), line, font=title_font, fill=CARD_TITLE)
        y += int(title_font.size * 1.25)
    # The body runs the full width, so it starts below the format badge.
    y = max(y + margin // 2, fold + margin + body_font.size)
    body = text.strip()
    if body.startswith(title):  # plain text and Markdown take their title from line one
        body = body[len(title) :].lstrip()
    line_height = int(body_font.size * 1.35)
    for line in _wrap(draw, body[:CARD_TEXT_CHARS], body_font, width - 2 * margin):
        if y + line_height > height - margin:
            break
        draw.text((margin, y), line, font=body_font, fill=CARD_TEXT)
        y += line_height
    if suffix:
        badge = suffix.lstrip(".").upper()
        draw.text(
            (width - margin, fold + margin // 2),
            badge,
            font=body_font,
            fill=CARD_BADGE,
            anchor="rt",
        )
    return card


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
    """Lines of `text` no wider than `width` pixels (a word longer than that is cut)."""
    lines: list[str] = []
    for paragraph in text.splitlines():
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if draw.textlength(candidate, font=font) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            while draw.textlength(word, font=font) > width and len(word) > 1:
                cut = max(1, int(len(word) * width / draw.textlength(word, font=font)))
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        if line:
            lines.append(line)
    return lines
