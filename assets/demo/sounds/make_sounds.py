"""Write the demo sound clips in this folder: every one synthesised here, so licence-clean.

    python assets/demo/sounds/make_sounds.py

Each clip is in a different format, so the demo library exercises every decoder: rain
(Ogg Vorbis), birdsong (MP3), a church-like bell (FLAC), speech from espeak-ng (M4A/AAC) and
a 24 s scene of rain with a bell partway through (Ogg Opus), which a search finds as a moment.
Three spoken memos (the MEMOS below: different espeak-ng voices and speeds, each saying
something a search can ask for in other words) give speech transcription real recordings.
Needs numpy, soundfile, ffmpeg and espeak-ng. Output is deterministic for a given toolchain.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).parent
RATE = 22_050


def rain(seconds: float, seed: int = 0) -> np.ndarray:
    """Pink-ish noise (a steady hiss) plus hundreds of short random droplet clicks."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    spectrum = np.fft.rfft(rng.normal(size=n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum /= np.sqrt(np.maximum(freqs, 50.0))
    hiss = np.fft.irfft(spectrum, n)
    hiss *= 0.08 / hiss.std()
    drops = np.zeros(n)
    for _ in range(int(seconds * 60)):
        start = int(rng.integers(0, n - 400))
        decay = np.exp(-np.arange(400) / rng.uniform(20, 80))
        drops[start : start + 400] += rng.uniform(0.05, 0.25) * decay * rng.normal(size=400)
    return (hiss + drops).astype(np.float32)


def birdsong(seconds: float, seed: int = 1) -> np.ndarray:
    """Phrases of quick rising and falling whistles between 2 and 6 kHz."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * RATE))
    t0 = 0.2
    while t0 < seconds - 0.5:
        for _ in range(int(rng.integers(3, 7))):
            dur = rng.uniform(0.05, 0.15)
            t = np.arange(int(dur * RATE)) / RATE
            f0, f1 = rng.uniform(2000, 6000, size=2)
            phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * dur))
            note = 0.3 * np.sin(phase) * np.hanning(len(t))
            start = int(t0 * RATE)
            out[start : start + len(note)] += note[: len(out) - start]
            t0 += dur + rng.uniform(0.02, 0.08)
        t0 += rng.uniform(0.4, 1.2)
    return out.astype(np.float32)


def bell(seconds: float, fundamental: float = 220.0) -> np.ndarray:
    """Inharmonic partials (a bell's hum, prime, tierce, quint, nominal) with long decays."""
    t = np.arange(int(seconds * RATE)) / RATE
    partials = [(0.5, 0.5, 4.0), (1.0, 1.0, 3.0), (1.2, 0.6, 2.5), (1.5, 0.4, 2.0), (2.0, 0.7, 1.5)]
    x = sum(a * np.sin(2 * np.pi * fundamental * r * t) * np.exp(-t / d) for r, a, d in partials)
    return (0.25 * x / np.abs(x).max()).astype(np.float32)


# name -> (espeak-ng voice, words per minute, title, what is said). Different speakers and
# speeds on purpose: a voice memo app records whoever speaks, at their pace.
MEMOS = {
    "memo-tomatoes.opus": (
        "en+f3",
        145,
        "Tomatoes",
        "Note to self: water the tomatoes in the greenhouse every evening while we are away,"
        " and pick the ripe ones on Saturday.",
    ),
    "memo-dentist.mp3": (
        "en-gb-x-rp+m3",
        135,
        "Dentist",
        "Your appointment with the dentist is moved to Thursday at ten in the morning."
        " Please bring your insurance card.",
    ),
    "voicemail-plumber.ogg": (
        "en-gb-scotland",
        175,
        "Plumber",
        "Hello, it's Mike the plumber. I can fix the leaking kitchen tap on Monday afternoon,"
        " if someone is home to let me in.",
    ),
}
MEMO_CODECS = {
    ".opus": ["-c:a", "libopus", "-b:a", "24k"],
    ".mp3": ["-c:a", "libmp3lame", "-b:a", "32k"],
    ".ogg": ["-c:a", "libvorbis", "-q:a", "0"],
}


def speech(text: str, voice: str = "en", wpm: int = 150) -> np.ndarray:
    """espeak-ng saying `text` (mono float32 at RATE, espeak-ng's own rate)."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        command = ["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(wav), text]
        subprocess.run(command, check=True)
        samples, rate = sf.read(wav, dtype="float32")
    assert rate == RATE, rate
    return samples


def encode(samples: np.ndarray, path: Path, codec: list[str], title: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "in.wav"
        sf.write(wav, samples, RATE)
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-bitexact", "-i", str(wav), "-map_metadata", "-1"]
            + ["-metadata", f"title={title}", "-metadata", "artist=Trove demo", *codec]
            + ["-fflags", "+bitexact", "-flags:a", "+bitexact", str(path)],
            check=True,
        )


def main() -> None:
    scene = rain(24, seed=3)
    ring = bell(6)
    start = 14 * RATE
    scene[start : start + len(ring)] += 1.5 * ring
    clips = {
        "rain.ogg": (rain(8), ["-c:a", "libvorbis", "-q:a", "2"], "Rain"),
        "birdsong.mp3": (birdsong(8), ["-c:a", "libmp3lame", "-b:a", "64k"], "Birdsong"),
        "bell.flac": (bell(6), ["-c:a", "flac"], "Bell"),
        "speech.m4a": (
            speech("Welcome to Trove. Search your photos, sounds, videos and documents."),
            ["-c:a", "aac", "-b:a", "48k"],
            "Welcome",
        ),
        "rain-with-bell.opus": (scene, ["-c:a", "libopus", "-b:a", "32k"], "Rain, then a bell"),
    }
    for name, (voice, wpm, title, text) in MEMOS.items():
        clips[name] = (speech(text, voice, wpm), MEMO_CODECS[Path(name).suffix], title)
    for name, (samples, codec, title) in clips.items():
        encode(samples, HERE / name, codec, title)
        print(f"{name}: {len(samples) / RATE:.1f} s, {(HERE / name).stat().st_size // 1024} kB")


if __name__ == "__main__":
    main()
