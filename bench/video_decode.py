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

    python bench/video_decode.py            # 20 s clips, 3 repeats (~2 min on 2 cores)
    python bench/video_decode.py --seconds 10 --repeats 1
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import spread  # noqa: E402
from indexers.video import sample_frames  # noqa: E402
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


def measure(name, fn, path, seconds, repeats, reference):
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        times, images, decoded = fn(path)
        runs.append(time.perf_counter() - start)
    t = spread(runs)
    check = "-"
    if images is not None and reference is not None:
        ref_times, ref_images = reference
        by_time = dict(zip(ref_times, ref_images, strict=True))
        diffs = [
            float(np.abs(img.astype(np.int16) - by_time[round(ts, 6)].astype(np.int16)).mean())
            for ts, img in zip(times, images, strict=True)
            if round(ts, 6) in by_time
        ]
        matched = f"{len(diffs)}/{len(images)} at ref pts"
        check = f"{matched}, diff {max(diffs):.2f}" if diffs else f"{matched}"
    return {
        "path": name,
        "s": t,
        "x_realtime": seconds / t["median"],
        "s_per_min": t["median"] * 60 / seconds,
        "frames_out": len(times),
        "decoded": decoded,
        "check": check,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "1080p.mp4", (1920, 1080), args.seconds)
        clip720 = make_clip(Path(tmp) / "720p.mp4", (1280, 720), args.seconds)
        ref_times, ref_images, _ = pyav_all(clip, "AUTO", keep_keyframes=True)
        reference = ([round(t, 6) for t in ref_times], ref_images)
        paths = [
            ("decord sequential (next)", decord_sequential),
            ("decord get_batch", decord_batch),
            ("decord seek per sample", decord_seek),
            ("PyAV all frames, default threads", lambda p: pyav_all(p, None)),
            ("PyAV all frames, thread_type=AUTO", lambda p: pyav_all(p, "AUTO")),
            ("PyAV seek per sample", pyav_seek),
            ("PyAV keyframes only", pyav_keyframes),
            ("Trove sample_frames full, 1080p", trove("full")),
            ("Trove sample_frames keyframes, 1080p", trove("keyframes")),
        ]
        for name, fn in paths:
            rows.append(measure(name, fn, clip, args.seconds, args.repeats, reference))
            print(f"  {name}: {rows[-1]['s']['median']:.2f} s", file=sys.stderr)
        for mode in ("full", "keyframes"):
            name = f"Trove sample_frames {mode}, 720p"
            rows.append(measure(name, trove(mode), clip720, args.seconds, args.repeats, None))
        size_mb = os.path.getsize(clip) / 1e6
    print(
        f"\n{args.seconds:.0f} s H.264 clip, {FPS} fps, keyframe every {GOP // FPS} s "
        f"(1080p: {size_mb:.1f} MB), 1 frame/s wanted; {os.cpu_count()} cores; "
        f"PyAV {av.__version__}; median of {args.repeats} (min-max)\n"
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
