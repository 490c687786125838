"""Video decoding benchmark: which way of reading frames is fastest for 1 frame/s sampling.

Generates a 1080p H.264 clip (30 fps, a keyframe every 2 s as phones and web uploads use,
moving content so the encoder does real work) and times each way of getting one frame
per second of footage out of it:

- decord sequential: VideoReader.next() over every frame (decord converts each to RGB);
- decord get_batch: one call with the 1 frame/s indices (public benchmarks found it slow);
- decord seek: vr[i] per sampled index (random access);
- PyAV, every frame, default threading / thread_type='AUTO' (frame threads), RGB only for
  the sampled frames;
- PyAV seek per sample (seek to the keyframe before, decode forward);
- PyAV keyframes only (non-key packets never reach the decoder);
- Trove's sample_frames (PyAV AUTO + scene probes at 4/s + dedupe) decoding every frame
  and keyframes only, at 1080p and 720p, with min_side=224 as the CLIP preset asks.

Correctness: every path's sampled frames are compared with PyAV's full decode (mean
absolute difference in 0-255 levels, at 1 frame/s) and the frame timestamps it returns.
Each figure is the median of `--repeats` runs with the min-max spread.

    python bench/video_decode.py            # 20 s clips, 3 repeats (~4 min on 2 cores)
    python bench/video_decode.py --seconds 10 --repeats 1 --clips /tmp/clips

`--out bench/results/video_decode.json` also writes the figures, from which
bench/figures.py renders the tables in docs/video.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import spread  # noqa: E402
from search.decode.video import sample_frames  # noqa: E402
from tests.media_video import make_video  # noqa: E402

FPS = 30
GOP = 60


def moving_scene(t: float, width: int, height: int, seed: int = 0) -> np.ndarray:
    """A drifting colour gradient with a moving disc and light grain: real motion to encode."""
    y, x = np.mgrid[0:height:4, 0:width:4]
    r = (np.sin(x / 97 + t) * 90 + 128).astype(np.uint8)
    g = (np.cos(y / 71 - t * 0.7) * 90 + 128).astype(np.uint8)
    b = ((x + y) / 8 + t * 40).astype(np.uint8)
    cx, cy = (0.5 + 0.4 * np.sin(t)) * width / 4, (0.5 + 0.4 * np.cos(t * 1.3)) * height / 4
    disc = (x / 4 - cx) ** 2 + (y / 4 - cy) ** 2 < (height / 20) ** 2
    small = np.stack([r, g, b], -1)
    small[disc] = 255
    frame = np.repeat(np.repeat(small, 4, 0), 4, 1)[:height, :width]
    grain = np.random.default_rng(int(t * 1000)).integers(0, 3, frame.shape, dtype=np.uint8)
    return frame + grain


def make_clip(path: Path, size: tuple[int, int], seconds: float) -> Path:
    return make_video(
        path,
        duration_s=seconds,
        size=size,
        fps=FPS,
        painter=moving_scene,
        gop=GOP,
        options={"preset": "veryfast", "crf": "23"},
    )


def sample_indices(n_frames: int) -> list[int]:
    return list(range(0, n_frames, FPS))


# Each reader returns (timestamps of the sampled frames, their RGB arrays, frames decoded).


def decord_sequential(path: Path):
    import decord

    vr = decord.VideoReader(str(path))
    wanted = set(sample_indices(len(vr)))
    times, images = [], []
    for i in range(len(vr)):
        frame = vr.next()
        if i in wanted:
            times.append(float(vr.get_frame_timestamp(i)[0]))
            images.append(frame.asnumpy())
    return times, images, len(vr)


def decord_batch(path: Path):
    import decord

    vr = decord.VideoReader(str(path))
    indices = sample_indices(len(vr))
    batch = vr.get_batch(indices).asnumpy()
    times = [float(vr.get_frame_timestamp(i)[0]) for i in indices]
    return times, list(batch), None


def decord_seek(path: Path):
    import decord

    vr = decord.VideoReader(str(path))
    indices = sample_indices(len(vr))
    images = [vr[i].asnumpy() for i in indices]
    return [float(vr.get_frame_timestamp(i)[0]) for i in indices], images, None


def pyav_all(path: Path, thread_type: str | None, keep_keyframes: bool = False):
    """Every frame decoded; RGB for the 1 frame/s samples (and, as a reference, keyframes)."""
    times, images, decoded = [], [], 0
    next_t = 0.0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if thread_type:
            stream.thread_type = thread_type
        for frame in container.decode(stream):
            decoded += 1
            t = float(frame.pts * frame.time_base)
            if t >= next_t - 1e-6 or (keep_keyframes and frame.key_frame):
                times.append(t)
                images.append(frame.to_ndarray(format="rgb24"))
                if t >= next_t - 1e-6:
                    next_t += 1.0
    return times, images, decoded


def pyav_seek(path: Path):
    times, images, decoded = [], [], 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        duration = float(stream.duration * stream.time_base)
        target = 0.0
        while target < duration:
            container.seek(int(target / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                decoded += 1
                t = float(frame.pts * frame.time_base)
                if t >= target - 1e-6:
                    times.append(t)
                    images.append(frame.to_ndarray(format="rgb24"))
                    break
            target += 1.0
    return times, images, decoded


def pyav_keyframes(path: Path):
    times, images, decoded = [], [], 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.skip_frame = "NONKEY"
        for packet in container.demux(stream):
            if packet.size and not packet.is_keyframe:
                continue
            for frame in packet.decode():
                decoded += 1
                times.append(float(frame.pts * frame.time_base))
                images.append(frame.to_ndarray(format="rgb24"))
    return times, images, decoded


def trove(decode: str):
    def run(path: Path):
        frames = sample_frames(str(path), min_side=224, decode=decode)
        return [f.t_s for f in frames], None, None

    return run


def check_against(reference, times, images) -> str:
    """How many sampled frames sit at a reference pts, and their largest pixel difference."""
    if images is None or reference is None:
        return "-"
    by_time = dict(zip(*reference, strict=True))
    diffs = [
        float(np.abs(img.astype(np.int16) - by_time[round(ts, 6)].astype(np.int16)).mean())
        for ts, img in zip(times, images, strict=True)
        if round(ts, 6) in by_time
    ]
    matched = f"{len(diffs)}/{len(images)} at ref pts"
    return f"{matched}, diff {max(diffs):.2f}" if diffs else matched


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clips", help="folder to keep the generated clips in and reuse")
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.clips or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        clips = {}
        for label, size in (("1080p", (1920, 1080)), ("720p", (1280, 720))):
            path = folder / f"{label}-{args.seconds:g}s.mp4"
            clips[label] = path if path.exists() else make_clip(path, size, args.seconds)
        clip = clips["1080p"]
        ref_times, ref_images, _ = pyav_all(clip, "AUTO", keep_keyframes=True)
        reference = ([round(t, 6) for t in ref_times], ref_images)
        cases = [
            ("decord sequential (next)", decord_sequential, clip),
            ("decord get_batch", decord_batch, clip),
            ("decord seek per sample", decord_seek, clip),
            ("PyAV all frames, default threads", lambda p: pyav_all(p, None), clip),
            ("PyAV all frames, thread_type=AUTO", lambda p: pyav_all(p, "AUTO"), clip),
            ("PyAV seek per sample", pyav_seek, clip),
            ("PyAV keyframes only", pyav_keyframes, clip),
            ("Trove sample_frames full, 1080p", trove("full"), clip),
            ("Trove sample_frames keyframes, 1080p", trove("keyframes"), clip),
            ("Trove sample_frames full, 720p", trove("full"), clips["720p"]),
            ("Trove sample_frames keyframes, 720p", trove("keyframes"), clips["720p"]),
        ]
        # Round-robin repeats: a change in machine load hits every path alike.
        load_before = os.getloadavg()[0]
        runs = {name: [] for name, _, _ in cases}
        last = {}
        for round_ in range(args.repeats):
            for name, fn, path in cases:
                start = time.perf_counter()
                last[name] = fn(path)
                runs[name].append(time.perf_counter() - start)
                print(f"  round {round_ + 1} {name}: {runs[name][-1]:.2f} s", file=sys.stderr)
        load_after = os.getloadavg()[0]
        rows = []
        for name, _, path in cases:
            times, images, decoded = last[name]
            t = spread(runs[name])
            rows.append(
                {
                    "path": name,
                    "clip": "1080p" if path == clip else "720p",
                    "s": t,
                    "x_realtime": args.seconds / t["median"],
                    "s_per_min": t["median"] * 60 / args.seconds,
                    "frames_out": len(times),
                    "decoded": decoded,
                    "check": check_against(reference if path == clip else None, times, images),
                }
            )
        size_mb = os.path.getsize(clip) / 1e6
    if args.out:
        result = {
            "seconds": args.seconds,
            "fps": FPS,
            "keyframe_every_s": GOP / FPS,
            "size_mb_1080p": round(size_mb, 1),
            "repeats": args.repeats,
            "cores": os.cpu_count(),
            "pyav": av.__version__,
            "load_average": [round(load_before, 1), round(load_after, 1)],
            "date": time.strftime("%Y-%m-%d"),
            "rows": rows,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"\n{args.seconds:.0f} s H.264 clip, {FPS} fps, keyframe every {GOP // FPS} s "
        f"(1080p: {size_mb:.1f} MB), 1 frame/s wanted; {os.cpu_count()} cores; "
        f"PyAV {av.__version__}; median of {args.repeats} (min-max); load average "
        f"{load_before:.1f} before, {load_after:.1f} after\n"
    )
    header = (
        f"| {'path':38} | {'seconds':>18} | {'x realtime':>10} | {'s per min':>9} "
        f"| {'out':>4} | {'decoded':>7} | check vs PyAV full decode |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for r in rows:
        s = r["s"]
        print(
            f"| {r['path']:38} | {s['median']:6.2f} ({s['min']:.2f}-{s['max']:.2f}) "
            f"| {r['x_realtime']:10.1f} | {r['s_per_min']:9.2f} | {r['frames_out']:4} "
            f"| {r['decoded'] if r['decoded'] is not None else '-':>7} | {r['check']} |"
        )


if __name__ == "__main__":
    main()
