"""A corpus of hostile and broken files, generated: one function per case.

Each case writes its files under a folder and returns a `BadCase`: the paths it wrote, the
kind of media they pretend to be, and what Trove must do with them:

- "fail": recorded in the catalog with a reason, and skipped;
- "either": indexed, or recorded with a reason; never a crash or a hang (odd but possibly
  valid files: an animated GIF of thousands of frames, text in UTF-16).

A case is *active* when its kind is in INDEXED_KINDS: add "audio", "video" and "document"
there as the indexer learns them, and their cases switch on. Cases that need a tool that is
missing (ffmpeg) are reported by `generate` as skipped, with the reason.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tests.media import make_photo, make_png_bomb

# The kinds the indexer handles; the cases of any other kind are generated but not checked.
INDEXED_KINDS = frozenset({"image", "audio", "video", "document"})


@dataclass(frozen=True)
class BadCase:
    name: str
    kind: str
    paths: tuple[Path, ...]
    expect: str = "fail"  # "fail" or "either" (see the module docstring)
    vanishes: bool = False  # the test must delete these between the walk and the read

    @property
    def active(self) -> bool:
        return self.kind in INDEXED_KINDS


class CaseUnavailable(Exception):
    """This machine lacks what the case needs to be generated (the message says what)."""


# -- helpers -------------------------------------------------------------------------------


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _photo_bytes(fmt: str, seed: int = 1, size: tuple[int, int] = (320, 240)) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    im = _photo_image(seed, size)
    im.save(buf, fmt, **({"quality": 90} if fmt in ("JPEG", "WEBP", "HEIF") else {}))
    return buf.getvalue()


def _photo_image(seed: int, size: tuple[int, int]) -> Image.Image:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = make_photo(Path(tmp) / "p.png", seed, size=size)
        with Image.open(path) as im:
            return im.copy()


def _flip_bits(data: bytes, seed: int, count: int = 64, skip: int = 16) -> bytes:
    """Flip `count` bits at deterministic places after the first `skip` bytes."""
    import random

    rng = random.Random(seed)
    out = bytearray(data)
    for _ in range(count):
        i = rng.randrange(skip, len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def _ffmpeg(out: Path, *args: str) -> bytes:
    if shutil.which("ffmpeg") is None:
        raise CaseUnavailable("ffmpeg is not installed")
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", *args, str(out)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out.read_bytes()


def _sine_wav(seconds: float = 1.0, rate: int = 16000) -> bytes:
    import numpy as np
    import soundfile

    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    soundfile.write(buf, 0.3 * np.sin(2 * np.pi * 440 * t), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _sine_flac(seconds: float = 1.0, rate: int = 16000) -> bytes:
    import numpy as np
    import soundfile

    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    soundfile.write(buf, 0.3 * np.sin(2 * np.pi * 330 * t), rate, format="FLAC")
    return buf.getvalue()


# -- cases: every kind ----------------------------------------------------------------------


def zero_byte_files(folder: Path) -> list[BadCase]:
    # An empty .txt is a valid (empty) text file: indexing it by its name is fine too.
    return [
        BadCase(
            f"zero-byte {ext}",
            kind,
            (_write(folder / f"empty{ext}", b""),),
            expect="either" if ext == ".txt" else "fail",
        )
        for ext, kind in (
            (".jpg", "image"),
            (".png", "image"),
            (".mp3", "audio"),
            (".wav", "audio"),
            (".mp4", "video"),
            (".pdf", "document"),
            (".txt", "document"),
        )
    ]


# -- images ----------------------------------------------------------------------------------


def truncated_images(folder: Path) -> list[BadCase]:
    cases = []
    for fmt, ext in (("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp"), ("HEIF", ".heic")):
        data = _photo_bytes(fmt, seed=2)
        cut = _write(folder / f"truncated{ext}", data[: len(data) // 2])
        header_only = _write(folder / f"header-only{ext}", data[:40])
        cases.append(BadCase(f"truncated {fmt}", "image", (cut, header_only)))
    return cases


def bit_flipped_images(folder: Path) -> list[BadCase]:
    # Flipped bits in entropy-coded data often still decode (to noise): either outcome is
    # fine, as long as the run neither crashes nor hangs.
    cases = []
    for seed, (fmt, ext) in enumerate(
        (("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp"), ("HEIF", ".heic"))
    ):
        data = _photo_bytes(fmt, seed=3)
        paths = tuple(
            _write(folder / f"flipped-{i}{ext}", _flip_bits(data, seed * 10 + i)) for i in range(3)
        )
        cases.append(BadCase(f"bit-flipped {fmt}", "image", paths, expect="either"))
    return cases


def png_bomb(folder: Path) -> list[BadCase]:
    folder.mkdir(parents=True, exist_ok=True)
    return [BadCase("PNG decompression bomb", "image", (make_png_bomb(folder / "bomb.png"),))]


def absurd_exif(folder: Path) -> list[BadCase]:
    im = _photo_image(4, (200, 150))
    exif = Image.Exif()
    exif[0x0112] = 999  # orientation outside 1..8
    exif[0x0132] = "9999:99:99 99:99:99"  # DateTime
    exif[0x010F] = "X" * 60000  # Make: 60 kB (a JPEG APP1 segment holds at most 64 kB)
    exif[0xA002] = 2**31 - 1  # PixelXDimension
    exif[0xA003] = 2**31 - 1
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif, quality=85)
    # A second APP1 whose IFD offset points far past the end of the file.
    data = buf.getvalue()
    evil = b"Exif\x00\x00MM\x00\x2a\x7f\xff\xff\xf0"
    app1 = b"\xff\xe1" + struct.pack(">H", len(evil) + 2) + evil
    bad_offset = data[:2] + app1 + data[2:]
    return [
        BadCase(
            "absurd EXIF",
            "image",
            (
                _write(folder / "absurd-exif.jpg", data),
                _write(folder / "exif-offset-past-end.jpg", bad_offset),
            ),
            expect="either",
        )
    ]


def gif_with_thousands_of_frames(folder: Path, frames: int = 3000) -> list[BadCase]:
    first = Image.new("P", (64, 64), 0)
    rest = [Image.new("P", (64, 64), i % 256) for i in range(1, frames)]
    path = folder / "many-frames.gif"
    path.parent.mkdir(parents=True, exist_ok=True)
    first.save(path, save_all=True, append_images=rest, duration=20, loop=0)
    return [BadCase(f"GIF with {frames} frames", "image", (path,), expect="either")]


def not_an_image(folder: Path) -> list[BadCase]:
    return [
        BadCase(
            "text named .jpg",
            "image",
            (_write(folder / "letter.jpg", b"Dear Anna,\nthe photos are attached.\n"),),
        ),
        BadCase(
            "random bytes named .png",
            "image",
            (_write(folder / "noise.png", _flip_bits(bytes(4096), 5, count=8000, skip=0)),),
        ),
    ]


# -- audio -----------------------------------------------------------------------------------


def broken_audio(folder: Path) -> list[BadCase]:
    wav, flac = _sine_wav(), _sine_flac()
    mp3 = _ffmpeg(folder / ".scratch" / "tone.mp3", "-f", "lavfi", "-i", "sine=d=1", "-b:a", "64k")
    shutil.rmtree(folder / ".scratch")
    garbage = _flip_bits(bytes(8192), 6, count=20000, skip=0)
    return [
        BadCase(
            "truncated WAV/FLAC/MP3",
            "audio",
            (
                _write(folder / "truncated.wav", wav[:30]),
                _write(folder / "truncated.flac", flac[: len(flac) // 3]),
                _write(folder / "truncated.mp3", mp3[:200]),
            ),
            expect="either",  # a long enough prefix of a stream is a shorter stream
        ),
        BadCase(
            "garbage named .mp3/.flac/.wav",
            "audio",
            (
                _write(folder / "garbage.mp3", garbage),
                _write(folder / "garbage.flac", garbage),
                _write(folder / "garbage.wav", b"RIFF" + garbage[4:]),
            ),
        ),
    ]


def wav_claiming_hours(folder: Path) -> list[BadCase]:
    """A RIFF/WAVE header saying 4 GB of 8 kHz mono (~74 hours) over one second of data."""
    rate = 8000
    pcm = bytes(2 * rate)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, 2 * rate, 2, 16)
    claimed = 0xFFFFFFF0
    data = (
        b"RIFF"
        + struct.pack("<I", claimed)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", claimed - 36)
        + pcm
    )
    return [BadCase("WAV header claiming 74 hours", "audio", (_write(folder / "hours.wav", data),))]


# -- video -----------------------------------------------------------------------------------


def broken_video(folder: Path) -> list[BadCase]:
    src = ("-f", "lavfi", "-i", "testsrc=d=2:s=160x120:r=10", "-pix_fmt", "yuv420p")
    mp4 = _ffmpeg(folder / ".scratch" / "v.mp4", *src, "-movflags", "+faststart")
    mkv = _ffmpeg(folder / ".scratch" / "v.mkv", *src)
    shutil.rmtree(folder / ".scratch")
    # The sample index (moov) stays, but its chunk-offset table points past the end of the
    # file: every sample is "somewhere" that is not there. (Renaming moov is not enough:
    # FFmpeg finds a moov hidden in a free box.)
    table = mp4.index(b"stco")
    entries = struct.unpack(">I", mp4[table + 8 : table + 12])[0]
    past_the_end = b"\xff\xff\xff\x00" * entries
    no_index = mp4[: table + 12] + past_the_end + mp4[table + 12 + 4 * entries :]
    return [
        BadCase(
            "truncated MP4/MKV",
            "video",
            (
                _write(folder / "truncated.mp4", mp4[: len(mp4) // 3]),
                _write(folder / "truncated.mkv", mkv[: len(mkv) // 3]),
                _write(folder / "header-only.mp4", mp4[:64]),
            ),
            expect="either",
        ),
        BadCase(
            "MP4 with a broken index", "video", (_write(folder / "broken-index.mp4", no_index),)
        ),
    ]


# -- documents -------------------------------------------------------------------------------


def broken_documents(folder: Path) -> list[BadCase]:
    return [
        BadCase(
            "PDF that is not a PDF",
            "document",
            (_write(folder / "not-a.pdf", b"<html><body>Download failed</body></html>\n"),),
        ),
        BadCase("encrypted PDF", "document", (_write(folder / "encrypted.pdf", _encrypted_pdf()),)),
    ]


def _encrypted_pdf() -> bytes:
    """A PDF under the standard security handler whose user password is not empty: readers
    cannot open it without the password."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
        b"<< /Length 16 >>\nstream\n" + bytes(range(16)) + b"\nendstream",
        b"<< /Filter /Standard /V 1 /R 2 /Length 40 /P -4 /O <"
        + b"11" * 32
        + b"> /U <"
        + b"22" * 32
        + b"> >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Encrypt 5 0 R /ID [<%s> <%s>] >>\n" % (
        len(objects) + 1,
        b"ab" * 16,
        b"ab" * 16,
    )
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def unusual_text_encodings(folder: Path) -> list[BadCase]:
    text = "Grüße aus Köln: 東京の夜景, café crème, naïve — 2023.\n" * 20
    return [
        BadCase(
            "text in unusual encodings",
            "document",
            (
                _write(folder / "utf16.txt", text.encode("utf-16")),
                _write(folder / "utf16be-no-bom.txt", text.encode("utf-16-be")),
                _write(folder / "latin1.txt", text.encode("latin-1", "replace")),
                _write(folder / "shift-jis.txt", text.encode("shift_jis", "replace")),
                _write(folder / "utf8-bom.txt", text.encode("utf-8-sig")),
                _write(folder / "binary.txt", zlib.compress(text.encode() * 50)),
            ),
            expect="either",
        )
    ]


# -- the file system -------------------------------------------------------------------------


def non_utf8_names(folder: Path) -> list[BadCase]:
    """Linux file names are bytes: these are not valid UTF-8 (Latin-1 and a stray byte)."""
    folder.mkdir(parents=True, exist_ok=True)
    good = _photo_bytes("JPEG", seed=7)
    paths = []
    for raw in (b"caf\xe9.jpg", b"\xff\xfe-photo.jpg"):
        path = os.path.join(os.fsencode(folder), raw)
        with open(path, "wb") as f:
            f.write(good)
        paths.append(Path(os.fsdecode(path)))
    return [BadCase("file names that are not UTF-8", "image", tuple(paths), expect="either")]


def very_long_paths(folder: Path) -> list[BadCase]:
    """A 255-byte file name (the limit), and a path of ~3000 bytes (under PATH_MAX 4096)."""
    good = _photo_bytes("JPEG", seed=8)
    long_name = _write(folder / ("n" * 251 + ".jpg"), good)
    deep = folder.joinpath(*(["d" * 200] * 14))
    deep_file = _write(deep / "deep.jpg", good)
    return [BadCase("very long paths", "image", (long_name, deep_file), expect="either")]


def unreadable_files(folder: Path) -> list[BadCase]:
    """Mode 000: only root can read it, so a test running as root must index as another user."""
    path = _write(folder / "private.jpg", _photo_bytes("JPEG", seed=9))
    path.chmod(0)
    return [BadCase("unreadable (permissions)", "image", (path,))]


def named_pipe(folder: Path) -> list[BadCase]:
    """A FIFO with an image's name: opening it for reading blocks until someone writes."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pipe.jpg"
    os.mkfifo(path)
    return [BadCase("named pipe named .jpg", "image", (path,))]


def vanishing_files(folder: Path) -> list[BadCase]:
    paths = tuple(
        _write(folder / f"vanishing-{i}.jpg", _photo_bytes("JPEG", seed=20 + i)) for i in range(3)
    )
    return [BadCase("vanish between walk and read", "image", paths, vanishes=True)]


CASES: tuple[Callable[[Path], list[BadCase]], ...] = (
    zero_byte_files,
    truncated_images,
    bit_flipped_images,
    png_bomb,
    absurd_exif,
    gif_with_thousands_of_frames,
    not_an_image,
    broken_audio,
    wav_claiming_hours,
    broken_video,
    broken_documents,
    unusual_text_encodings,
    non_utf8_names,
    very_long_paths,
    unreadable_files,
    named_pipe,
    vanishing_files,
)


def generate(
    folder: Path, only: Sequence[Callable] = CASES, leave_out: Sequence[Callable] = ()
) -> tuple[list[BadCase], list[tuple[str, str]]]:
    """Write the cases of `only` (default: all) but `leave_out` under `folder`, one
    subfolder per case function.

    Returns (cases written, [(case function, why it was not generated)]).
    """
    cases: list[BadCase] = []
    unavailable: list[tuple[str, str]] = []
    for make in (m for m in only if m not in leave_out):
        try:
            cases += make(folder / make.__name__)
        except CaseUnavailable as exc:
            unavailable.append((make.__name__, str(exc)))
    return cases, unavailable
