"""Decoding photos for the image encoder: orientation, size guard, fast JPEG downscale."""

from __future__ import annotations

import warnings

import pillow_heif
from PIL import Image, ImageOps

from indexers.kinds import SNIFF_BYTES, describe_content, image_format
from search.errors import BadFileError

pillow_heif.register_heif_opener()

# Pillow refuses images over 2 x Image.MAX_IMAGE_PIXELS (179 MP) when it opens them, before
# decoding: a 30000x30000 PNG of one colour is a few kB on disk but 2.7 GB in memory. Between
# 1x and 2x it only warns, and those sizes are real panoramas, so the warning is silenced.


def load_image(path: str, min_side: int | None = None) -> tuple[Image.Image, int, int]:
    """Open an image as RGB, upright, and return it with its original (upright) size.

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
            orientation = im.getexif().get(0x0112, 1)
            if orientation in (5, 6, 7, 8):
                width, height = height, width
            if min_side and im.format == "JPEG":
                im.draft("RGB", (min_side, min_side))
            im.load()
            upright = ImageOps.exif_transpose(im)
            return _to_rgb(upright), width, height
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
