"""Videos the tests generate with PyAV: scenes that change at known times, an optional tone.

The default timeline is three scenes of four seconds: solid red, a white square moving on
black, then seeded colour noise. Cuts are therefore at 4 s and 8 s, and every colour
histogram changes sharply there, so a scene detector has an unambiguous answer to find.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SCENE_CUTS_S = (4.0, 8.0)
TONE_HZ = 440.0

# Audio codec per container: what each muxer accepts and the bundled FFmpeg can encode.
AUDIO_CODEC = {
    ".mp4": "aac",
    ".mov": "aac",
    ".mkv": "aac",
    ".webm": "libopus",
    ".avi": "libmp3lame",
}


def scene_frame(t: float, width: int, height: int, seed: int = 0) -> np.ndarray:
    """The RGB frame shown at time t on the default three-scene timeline."""
    if t < SCENE_CUTS_S[0]:
        frame = np.zeros((height, width, 3), np.uint8)
        frame[..., 0] = 220
        return frame
    if t < SCENE_CUTS_S[1]:
        frame = np.zeros((height, width, 3), np.uint8)
        side = max(8, height // 4)
        progress = (t - SCENE_CUTS_S[0]) / (SCENE_CUTS_S[1] - SCENE_CUTS_S[0])
        x = int(progress * (width - side))
        y = (height - side) // 2
        frame[y : y + side, x : x + side] = 255
        return frame
    # Blocky noise, seeded per frame, so it survives compression as real image content.
    rng = np.random.default_rng(seed * 100_003 + int(round(t * 1000)))
    block = 8
    small = rng.integers(0, 256, (height // block + 1, width // block + 1, 3), dtype=np.uint8)
    return np.repeat(np.repeat(small, block, 0), block, 1)[:height, :width]


def still_frame(t: float, width: int, height: int, seed: int = 0) -> np.ndarray:
    """One unchanging picture (a static shot): every frame identical to the last."""
    rng = np.random.default_rng(seed)
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0, 1, height)[:, None, None]
    return ((top * (1 - ramp) + bottom * ramp) * np.ones((height, width, 3))).astype(np.uint8)


def make_video(
    path: Path,
    *,
    duration_s: float = 12.0,
    size: tuple[int, int] = (160, 120),
    fps: int = 10,
    codec: str = "libx264",
    frame_times: Sequence[float] | None = None,
    tone: tuple[float, float] | None = None,
    sound: np.ndarray | None = None,
    audio_rate: int = 44100,
    audio_bit_rate: int | None = None,
    rotation: int | None = None,
    painter=scene_frame,
    gop: int | None = None,
    options: dict | None = None,
    faststart: bool = False,
    seed: int = 0,
) -> Path:
    """Write a video file; the container follows the suffix.

    `frame_times` gives each frame's presentation time in seconds (variable frame rate);
    otherwise frames are evenly spaced at `fps`. `tone=(start, end)` adds a mono sound track,
    a 440 Hz sine between those seconds and silence elsewhere; without it there is no audio
    stream at all. `sound` gives the mono float32 samples of the track instead (at
    `audio_rate`; `audio_bit_rate` in bits/s, else the encoder's default). `rotation`
    stores a display rotation (counter-clockwise degrees, as phones record): the pixels stay
    as painted, players turn them. `faststart` writes an mp4's index (moov) before its data,
    as web and phone exports do.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    if frame_times is None:
        frame_times = [i / fps for i in range(int(round(duration_s * fps)))]
        time_base = Fraction(1, fps)
    else:
        # A millisecond time base carries any irregular frame timing exactly.
        time_base = Fraction(1, 1000)
    if codec == "libx265":
        options = {"x265-params": "log-level=error", **(options or {})}
    container_options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", container_options=container_options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        if gop is not None:
            stream.codec_context.gop_size = gop
        if options:
            stream.codec_context.options = dict(options)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        audio = None
        audio_codec = AUDIO_CODEC[path.suffix.lower()]
        if tone is not None:
            if audio_codec == "libopus":
                audio_rate = 48000  # Opus encodes at 48 kHz (or its divisors) only
            sound = tone_signal(duration_s, tone, audio_rate)
        if sound is not None:
            audio = container.add_stream(audio_codec, rate=audio_rate)
            audio.layout = "mono"
            if audio_bit_rate is not None:
                audio.bit_rate = audio_bit_rate
        for t in frame_times:
            frame = av.VideoFrame.from_ndarray(painter(t, width, height, seed), format="rgb24")
            frame.pts = int(round(t / time_base))
            frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if audio is not None:
            _write_sound(container, audio, sound, audio_rate)
    return path


def tone_signal(duration_s: float, tone: tuple[float, float], rate: int) -> np.ndarray:
    """Mono float32 samples: a 440 Hz sine at half scale inside `tone`, silence outside."""
    t = np.arange(int(duration_s * rate)) / rate
    signal = 0.5 * np.sin(2 * np.pi * TONE_HZ * t)
    signal[(t < tone[0]) | (t >= tone[1])] = 0.0
    return signal.astype(np.float32)


def _write_sound(container, stream, signal: np.ndarray, rate: int) -> None:
    frame_size = stream.codec_context.frame_size or 1024
    fmt = stream.codec_context.format.name
    for start in range(0, len(signal), frame_size):
        chunk = signal[start : start + frame_size]
        if fmt.startswith("s16"):
            data = (chunk * 32767).astype(np.int16)[None, :]
        elif fmt.startswith("s32"):
            data = (chunk * 2147483647).astype(np.int32)[None, :]
        else:
            data = chunk[None, :]
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def vfr_frame_times() -> list[float]:
    """Irregular frame times over 12 s: 4 fps, then 25 fps, then 1 fps, then jittered."""
    times = [i / 4 for i in range(12)]  # 0 .. 2.75
    times += [3 + i / 25 for i in range(75)]  # 3 .. 5.96
    times += [6.0 + i for i in range(3)]  # 6, 7, 8
    rng = np.random.default_rng(7)
    t = 9.0
    while t < 12.0:
        times.append(round(t, 3))
        t += float(rng.uniform(0.05, 0.6))
    return times


def reference_pts(path: Path) -> list[float]:
    """Every frame's presentation time in seconds, from a plain PyAV decode of the stream."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [float(frame.pts * frame.time_base) for frame in container.decode(stream)]
