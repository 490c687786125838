#!/usr/bin/env python3
"""Generate the short videos of the Trove demo library.

Writes three small clips into ``assets/demo/videos/``, drawn with numpy and encoded with
PyAV (the FFmpeg bundled in its wheel), with fixed seeds:

- ``bouncing-ball.mp4``: a red ball bouncing on a wooden floor against a pale blue wall,
  with a knock on the sound track at each bounce (H.264 + AAC, 6 s);
- ``sunset-then-night.webm``: an orange sun sinking into the sea under a darkening sky,
  then a cut to a starry night sky with a crescent moon at 5 s (VP9, no sound, 8 s).
- ``grandma-birthday.mp4``: a birthday cake with flickering candles; on the sound track two
  espeak-ng voices: a grandchild asks how grandma met grandpa, and she tells it (H.264 + AAC,
  about 12 s; the words in BIRTHDAY_SPEECH, each line from its start time).

They exercise frame sampling, the scene-cut detector (the cut at 5 s), near-duplicate
dropping (the night sky barely changes), the sound track (the ball's knocks) and speech
transcription (the birthday's voices). Needs espeak-ng for the voices. The
outputs are dedicated to the public domain (CC0), like this script.

Run from the repository root:

    python assets/make_videos.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.media_video import make_video  # noqa: E402

OUT_DIR = Path(__file__).resolve().parent / "demo" / "videos"
SIZE = (320, 240)
FPS = 15
AUDIO_RATE = 44100
BALL_SECONDS = 6.0
SUNSET_SECONDS = 8.0
NIGHT_FROM_S = 5.0
BOUNCE_PERIOD_S = 1.2
# (start s, espeak-ng voice, words per minute, what is said): a grandchild, then grandma.
BIRTHDAY_SPEECH = (
    (1.0, "en-us+m3", 170, "Happy birthday, Grandma! Tell us again how you met Grandpa."),
    (
        5.6,
        "en+f4",
        130,
        "I met your grandfather at a dance in the village hall. He stepped on my toes all night.",
    ),
)
BIRTHDAY_SECONDS = 13.0


def _disc(width: int, height: int, cx: float, cy: float, r: float) -> np.ndarray:
    y, x = np.ogrid[:height, :width]
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def ball_height(t: float) -> float:
    """0 on the floor, 1 at the top of the bounce: a parabola every BOUNCE_PERIOD_S."""
    phase = (t % BOUNCE_PERIOD_S) / BOUNCE_PERIOD_S
    return 4 * phase * (1 - phase)


def bouncing_ball(t: float, width: int, height: int, seed: int = 0) -> np.ndarray:
    frame = np.empty((height, width, 3), np.uint8)
    floor_y = int(height * 0.75)
    frame[:floor_y] = (200, 225, 240)
    rng = np.random.default_rng(seed)
    grain = rng.integers(-12, 12, (height - floor_y, 1, 1))
    frame[floor_y:] = np.clip(np.array([150, 100, 55]) + grain, 0, 255)
    r = height * 0.09
    cx = width * (0.15 + 0.7 * (t / BALL_SECONDS))
    cy = floor_y - r - ball_height(t) * height * 0.5
    frame[_disc(width, height, cx, cy, r)] = (210, 30, 35)
    return frame


def knock_sound(seconds: float, rate: int) -> np.ndarray:
    """A short damped thud (120 Hz with a click) each time the ball lands."""
    out = np.zeros(int(seconds * rate), np.float32)
    tail = np.arange(int(0.15 * rate)) / rate
    knock = np.sin(2 * np.pi * 120 * tail) * np.exp(-tail * 35)
    knock[: int(0.004 * rate)] += np.random.default_rng(1).normal(0, 0.4, int(0.004 * rate))
    for k in range(1, int(seconds / BOUNCE_PERIOD_S) + 1):
        start = int(k * BOUNCE_PERIOD_S * rate)
        piece = knock[: max(0, len(out) - start)]
        out[start : start + len(piece)] += 0.6 * piece
    return np.clip(out, -1, 1).astype(np.float32)


def sunset_then_night(t: float, width: int, height: int, seed: int = 0) -> np.ndarray:
    horizon = int(height * 0.6)
    frame = np.empty((height, width, 3), np.uint8)
    if t < NIGHT_FROM_S:
        dusk = t / NIGHT_FROM_S
        ramp = np.linspace(0, 1, horizon)[:, None]
        top = np.array([70, 90, 170]) * (1 - 0.6 * dusk)
        low = np.array([250, 150, 60]) * (1 - 0.4 * dusk)
        frame[:horizon] = (top * (1 - ramp) + low * ramp)[:, None, :]
        sun_y = horizon - height * 0.1 + dusk * height * 0.18
        frame[_disc(width, height, width / 2, sun_y, height * 0.1)] = (255, 210, 90)
        frame[horizon:] = np.array([30, 60, 110]) * (1 - 0.5 * dusk)
        glitter = np.random.default_rng(seed + int(t * 2)).random((height - horizon, width)) > 0.97
        frame[horizon:][glitter] = (250, 180, 90)
        return frame
    frame[:horizon] = (8, 10, 35)
    stars = np.random.default_rng(seed).random((horizon, width)) > 0.992
    frame[:horizon][stars] = (240, 240, 255)
    moon = _disc(width, height, width * 0.75, height * 0.2, height * 0.08)
    bite = _disc(width, height, width * 0.75 + height * 0.04, height * 0.18, height * 0.07)
    frame[moon & ~bite] = (245, 240, 200)
    frame[horizon:] = (5, 12, 30)
    return frame


def birthday_cake(t: float, width: int, height: int, seed: int = 0) -> np.ndarray:
    """A pink cake with five candles on a wooden table; the flames flicker (seeded per frame)."""
    frame = np.empty((height, width, 3), np.uint8)
    table_y = int(height * 0.7)
    frame[:table_y] = (235, 205, 160)
    frame[table_y:] = (120, 75, 40)
    y, x = np.ogrid[:height, :width]
    left, right = int(width * 0.25), int(width * 0.75)
    top = int(height * 0.45)
    frame[top:table_y, left:right] = (245, 170, 190)
    frame[top : top + 6, left:right] = (255, 250, 245)
    rng = np.random.default_rng(seed * 1000 + int(round(t * 15)))
    for k in range(5):
        cx = left + (right - left) * (k + 1) / 6
        frame[top - 22 : top, int(cx) - 2 : int(cx) + 2] = (90, 140, 230)
        flicker = rng.uniform(-1.5, 1.5)
        flame = ((x - cx - flicker) / 3.5) ** 2 + ((y - (top - 29)) / 7) ** 2 <= 1
        frame[flame] = (255, 200, 60)
    return frame


def espeak(text: str, voice: str, wpm: int) -> tuple[np.ndarray, int]:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        command = ["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(wav), text]
        subprocess.run(command, check=True)
        samples, rate = sf.read(wav, dtype="float32")
    return samples, rate


def birthday_sound() -> tuple[np.ndarray, int]:
    """The voices of BIRTHDAY_SPEECH, each from its start time, over silence."""
    lines = [(start, *espeak(text, voice, wpm)) for start, voice, wpm, text in BIRTHDAY_SPEECH]
    rate = lines[0][2]
    out = np.zeros(int(BIRTHDAY_SECONDS * rate), np.float32)
    for start, samples, line_rate in lines:
        assert line_rate == rate, (line_rate, rate)
        at = int(start * rate)
        assert at + len(samples) <= len(out), "a line runs past the end of the video"
        out[at : at + len(samples)] = samples
    return out, rate


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    crf = {"crf": "30", "preset": "slow"}
    ball = make_video(
        OUT_DIR / "bouncing-ball.mp4",
        duration_s=BALL_SECONDS,
        size=SIZE,
        fps=FPS,
        painter=bouncing_ball,
        sound=knock_sound(BALL_SECONDS, AUDIO_RATE),
        audio_rate=AUDIO_RATE,
        options=crf,
        faststart=True,
    )
    sunset = make_video(
        OUT_DIR / "sunset-then-night.webm",
        duration_s=SUNSET_SECONDS,
        size=SIZE,
        fps=FPS,
        codec="libvpx-vp9",
        painter=sunset_then_night,
        options={"crf": "40", "b": "0"},
    )
    voices, voices_rate = birthday_sound()
    birthday = make_video(
        OUT_DIR / "grandma-birthday.mp4",
        duration_s=BIRTHDAY_SECONDS,
        size=SIZE,
        fps=FPS,
        painter=birthday_cake,
        sound=voices,
        audio_rate=voices_rate,
        audio_bit_rate=24_000,
        options=crf,
        faststart=True,
    )
    for path in (ball, sunset, birthday):
        print(f"{path.relative_to(OUT_DIR.parents[1])}: {path.stat().st_size / 1000:.0f} kB")


if __name__ == "__main__":
    main()
