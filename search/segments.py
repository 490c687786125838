"""One file -> its segments and what each segment asks of the encoders, per kind.

A photo is one segment (its pixels; with OCR on, also the text found in it). A sound is
cut into windows, plus one segment for the whole file. A video is its sampled frames and
the windows of its sound track, plus one segment for the whole file. A document is its
chunks. Each segment carries encoder inputs by role (search/models/encoders.py): "image"
(a preprocessed tensor), "caption" and "sentence" (text), "audio" (a waveform), or POOLED:
the mean of the file's other vectors in that role.

Native decoders (FFmpeg, pdf parsing) run in isolated worker processes bounded in time and
memory (search/decode/isolation.py); photos decode in the indexer's threads, where Pillow's
decompression-bomb guard bounds them.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import numpy as np

from search.decode.audio import audio_windows, load_audio
from search.decode.documents import chunk_document, load_document
from search.decode.image import load_photo
from search.decode.isolation import IsolatedDecoder
from search.decode.kinds import FoundFile
from search.decode.ocr import ocr_image
from search.errors import BadFileError
from search.models.encoders import ROLE_SPACE, Encoders
from search.storage.catalog import Catalog
from search.vectors import pool


class _Pooled:
    """Marks a role whose vector is the mean of the file's other vectors in that role (a
    marker object, not a string: a text chunk may say anything)."""

    def __repr__(self) -> str:
        return "POOLED"


POOLED = _Pooled()
# Segments per encoder call (the indexer commits a batch of this many files at a time).
DEFAULT_BATCH_SIZE = 16
# Seconds a native decoder gets for one file (or one probe) before its worker is killed; the
# video decoder, which bounds itself by MAX_DECODE_SECONDS, gets that plus this.
NATIVE_TIMEOUT_S = 60.0
# A sound file is decoded whole (up to two hours, search/decode/audio.py), at 50x real time or
# more on a laptop core: two minutes covers the longest with room to spare.
AUDIO_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Pending:
    """A segment waiting for its vectors: its span and its encoder inputs by role."""

    start_s: float | None
    end_s: float | None
    text: str | None
    inputs: Mapping[str, Any]


@dataclass(frozen=True)
class Decoded:
    found: FoundFile
    fingerprint: str
    segments: list[Pending]
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    taken_at: float | None = None
    info: dict[str, Any] = field(default_factory=dict)


# The roles a kind cannot be indexed without; other roles are used when available.
REQUIRED_ROLES = {
    "image": ("image",),
    "audio": ("audio",),
    "video": ("image",),
    "document": ("sentence", "caption"),
}
# Roles a kind uses when their model is here (a video's sound track; OCR text is a setting).
OPTIONAL_ROLES = {"image": (), "audio": (), "video": ("audio",), "document": ()}
# The vector every healthy item of a kind has: an item without one under the current
# model (after a model change) is encoded again.
PRIMARY_ROLE = {"image": "image", "audio": "audio", "video": "image", "document": "sentence"}


@dataclass(frozen=True)
class SegmentSettings:
    """What an index run asks of the segmenter; None is "the library's own" (or the default
    for a library that has none)."""

    ocr: bool | None = None
    # Video frames per second of footage (the cap per video is search/decode/video.py's).
    frame_rate: float | None = None


# Catalog meta: the frame rate a library's videos were sampled at, when one was asked for.
FRAME_RATE_META = "video_frame_rate"
# Catalog meta: "1" when the library reads the text in its photos and scans, else "0".
OCR_META = "ocr"
# Catalog meta (JSON): kind -> the time a setting that changes what its files yield last
# changed; a file of that kind processed before then is processed again.
REDO_META = "redo_kinds_since"


@dataclass(frozen=True)
class SettingChange:
    """A setting that changed what files of `kinds` yield, as the run summary says it."""

    description: str
    kinds: tuple[str, ...]


def remember_settings(
    catalog: Catalog, settings: SegmentSettings
) -> tuple[SegmentSettings, list[SettingChange]]:
    """The library's own settings: one asked for becomes the library's (its query videos are
    sampled at its frame rate too), and a run that asks for none uses the one it has. A
    change that alters what files yield marks their kinds for processing again."""
    old_rate, old_ocr = library_frame_rate(catalog), library_ocr(catalog)
    rate = old_rate if settings.frame_rate is None else float(settings.frame_rate)
    ocr = old_ocr if settings.ocr is None else settings.ocr
    changes = []
    if ocr != old_ocr:
        changes.append(SettingChange(f"OCR turned {'on' if ocr else 'off'}", ("image", "document")))
        catalog.set_meta(OCR_META, "1" if ocr else "0")
    if rate != old_rate:
        from search.decode.video import DEFAULT_FRAME_RATE  # FFmpeg: only when rates differ

        if (rate or DEFAULT_FRAME_RATE) != (old_rate or DEFAULT_FRAME_RATE):
            was = old_rate or DEFAULT_FRAME_RATE
            changes.append(
                SettingChange(f"Video frame rate now {rate:g} fps (was {was:g})", ("video",))
            )
        catalog.set_meta(FRAME_RATE_META, repr(rate))
    if changes:
        redo = files_to_redo(catalog)
        now = time.time()
        redo.update({kind: now for change in changes for kind in change.kinds})
        catalog.set_meta(REDO_META, json.dumps(redo))
    return SegmentSettings(ocr=ocr, frame_rate=rate), changes


def files_to_redo(catalog: Catalog) -> dict[str, float]:
    """kind -> time: files of the kind processed before the time are to be processed again."""
    stored = catalog.get_meta(REDO_META)
    return json.loads(stored) if stored else {}


def library_frame_rate(catalog: Catalog) -> float | None:
    stored = catalog.get_meta(FRAME_RATE_META)
    return float(stored) if stored else None


def library_ocr(catalog: Catalog) -> bool:
    return catalog.get_meta(OCR_META) == "1"


class Segmenter:
    """Decodes files of every kind into Decoded, with the encoders' preprocessing."""

    def __init__(
        self,
        encoders: Encoders,
        isolation: IsolatedDecoder,
        settings: SegmentSettings | None = None,
        skip_roles: frozenset[str] = frozenset(),
    ) -> None:
        """`skip_roles`: roles whose model is unavailable this run (no weights): their
        inputs are not prepared, and the caller has said so to the user."""
        self.encoders = encoders
        self.isolation = isolation
        self.settings = settings or SegmentSettings()
        self.skip_roles = skip_roles

    def wants(self, role: str) -> bool:
        return role not in self.skip_roles

    def __call__(self, found: FoundFile, fingerprint: str) -> Decoded:
        decode = {
            "image": self.image,
            "audio": self.audio,
            "video": self.video,
            "document": self.document,
        }[found.kind]
        return decode(found, fingerprint)

    # -- kinds ---------------------------------------------------------------------------

    def image(self, found: FoundFile, fingerprint: str) -> Decoded:
        clip = self.encoders.clip
        photo = load_photo(found.path, min_side=clip.spec.image_size)
        inputs: dict[str, Any] = {"image": clip.preprocess(photo.image)}
        text = None
        if self.settings.ocr and self.wants("sentence"):
            # Small print needs every pixel: the encoder's copy is decoded at a reduced
            # scale (JPEG draft mode), so the text is read from a full decode.
            text = ocr_image(load_photo(found.path).image).strip() or None
            if text:
                inputs["sentence"] = text
        return Decoded(
            found,
            fingerprint,
            [Pending(None, None, text, inputs)],
            width=photo.width,
            height=photo.height,
            taken_at=photo.taken_at,
            info=dict(photo.details),
        )

    def audio(self, found: FoundFile, fingerprint: str) -> Decoded:
        clap = self.encoders.get("clap")
        clip = self.isolation.run(
            load_audio, found.path, clap.sample_rate, timeout_s=AUDIO_TIMEOUT_S
        )
        segments = self._sound_segments(clip.samples, clap)
        if not segments:
            raise BadFileError("the recording is silent")
        info = {"sample_rate": clip.source_rate, "channels": clip.channels, **clip.tags}
        return Decoded(
            found,
            fingerprint,
            [*segments, Pending(None, None, None, {"audio": POOLED})],
            duration_s=clip.duration_s,
            info=info,
        )

    def video(self, found: FoundFile, fingerprint: str) -> Decoded:
        from search.decode import video

        clip_encoder = self.encoders.clip
        info = self.isolation.run(video.probe_video, found.path)
        rate = self.settings.frame_rate or video.DEFAULT_FRAME_RATE
        frames = self.isolation.run(
            video.sample_frames,
            found.path,
            rate,
            video.MAX_FRAMES_PER_VIDEO,
            video.DEFAULT_SCENE_THRESHOLD,
            clip_encoder.spec.image_size,
            # sample_frames stops itself after MAX_DECODE_SECONDS; this is the backstop.
            timeout_s=video.MAX_DECODE_SECONDS + NATIVE_TIMEOUT_S,
        )
        if not frames:
            raise BadFileError("no frame could be decoded")
        segments = [
            Pending(frame.t_s, frame.end_s, None, {"image": clip_encoder.preprocess(frame.image)})
            for frame in frames
        ]
        whole: dict[str, Any] = {"image": POOLED}
        if info.has_audio and self.wants("audio"):
            clap = self.encoders.get("clap")
            # At most MAX_AUDIO_SECONDS of sound are decoded: far faster than real time.
            samples = self.isolation.run(video.load_video_audio, found.path, clap.sample_rate)
            sound = self._sound_segments(samples, clap) if samples is not None else []
            segments += sound
            if sound:
                whole["audio"] = POOLED
        details = {
            "codec": info.codec,
            "fps": round(info.fps, 3) if info.fps else None,
            "rotation": info.rotation,
            "frames_indexed": len(frames),
        }
        return Decoded(
            found,
            fingerprint,
            [*segments, Pending(None, None, None, whole)],
            width=info.width,
            height=info.height,
            duration_s=info.duration_s,
            info={k: v for k, v in details.items() if v is not None},
        )

    def document(self, found: FoundFile, fingerprint: str) -> Decoded:
        ocr = ocr_image if self.settings.ocr else None
        doc = self.isolation.run(load_document, found.path, ocr)
        spans = [(c.start_s, c.end_s, c.text) for c in chunk_document(doc)]
        if not spans:
            # A scan without OCR, an empty file: still found by its title or name (by words
            # and by meaning), and its notice says why there is nothing more.
            spans = [(None, None, doc.title or _words_of_name(found.path))]
        segments = [
            Pending(start, end, text, {r: text for r in ("sentence", "caption") if self.wants(r)})
            for start, end, text in spans
        ]
        info = dict(doc.info)
        if doc.title:
            info["title"] = doc.title
        if doc.notice:
            info["notice"] = doc.notice
        duration = info.pop("duration_s", None)  # subtitles: the time their cues span
        return Decoded(found, fingerprint, segments, duration_s=duration, info=info)

    # -- shared ----------------------------------------------------------------------------

    def _sound_segments(self, samples, clap) -> list[Pending]:
        return [
            Pending(w.start_s, w.end_s, None, {"audio": w.samples})
            for w in audio_windows(samples, clap.sample_rate, clap.window_s)
        ]


def encode_segments(
    encoders: Encoders, batch: Sequence[Decoded], batch_size: int = DEFAULT_BATCH_SIZE
) -> dict[tuple[int, int], dict[str, np.ndarray]]:
    """Every segment's vectors by key, for (file, segment) positions in `batch`: one encoder
    call per role and batch-size slice, then each POOLED role as the mean of the file's
    other vectors in it, weighted by the seconds each stands for (a long still shot is not
    outvoted by a burst of scene-cut frames). The indexer stores these; a query file
    searches with its whole-file vectors, made here the same way."""
    vectors: dict[tuple[int, int], dict[str, np.ndarray]] = {
        (i, j): {} for i, d in enumerate(batch) for j in range(len(d.segments))
    }
    by_role: dict[str, list[tuple[tuple[int, int], object]]] = {}
    pooled: list[tuple[tuple[int, int], str]] = []
    for i, d in enumerate(batch):
        for j, pending in enumerate(d.segments):
            for role, value in pending.inputs.items():
                if value is POOLED:
                    pooled.append(((i, j), role))
                else:
                    by_role.setdefault(role, []).append(((i, j), value))
    for role, entries in by_role.items():
        key = encoders.key(role)
        for start in range(0, len(entries), batch_size):
            chunk = entries[start : start + batch_size]
            encoded = _encode_role(encoders, role, [value for _, value in chunk])
            for (where, _), vector in zip(chunk, encoded, strict=True):
                vectors[where][key] = vector
    for (i, j), role in pooled:
        key = encoders.key(role)
        parts = [
            (v[key], _span(batch[fi].segments[fj]))
            for (fi, fj), v in vectors.items()
            if fi == i and key in v
        ]
        if parts:
            vectors[(i, j)][key] = pool(np.stack([v for v, _ in parts]), [w for _, w in parts])
    return vectors


def _encode_role(encoders: Encoders, role: str, values: list) -> np.ndarray:
    encoder = encoders.get(ROLE_SPACE[role])
    if role == "image":
        import torch  # deferred: segmenting a file (in the decode threads) needs no torch

        return encoder.encode_image_tensors(torch.stack(values))
    if role == "audio":
        return encoder.encode_audio(values)
    return encoder.encode_texts(values)


def _span(segment: Pending) -> float:
    """The seconds a segment stands for (1 for one without a time range)."""
    if segment.start_s is None or segment.end_s is None:
        return 1.0
    return max(segment.end_s - segment.start_s, 1e-3)


def _words_of_name(path: str) -> str:
    """A file name as words: scanned-receipt_2023.pdf -> "scanned receipt 2023"."""
    return " ".join(re.split(r"[\W_]+", PurePath(path).stem)).strip() or PurePath(path).name
