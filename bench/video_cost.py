"""What indexing costs per minute of video at the default settings, with real-size models.

    python -m bench.video_cost                 # a generated 60 s 720p H.264 video with sound
    python -m bench.video_cost --seconds 120 --size 1920x1080
    python -m bench.video_cost --out bench/results/video_cost.json   # docs/video.md's figures

The models are the default presets' real architectures (OpenCLIP ViT-B/32 and LAION CLAP
HTSAT-unfused) with seeded random weights: the same arithmetic as the real weights, no
download. The video is generated (moving scenes, a sound track that is never silent, so
every sound window is encoded: the worst case) and indexed by the real indexer; the table
splits the time into decoding + sampling and the rest (encoding, writing).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def run(seconds: float, size: tuple[int, int], fps: int) -> dict:
    from indexers import video
    from indexers.pipeline import Indexer
    from search.bridge import load_or_fit_bridge
    from search.library import Library
    from search.models import load_audio_encoder, load_encoder
    from search.models.encoders import Encoders
    from search.storage.catalog import Root
    from tests.checkpoints import save_random_clap_htsat_unfused, save_random_vit_b32
    from tests.media_video import make_video, scene_frame

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = load_encoder("clip-vit-b-32", save_random_vit_b32(tmp / "clip.safetensors"))
        clap = load_audio_encoder(
            "clap-htsat-unfused", save_random_clap_htsat_unfused(tmp / "clap")
        )
        rate = 48_000
        noise = np.random.default_rng(0).normal(0, 0.1, int(seconds * rate)).astype(np.float32)
        root = tmp / "videos"
        path = make_video(
            root / "clip.mp4",
            duration_s=seconds,
            size=size,
            fps=fps,
            sound=noise,
            audio_rate=rate,
            painter=scene_frame,
        )
        start = time.perf_counter()
        frames = video.sample_frames(str(path), min_side=clip.spec.image_size)
        sound = video.load_video_audio(str(path), clap.sample_rate)
        decode_s = time.perf_counter() - start
        library = Library(tmp / "data")
        # The CLIP <-> CLAP bridge is fitted once per pair of models, not per video: fit it
        # first so it is timed on its own.
        start = time.perf_counter()
        load_or_fit_bridge(library.data_dir / "bridges", clip, clap)
        bridge_s = time.perf_counter() - start
        indexer = Indexer(library, Encoders(clip, clap), progress=False)
        start = time.perf_counter()
        summary = indexer.run([Root(str(root), (), ())])
        index_s = time.perf_counter() - start
        assert summary.indexed == 1, summary.report()
        segments = library.catalog.vector_count(clip.name), library.catalog.vector_count(clap.name)
        library.close()
    minutes = seconds / 60
    return {
        "video": f"{size[0]}x{size[1]} H.264 {fps} fps, {seconds:g} s, with sound",
        "frames_sampled": len(frames),
        "sound_seconds": round(len(sound) / rate, 1) if sound is not None else 0,
        "clip_vectors": segments[0],
        "clap_vectors": segments[1],
        "decode_and_sample_s_per_min": round(decode_s / minutes, 1),
        "index_s_per_min": round(index_s / minutes, 1),
        "realtime_factor": round(seconds / index_s, 1),
        "bridge_fit_s_once_per_model_pair": round(bridge_s, 1),
        "cores": os.cpu_count(),
        "load_average_after": round(os.getloadavg()[0], 1),
        "date": time.strftime("%Y-%m-%d"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--out", type=Path, help="also write the result to this JSON file")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    result = run(args.seconds, (width, height), args.fps)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    for name, value in result.items():
        print(f"{name:<28} {value}")


if __name__ == "__main__":
    main()
