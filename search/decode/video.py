"""Decoding videos for the encoders: sampled frames (with scene cuts) and the sound track.

Every public function here is a plain top-level function of a path and simple arguments
returning picklable values, so the indexer can run it inside a bounded worker process
(search/decode/isolation.py). The functions also bound themselves: they stop after a fixed
number of demuxed packets, and long videos are decoded keyframes-only.

Decoding uses PyAV (FFmpeg) with frame threading, reading each stream once, in order.
bench/video_decode.py measured it against decord's sequential and batch readers and
against seeking per sample; sequential PyAV was the fastest correct path (figures in the
docs/video.md).

Sampling, in one pass over the stream:
- uniform: one frame every 1/rate seconds (the first frame at or after each target time);
  when that would exceed the uniform budget the interval widens to spread the budget over
  the whole video (a 3-hour film gets a frame every ~36 s, not 10,800 frames);
- scene changes: the detector looks at a tiny thumbnail several times a second and takes
  an extra frame where the colour histogram jumps;
- near-duplicates: a uniform frame that looks like the last kept frame (a static shot, a
  slide) is dropped, and the kept frame's span grows to cover it.
Timestamps are the stream's presentation times (pts), so variable frame rate is exact.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import av
import numpy as np
from PIL import Image

from search.errors import BadFileError
from search.testhooks import pause_point

# One frame per second of footage by default: scenes rarely change faster, and each frame
# costs one image encode.
DEFAULT_FRAME_RATE = 1.0
# Frames kept per video, all kinds together. Three quarters go to uniform sampling (1 frame/s
# covers the first 5 minutes; longer videos widen the interval), one quarter to scene cuts.
MAX_FRAMES_PER_VIDEO = 400
SCENE_FRAME_SHARE = 0.25
# Total-variation distance between 4x4x4 colour histograms of consecutive probes (0: same
# colours, 1: no colour in common) above which a probe is a scene cut. Measured on the test
# and demo videos: cuts 0.56-1.0; within a shot 0.003-0.27 (a darkening sky is the highest).
DEFAULT_SCENE_THRESHOLD = 0.35
# How often the scene detector looks (frames per second of footage): a cut is found within
# 1/SCENE_PROBE_RATE seconds, at a fraction of the cost of probing every frame.
SCENE_PROBE_RATE = 4.0
# A scene frame needs this much footage since the last kept frame, so flashes and fast
# montages cannot spend the whole scene budget in a few seconds.
MIN_SCENE_GAP_S = 1.0
# Mean absolute difference (0-255 levels) between thumbnails under which a frame is a
# near-duplicate of the last kept one. Compression noise on a static shot stays under ~1.5;
# a person talking moves it past 4.
DUPLICATE_MAX_DIFF = 3.0
# The thumbnail the detector and the duplicate test compare: 16:9-ish, cheap to scale to.
THUMB_SIZE = (64, 36)
HIST_BINS = 4
# Frames keep at most this many pixels on their short side when the caller gives no
# min_side, so MAX_FRAMES_PER_VIDEO frames of a 4K video stay within ~500 MB.
MAX_FRAME_SHORT_SIDE = 480
# Decoding every frame costs in proportion to frames x pixels: on two laptop cores about
# 1/3 of real time for 1080p H.264 (bench/video_decode.py). Past this much work (30 s of
# 1080p at 30 fps, 68 s of 720p, 4 min of 360p) "auto" decodes keyframes only: encoders put a
# keyframe at scene cuts and every 1-10 s (phones: about every second), so samples still
# spread over the whole video, at 10-30x less cost. Keyframes decode independently, so
# those that fall before the next sample or scene probe are skipped undecoded.
FULL_DECODE_MAX_PIXELS = 1920 * 1080 * 30 * 30
DECODE_MODES = ("auto", "full", "keyframes")
# Hard stop for endless or absurd streams: demuxing stops after this many video packets
# (about 9 hours at 30 fps) and the frames sampled so far are returned.
MAX_PACKETS = 1_000_000
# Wall-clock bound inside the decode itself, for callers that run it in-process; the
# isolation runner's limit bounds the native calls this loop cannot interrupt.
MAX_DECODE_SECONDS = 300.0
# Sound track: CLAP takes 48 kHz; at most this much audio is decoded (115 MB as float32).
DEFAULT_AUDIO_RATE = 48000
MAX_AUDIO_SECONDS = 600.0
# A stream whose packets end this much before its announced duration is truncated.
TRUNCATION_TOLERANCE_S = 1.0


@dataclass(frozen=True)
class VideoInfo:
    """What a video is. width/height are as displayed (after rotation)."""

    duration_s: float | None
    fps: float | None
    width: int
    height: int
    rotation: int  # counter-clockwise degrees a player turns the stored pixels: 0/90/180/270
    has_audio: bool
    codec: str
    frame_count: int | None
    audio_codec: str | None = None
    audio_sample_rate: int | None = None
    audio_channels: int | None = None


@dataclass(frozen=True)
class Frame:
    """One sampled frame: the image shown from t_s until end_s (the next kept frame)."""

    t_s: float
    end_s: float
    image: Image.Image
    scene_change: bool


def probe_video(path: str) -> VideoInfo:
    """Describe a video without decoding more than its first frame.

    Raises BadFileError when the file is not a video or its first frame does not decode.
    """
    with _open(path) as container:
        stream = _video_stream(container)
        _configure_decoder(stream)
        # Where a test holds a decode the way a hostile file hangs FFmpeg (in a C loop that
        # no signal interrupts): only the worker's time limit ends it.
        pause_point("decode.video")
        first = _first_frame(container, stream)
        rotation = _rotation(first)
        width, height = first.width, first.height
        if rotation in (90, 270):
            width, height = height, width
        audio = container.streams.audio[0] if container.streams.audio else None
        return VideoInfo(
            duration_s=_duration_s(container, stream),
            fps=float(stream.average_rate) if stream.average_rate else None,
            width=width,
            height=height,
            rotation=rotation,
            has_audio=audio is not None,
            codec=stream.codec_context.name,
            frame_count=stream.frames or None,
            audio_codec=audio.codec_context.name if audio is not None else None,
            audio_sample_rate=audio.codec_context.sample_rate if audio is not None else None,
            audio_channels=audio.codec_context.channels if audio is not None else None,
        )


def sample_frames(
    path: str,
    rate: float = DEFAULT_FRAME_RATE,
    max_frames: int = MAX_FRAMES_PER_VIDEO,
    scene_threshold: float | None = DEFAULT_SCENE_THRESHOLD,
    min_side: int | None = None,
    decode: str = "auto",
) -> list[Frame]:
    """Sample a video's frames: uniform at `rate` per second, plus scene cuts, deduplicated.

    `max_frames` bounds the frames returned (uniform and scene together; see
    MAX_FRAMES_PER_VIDEO). `scene_threshold=None` turns the scene detector off. `min_side`
    scales frames down during conversion so their short side is that many pixels (an
    encoder's input size); without it frames keep at most MAX_FRAME_SHORT_SIDE.
    `decode`: "full" decodes every frame (exact grid, scene cuts found within
    1/SCENE_PROBE_RATE s), "keyframes" only keyframes (samples and cuts at keyframes),
    "auto" full up to FULL_DECODE_MAX_PIXELS of work, keyframes beyond.
    Frames come out RGB and upright (rotation metadata applied), in time order.

    Raises BadFileError for files that are not videos, are truncated or fail to decode.
    """
    if rate <= 0:
        raise ValueError(f"frame rate must be positive, got {rate}")
    if max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    if decode not in DECODE_MODES:
        raise ValueError(f"decode must be one of {', '.join(DECODE_MODES)}, got {decode!r}")
    with _open(path) as container:
        stream = _video_stream(container)
        _configure_decoder(stream)
        sampler = _Sampler(
            duration_s=_duration_s(container, stream),
            rate=rate,
            max_frames=max_frames,
            scene_threshold=scene_threshold,
            short_side=min_side or MAX_FRAME_SHORT_SIDE,
        )
        fps = float(stream.average_rate or stream.guessed_rate or 30)
        frame_pixels = (stream.codec_context.width or 1) * (stream.codec_context.height or 1)
        full_decode_frames = FULL_DECODE_MAX_PIXELS / frame_pixels if decode == "auto" else None
        keyframes_only = decode == "keyframes" or (
            decode == "auto" and (sampler.duration_s or 0) * fps > full_decode_frames
        )
        if keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"
        origin = _stream_origin(stream)
        last_packet_s = None
        packets = 0
        started = time.monotonic()
        try:
            for packet in container.demux(stream):
                packets += 1
                if packets > MAX_PACKETS:
                    break
                if packets % 256 == 0 and time.monotonic() - started > MAX_DECODE_SECONDS:
                    raise BadFileError(
                        f"decoding took longer than {MAX_DECODE_SECONDS:.0f} s; the video "
                        "is too long or too slow to decode"
                    )
                if packet.pts is not None:
                    start = float(packet.pts * stream.time_base) - origin
                    end = start + float((packet.duration or 0) * stream.time_base)
                    last_packet_s = end if last_packet_s is None else max(last_packet_s, end)
                # Keyframes decode on their own, so a keyframe that falls before the next
                # target and the next probe is skipped without decoding it.
                if (
                    packet.size
                    and keyframes_only
                    and not (packet.is_keyframe and (packet.pts is None or sampler.wants(start)))
                ):
                    continue
                for frame in packet.decode():
                    sampler.offer(frame, origin, fps)
                # Unknown duration (some mkv/webm): a stream that turns out long switches
                # to keyframes mid-way instead of decoding every frame of it.
                if (
                    full_decode_frames
                    and not keyframes_only
                    and sampler.decoded > full_decode_frames
                ):
                    keyframes_only = True
                    stream.codec_context.skip_frame = "NONKEY"
        except av.FFmpegError as exc:
            raise BadFileError(f"corrupt video data: {_reason(exc)}") from None
        if not sampler.frames:
            raise BadFileError("no video frame could be decoded (corrupt or truncated file)")
        if packets <= MAX_PACKETS:
            _check_complete(sampler.duration_s, last_packet_s)
        return sampler.result(last_packet_s)


def load_video_audio(
    path: str, sample_rate: int = DEFAULT_AUDIO_RATE, max_seconds: float = MAX_AUDIO_SECONDS
) -> np.ndarray | None:
    """The first sound track as mono float32 at `sample_rate`, or None when there is none.

    Channels are averaged; at most `max_seconds` are decoded (the rest of a long film's
    sound is not read). Raises BadFileError when the track is corrupt.
    """
    with _open(path) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        stream.thread_type = "AUTO"
        resampler = av.AudioResampler(format="fltp", rate=sample_rate)
        limit = int(max_seconds * sample_rate)
        chunks: list[np.ndarray] = []
        total = 0
        try:
            for packet in container.demux(stream):
                for frame in packet.decode():
                    for out in resampler.resample(frame):
                        chunks.append(out.to_ndarray().mean(axis=0))
                        total += chunks[-1].shape[0]
                if total >= limit:
                    break
            else:
                for out in resampler.resample(None):
                    chunks.append(out.to_ndarray().mean(axis=0))
        except av.FFmpegError as exc:
            raise BadFileError(f"corrupt sound track: {_reason(exc)}") from None
        if not chunks:
            raise BadFileError("the sound track holds no decodable audio")
        samples = np.concatenate(chunks)[:limit].astype(np.float32, copy=False)
        if len(samples) < limit:
            _check_complete(_duration_s(container, stream), len(samples) / sample_rate)
        return samples


def frame_at(path: str, t_s: float, min_side: int | None = None) -> Image.Image:
    """The frame shown at `t_s` seconds (upright RGB): one seek to the keyframe before it,
    then decoding forward, for the still of a search result's moment."""
    with _open(path) as container:
        stream = _video_stream(container)
        _configure_decoder(stream)
        origin = _stream_origin(stream)
        target = origin + max(0.0, t_s)
        shown = None
        try:
            container.seek(int(target / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.pts is not None and float(frame.pts * stream.time_base) > target + 1e-3:
                    shown = shown or frame
                    break
                shown = frame
        except av.FFmpegError as exc:
            raise BadFileError(f"corrupt video data: {_reason(exc)}") from None
        if shown is None:
            raise BadFileError(f"no frame decodes at {t_s:.1f} s")
        return _upright_image(shown, min_side or MAX_FRAME_SHORT_SIDE)


class _Sampler:
    """Chooses frames as they stream past: uniform targets, scene cuts, duplicate drops."""

    def __init__(self, duration_s, rate, max_frames, scene_threshold, short_side) -> None:
        self.duration_s = duration_s
        self.scene_threshold = scene_threshold
        self.short_side = short_side
        self.scene_budget = int(max_frames * SCENE_FRAME_SHARE) if scene_threshold else 0
        self.uniform_budget = max(1, max_frames - self.scene_budget)
        self.interval = 1.0 / rate
        if duration_s:
            self.interval = max(self.interval, duration_s / self.uniform_budget)
        self.frames: list[tuple[float, Image.Image, bool, np.ndarray]] = []
        self.uniform_kept = 0
        self.scene_kept = 0
        self.next_target = 0.0
        self.next_probe = 0.0
        self.last_hist: np.ndarray | None = None
        self.last_t: float | None = None
        self.decoded = 0

    def probe_step(self) -> float:
        """Seconds between scene probes: 4 per second, but at most 4 per sampling interval
        (a long film's wide interval needs no finer cut detection than that)."""
        return max(1.0 / SCENE_PROBE_RATE, self.interval / 4)

    def wants(self, t: float) -> bool:
        """Whether a frame at time t would be looked at (a target or a probe)."""
        soonest = self.next_target
        if self.scene_threshold is not None:
            soonest = min(soonest, self.next_probe)
        return t >= soonest - 1e-6

    def offer(self, frame: av.VideoFrame, origin: float, fps: float) -> None:
        self.decoded += 1
        if frame.pts is not None:
            t = float(frame.pts * frame.time_base) - origin
        else:
            t = (self.last_t + 1.0 / fps) if self.last_t is not None else 0.0
        self.last_t = t
        is_target = t >= self.next_target - 1e-6
        is_probe = self.scene_threshold is not None and t >= self.next_probe - 1e-6
        if not (is_target or is_probe):
            return
        thumb = frame.reformat(width=THUMB_SIZE[0], height=THUMB_SIZE[1], format="rgb24")
        thumb = thumb.to_ndarray()
        scene_change = False
        if is_probe:
            hist = _colour_histogram(thumb)
            if self.last_hist is not None:
                distance = 0.5 * float(np.abs(hist - self.last_hist).sum())
                scene_change = distance > self.scene_threshold
            self.last_hist = hist
            self.next_probe = _advance(self.next_probe, t, self.probe_step())
        if is_target:
            self.next_target = _advance(self.next_target, t, self.interval)
        take_scene = (
            scene_change
            and self.scene_kept < self.scene_budget
            and (not self.frames or t - self.frames[-1][0] >= MIN_SCENE_GAP_S)
        )
        if take_scene:
            self.scene_kept += 1
        elif is_target:
            if self.frames and _mean_abs_diff(thumb, self.frames[-1][3]) < DUPLICATE_MAX_DIFF:
                return
            self.uniform_kept += 1
        else:
            return
        self.frames.append((t, _upright_image(frame, self.short_side), take_scene, thumb))
        if self.uniform_kept > self.uniform_budget:
            self._thin()

    def _thin(self) -> None:
        """Double the interval and drop every other uniform frame (unknown durations)."""
        self.interval *= 2
        kept, parity = [], 0
        for entry in self.frames:
            if entry[2]:
                kept.append(entry)
                continue
            if parity % 2 == 0:
                kept.append(entry)
            parity += 1
        self.frames = kept
        self.uniform_kept = sum(1 for entry in kept if not entry[2])

    def result(self, last_packet_s: float | None) -> list[Frame]:
        end_of_video = max(
            self.duration_s or 0.0, last_packet_s or 0.0, self.frames[-1][0] if self.frames else 0
        )
        frames = []
        for i, (t, image, scene, _) in enumerate(self.frames):
            end = self.frames[i + 1][0] if i + 1 < len(self.frames) else end_of_video
            frames.append(Frame(t_s=t, end_s=max(end, t), image=image, scene_change=scene))
        return frames


def _advance(target: float, t: float, step: float) -> float:
    """The next target after time t on the grid target + k * step."""
    return target + step * (math.floor((t - target) / step + 1e-9) + 1)


def _colour_histogram(thumb: np.ndarray) -> np.ndarray:
    levels = (thumb // (256 // HIST_BINS)).astype(np.int32)
    index = (levels[..., 0] * HIST_BINS + levels[..., 1]) * HIST_BINS + levels[..., 2]
    counts = np.bincount(index.ravel(), minlength=HIST_BINS**3)
    return counts / counts.sum()


def _mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def _upright_image(frame: av.VideoFrame, short_side: int) -> Image.Image:
    """RGB PIL image scaled in the same sws pass as the colour conversion, then rotated."""
    w, h = frame.width, frame.height
    scale = min(1.0, short_side / min(w, h))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    image = frame.to_image(width=size[0], height=size[1], interpolation="AREA")
    turn = {
        90: Image.Transpose.ROTATE_90,
        180: Image.Transpose.ROTATE_180,
        270: Image.Transpose.ROTATE_270,
    }.get(_rotation(frame))
    return image.transpose(turn) if turn is not None else image


def _rotation(frame: av.VideoFrame) -> int:
    """The display rotation as counter-clockwise degrees, snapped to 0/90/180/270."""
    try:
        degrees = frame.rotation
    except (AttributeError, ValueError):
        return 0
    return int(round((degrees or 0) / 90.0)) % 4 * 90


def _open(path: str):
    try:
        return av.open(str(path), metadata_errors="ignore")
    except FileNotFoundError:
        raise
    except av.FFmpegError as exc:
        raise BadFileError(
            f"not a readable video (damaged, truncated or not a video): {_reason(exc)}"
        ) from None


def _video_stream(container):
    if not container.streams.video:
        raise BadFileError("the file holds no video stream")
    return container.streams.video[0]


def _configure_decoder(stream) -> None:
    # Frame + slice threading: measured fastest (bench/video_decode.py).
    stream.thread_type = "AUTO"


def _first_frame(container, stream) -> av.VideoFrame:
    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                return frame
    except av.FFmpegError as exc:
        raise BadFileError(f"corrupt video data: {_reason(exc)}") from None
    raise BadFileError("no video frame could be decoded (corrupt or truncated file)")


def _duration_s(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _stream_origin(stream) -> float:
    """Where the stream's clock starts (MPEG-TS and some cameras start far from zero)."""
    if stream.start_time is not None and stream.time_base is not None:
        return float(stream.start_time * stream.time_base)
    return 0.0


def _check_complete(duration_s: float | None, data_end_s: float | None) -> None:
    """A stream that ends well before its announced duration was cut off (a partial copy)."""
    if not duration_s or data_end_s is None:
        return
    if data_end_s < duration_s - max(TRUNCATION_TOLERANCE_S, 0.05 * duration_s):
        raise BadFileError(
            f"truncated video: its data stops at {data_end_s:.1f} s of {duration_s:.1f} s"
        )


def _reason(exc: av.FFmpegError) -> str:
    return (getattr(exc, "strerror", None) or str(exc)).rstrip(".")
