"""Decoding photos for the image encoder: orientation, size guard, fast JPEG downscale."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import datetime

import pillow_heif
from PIL import Image, ImageOps

from search.decode.kinds import SNIFF_BYTES, describe_content, image_format
from search.errors import BadFileError

pillow_heif.register_heif_opener()

# Pillow refuses images over 2 x Image.MAX_IMAGE_PIXELS (179 MP) when it opens them, before
# decoding: a 30000x30000 PNG of one colour is a few kB on disk but 2.7 GB in memory. Between
# 1x and 2x it only warns, and those sizes are real panoramas, so the warning is silenced.


EXIF_IFD = 0x8769
EXIF_DATE_TAGS = (0x9003, 0x9004)  # DateTimeOriginal, DateTimeDigitized (in the Exif IFD)
DATETIME = 0x0132
MAKE, MODEL, LENS_MODEL = 0x010F, 0x0110, 0xA434
# Longer EXIF strings are junk or an attack, not a camera name.
MAX_EXIF_TEXT = 120


@dataclass(frozen=True)
class Photo:
    """A decoded image (RGB, upright), its original upright size, and what its EXIF says
    about when and with what it was taken."""

    image: Image.Image
    width: int
    height: int
    taken_at: float | None = None
    details: dict[str, str] = field(default_factory=dict)


def load_image(path: str, min_side: int | None = None) -> tuple[Image.Image, int, int]:
    """Open an image as RGB, upright, and return it with its original (upright) size."""
    photo = load_photo(path, min_side)
    return photo.image, photo.width, photo.height


def load_photo(path: str, min_side: int | None = None) -> Photo:
    """Open an image as RGB, upright, with its size and EXIF date, camera and lens.

    With `min_side`, JPEGs are decoded at a reduced scale (DCT draft mode) no smaller than
    that on either side: several times faster for camera photos, and the encoder downsizes
    to its input size anyway.
    """
    with open(path, "rb") as f:
        header = f.read(SNIFF_BYTES)
    fmt = image_format(header)
    if fmt is None:
        raise BadFileError(f"not an image: {describe_content(header)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            width, height = im.size
            exif = im.getexif()
            orientation = exif.get(0x0112, 1)
            if orientation in (5, 6, 7, 8):
                width, height = height, width
            if min_side and im.format == "JPEG":
                im.draft("RGB", (min_side, min_side))
            im.load()
            upright = ImageOps.exif_transpose(im)
            taken_at, details = _exif_details(exif)
            return Photo(_to_rgb(upright), width, height, taken_at, details)
    except Image.DecompressionBombError as exc:
        raise BadFileError(f"refused: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        # Pillow reports truncated or corrupt data as OSError/SyntaxError/ValueError.
        raise BadFileError(f"corrupt or truncated {fmt} image: {exc}") from None


def _to_rgb(im: Image.Image) -> Image.Image:
    """RGB, with transparency composited onto white (how a viewer shows a logo)."""
    if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return im.convert("RGB")


def _exif_details(exif: Image.Exif) -> tuple[float | None, dict[str, str]]:
    """The capture time (local time, as cameras write it) and camera/lens names; fields
    that are missing, malformed or absurd are left out rather than failing the photo."""
    try:
        sub = exif.get_ifd(EXIF_IFD)
    except Exception:  # a broken Exif IFD pointer: the photo itself is still fine
        sub = {}
    taken_at = None
    for value in [*(sub.get(tag) for tag in EXIF_DATE_TAGS), exif.get(DATETIME)]:
        taken_at = _exif_time(value)
        if taken_at is not None:
            break
    details = {}
    for name, value in (
        ("camera", " ".join(_exif_text(exif.get(t)) for t in (MAKE, MODEL)).strip()),
        ("lens", _exif_text(sub.get(LENS_MODEL))),
    ):
        if value:
            details[name] = value
    return taken_at, details


def _exif_time(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.strptime(value.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    if not 1900 <= moment.year <= datetime.now().year + 1:
        return None
    return moment.timestamp()


def _exif_text(value: object) -> str:
    if not isinstance(value, str):
        return ""
    text = value.replace("\x00", "").strip()
    return text if len(text) <= MAX_EXIF_TEXT and text.isprintable() else ""
