"""Model-only throughput: each execution path tried for the CLIP image and text towers,
against open_clip's eager fp32 call, and as a fraction of the measured GEMM peak."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.common import repeat, timed
from search.models import ClipEncoder, get_preset

TYPICAL_QUERIES = [
    "a dog",
    "beach at sunset",
    "a red car parked in the snow",
    "two children playing football in a park",
    "birthday cake with candles",
    "the eiffel tower at night",
    "a cup of coffee on a wooden table",
    "mountains reflected in a calm lake at dawn",
]


def gemm_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> dict:
    """GFLOP/s of a plain n x n matrix product on all threads: the ceiling for a model."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    return repeat(lambda: 2 * n**3 / timed(lambda: a @ b) / 1e9, repeats)


def image_flops(model: torch.nn.Module, image_size: int) -> int:
    """FLOPs of one image. The fused attention fast path hides its projections from the
    counter, so it is switched off while counting (ViT-B/32: 8.8 GFLOPs, not 5.9)."""
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            model.encode_image(torch.zeros(1, 3, image_size, image_size, dtype=_dtype(model)))
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return counter.get_total_flops()


def _dtype(model: torch.nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype


def images_per_second(encode, batch: torch.Tensor, repeats: int) -> dict:
    encode(batch)  # warm-up: allocations, oneDNN kernel selection
    return repeat(lambda: len(batch) / timed(lambda: encode(batch)), repeats)


def run(checkpoint: str, batch_size: int, repeats: int, quick: bool) -> dict:
    spec = get_preset("clip-vit-b-32")
    x = torch.randn(batch_size, 3, spec.image_size, spec.image_size)
    peaks = {"fp32": gemm_peak(torch.float32), "bf16": gemm_peak(torch.bfloat16)}
    auto = ClipEncoder(spec, checkpoint, "cpu")
    fp32 = ClipEncoder(spec, checkpoint, "cpu", precision="fp32").load()
    bf16 = ClipEncoder(spec, checkpoint, "cpu", precision="bf16").load()
    reference = fp32._model  # open_clip's own module; its encode_image is the eager baseline
    flops = image_flops(reference, spec.image_size)

    paths: dict[str, dict] = {}

    def eager(batch):
        with torch.inference_mode():
            return reference.encode_image(batch, normalize=True)

    paths["open_clip eager fp32"] = {"precision": "fp32", **_rate(eager, x, repeats)}
    paths["trove fp32"] = {"precision": "fp32", **_rate(fp32.encode_image_tensors, x, repeats)}
    paths["trove bf16 weights"] = {
        "precision": "bf16",
        **_rate(bf16.encode_image_tensors, x, repeats),
    }
    paths["bf16 + channels_last"] = _channels_last(bf16, x, repeats)
    if not quick:
        paths["torch.compile bf16"] = _compiled(bf16, x, repeats)
        paths["onnxruntime fp32"] = _onnxruntime(reference, x, repeats)

    for result in paths.values():
        if "images_per_s" in result:
            peak = peaks[result["precision"]]["median"]
            result["gemm_peak_fraction"] = result["images_per_s"]["median"] * flops / 1e9 / peak
    eager_rate = paths["open_clip eager fp32"]["images_per_s"]["median"]
    chosen = f"trove {auto.precision}" + (" weights" if auto.precision == "bf16" else "")
    text = _text(fp32, bf16 if auto.precision == "bf16" else fp32, reference, repeats)
    return {
        "batch_size": batch_size,
        "gflops_per_image": flops / 1e9,
        "gemm_peak_gflops": peaks,
        "paths": paths,
        "chosen_path": chosen,
        "model_images_per_s": paths[chosen]["images_per_s"]["median"],
        "model_speedup_vs_eager": paths[chosen]["images_per_s"]["median"] / eager_rate,
        "faithfulness_min_cosine_bf16": _faithfulness(fp32, bf16, x),
        **text,
    }


def _rate(encode, x, repeats) -> dict:
    return {"images_per_s": images_per_second(encode, x, repeats)}


def _channels_last(encoder: ClipEncoder, x: torch.Tensor, repeats: int) -> dict:
    model = encoder._model.to(memory_format=torch.channels_last)
    batch = x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        result = _rate(model.encode_image, batch, repeats)
    encoder._model.to(memory_format=torch.contiguous_format)
    return {"precision": "bf16", **result}


def _compiled(encoder: ClipEncoder, x: torch.Tensor, repeats: int) -> dict:
    try:
        compiled = torch.compile(encoder._model.visual)
        batch = x.to(torch.bfloat16)
        start = time.perf_counter()
        with torch.inference_mode():
            compiled(batch)
            compile_s = time.perf_counter() - start
            result = _rate(compiled, batch, repeats)
        return {"precision": "bf16", "compile_s": compile_s, **result}
    except Exception as exc:  # a backend that cannot build here is a result, not a crash
        return {"precision": "bf16", "error": f"{type(exc).__name__}: {str(exc)[:200]}"}


def _onnxruntime(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> dict:
    try:
        import onnxruntime as ort
    except ImportError:
        return {"precision": "fp32", "error": "onnxruntime is not installed"}
    import os
    import tempfile

    try:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "visual.onnx")
            torch.onnx.export(model.visual, (x,), path, input_names=["pixels"], dynamo=False)
            options = ort.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            batch = x.numpy()
            result = _rate(lambda b: session.run(None, {"pixels": b}), batch, repeats)
        return {"precision": "fp32", **result}
    except Exception as exc:
        return {"precision": "fp32", "error": f"{type(exc).__name__}: {str(exc)[:200]}"}


def _faithfulness(fp32: ClipEncoder, fast: ClipEncoder, x: torch.Tensor) -> float:
    a, b = fp32.encode_image_tensors(x), fast.encode_image_tensors(x)
    return float((a * b).sum(axis=1).min())


def _text(fp32: ClipEncoder, chosen: ClipEncoder, reference, repeats: int) -> dict:
    """One typical query at a time, as a search box sends them."""
    tokens = [fp32._tokenizer([q]) for q in TYPICAL_QUERIES]

    def eager_all():
        with torch.inference_mode():
            for t in tokens:
                reference.encode_text(t, normalize=True)

    def run_all(encoder):
        for q in TYPICAL_QUERIES:
            encoder.encode_texts([q])

    n = len(TYPICAL_QUERIES)
    eager_all(), run_all(fp32), run_all(chosen)
    eager = repeat(lambda: timed(eager_all) / n * 1000, repeats)
    trimmed = repeat(lambda: timed(lambda: run_all(fp32)) / n * 1000, repeats)
    fast = repeat(lambda: timed(lambda: run_all(chosen)) / n * 1000, repeats)
    with torch.inference_mode():
        full = np.concatenate([reference.encode_text(t, normalize=True).numpy() for t in tokens])
    same = float(np.abs(fp32.encode_texts(TYPICAL_QUERIES) - full).max())
    return {
        "text_ms_open_clip_eager": eager,
        "text_ms_trimmed_fp32": trimmed,
        "text_ms_chosen": fast,
        "text_trimmed_max_abs_diff": same,
        "text_encode_speedup_identical": eager["median"] / trimmed["median"],
        "text_encode_speedup": eager["median"] / fast["median"],
    }
