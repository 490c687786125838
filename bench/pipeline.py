"""End-to-end indexing against its honest bound, re-scan speed, and peak memory.

On two cores decoding competes with the encoder for the same cores, so the bound for the
pipeline is 1 / (1/decode_rate + 1/model_rate), both measured here on all cores in the same
process, just before the pipeline runs. Indexing runs in a child process so its peak
resident memory is its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from bench.common import repeat, timed

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "demo"
PHOTO_SIZE = (4000, 3000)
FOLDERS = 5


def make_photo_library(folder: Path, count: int) -> list[Path]:
    """`count` 12 MP JPEGs made from the demo photographs: upscaled, with sensor-like noise
    and a distinct patch per file (so each has its own content and fingerprint). Real
    textures and ~2 MB per file at quality 90, like phone photos. Cached between runs."""
    done = folder / f".complete-{count}"
    files = [folder / f"set{i % FOLDERS}" / f"IMG_{i:05d}.jpg" for i in range(count)]
    if done.exists():
        return files
    rng = np.random.default_rng(0)
    bases = []
    for path in sorted(ASSETS.glob("*.jpg"))[:6]:
        pixels = np.asarray(Image.open(path).convert("RGB").resize(PHOTO_SIZE, Image.BICUBIC))
        noise = rng.integers(-8, 9, size=pixels.shape, dtype=np.int16)
        bases.append((pixels.astype(np.int16) + noise).clip(0, 255).astype(np.uint8))
    for i, path in enumerate(files):
        pixels = bases[i % len(bases)].copy()
        y, x = rng.integers(0, PHOTO_SIZE[1] - 400), rng.integers(0, PHOTO_SIZE[0] - 400)
        pixels[y : y + 400, x : x + 400] = rng.integers(0, 256, 3, dtype=np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path, quality=90)
    done.touch()
    return files


def run(library: Path, checkpoint: str, quick: bool, repeats: int) -> dict:
    count = 100 if quick else 1000
    files = make_photo_library(library / f"photos-{count}", count)
    child = subprocess.run(
        [sys.executable, "-m", "bench.pipeline", str(files[0].parent.parent), checkpoint],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    result = json.loads(child.stdout.strip().splitlines()[-1])
    result["rescan"] = rescan(library, 2_000 if quick else 20_000, repeats)
    return result


def index_in_this_process(photos: Path, checkpoint: str) -> dict:
    """Runs in the child: decode rate, model rate, then the pipeline over each folder."""
    import torch

    from indexers.pipeline import DEFAULT_BATCH_SIZE, Indexer
    from search.library import Library
    from search.models import ClipEncoder, get_preset
    from search.models.encoders import Encoders
    from search.storage.catalog import Root

    encoder = ClipEncoder(get_preset("clip-vit-b-32"), checkpoint, "cpu").load()
    batch_size = DEFAULT_BATCH_SIZE
    workers = os.cpu_count() or 1
    sample = sorted((photos / "set0").glob("*.jpg"))[:64]

    def decode_all():
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda p: _decode(p, encoder), sample))

    decode = repeat(lambda: len(sample) / timed(decode_all), 3)
    batch = torch.randn(batch_size, 3, encoder.spec.image_size, encoder.spec.image_size)
    encoder.encode_image_tensors(batch)
    model = repeat(lambda: batch_size / timed(lambda: encoder.encode_image_tensors(batch)), 5)
    bound = 1 / (1 / decode["median"] + 1 / model["median"])

    rates = []
    for folder in sorted(p for p in photos.iterdir() if p.is_dir()):
        with tempfile.TemporaryDirectory() as data:
            library = Library(data)
            indexer = Indexer(library, Encoders(encoder), progress=False)
            summary = indexer.run([Root(str(folder), (), ())])
            library.close()
        assert not summary.failed, summary.failed
        rates.append(summary.indexed / summary.seconds)
    pipeline = {
        "median": float(np.median(rates)),
        "min": min(rates),
        "max": max(rates),
        "n": len(rates),
    }
    return {
        "photos": sum(1 for _ in photos.rglob("*.jpg")),
        "photo_size": PHOTO_SIZE,
        "precision": encoder.precision,
        "batch_size": batch_size,
        "decode_workers": workers,
        "decode_images_per_s": decode,
        "model_images_per_s": model,
        "bound_images_per_s": bound,
        "pipeline_images_per_s": pipeline,
        "pipeline_over_bound": pipeline["median"] / bound,
        "pipeline_over_model": pipeline["median"] / model["median"],
        "index_peak_rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not getrusage's ru_maxrss: Linux carries
    ru_maxrss across exec, so a child would report its parent's peak at fork time."""
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return kb / 1024


def _decode(path: Path, encoder):
    from search.decode.image import load_image

    image, _, _ = load_image(str(path), min_side=encoder.spec.image_size)
    return encoder.preprocess(image)


def rescan(library: Path, count: int, repeats: int) -> dict:
    """Time an `index` run over `count` unchanged files (catalog filled directly: the
    measured part is the walk, the diff against the catalog and the bookkeeping)."""
    from indexers.pipeline import Indexer
    from search.library import Library
    from search.models import load_encoder
    from search.models.encoders import Encoders, meta_key
    from search.storage.catalog import EncodedItem, EncodedSegment, Root

    folder = library / f"rescan-{count}"
    tiny = Image.new("RGB", (8, 8), "gray")
    if not (folder / ".complete").exists():
        for i in range(count):
            path = folder / f"d{i // 1000:02d}" / f"f{i:05d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            tiny.save(path)
        (folder / ".complete").touch()
    encoder = load_encoder("tiny-clip")
    with tempfile.TemporaryDirectory() as data:
        lib = Library(data)
        lib.catalog.set_meta(meta_key("clip"), encoder.name)
        vectors = np.random.default_rng(0).normal(size=(1, encoder.dim)).astype(np.float32)
        batch = []
        for path in sorted(folder.rglob("*.jpg")):
            st = path.stat()
            batch.append(
                EncodedItem(
                    str(path),
                    "image",
                    st.st_size,
                    st.st_mtime_ns,
                    f"fp{len(batch)}",
                    [EncodedSegment(None, None, None, {encoder.name: vectors[0]})],
                    width=8,
                    height=8,
                )
            )
        lib.catalog.save_encoded(batch)
        indexer = Indexer(lib, Encoders(encoder), progress=False)
        root = [Root(str(folder), (), ())]
        indexer.run(root)  # first pass builds the index file
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            summary = indexer.run(root)
            times.append(time.perf_counter() - start)
            assert summary.unchanged == count and summary.indexed == 0
        lib.close()
    median = float(np.median(times))
    return {
        "files": count,
        "seconds": {"median": median, "min": min(times), "max": max(times), "n": repeats},
        "files_per_s": count / median,
    }


if __name__ == "__main__":
    print(json.dumps(index_in_this_process(Path(sys.argv[1]), sys.argv[2])))
