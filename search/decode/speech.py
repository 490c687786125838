"""Speech -> timed text with Whisper (faster-whisper, CTranslate2 on the CPU).

Runs inside the isolated decode workers (search/decode/isolation.py): the file is decoded
there at Whisper's 16 kHz by the same readers as the sound windows (search/decode/audio.py,
the sound track of search/decode/video.py), then transcribed. Each worker keeps the model it
loaded (keyed by folder, compute type and threads), so a run pays for loading once per
worker, not per file.

Non-speech costs little and says nothing: faster-whisper's Silero voice-activity detector
runs first and hands Whisper only the stretches with a voice (music, noise and silence get
no decoding at all). What Whisper still invents over non-speech (the well-known "Thank you
for watching") is dropped by its own confidence signals (`is_hallucination`).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from typing import Any

from search.errors import BadFileError, TroveError

# Whisper hears 16 kHz mono.
SPEECH_RATE = 16_000
# The first two hours of a recording or of a video's sound track are transcribed, the cap of
# search/decode/audio.py's sound files (2 h at 16 kHz is 460 MB of samples in the worker).
MAX_SPEECH_SECONDS = 2 * 3600.0
# The worker's limit for one file: a start-up allowance (loading the model, decoding) plus
# the recording's duration. The int8 tiny.en model runs several times faster than real time
# on one core even with the other core busy (bench/speech.py measures it); a file that takes
# longer than real time is stuck, not slow.
SPEECH_TIMEOUT_BASE_S = 60.0
SPEECH_TIMEOUT_PER_AUDIO_S = 1.0
# Whisper's own thresholds (openai/whisper transcribe.py), applied to what is left after its
# temperature fallback: a segment it was this unsure of, or that repeats itself this much
# (zlib compression ratio), is not speech it heard but text it made up.
NO_SPEECH_THRESHOLD = 0.6
LOGPROB_THRESHOLD = -1.0
COMPRESSION_RATIO_THRESHOLD = 2.4
# Below this average log-probability a segment is dropped whatever its no-speech probability.
HOPELESS_LOGPROB = -1.5
# Chosen from bench/speech.py's figures (docs/speech.md): int8 hears as well as float32 and
# runs more audio per CPU second. Greedy decoding: a beam of 5 got more words right on the
# benchmark's speech, but on a memo with one-second pauses it lost a whole sentence.
DEFAULT_COMPUTE_TYPE = "int8"
DEFAULT_BEAM_SIZE = 1


@dataclass(frozen=True)
class SpeechLine:
    """One Whisper segment: seconds from the start of the recording, and the words."""

    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True)
class Transcript:
    """What was said in one file, with the model that heard it.

    `seconds` is the audio transcribed (capped at MAX_SPEECH_SECONDS), `speech_s` what the
    voice detector passed to Whisper, `dropped` the segments filtered as made up, `language`
    the detected language for a multilingual model (None for an English-only one).
    """

    model: str
    lines: tuple[SpeechLine, ...]
    seconds: float
    speech_s: float
    language: str | None = None
    dropped: int = 0
    capped: bool = False
    # Why the file could not be transcribed (its sound is still indexed).
    error: str | None = None

    @property
    def text(self) -> str:
        return " ".join(line.text for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["lines"] = [asdict(line) for line in self.lines]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transcript:
        lines = tuple(SpeechLine(**line) for line in data.get("lines", ()))
        return cls(**{**data, "lines": lines})


@dataclass(frozen=True)
class SpeechOptions:
    """How to transcribe: the preset's name (recorded with each transcript), the folder of
    its CTranslate2 files, and how to run it."""

    model: str
    model_dir: str
    multilingual: bool = False
    compute_type: str = DEFAULT_COMPUTE_TYPE
    beam_size: int = DEFAULT_BEAM_SIZE
    cpu_threads: int = 1
    vad: bool = True
    max_seconds: float = MAX_SPEECH_SECONDS
    # Whisper's own guards off (its skipping of no-speech windows, its temperature fallback):
    # what the model says unguarded, for measuring what `is_hallucination` catches.
    unguarded: bool = False


def speech_timeout_s(duration_s: float | None, max_seconds: float = MAX_SPEECH_SECONDS) -> float:
    """The worker's time limit for transcribing a recording of `duration_s` seconds."""
    heard = min(duration_s if duration_s is not None else max_seconds, max_seconds)
    return SPEECH_TIMEOUT_BASE_S + SPEECH_TIMEOUT_PER_AUDIO_S * heard


def is_hallucination(no_speech_prob: float, avg_logprob: float, compression_ratio: float) -> bool:
    """Whether Whisper made a segment up rather than heard it, by its own signals: it
    thought there was no speech and was unsure of the words (its skip rule), it was hopelessly
    unsure, or the text loops (a high compression ratio: "you you you you")."""
    if compression_ratio > COMPRESSION_RATIO_THRESHOLD:
        return True
    if avg_logprob < HOPELESS_LOGPROB:
        return True
    return no_speech_prob > NO_SPEECH_THRESHOLD and avg_logprob < LOGPROB_THRESHOLD


def transcribe_file(path: str, kind: str, options: SpeechOptions) -> Transcript:
    """Decode the speech of a sound file or a video's sound track and transcribe it. For
    the isolated worker: BadFileError says why a file cannot be heard."""
    if kind == "video":
        from search.decode.video import load_video_audio

        samples = load_video_audio(path, SPEECH_RATE, options.max_seconds)
        if samples is None:
            return Transcript(options.model, (), 0.0, 0.0)
        capped = samples.size >= int(options.max_seconds * SPEECH_RATE)
    else:
        from search.decode.audio import load_audio

        clip = load_audio(path, SPEECH_RATE, options.max_seconds)
        samples, capped = clip.samples, not clip.decoded_all
    return transcribe_samples(samples, options, capped)


def transcribe_samples(samples, options: SpeechOptions, capped: bool = False) -> Transcript:
    """Transcribe 16 kHz mono float32 samples (the first `options.max_seconds`)."""
    samples = samples[: int(options.max_seconds * SPEECH_RATE)]
    seconds = samples.size / SPEECH_RATE
    if samples.size == 0:
        return Transcript(options.model, (), 0.0, 0.0, capped=capped)
    model = _model(options.model_dir, options.compute_type, options.cpu_threads)
    try:
        segments, info = model.transcribe(
            samples,
            language=None if options.multilingual else "en",
            beam_size=options.beam_size,
            vad_filter=options.vad,
            condition_on_previous_text=False,
            # Without word times, a line that follows a stretch the voice detector cut out is
            # dated from the seam of the cut, seconds before it was said (docs/speech.md);
            # with them a line starts at its first word, for a few percent more compute.
            word_timestamps=True,
            **(_UNGUARDED if options.unguarded else {}),
        )
        heard = list(segments)
    except (RuntimeError, ValueError) as exc:
        raise BadFileError(f"speech could not be transcribed ({exc})") from None
    lines, dropped = [], 0
    for segment in heard:
        text = segment.text.strip()
        if not text:
            continue
        if is_hallucination(segment.no_speech_prob, segment.avg_logprob, segment.compression_ratio):
            dropped += 1
            continue
        lines.append(SpeechLine(round(float(segment.start), 3), round(float(segment.end), 3), text))
    speech_s = info.duration_after_vad if options.vad else seconds
    return Transcript(
        options.model,
        tuple(lines),
        round(seconds, 3),
        round(float(speech_s), 3),
        language=info.language if options.multilingual and lines else None,
        dropped=dropped,
        capped=capped,
    )


_UNGUARDED = {
    "no_speech_threshold": None,
    "log_prob_threshold": None,
    "compression_ratio_threshold": None,
    "temperature": 0.0,
}
_models: dict[tuple[str, str, int], Any] = {}
_models_lock = threading.Lock()


def _model(model_dir: str, compute_type: str, cpu_threads: int):
    """The worker's Whisper model for these settings, loaded on first use."""
    key = (os.path.realpath(model_dir), compute_type, cpu_threads)
    with _models_lock:
        if key not in _models:
            from faster_whisper import WhisperModel

            try:
                _models[key] = WhisperModel(
                    key[0], device="cpu", compute_type=compute_type, cpu_threads=cpu_threads
                )
            except (RuntimeError, ValueError, OSError) as exc:
                # Not the file's fault: the caller turns this into the model's message.
                raise SpeechModelError(
                    f"cannot load the speech model in {model_dir}: {exc}"
                ) from None
        return _models[key]


class SpeechModelError(TroveError):
    """The speech model itself cannot be loaded (not a problem of the file)."""


# -- writing a transcript out ------------------------------------------------------------------

TRANSCRIPT_FORMATS = ("txt", "srt", "vtt", "json")


def format_transcript(transcript: Transcript, fmt: str) -> str:
    """A transcript as plain text with times, SubRip or WebVTT subtitles, or JSON."""
    if fmt == "json":
        return json.dumps(transcript.to_dict(), ensure_ascii=False, indent=2)
    if fmt == "srt":
        return "\n".join(
            f"{n}\n{_stamp(line.start_s, ',')} --> {_stamp(line.end_s, ',')}\n{line.text}\n"
            for n, line in enumerate(transcript.lines, 1)
        )
    if fmt == "vtt":
        cues = [
            f"{_stamp(line.start_s, '.')} --> {_stamp(line.end_s, '.')}\n{line.text}\n"
            for line in transcript.lines
        ]
        return "\n".join(["WEBVTT\n", *cues])
    if fmt == "txt":
        return "\n".join(
            f"[{_stamp(line.start_s, '.')[:-4]}] {line.text}" for line in transcript.lines
        )
    raise ValueError(f"unknown transcript format {fmt!r}: one of {', '.join(TRANSCRIPT_FORMATS)}")


def _stamp(seconds: float, decimal: str) -> str:
    """hh:mm:ss,mmm (SubRip) or hh:mm:ss.mmm (WebVTT)."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"
