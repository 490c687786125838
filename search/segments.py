"""One file -> its segments and what each segment asks of the encoders, per kind.

A photo is one segment (its pixels; with OCR on, also the text found in it). A sound is
cut into windows, plus one segment for the whole file; with a sound-similarity model
(search/models/sound_similarity.py) also into that model's windows at its sample rate. A
video is its sampled frames and the windows of its sound track, plus one segment for the
whole file. A document is its chunks. Each segment carries encoder inputs by role
(search/models/encoders.py): "image" (a preprocessed tensor), "caption" and "sentence"
(text), "audio" and "sound" (a waveform), or POOLED: the mean of the file's other vectors
in that role.

Native decoders (FFmpeg, pdf parsing) run in isolated worker processes bounded in time and
memory (search/decode/isolation.py); photos decode in the indexer's threads, where Pillow's
decompression-bomb guard bounds them.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import Any

import numpy as np

from search.decode.audio import audio_windows, load_audio
from search.decode.documents import chunk_document, load_document
from search.decode.image import load_photo
from search.decode.isolation import IsolatedDecoder
from search.decode.kinds import FoundFile
from search.decode.ocr import ocr_image
from search.decode.speech import (
    SpeechLine,
    SpeechModelError,
    SpeechOptions,
    Transcript,
    speech_timeout_s,
)
from search.decode.speech import transcribe_file as _transcribe_file
from search.errors import BadFileError
from search.models.encoders import ROLE_SPACE, Encoders
from search.models.registry import DEFAULT_SPEECH_MODEL
from search.models.speech import load_speech_model
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
    # Sound and video with speech on: what was said, and whether it was heard in this run
    # (False: the transcript of the same content by the same model was reused).
    transcript: Transcript | None = None
    transcribed: bool = False


# The roles a kind cannot be indexed without; other roles are used when available.
REQUIRED_ROLES = {
    "image": ("image",),
    "audio": ("audio",),
    "video": ("image",),
    "document": ("sentence", "caption"),
}
# Roles a kind uses when their model is here (a video's sound track; OCR text is a setting).
OPTIONAL_ROLES = {
    "image": (),
    "audio": ("sound",),
    "video": ("audio", "frames"),
    "document": (),
}
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
    # Transcribe speech (sound files, videos' sound tracks), with which preset, and its
    # weights' folder when not looked up (--speech-model-path).
    speech: bool | None = None
    speech_model: str | None = None
    speech_model_path: str | None = None


# Catalog meta: the frame rate a library's videos were sampled at, when one was asked for.
FRAME_RATE_META = "video_frame_rate"
# Catalog meta: "1" when the library reads the text in its photos and scans, else "0".
OCR_META = "ocr"
# Catalog meta: the speech preset a library transcribes with, or "off". A library without
# one transcribes with the default preset.
SPEECH_META = "speech_model"
SPEECH_OFF = "off"
# Catalog meta: the folder the library's speech model was loaded from (--speech-model-path),
# so later runs find the same weights without the option ("" when looked up).
SPEECH_PATH_META = "speech_model_path"
# A passage of speech embedded as one text chunk: at most this many words and seconds (about
# two of Whisper's lines), so a hit's moment stays close to the words while the text model
# still gets a sentence or two of context.
SPEECH_CHUNK_WORDS = 24
SPEECH_CHUNK_S = 15.0
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
    old_speech = library_speech_model(catalog)
    speech = chosen_speech_model(catalog, settings)
    speech_path = chosen_speech_path(catalog, settings, speech)
    changes = []
    if speech != old_speech or catalog.get_meta(SPEECH_META) is None:
        catalog.set_meta(SPEECH_META, speech or SPEECH_OFF)
    if speech is not None and speech_path != library_speech_path(catalog):
        catalog.set_meta(SPEECH_PATH_META, speech_path or "")
    if speech is None and old_speech is not None:
        # Files to transcribe are found by their missing transcript; turning speech off
        # processes again the files that have one, which drops it.
        changes.append(SettingChange("Speech transcription turned off", ("audio", "video")))
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
    return SegmentSettings(
        ocr=ocr,
        frame_rate=rate,
        speech=speech is not None,
        speech_model=speech,
        speech_model_path=speech_path,
    ), changes


def chosen_speech_model(catalog: Catalog, settings: SegmentSettings) -> str | None:
    """The speech preset a run with `settings` transcribes with (None: speech off): one
    asked for, else the library's own."""
    if settings.speech is False:
        return None
    if settings.speech_model:
        return settings.speech_model
    return library_speech_model(catalog) or (DEFAULT_SPEECH_MODEL if settings.speech else None)


def chosen_speech_path(
    catalog: Catalog, settings: SegmentSettings, model: str | None
) -> str | None:
    """The speech weights' folder a run uses: the one given, else the one the library
    remembers for its own speech model (None: looked up as usual)."""
    if settings.speech_model_path:
        return settings.speech_model_path
    if model is not None and model == library_speech_model(catalog):
        return library_speech_path(catalog)
    return None


def library_speech_path(catalog: Catalog) -> str | None:
    return catalog.get_meta(SPEECH_PATH_META) or None


def library_speech_model(catalog: Catalog) -> str | None:
    """The speech preset the library transcribes with (None: speech off)."""
    stored = catalog.get_meta(SPEECH_META)
    if stored is None:
        return DEFAULT_SPEECH_MODEL
    return None if stored == SPEECH_OFF else stored


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
        known_transcript: Callable[[str, str], Transcript | None] | None = None,
    ) -> None:
        """`skip_roles`: roles whose model is unavailable this run (no weights): their
        inputs are not prepared, and the caller has said so to the user.

        Speech is transcribed when `settings.speech` is True (an index run; a query file is
        never transcribed) and the text model that embeds it is here. `known_transcript`
        (fingerprint, speech model) -> a stored transcript of the same content, reused
        instead of transcribing again."""
        self.encoders = encoders
        self.isolation = isolation
        self.settings = settings or SegmentSettings()
        self.skip_roles = skip_roles
        self.known_transcript = known_transcript
        self._speech: SpeechOptions | None = None

    @property
    def hears_speech(self) -> bool:
        return bool(self.settings.speech) and self.wants("sentence")

    def speech_options(self) -> SpeechOptions:
        """How the workers transcribe (the weights are found on first need); the cores
        are shared among the worker processes."""
        if self._speech is None:
            model = load_speech_model(
                self.settings.speech_model or DEFAULT_SPEECH_MODEL,
                self.settings.speech_model_path,
            )
            threads = (os.cpu_count() or 1) // max(1, self.isolation.workers)
            self._speech = model.options(cpu_threads=threads)
        return self._speech

    def wants(self, role: str) -> bool:
        return role not in self.skip_roles

    def __call__(self, found: FoundFile, fingerprint: str) -> Decoded:
        decode = {
            "image": self.image,
            "audio": self.audio,
            "video": self.video,
            "document": self.document,
        }[found.kind]
        decoded = decode(found, fingerprint)
        if found.kind == "audio" and self.encoders.name("sound") and self.wants("sound"):
            return self._with_similarity(decoded)
        return decoded

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
        transcript, fresh = self._transcript(found, fingerprint, clip.duration_s)
        return Decoded(
            found,
            fingerprint,
            [
                *segments,
                *self._speech_segments(transcript),
                Pending(None, None, None, {"audio": POOLED}),
            ],
            duration_s=clip.duration_s,
            info=info,
            transcript=transcript,
            transcribed=fresh,
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
        if self.encoders.name("video") and self.wants("frames"):
            segments += clip_segments(frames, self.encoders.get("video").frames)
            whole["frames"] = POOLED
        if info.has_audio and self.wants("audio"):
            clap = self.encoders.get("clap")
            # At most MAX_AUDIO_SECONDS of sound are decoded: far faster than real time.
            samples = self.isolation.run(video.load_video_audio, found.path, clap.sample_rate)
            sound = self._sound_segments(samples, clap) if samples is not None else []
            segments += sound
            if sound:
                whole["audio"] = POOLED
        transcript, fresh = None, False
        if self.hears_speech:
            if info.has_audio:
                transcript, fresh = self._transcript(found, fingerprint, info.duration_s)
            else:
                transcript = Transcript(self.speech_options().model, (), 0.0, 0.0)
            segments += self._speech_segments(transcript)
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
            transcript=transcript,
            transcribed=fresh,
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

    def _transcript(
        self, found: FoundFile, fingerprint: str, duration_s: float | None
    ) -> tuple[Transcript | None, bool]:
        """(what was said, whether it was transcribed now): a stored transcript of the same
        content by the same model when there is one. A transcription that fails (too slow,
        the worker died) is kept with its reason, which `status` lists: the file's sound and
        pictures are indexed all the same, and like a failed file it is tried again when it
        changes or with `index --retry-failed`."""
        if not self.hears_speech:
            return None, False
        options = self.speech_options()
        if self.known_transcript is not None:
            known = self.known_transcript(fingerprint, options.model)
            if known is not None:
                return known, False
        try:
            return transcribe(found.path, found.kind, options, self.isolation, duration_s), True
        except (BadFileError, SpeechModelError) as exc:
            return Transcript(options.model, (), 0.0, 0.0, error=str(exc)), True

    def _speech_segments(self, transcript: Transcript | None) -> list[Pending]:
        """Passages of speech as text chunks with their times: words for the word index,
        and (role "sentence") the library's text model for meaning."""
        if transcript is None:
            return []
        return [
            Pending(start, end, text, {"sentence": text})
            for start, end, text in speech_chunks(transcript.lines)
        ]

    def _with_similarity(self, decoded: Decoded) -> Decoded:
        """A sound file's segments plus the sound-similarity model's windows, and its whole
        file segment pooling them too. That model hears at its own rate (16 kHz against
        CLAP's 48), so the file is decoded again at that rate."""
        model = self.encoders.get("sound")
        clip = self.isolation.run(
            load_audio, decoded.found.path, model.sample_rate, timeout_s=AUDIO_TIMEOUT_S
        )
        similar = [
            Pending(w.start_s, w.end_s, None, {"sound": w.samples})
            for w in audio_windows(clip.samples, model.sample_rate, model.window_s)
        ]
        if not similar:
            return decoded
        *parts, whole = decoded.segments
        whole = replace(whole, inputs={**whole.inputs, "sound": POOLED})
        return replace(decoded, segments=[*parts, *similar, whole])

    def _sound_segments(self, samples, clap) -> list[Pending]:
        return [
            Pending(w.start_s, w.end_s, None, {"audio": w.samples})
            for w in audio_windows(samples, clap.sample_rate, clap.window_s)
        ]


def transcribe(
    path: str,
    kind: str,
    options: SpeechOptions,
    isolation: IsolatedDecoder,
    duration_s: float | None = None,
) -> Transcript:
    """What is said in a sound file or a video (`kind` "audio" or "video"), transcribed in
    an isolated worker whose time limit grows with `duration_s` (None: the longest a file
    may be). The indexer calls it per file; `transcript FILE` for a file outside a library."""
    limit = speech_timeout_s(duration_s, options.max_seconds)
    return isolation.run(_transcribe_file, path, kind, options, timeout_s=limit, verb="transcribe")


def speech_chunks(lines: Sequence[SpeechLine]) -> list[tuple[float, float, str]]:
    """Consecutive lines joined into passages of at most SPEECH_CHUNK_WORDS words and
    SPEECH_CHUNK_S seconds (a longer line stays whole), as (start, end, text)."""
    chunks: list[tuple[float, float, str]] = []
    current: list[SpeechLine] = []
    words = 0
    for line in lines:
        n = len(line.text.split())
        if current and (
            words + n > SPEECH_CHUNK_WORDS or line.end_s - current[0].start_s > SPEECH_CHUNK_S
        ):
            chunks.append(_chunk(current))
            current, words = [], 0
        current.append(line)
        words += n
    if current:
        chunks.append(_chunk(current))
    return chunks


def _chunk(lines: list[SpeechLine]) -> tuple[float, float, str]:
    return (lines[0].start_s, lines[-1].end_s, " ".join(line.text for line in lines))


def clip_segments(frames: Sequence, size: int) -> list[Pending]:
    """The sampled frames of a video in clips of `size` in a row, for a video transformer
    (X-CLIP): each clip spans its frames' times; a last, shorter clip repeats its last frame
    (X-CLIP takes exactly `size`)."""
    clips = []
    for start in range(0, len(frames), size):
        group = list(frames[start : start + size])
        group += [group[-1]] * (size - len(group))
        pictures = [np.array(frame.image.convert("RGB")) for frame in group]
        clips.append(Pending(group[0].t_s, group[-1].end_s, None, {"frames": pictures}))
    return clips


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
    if role in ("audio", "sound"):
        return encoder.encode_audio(values)
    if role == "frames":
        return encoder.encode_clips(values)
    return encoder.encode_texts(values)


def _span(segment: Pending) -> float:
    """The seconds a segment stands for (1 for one without a time range)."""
    if segment.start_s is None or segment.end_s is None:
        return 1.0
    return max(segment.end_s - segment.start_s, 1e-3)


def _words_of_name(path: str) -> str:
    """A file name as words: scanned-receipt_2023.pdf -> "scanned receipt 2023"."""
    return " ".join(re.split(r"[\W_]+", PurePath(path).stem)).strip() or PurePath(path).name
