"""Cost per item on this machine of the encoder presets of issue 19, beside the defaults they
stand next to, with the published quality figures that say when to choose each.

    python bench/encoders.py     # writes bench/results/encoders.json (several minutes on 2 cores)

The presets of a kind take turns, one batch each per round (`in_turns`), so a change of
load during the run slows them alike. Pictures: images per second (batches of 8 at the
preset's input size) and one typical text query's time, for clip-vit-b-32 (the default),
mclip-xlmr-b-32 and siglip2-vit-b-16. Sounds: windows per second (batches of 4 full
windows) for clap-htsat-unfused (the default), ast-audioset and wav2vec2-base, and from it
the seconds of compute one minute of audio costs (its windows every 5 s,
search/decode/audio.py). Videos: X-CLIP's clips of 8 frames per second, and from it the
seconds one minute of footage costs at the default 1 frame per second (7.5 clips), beside
frame pooling's (the same frames through clip-vit-b-32, in turns with X-CLIP), which X-CLIP
adds to rather than replaces.

Each preset's real architecture with seeded random weights (speed does not depend on the
values), loaded through Trove's own encoders, fp32, one thread (as bench/presets.py, and for
the same reason: on a shared machine threads stall on each other), medians of 3 with their
spread. `--videos-only` measures the video line again and keeps the rest of the file.

The quality figures are not measured here: they are the published ones, each with its source,
kept in this file as data. docs/models.md renders both from the JSON (bench/figures.py).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULT = ROOT / "bench" / "results" / "encoders.json"
PICTURE_PRESETS = ("clip-vit-b-32", "mclip-xlmr-b-32", "siglip2-vit-b-16")
SOUND_PRESETS = ("clap-htsat-unfused", "ast-audioset", "wav2vec2-base")
IMAGE_BATCH = 8
AUDIO_BATCH = 4
CLIP_BATCH = 2
REPEATS = 3

OPEN_CLIP_RESULTS = "https://github.com/mlfoundations/open_clip/blob/main/docs/openclip_results.csv"
SIGLIP2_PAPER = "https://arxiv.org/abs/2502.14786"
AST_PAPER = "https://arxiv.org/abs/2104.01778"
WAV2VEC2_PAPER = "https://arxiv.org/abs/2006.11477"
XCLIP_PAPER = "https://arxiv.org/abs/2208.02816"
CLAP_PAPER = "https://arxiv.org/abs/2211.06687"
# Published quality, with where it was published. ImageNet: zero-shot top-1 accuracy;
# retrieval: recall@1 (open_clip's table reports the mean of image and text recall@1 for
# Flickr30k and MSCOCO; the SigLIP 2 paper reports COCO text->image and image->text).
PUBLISHED = {
    "clip-vit-b-32": {
        "imagenet_zero_shot": 66.56,
        "retrieval": "Flickr30k 75.4, MSCOCO 47.8 (mean recall@1)",
        "languages": "English",
        "source": OPEN_CLIP_RESULTS,
    },
    "mclip-xlmr-b-32": {
        "imagenet_zero_shot": 62.36,
        "retrieval": "Flickr30k 73.6, MSCOCO 45.7 (mean recall@1)",
        "languages": "about 100 (XLM-RoBERTa's; trained on LAION-5B, half of it not English)",
        "source": OPEN_CLIP_RESULTS,
    },
    "siglip2-vit-b-16": {
        "imagenet_zero_shot": 78.2,
        "retrieval": "COCO text->image 52.1, image->text 68.9 (recall@1)",
        "languages": "multilingual (WebLI, Gemma tokenizer)",
        "source": SIGLIP2_PAPER,
    },
    "clap-htsat-unfused": {
        "task": "text <-> sound (zero-shot ESC-50 and retrieval)",
        "source": CLAP_PAPER,
    },
    "ast-audioset": {
        "task": "sound events: AudioSet 0.459 mAP (single model, ImageNet-pretrained)",
        "source": AST_PAPER,
    },
    "xclip-base-patch32": {
        "task": "video: Kinetics-400 80.4% top-1 (8 frames, fully supervised); zero-shot "
        "HMDB-51 44.6%, UCF-101 72.0% (X-CLIP B/16)",
        "source": XCLIP_PAPER,
    },
    "wav2vec2-base": {
        "task": "speech: self-supervised on LibriSpeech 960 h, the base of wav2vec 2.0 speech "
        "recognition; never trained on sound events",
        "source": WAV2VEC2_PAPER,
    },
}


def in_turns(jobs: dict[str, object]) -> dict[str, dict]:
    """Each job (a callable returning its seconds) run once per round, REPEATS rounds, the
    presets taking turns: a machine whose load changes during the run slows all of them
    alike, so their ratios hold (one after the other, a ratio measured the load)."""
    from bench.common import spread

    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(REPEATS):
        for name, job in jobs.items():
            times[name].append(job())
    return {name: spread(values) for name, values in times.items()}


def picture_encoders(cache: Path) -> dict:
    from bench.common import random_checkpoint
    from search.models import ClipEncoder, get_preset
    from tests.checkpoints import save_random_open_clip_with_text_files

    encoders = {}
    for preset in PICTURE_PRESETS:
        spec = get_preset(preset)
        if spec.text_repo:
            checkpoint = cache / preset / "open_clip_model.safetensors"
            if not checkpoint.exists():
                save_random_open_clip_with_text_files(checkpoint.parent, spec.architecture)
        else:
            checkpoint = Path(random_checkpoint(spec.architecture, str(cache)))
        encoders[preset] = ClipEncoder(spec, checkpoint, "cpu", precision="fp32").load()
    return encoders


def picture_costs(cache: Path) -> dict:
    import torch

    from bench.common import spread, timed
    from bench.model import TYPICAL_QUERIES

    encoders = picture_encoders(cache)
    query = TYPICAL_QUERIES[3]
    batches = {}
    for name, encoder in encoders.items():
        size = encoder.spec.image_size
        batches[name] = torch.randn(IMAGE_BATCH, 3, size, size)
        encoder.encode_image_tensors(batches[name])  # warm-up: allocations, kernel choice
        encoder.encode_texts([query])
    images = in_turns(
        {
            name: (lambda e=e, b=batches[name]: timed(lambda: e.encode_image_tensors(b)))
            for name, e in encoders.items()
        }
    )
    texts = in_turns(
        {name: (lambda e=e: timed(lambda: e.encode_texts([query]))) for name, e in encoders.items()}
    )
    return {
        name: {
            "architecture": encoders[name].spec.architecture,
            "images_per_s": spread(
                [IMAGE_BATCH / images[name][k] for k in ("median", "max", "min")]
            ),
            "text_query_ms": {k: (1000 * v if k != "n" else v) for k, v in texts[name].items()},
        }
        for name in encoders
    }


def sound_costs(cache: Path) -> dict:
    import numpy as np

    from bench.common import spread, timed
    from search.decode.audio import HOP_S
    from search.models import ClapEncoder, get_preset
    from search.models.sound_similarity import SoundEncoder
    from tests.checkpoints import save_random_clap_htsat_unfused, save_random_sound_model

    encoders, clips = {}, {}
    rng = np.random.default_rng(0)
    for preset in SOUND_PRESETS:
        spec = get_preset(preset)
        folder = cache / preset
        if not (folder / "config.json").exists():
            if spec.family == "transformers_clap":
                save_random_clap_htsat_unfused(folder)
            else:
                save_random_sound_model(folder, spec.family)
        cls = ClapEncoder if spec.family == "transformers_clap" else SoundEncoder
        encoders[preset] = cls(spec, folder, "cpu").load()
        clips[preset] = [
            (0.1 * rng.standard_normal(encoders[preset].window_samples)).astype(np.float32)
            for _ in range(AUDIO_BATCH)
        ]
        encoders[preset].encode_audio(clips[preset])  # warm-up
    seconds = in_turns(
        {
            name: (lambda e=e, c=clips[name]: timed(lambda: e.encode_audio(c)))
            for name, e in encoders.items()
        }
    )
    windows_per_minute = 60.0 / HOP_S
    out = {}
    for name, encoder in encoders.items():
        rate = spread([AUDIO_BATCH / seconds[name][k] for k in ("median", "max", "min")])
        out[name] = {
            "window_s": encoder.window_s,
            "sample_rate": encoder.sample_rate,
            "windows_per_s": rate,
            "seconds_per_audio_minute": windows_per_minute / rate["median"],
        }
    return out


def video_cost(cache: Path) -> dict:
    """X-CLIP against frame pooling on the same frames, measured in turns (one X-CLIP clip,
    then its 8 frames through clip-vit-b-32, REPEATS times) so that both see the same load."""
    import numpy as np
    import torch

    from bench.common import random_checkpoint, spread, timed
    from search.decode.video import DEFAULT_FRAME_RATE
    from search.models import ClipEncoder, get_preset
    from search.models.xclip import FRAMES, XClipEncoder
    from tests.checkpoints import save_random_xclip_base

    folder = cache / "xclip-base-patch32"
    if not (folder / "config.json").exists():
        save_random_xclip_base(folder)
    xclip = XClipEncoder(get_preset("xclip-base-patch32"), folder, "cpu").load()
    spec = get_preset(PICTURE_PRESETS[0])
    clip = ClipEncoder(
        spec, random_checkpoint(spec.architecture, str(cache)), "cpu", precision="fp32"
    ).load()
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (224, 398, 3), dtype=np.uint8) for _ in range(FRAMES)]
    from PIL import Image

    tensors = torch.stack([clip.preprocess(Image.fromarray(f)) for f in frames])
    xclip.encode_clips([frames])  # warm-up
    clip.encode_image_tensors(tensors)
    xclip_s, pooling_s = [], []
    for _ in range(REPEATS):
        xclip_s.append(timed(lambda: xclip.encode_clips([frames])))
        pooling_s.append(timed(lambda: clip.encode_image_tensors(tensors)))
    clips_per_minute = 60.0 * DEFAULT_FRAME_RATE / FRAMES
    xclip_minute = clips_per_minute * float(np.median(xclip_s))
    pooling_minute = clips_per_minute * float(np.median(pooling_s))
    return {
        "frames_per_clip": FRAMES,
        "frame_rate": DEFAULT_FRAME_RATE,
        "xclip_clips_per_s": spread([1.0 / s for s in xclip_s]),
        "xclip_seconds_per_video_minute": xclip_minute,
        "frame_pooling_seconds_per_video_minute": pooling_minute,
    }


def main() -> int:
    import torch

    from bench.common import machine

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / ".cache")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--videos-only",
        action="store_true",
        help="measure X-CLIP against frame pooling again, keeping the other figures of --out",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    if args.videos_only:
        result = json.loads(args.out.read_text())
        result["videos"] = video_cost(args.cache)
        result["videos_date"] = time.strftime("%Y-%m-%d")
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
        return 0
    pictures = picture_costs(args.cache)
    gc.collect()
    for preset, p in pictures.items():
        print(
            f"{preset:<20} {p['images_per_s']['median']:6.2f} images/s  "
            f"text query {p['text_query_ms']['median']:6.1f} ms",
            flush=True,
        )
    sounds = sound_costs(args.cache)
    gc.collect()
    for preset, s in sounds.items():
        print(
            f"{preset:<20} {s['windows_per_s']['median']:6.2f} windows/s  "
            f"{s['seconds_per_audio_minute']:6.1f} s per minute of audio",
            flush=True,
        )
    videos = video_cost(args.cache)
    gc.collect()
    print(
        f"xclip-base-patch32   {videos['xclip_clips_per_s']['median']:6.2f} clips/s  "
        f"{videos['xclip_seconds_per_video_minute']:6.1f} s per minute of video (frame pooling "
        f"{videos['frame_pooling_seconds_per_video_minute']:.1f} s)",
        flush=True,
    )
    result = {
        "image_batch": IMAGE_BATCH,
        "audio_batch": AUDIO_BATCH,
        "repeats": REPEATS,
        "precision": "fp32",
        "threads": torch.get_num_threads(),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "picture_baseline": PICTURE_PRESETS[0],
        "sound_baseline": SOUND_PRESETS[0],
        "pictures": pictures,
        "sounds": sounds,
        "videos": videos,
        "published": PUBLISHED,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
