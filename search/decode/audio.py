"""Decoding sound files for the audio encoder: mono at the model's rate, windows, silence.

Decoders: libsndfile (through soundfile) reads WAV, FLAC, Ogg Vorbis/Opus, MP3 and AIFF;
whatever it does not recognise (M4A/AAC, WMA, ...) goes to FFmpeg through PyAV. What
neither decodes is a bad file with the decoder's reason.

Limits, decided before decoding everything:
- At most `MAX_DURATION_S` (2 h) is decoded; a longer recording is indexed for its first
  2 h and `AudioClip.decoded_all` is False. 2 h of 48 kHz mono float32 is 1.4 GB, the most
  one decoding worker should hold.
- A file whose header declares more audio than the file holds (a WAV claiming hours in a
  few kB, a download cut short) is refused as truncated, rather than indexed in part, so the
  user learns the file is damaged.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass, field

import numpy as np

from search.errors import BadFileError
from search.timefmt import clock

MODEL_RATE = 48_000
MAX_DURATION_S = 2 * 3600.0
MAX_SOURCE_RATE = 768_000
MAX_CHANNELS = 64
# Windows match CLAP's 10 s input; a 5 s hop (50% overlap) means any sound up to 5 s long
# lies whole inside at least one window, for twice the encoding work of no overlap.
WINDOW_S = 10.0
HOP_S = 5.0
# RMS of a window, in dB relative to a full-scale square wave (a full-scale sine is -3 dBFS).
# -60 dBFS is below the room tone of a quiet phone recording (about -50) and well above
# digital silence and dither (below -90): windows quieter than this hold nothing to find.
SILENCE_DBFS = -60.0
# A decoder may stop a little short of a header's estimate (MP3 frame estimates, encoder
# padding); a shortfall above this is a truncated file.
TRUNCATION_TOLERANCE_S = 1.0
TRUNCATION_TOLERANCE_FRACTION = 0.05
TAG_NAMES = ("title", "artist", "album")
MAX_TAG_CHARS = 300
READ_BLOCK_S = 30.0


@dataclass
class AudioClip:
    """A decoded file: mono float32 `samples` at `sample_rate` and what the catalog keeps."""

    samples: np.ndarray
    sample_rate: int
    duration_s: float
    source_rate: int
    channels: int
    tags: dict[str, str] = field(default_factory=dict)
    # False when only the first MAX_DURATION_S were decoded.
    decoded_all: bool = True


@dataclass
class AudioWindow:
    start_s: float
    end_s: float
    samples: np.ndarray


@dataclass
class _Decoded:
    mono: np.ndarray
    rate: int
    channels: int
    declared_s: float | None
    tags: dict[str, str]
    decoded_all: bool


def load_audio(
    path: str | os.PathLike, sample_rate: int = MODEL_RATE, max_duration_s: float = MAX_DURATION_S
) -> AudioClip:
    """Decode a sound file to mono float32 at `sample_rate`; BadFileError says why not."""
    path = os.fspath(path)
    if os.path.getsize(path) == 0:
        raise BadFileError("the file is empty (0 bytes)")
    decoded = _decode_with_soundfile(path, max_duration_s)
    if decoded is None:
        decoded = _decode_with_pyav(path, max_duration_s)
    if decoded.mono.size == 0:
        raise BadFileError("no audio samples could be decoded (empty or truncated file)")
    decoded_s = decoded.mono.size / decoded.rate
    if decoded.decoded_all and decoded.declared_s is not None:
        shortfall = decoded.declared_s - decoded_s
        if shortfall > max(TRUNCATION_TOLERANCE_S, TRUNCATION_TOLERANCE_FRACTION * decoded_s):
            raise BadFileError(
                f"truncated: the header declares {_clock(decoded.declared_s)} of audio but only "
                f"{_clock(decoded_s)} could be decoded"
            )
    if not np.isfinite(decoded.mono).all():
        raise BadFileError("corrupt audio: the samples include NaN or infinite values")
    samples = _resample(decoded.mono, decoded.rate, sample_rate)
    return AudioClip(
        samples=samples,
        sample_rate=sample_rate,
        duration_s=samples.size / sample_rate,
        source_rate=decoded.rate,
        channels=decoded.channels,
        tags=decoded.tags,
        decoded_all=decoded.decoded_all,
    )


def audio_windows(
    samples: np.ndarray,
    sample_rate: int,
    window_s: float = WINDOW_S,
    hop_s: float = HOP_S,
    silence_dbfs: float = SILENCE_DBFS,
) -> list[AudioWindow]:
    """Cut mono audio into windows of `window_s` every `hop_s`, dropping silent ones.

    Audio no longer than one window is one window. Otherwise every window is full length:
    they start at 0, hop_s, 2 hop_s, ..., and one last window ends exactly at the end, so
    the tail is covered without a short, mostly padded window. Samples are views, not copies.
    """
    if hop_s <= 0 or hop_s > window_s:
        raise ValueError(f"hop_s must be in (0, window_s]; got {hop_s} for window {window_s}")
    window = int(round(window_s * sample_rate))
    hop = int(round(hop_s * sample_rate))
    total = len(samples)
    if total <= window:
        starts = [0] if total else []
    else:
        starts = list(range(0, total - window, hop)) + [total - window]
    windows = []
    for start in starts:
        chunk = samples[start : start + window]
        if rms_dbfs(chunk) >= silence_dbfs:
            end = start + len(chunk)
            windows.append(AudioWindow(start / sample_rate, end / sample_rate, chunk))
    return windows


def rms_dbfs(samples: np.ndarray) -> float:
    """Root-mean-square level in dBFS; -inf for digital silence."""
    if samples.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20 * math.log10(rms) if rms > 0 else -math.inf


def _decode_with_soundfile(path: str, max_duration_s: float) -> _Decoded | None:
    """libsndfile's decode, or None when it cannot open the file (FFmpeg gets a try)."""
    import soundfile as sf

    try:
        handle = sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError):
        # Its open errors are often misleading ("not a regular file" for a damaged MP3);
        # FFmpeg's verdict on the same bytes is the one reported.
        return None
    with handle:
        fmt, rate, channels = handle.format, handle.samplerate, handle.channels
        _check_stream(rate, channels)
        limit = int(max_duration_s * rate)
        declared = handle.frames / rate if handle.frames > 0 else None
        if fmt == "WAV":
            declared = _riff_declared_seconds(path, handle) or declared
        blocks, read = [], 0
        block = int(READ_BLOCK_S * rate)
        try:
            while read < limit:
                data = handle.read(min(block, limit - read), dtype="float32", always_2d=True)
                if not len(data):
                    break
                blocks.append(data.mean(axis=1, dtype=np.float32))
                read += len(data)
            decoded_all = not handle.read(1, dtype="float32").size
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise BadFileError(
                f"corrupt {fmt} audio after {_clock(read / rate)}: {_sndfile_reason(exc)}"
            ) from None
        tags = {name: getattr(handle, name, "") for name in TAG_NAMES}
    mono = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    return _Decoded(mono, rate, channels, declared, _clean_tags(tags), decoded_all)


def _decode_with_pyav(path: str, max_duration_s: float) -> _Decoded:
    try:
        import av
    except ImportError:
        raise BadFileError(
            "not a format libsndfile reads (WAV, FLAC, Ogg, MP3); decoding it needs PyAV: "
            "pip install av"
        ) from None
    try:
        container = av.open(path)
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise BadFileError(f"not an audio file Trove can decode ({_ffmpeg_reason(exc)})") from None
    with container:
        if not container.streams.audio:
            raise BadFileError("the file holds no audio stream")
        stream = container.streams.audio[0]
        rate, channels = stream.rate or 0, stream.channels
        if not rate:
            # FFmpeg picks a demuxer by the file name when the content matches none.
            raise BadFileError(
                f"not an audio file Trove can decode (FFmpeg finds no {container.format.name} "
                "audio in it)"
            )
        _check_stream(rate, channels)
        declared = None
        if stream.duration and stream.time_base:
            declared = float(stream.duration * stream.time_base)
        elif container.duration:
            declared = container.duration / av.time_base
        tags = {**dict(container.metadata), **dict(stream.metadata)}
        # Planar float keeps every channel as a row whatever the codec's sample format.
        planar = av.AudioResampler(format="fltp")
        limit = int(max_duration_s * rate)
        blocks, read, decoded_all = [], 0, True
        try:
            for frame in container.decode(stream):
                for converted in planar.resample(frame):
                    data = converted.to_ndarray()
                    blocks.append(data.mean(axis=0, dtype=np.float32))
                    read += data.shape[1]
                if read >= limit:
                    decoded_all = False
                    break
        except av.FFmpegError as exc:
            raise BadFileError(
                f"corrupt audio after {_clock(read / rate)} ({_ffmpeg_reason(exc)})"
            ) from None
    mono = np.concatenate(blocks)[:limit] if blocks else np.zeros(0, np.float32)
    lower = {k.lower(): v for k, v in tags.items()}
    return _Decoded(mono, rate, channels, declared, _clean_tags(lower), decoded_all)


def _riff_declared_seconds(path: str, handle) -> float | None:
    """The duration a WAV's data chunk declares (libsndfile quietly clips it to the file).

    None when the header does not say: streaming writers leave the size 0 or 0xFFFFFFFF.
    """
    frame_bytes = _wav_frame_bytes(handle)
    if frame_bytes is None:
        return None
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"data":
                if size in (0, 0xFFFFFFFF):
                    return None
                return size / frame_bytes / handle.samplerate
            f.seek(size + (size & 1), os.SEEK_CUR)


def _wav_frame_bytes(handle) -> int | None:
    widths = {"PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}
    width = widths.get(handle.subtype)
    return width * handle.channels if width else None


def _check_stream(rate: int, channels: int) -> None:
    if not 0 < rate <= MAX_SOURCE_RATE:
        raise BadFileError(f"implausible sample rate {rate} Hz in the header")
    if not 0 < channels <= MAX_CHANNELS:
        raise BadFileError(f"implausible channel count {channels} in the header")


def _resample(mono: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return np.ascontiguousarray(mono, dtype=np.float32)
    import soxr  # librosa's resampler ("soxr_hq"), called directly: importing librosa is slow

    return soxr.resample(mono, rate, target, quality="HQ").astype(np.float32, copy=False)


def _clean_tags(tags: dict[str, str]) -> dict[str, str]:
    out = {}
    for name in TAG_NAMES:
        value = " ".join(str(tags.get(name) or "").split())
        if value:
            out[name] = value[:MAX_TAG_CHARS]
    return out


def _sndfile_reason(exc: Exception) -> str:
    text = str(exc)
    # libsndfile prefixes its message with "Error opening '<path>': "; the path is noise here.
    return text.split("': ", 1)[-1].strip() or type(exc).__name__


def _ffmpeg_reason(exc: Exception) -> str:
    return f"FFmpeg: {getattr(exc, 'strerror', None) or exc}"


def _clock(seconds: float) -> str:
    # Under a minute, where a player's whole seconds would hide how much was lost, a tenth.
    seconds = max(0.0, seconds)
    return f"{seconds:.1f} s" if seconds < 60 else clock(seconds)
