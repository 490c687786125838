"""Sounds the tests generate: tones, chirps, noise bursts, silence, speech; every format."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

RATE = 44_100
# Containers libsndfile writes itself; the rest go through the ffmpeg command line.
SOUNDFILE_FORMATS = {".wav": {}, ".flac": {}, ".ogg": {"subtype": "VORBIS"}}
FFMPEG_CODECS = {
    ".mp3": ["-c:a", "libmp3lame", "-q:a", "4"],
    ".opus": ["-c:a", "libopus", "-b:a", "64k"],
    ".m4a": ["-c:a", "aac", "-b:a", "96k"],
    ".aac": ["-c:a", "aac", "-b:a", "96k"],
}
ALL_FORMATS = tuple(SOUNDFILE_FORMATS) + tuple(FFMPEG_CODECS)


def tone(freq: float, seconds: float, rate: int = RATE, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def chirp(f0: float, f1: float, seconds: float, rate: int = RATE, amplitude: float = 0.3):
    """A linear sweep from f0 to f1 Hz."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    return (amplitude * np.sin(phase)).astype(np.float32)


def noise_burst(seconds: float, seed: int, rate: int = RATE, amplitude: float = 0.2):
    """White noise with a 10 ms fade in and out, so the burst has no clicks."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, amplitude, int(seconds * rate)).astype(np.float32)
    fade = min(len(x) // 2, int(0.01 * rate))
    ramp = np.linspace(0, 1, fade, dtype=np.float32)
    x[:fade] *= ramp
    x[len(x) - fade :] *= ramp[::-1]
    return x


def silence(seconds: float, rate: int = RATE) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.float32)


def speech(text: str, path: Path, voice: str = "en") -> Path:
    """Synthesised speech from espeak-ng, written as WAV (22.05 kHz mono)."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True)
    return path


def write_audio(
    path: Path, samples: np.ndarray, rate: int = RATE, tags: dict[str, str] | None = None
) -> Path:
    """Write mono or (n, channels) samples in the format the suffix names, with tags."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    tags = tags or {}
    if suffix in SOUNDFILE_FORMATS:
        with sf.SoundFile(
            path,
            "w",
            rate,
            1 if samples.ndim == 1 else samples.shape[1],
            **SOUNDFILE_FORMATS[suffix],
        ) as f:
            for name, value in tags.items():
                setattr(f, name, value)
            f.write(samples)
        return path
    if suffix not in FFMPEG_CODECS:
        raise ValueError(f"no writer for {suffix}")
    source = path.with_name(path.name + ".src.wav")
    sf.write(source, samples, rate)
    metadata = [arg for k, v in tags.items() for arg in ("-metadata", f"{k}={v}")]
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(source), *metadata, *FFMPEG_CODECS[suffix]]
        + [str(path)],
        check=True,
    )
    source.unlink()
    return path


def spoken(text: str, rate: int = RATE, voice: str = "en", words_per_minute: int = 160):
    """Samples of `text` said by espeak-ng, at `rate` (to mix into longer recordings)."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    samples, source_rate = sf.read(io.BytesIO(wav), dtype="float32")
    return soxr.resample(samples, source_rate, rate).astype(np.float32)
