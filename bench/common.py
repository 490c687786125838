"""Shared helpers for the benchmark scripts: repeated timing, machine facts, model setup."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from importlib import metadata

import torch

PACKAGES = ("torch", "open_clip_torch", "faiss-cpu", "numpy", "pillow", "transformers")


def spread(values: Sequence[float]) -> dict:
    """Median and spread (min-max) of repeated measurements."""
    return {
        "median": float(statistics.median(values)),
        "min": float(min(values)),
        "max": float(max(values)),
        "n": len(values),
    }


def repeat(fn: Callable[[], float], times: int) -> dict:
    """Run a measurement several times; report its median and spread."""
    return spread([fn() for _ in range(times)])


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def machine() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    cpu_model = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu_model = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        cpu_model = platform.processor()
    return {
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu": cpu_model,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "python": platform.python_version(),
        "versions": versions,
    }


def random_checkpoint(architecture: str, folder: str) -> str:
    """Seeded random weights for a real architecture, saved as an open_clip checkpoint, so
    the benchmark loads models through Trove's own code path without any download. Speed
    does not depend on the weight values."""
    import open_clip
    from safetensors.torch import save_file

    path = os.path.join(folder, f"{architecture}-random.safetensors")
    if not os.path.exists(path):
        torch.manual_seed(0)
        model = open_clip.create_model(architecture, pretrained=None)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
    return path
