"""The measured figures in README.md and docs/*.md, rendered from the benchmarks' JSON results.

    python bench/figures.py            # rewrite every generated block from bench/results/
    python bench/figures.py --check    # list the blocks that differ from their JSON; exit 1

A generated block sits between `<!-- figures: NAME -->` and `<!-- /figures -->`; NAME is one
of BLOCKS, each rendered from one JSON file that one bench script writes. The text between
the markers is never edited by hand: rerun the script that measures, then this one.
tests/unit/test_figures.py runs the check, so a table cannot drift from its result.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# The block markers; NAME is letters, digits and dashes.
BLOCK = re.compile(r"(<!-- figures: ([\w-]+) -->\n)(.*?)(<!-- /figures -->)", re.S)
OPENING = re.compile(r"<!-- figures: ([\w-]+) -->")
# Generated prose is wrapped at the documents' width.
WIDTH = 92


class Block(NamedTuple):
    """One generated block: the JSON it is rendered from, the script writing that JSON, and
    the renderer (JSON -> markdown, ending with a newline)."""

    result: str
    script: str
    render: Callable[[dict], str]


def documents(root: Path = ROOT) -> list[Path]:
    """The markdown files that may hold generated blocks."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


# -- formatting ----------------------------------------------------------------------------


def _spread(d: dict, fmt: str = "{:.1f}") -> str:
    """A repeated measurement: median (min-max)."""
    return f"{fmt.format(d['median'])} ({fmt.format(d['min'])}-{fmt.format(d['max'])})"


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _para(text: str) -> str:
    """A paragraph wrapped like the hand-written ones around it."""
    return textwrap.fill(text, width=WIDTH) + "\n"


def _bold(cells: Iterable[str]) -> list[str]:
    return [f"**{c}**" if c else c for c in cells]


def _alphas(alphas: list[float]) -> str:
    """0.1, 0.2, 0.3 -> "0.1 to 0.3" when they are consecutive tenths, else a list."""
    tenths = [round(a * 10) for a in alphas]
    if len(alphas) > 2 and tenths == list(range(tenths[0], tenths[-1] + 1)):
        return f"{alphas[0]:g} to {alphas[-1]:g}"
    return ", ".join(f"{a:g}" for a in alphas)


# -- performance (bench/run.py -> latest.json) ---------------------------------------------

# The targets the benchmark's keys are held to (the numbers).
PERF_TARGETS = {
    "model_speedup_vs_eager": ">= 1.8",
    "faithfulness_min_cosine_bf16": ">= 0.999",
    "text_encode_speedup": ">= 3",
    "pipeline_over_bound": ">= 0.85",
    "pipeline_over_model": "reported",
    "text_query_p50_ms_100k": "< 30",
    "rescan_20k_s": "< 2",
    "ann_recall_at_10_1m": ">= 0.95",
    "ann_p50_ms_1m": "< 10",
    "index_peak_rss_mb": "< 3000",
}
PATH_NAMES = {
    "open_clip eager fp32": "open_clip eager fp32 (the baseline)",
    "trove fp32": "Trove fp32",
    "trove bf16 weights": "Trove bf16 weights",
    "onnxruntime fp32": "ONNX Runtime fp32",
}


def render_perf(r: dict) -> str:
    m, p, q, a, mach = r["model"], r["pipeline"], r["query"], r["ann"], r["machine"]
    paths = m["paths"]
    chosen = paths[m["chosen_path"]]["images_per_s"]["median"]
    eager = paths["open_clip eager fp32"]["images_per_s"]["median"]
    largest = max(a["ann_sizes"])
    at_largest = [row for row in a["results"] if row["size"] == largest]
    ann = next(row for row in at_largest if row["chosen"])
    exact = next(row for row in at_largest if row["nprobe"] is None)
    probes = f", {ann['nprobe']} probes" if ann["nprobe"] else ""
    rescan, rate = p["rescan"], p["pipeline_images_per_s"]
    megapixels = p["photo_size"][0] * p["photo_size"][1] / 1e6
    rows = [
        (
            "`model_speedup_vs_eager`",
            f"{r['model_speedup_vs_eager']:.2f} ({chosen:.1f} vs {eager:.1f} images/s)",
            "model_speedup_vs_eager",
        ),
        (
            "bf16 faithfulness (min cosine to fp32)",
            f"{m['faithfulness_min_cosine_bf16']:.5f}",
            "faithfulness_min_cosine_bf16",
        ),
        (
            "`text_encode_speedup` (one typical query, vs open_clip's 77-token `encode_text`)",
            f"{r['text_encode_speedup']:.1f} ({m['text_ms_chosen']['median']:.1f} vs "
            f"{m['text_ms_open_clip_eager']['median']:.1f} ms)",
            "text_encode_speedup",
        ),
        (
            "`pipeline_over_bound`",
            f"{r['pipeline_over_bound']:.2f} ({rate['median']:.1f} files/s, "
            f"{rate['min']:.1f}-{rate['max']:.1f}; bound {p['bound_images_per_s']:.1f} from "
            f"decode {p['decode_images_per_s']['median']:.1f}/s and model "
            f"{p['model_images_per_s']['median']:.1f}/s)",
            "pipeline_over_bound",
        ),
        ("`pipeline_over_model`", f"{r['pipeline_over_model']:.2f}", "pipeline_over_model"),
        (
            f"`text_query_p50_ms_100k` (parse + encode + search + catalog, {q['items']:,} "
            f"items, {q['index_type']})",
            f"{q['p50_ms']:.1f} (p95 {q['p95_ms']:.1f})",
            "text_query_p50_ms_100k",
        ),
        (
            f"`rescan_20k_s` ({rescan['files']:,} unchanged files)",
            f"{_spread(rescan['seconds'], '{:.2f}')[:-1]}; "
            f"{round(rescan['files_per_s'], -3):,.0f} files/s)",
            "rescan_20k_s",
        ),
        (
            f"`ann_recall_at_10_1m` ({ann['index']}{probes}, {largest:,} vectors)",
            f"{a['ann_recall_at_10_1m']:.3f} near the data, "
            f"{a['ann_recall_at_10_text_1m']:.3f} text-like queries",
            "ann_recall_at_10_1m",
        ),
        (
            "`ann_p50_ms_1m` (one thread)",
            f"{a['ann_p50_ms_1m']:.1f} (exact search: {exact['p50_ms']['median']:.0f})",
            "ann_p50_ms_1m",
        ),
        (
            f"`index_peak_rss_mb` (clip-vit-b-32, {p['photos']:,} {megapixels:.0f} MP JPEGs)",
            f"{r['index_peak_rss_mb']:.0f}",
            "index_peak_rss_mb",
        ),
    ]
    kind = "quick run (`--quick`: smaller sizes)" if r["quick"] else "full run"
    versions = mach["versions"]
    intro = (
        _para(
            f"Latest {kind} ({r['date'][:10]}, {mach['cores']} cores, {mach['cpu']}, torch's "
            f"CPU kernels {mach['cpu_capability']}, {p['precision']} chosen, torch "
            f"{versions['torch']}, faiss {versions['faiss-cpu']}; `bench/results/latest.json`):"
        )
        + "\n"
    )
    table = _table(("key", "value", "target"), ((k, v, PERF_TARGETS[t]) for k, v, t in rows))
    return intro + table


def render_model_paths(r: dict) -> str:
    m = r["model"]
    peak = m["gemm_peak_gflops"]
    intro = (
        _para(
            f"Model paths tried for the image tower (batch {m['batch_size']}, "
            f"{m['gflops_per_image']:.1f} GFLOP per image; measured GEMM peak "
            f"{peak['fp32']['median']:.0f} GFLOP/s fp32, {peak['bf16']['median']:.0f} bf16 in the "
            "same run; images/s as median (min-max)):"
        )
        + "\n"
    )
    rows = []
    for name, path in m["paths"].items():
        label = PATH_NAMES.get(name, name)
        if "error" in path:
            rows.append([label, f"not run: {path['error']}", ""])
            continue
        rate = _spread(path["images_per_s"])
        if "compile_s" in path:
            rate += f"; first call (compiling) {path['compile_s']:.0f} s"
        row = [label, rate, f"{path['gemm_peak_fraction']:.0%}"]
        if name == m["chosen_path"]:
            row = _bold([f"{label} (chosen on this CPU)", rate, row[2]])
        rows.append(row)
    note = "\n" + _para(
        "The text tower run only up to the longest real token of its batch differs from "
        f"open_clip's 77-token pass by at most {m['text_trimmed_max_abs_diff']:.1e}."
    )
    return intro + _table(("path", "images/s", "of GEMM peak"), rows) + note


# -- hybrid ranking (bench/fusion.py -> fusion.json) ---------------------------------------


def _fusion_rows(r: dict) -> dict[float, dict]:
    return {row["alpha"]: row for row in r["rows"]}


def _figures(row: dict) -> list[str]:
    return [f"{row['ndcg_at_10']:.3f}", f"{row['mrr']:.3f}"]


def _plateau(r: dict) -> str:
    """The sentence saying which blends score best, and where the used alpha sits."""
    rows = _fusion_rows(r)
    blends = [a for a in sorted(rows) if 0 < a < 1]
    best = max(rows[a]["ndcg_at_10"] for a in blends)
    top = [a for a in blends if f"{rows[a]['ndcg_at_10']:.3f}" == f"{best:.3f}"]
    used = r["used_alpha"]
    loo = r["leave_one_out"]
    if used in top[1:-1]:
        where = f"a plateau, and the used {used:g} sits inside it, not on a tuned edge"
    elif used in top:
        where = f"the used {used:g} is at the edge of them"
    else:
        where = f"the used {used:g} is not among them"
    return _para(
        f"Alpha {_alphas(top)} share the best nDCG@10 ({best:.3f}): {where}. Alpha picked by "
        f"leave-one-query-out (on the other {r['queries'] - 1} queries) scores "
        f"{loo['ndcg_at_10']:.3f} nDCG@10 and {loo['mrr']:.3f} MRR on the query left out."
    )


def render_fusion_full(r: dict) -> str:
    rows = _fusion_rows(r)
    used = r["used_alpha"]
    body = [
        ["meaning only (`alpha = 1`: all-MiniLM-L6-v2)", *_figures(rows[1.0])],
        ["words only (`alpha = 0`: FTS5 BM25)", *_figures(rows[0.0])],
    ]
    # Neighbouring alphas with the same figures share a row.
    groups: list[tuple[list[float], list[str]]] = []
    for alpha in sorted(a for a in rows if 0 < a < 1):
        figures = _figures(rows[alpha])
        if groups and groups[-1][1] == figures:
            groups[-1][0].append(alpha)
        else:
            groups.append(([alpha], figures))
    for alphas, figures in groups:
        body.append([f"blend, alpha = {' / '.join(f'{a:g}' for a in alphas)}", *figures])
    body.append(_bold([f"blend, alpha = {used:g} (used)", *_figures(rows[used])]))
    loo = r["leave_one_out"]
    body.append(
        [
            "blend, alpha picked by leave-one-query-out",
            f"{loo['ndcg_at_10']:.3f}",
            f"{loo['mrr']:.3f}",
        ]
    )
    return _table(("method", "nDCG@10", "MRR"), body) + "\n" + _plateau(r)


# -- paraphrases and the evidence table (bench/paraphrase.py -> paraphrase.json) -----------


def render_paraphrase(r: dict) -> str:
    def cells(row: dict) -> list[str]:
        return [*_figures(row), f"{row['first']}/{r['queries']}"]

    notes = {row["alpha"]: row for row in r["notes"]["engine"]}
    mixed = {row["alpha"]: row for row in r["mixed"]["engine"]}
    used = r["used_alpha"]
    alone = r["minilm_alone"]
    body = [["all-MiniLM-L6-v2 alone (asked directly)", *cells(alone), *cells(alone)]]

    def label(alpha: float) -> str:
        if alpha == 1:
            return "engine, meaning only (`alpha = 1`)"
        if alpha == 0:
            return "engine, words only (`alpha = 0`)"
        return f"engine, blend alpha = {alpha:g}"

    for alpha in [1.0, 0.0, *sorted(a for a in notes if 0 < a < 1)]:
        row = [label(alpha), *cells(notes[alpha]), *cells(mixed[alpha])]
        body.append(_bold(row) if alpha == used else row)
    header = ("method", "nDCG@10", "MRR", "first", "mixed: nDCG@10", "MRR", "first")
    kinds = r["mixed"]["first_kind"]
    meaning = r["mixed"]["first_kind_meaning_only"]
    top10 = r["mixed"]["top10_kinds"]

    def spread(counts: dict) -> str:
        return ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items(), key=lambda kv: -kv[1]))

    counts = r["mixed"]["counts"]
    return (
        _table(header, body)
        + "\n"
        + _para(
            f"The mixed library holds the {counts.get('document', 0)} notes and "
            f"{counts.get('image', 0)} photos, {counts.get('audio', 0)} sounds and "
            f"{counts.get('video', 0)} video under the untrained {r['clip_model']} and "
            f"{r['clap_model']}. Asked without a kind filter, the first result of the "
            f"{r['queries']} questions is of kind: {spread(kinds)} (meaning only: "
            f"{spread(meaning)}); the first ten results of every question together: "
            f"{spread(top10)}."
        )
    )


# -- the text model fine-tuned (bench/text_finetune.py -> text_finetune.json) --------------


def render_text_finetune(r: dict) -> str:
    rows = {row["method"]: row for row in r["rows"]}
    base = rows["base"]

    def cells(row: dict) -> list[str]:
        return [
            *_figures(row["domain"]),
            *_figures(row["general"]),
            f"{row['seconds']:.0f} s" if row["seconds"] else "",
        ]

    labels = {
        "base": f"{r['base']} (before)",
        "pairs": "`--pairs` (training questions)",
        "headings": "`--documents`, headings",
        "simcse": "`--documents`, SimCSE",
        "pairs + distillation": f"`--pairs`, `--distill {r['distill']:g}`",
    }
    body = [[labels.get(row["method"], row["method"]), *cells(row)] for row in r["rows"]]
    table = _table(("run", "domain nDCG@10", "MRR", "general nDCG@10", "MRR", "training"), body)
    best_docs = max(
        (rows[m] for m in ("headings", "simcse") if m in rows),
        key=lambda row: row["domain"]["ndcg_at_10"],
    )
    pairs, distilled = rows["pairs"], rows["pairs + distillation"]

    def change(row: dict, part: str) -> str:
        return f"{row[part]['ndcg_at_10'] - base[part]['ndcg_at_10']:+.3f}"

    text = (
        f"{r['pages']} pages, {r['train_questions']} training and {r['held_out_questions']} "
        f"held-out domain questions, {r['general_questions']} general ones; {r['epochs']} "
        f"epochs each. Against the base on the held-out domain questions: pairs "
        f"{change(pairs, 'domain')} nDCG@10, {labels[best_docs['method']]} (the better of the "
        f"two unsupervised methods) {change(best_docs, 'domain')}; the general questions "
        f"move by {change(pairs, 'general')} with pairs and {change(distilled, 'general')} with "
        f"pairs and distillation ({change(distilled, 'domain')} on the domain)."
    )
    return table + "\n" + _para(text)


# -- the CLIP <-> CLAP bridge (bench/bridge.py -> bridge.json) -------------------------------

MAP_NAMES = {"procrustes": "Procrustes", "ridge": "ridge", "random": "random rotation"}


def render_bridge(r: dict) -> str:
    chance = 1 / r["held_out"]
    used = "procrustes"
    rows = []
    for row in r["rows"]:
        source, target = row["direction"].split("_to_")
        name = MAP_NAMES.get(row["map"], row["map"])
        rows.append(
            [
                f"{source.upper()} -> {target.upper()}",
                f"{name} (used)" if row["map"] == used else name,
                f"{row['mean_cosine']:.3f}",
                f"{row['recall_at_1']:.4f}",
            ]
        )
    intro = (
        _para(
            f"{r['clip']} and {r['clap']} ({r['precision']}), {r['captions']:,} captions, "
            f"{r['held_out']} held out:"
        )
        + "\n"
    )
    table = _table(
        ("direction", "map", "held-out mean cosine", f"caption recall@1 (chance {chance:.4f})"),
        rows,
    )
    note = "\n" + _para(
        "The two towers' caption-to-caption similarities correlate at "
        f"{r['similarity_correlation']:.2f}."
    )
    return intro + table + note


# -- video (bench/video_decode.py -> video_decode.json, bench/video_cost.py -> video_cost.json)

VIDEO_PATHS = {
    "decord sequential (next)": "decord sequential (`next()`)",
    "decord get_batch": "decord `get_batch` (1 frame/s indices)",
    "decord seek per sample": "decord seek per sample (`vr[i]`)",
    "PyAV all frames, default threads": "PyAV every frame, default threading",
    "PyAV all frames, thread_type=AUTO": 'PyAV every frame, `thread_type="AUTO"`',
    "Trove sample_frames full, 1080p": "Trove `sample_frames`, every frame, 1080p",
    "Trove sample_frames keyframes, 1080p": "Trove `sample_frames`, keyframes, 1080p",
    "Trove sample_frames full, 720p": "Trove `sample_frames`, every frame, 720p",
    "Trove sample_frames keyframes, 720p": "Trove `sample_frames`, keyframes, 720p",
}


def _decode_intro(r: dict) -> str:
    before, after = r["load_average"]
    return (
        f"a {r['seconds']:g} s 1080p H.264 clip ({r['fps']} fps, a keyframe every "
        f"{r['keyframe_every_s']:g} s, {r['size_mb_1080p']:g} MB); "
        f"round-robin repeats, median (min-max) of {r['repeats']}; {r['cores']} cores, PyAV "
        f"{r['pyav']}, load average {before:g} before and {after:g} after, {r['date']}"
    )


def _decode_ratios(r: dict) -> str:
    """How much cheaper keyframes are than every frame, and what frame threading gives."""
    per_min = {row["path"]: row["s_per_min"] for row in r["rows"]}
    pairs = [
        ("PyAV all frames, thread_type=AUTO", "PyAV keyframes only"),
        ("Trove sample_frames full, 1080p", "Trove sample_frames keyframes, 1080p"),
        ("Trove sample_frames full, 720p", "Trove sample_frames keyframes, 720p"),
    ]
    ratios = [per_min[full] / per_min[key] for full, key in pairs]
    threading = (
        per_min["PyAV all frames, default threads"] / per_min["PyAV all frames, thread_type=AUTO"]
    )
    return _para(
        f"Keyframes only cost {min(ratios):.0f}-{max(ratios):.0f}x less than every frame; frame "
        f'threading (`thread_type="AUTO"`) made the full decode {threading:.2f}x as fast as '
        "default threading in this run."
    )


def render_video_decode_full(r: dict) -> str:
    rows = []
    for row in r["rows"]:
        if row["decoded"] is not None:
            decoded = str(row["decoded"])
        else:
            decoded = "(seeks)" if row["path"].startswith("decord") else "(not counted)"
        rows.append(
            [
                VIDEO_PATHS.get(row["path"], row["path"]),
                _spread(row["s"], "{:.2f}"),
                f"{row['s_per_min']:.1f}",
                decoded,
                "not checked" if row["check"] == "-" else row["check"],
            ]
        )
    intro = _para(f"Ways of getting one frame per second out of {_decode_intro(r)}:")
    table = _table(
        (
            "path",
            f"seconds for {r['seconds']:g} s",
            "s per minute of video",
            "frames decoded",
            "frames vs a plain PyAV decode",
        ),
        rows,
    )
    return intro + "\n" + table + "\n" + _decode_ratios(r)


def render_video_cost(r: dict) -> str:
    per_min = r["index_s_per_min"]
    return _para(
        f"**{per_min:.0f} s per minute of video** ({r['realtime_factor']:g}x real time) for "
        f"{r['video']}, on the {r['cores']}-core development machine (load average "
        f"{r['load_average_after']:g} at the end; {r['date']}), of which "
        f"{r['decode_and_sample_s_per_min']:.0f} s decoding and sampling ({r['frames_sampled']} "
        f"frames sampled; {r['clip_vectors']} CLIP and {r['clap_vectors']} CLAP vectors "
        "written). Fitting the CLIP <-> CLAP bridge, once per pair of models (it embeds the "
        f"3,000 captions with both real text towers), took "
        f"{r['bridge_fit_s_once_per_model_pair']:.0f} s."
    )


# -- fine-tuning (bench/finetune.py -> finetune.json) -----------------------------------------


def _recalls(figures: dict, direction: str) -> str:
    return " / ".join(f"{100 * figures[f'{direction}_r{k}']:.1f}" for k in (1, 5, 10))


def _finetune_rows(r: dict) -> list[list[str]]:
    rows = [["chance", _recalls(r["chance"], "t2i"), _recalls(r["chance"], "i2t"), ""]]
    rows.append(
        ["before (untrained)", _recalls(r["before"], "t2i"), _recalls(r["before"], "i2t"), ""]
    )
    for row in r["rows"]:
        after = row["after"]
        rows.append(
            [row["run"], _recalls(after, "t2i"), _recalls(after, "i2t"), f"{row['seconds']:.1f} s"]
        )
    return rows


def _finetune_set(r: dict) -> str:
    c = r["counts"]
    return (
        f"{r['pairs']} rendered pictures, seed {r['seed']}; {c['train']} training pairs, "
        f"{c['validation']} validation, {c['held_out_files']} held out "
        f"({c['held_out_captions']} distinct captions); chance recall@1 "
        f"{100 * r['chance']['t2i_r1']:.1f}%; {r['threads']} thread, {r['date']}"
    )


def _distillation(r: dict) -> str:
    default = r["rows"][0]
    (distilled,) = [row for row in r["rows"] if row["config"].get("distill")]
    g, d = default["general"], distilled["general"]
    recall_1 = 100 * (default["after"]["t2i_r1"] - distilled["after"]["t2i_r1"])
    recall_5 = 100 * (default["after"]["t2i_r5"] - distilled["after"]["t2i_r5"])
    return _para(
        f"On the {g['files']:.0f} captioned demo photos used as the general set, the default "
        f"run keeps {100 * g['neighbours_kept']:.0f}% of image neighbours with a mean cosine to "
        f"the base model of {g['image_cosine']:.2f} (images) and {g['text_cosine']:.2f} "
        f"(texts); with `--distill {distilled['config']['distill']:g}` it keeps "
        f"{100 * d['neighbours_kept']:.0f}% and the cosines are {d['image_cosine']:.2f} and "
        f"{d['text_cosine']:.2f}, {_cost(recall_1, recall_5)}."
    )


def _cost(recall_1: float, recall_5: float) -> str:
    """Points of held-out recall@1 and @5 the distilled run gives up against the default."""
    if recall_1 >= 0 and recall_5 >= 0:
        return (
            f"at the cost of {recall_1:.1f} points of held-out text->image recall@1 "
            f"({recall_5:.1f} of recall@5)"
        )
    return (
        f"with held-out text->image recall@1 {-recall_1:+.1f} points against the default "
        f"({-recall_5:+.1f} for recall@5)"
    )


def render_finetune_full(r: dict) -> str:
    intro = _para(f"The figures ({_finetune_set(r)}; `python bench/finetune.py`):")
    table = _table(
        ("run", "text->image R@1/5/10", "image->text R@1/5/10", "time"),
        _finetune_rows(r),
    )
    return intro + "\n" + table + "\n" + _distillation(r)


# -- CLIP presets (bench/presets.py -> presets.json) -----------------------------------------


def render_presets(r: dict) -> str:
    base = r["presets"][r["baseline"]]["images_per_s"]["median"]
    rows = [
        [
            f"`{name}`",
            f"{p['images_per_s']['median'] / base:.2f}x",
            _spread(p["images_per_s"]),
            _spread(p["text_query_ms"]),
        ]
        for name, p in r["presets"].items()
    ]
    mach = r["machine"]
    intro = _para(
        f"Measured here (`python bench/presets.py`, {r['date']}): each preset's real "
        f"architecture with random weights, {r['precision']}, {r['threads']} thread(s) on "
        f"{mach['cores']} cores ({mach['cpu']}), image batches of {r['batch_size']}, median "
        f"(min-max) of {r['repeats']}. Absolute figures move with the machine's load; the "
        "ratios are what to read."
    )
    table = _table(
        (
            "preset",
            f"images/s relative to `{r['baseline']}`",
            "images/s",
            "one text query (ms)",
        ),
        rows,
    )
    return intro + "\n" + table


def render_watch_backends(r: dict) -> str:
    rows = [
        [
            f"{b['backend']}",
            "not said" if b["start_watching_s"] is None else f"{b['start_watching_s']:.2f} s",
            f"{b['idle_cpu_s_per_60s']:.3f} s",
            f"{b['event_delay_ms_median']:.1f} ms",
            "yes" if b["reports_close_after_write"] else "no",
        ]
        for b in r["results"]
    ]
    intro = _para(
        f"Measured here (`python bench/watch_backends.py`, {r['platform']}, {r['cpus']} "
        f"cores): a tree of {r['files']:,} files in {r['folders']} folders, CPU over "
        f"{r['idle_window_s']:.0f} idle seconds scaled to a minute, and the median delay from "
        "a file written to its event."
    )
    table = _table(
        (
            "backend",
            "start watching",
            "idle CPU per minute",
            "event delay",
            "says when a writer closes the file",
        ),
        rows,
    )
    return intro + "\n" + table


# -- Ray and the scale plan (bench/ray_overhead.py -> ray.json) ----------------------------


def render_ray_overhead(r: dict) -> str:
    local, ray = r["local"], r["ray"]
    return _para(
        f"Measured here (`python bench/ray_overhead.py`, {r['machine']['cores']} cores shared "
        f"with other work, {r['date'][:10]}): {r['photos']:,} photos of "
        f"{r['photo_size'][0]}x{r['photo_size'][1]} with {r['model']}. The plain pipeline "
        f"took {local['seconds']:.1f} s ({local['files_per_s']:.1f} files/s). With `--ray` on "
        f"a local instance, starting Ray and probing the machine took {ray['start_s']:.1f} s, "
        f"the run {ray['seconds']:.1f} s, of which {ray['first_result_s']:.1f} s went by "
        f"before the first batch came back (actors start and load the model); then "
        f"{ray['steady_files_per_s']:.1f} files/s from {ray['actors']} actors at "
        f"{ray['cpus_per_actor']:g} CPU each: **{ray['per_worker_files_per_s']:.1f} files/s "
        f"per worker**. Ray's overhead: **{r['overhead_ratio']:.2f}x** the plain run's wall "
        f"time with its start, {r['steady_overhead_ratio']:.2f}x once running (the plain "
        f"pipeline's steady rate over Ray's)."
    )


def render_scale_plan(r: dict) -> str:
    plan = r["plan"]
    gpu = plan["gpu_rate"]
    intro = _para(
        f"Rates: a core decodes {plan['decode_12mp_per_core_per_s']:.1f} 12 MP photos/s "
        f"(bench/pipeline.py) and encodes {plan['encode_per_core_files_per_s']:.1f}/s with "
        f"ViT-B/32 (the Ray worker above, per CPU): {plan['photo_12mp_per_core_per_s']:.1f} "
        f"photos/s per core doing both, {plan['cpu_node_photos_per_s']:.0f}/s for a "
        f"{plan['cpu_node_cores']}-core CPU machine. A GPU encodes ~{gpu['images_per_s']:.0f} "
        f"images/s ({gpu['model']} on an {gpu['gpu']}, published by clip-retrieval), so a GPU "
        f"machine is bound by decoding on its {plan['gpu_node_cores']} cores: "
        f"{plan['gpu_node_photos_per_s']:.0f} photos/s."
    )

    def row(name: str, cell) -> list[str]:
        return [name, *(cell(size) for size in plan["sizes"])]

    rows = [
        row(
            "this machine (2 cores), plain pipeline", lambda s: f"{s['hours_this_machine']:,.0f} h"
        ),
        row(
            f"{plan['cpu_node_cores']}-core CPU machines to finish in 24 h",
            lambda s: f"{s['cpu_nodes_for_24h']}",
        ),
        row("8 GPU machines", lambda s: f"{s['hours_on_8_gpu_nodes']:.1f} h"),
        row("32 GPU machines", lambda s: f"{s['hours_on_32_gpu_nodes']:.2f} h"),
        row("index memory, IVF-Flat", lambda s: f"{s['memory_gb']['ivf_flat']:.1f} GB"),
        row("index memory, IVF-SQ8", lambda s: f"{s['memory_gb']['ivf_sq8']:.1f} GB"),
        row(
            "index memory, IVF-PQ (64-byte codes)", lambda s: f"{s['memory_gb']['ivf_pq64']:.1f} GB"
        ),
        row("vectors in the catalog (float32)", lambda s: f"{s['catalog_vectors_gb']:.0f} GB"),
        row(
            "IVF-SQ8 build, extrapolated (N^1.5)",
            lambda s: f"{s['sq8_build_hours_extrapolated']:.1f} h",
        ),
        row(
            "IVF-SQ8 query p50, extrapolated (N^0.5)",
            lambda s: f"{s['sq8_p50_ms_extrapolated']:.1f} ms",
        ),
    ]
    header = ("one vector of 512 per item", *(f"{s['items'] / 1e6:.0f} M" for s in plan["sizes"]))
    return intro + "\n" + _table(header, rows)


def render_sq8_simulation(r: dict) -> str:
    rows = [
        [
            f"{row['size']:,}",
            row["index"],
            f"{row['build_s']['median']:.1f} s",
            f"{row['bytes_per_vector']['median']:.0f}",
            f"{row['p50_ms']['median']:.2f} ms",
            f"{row['recall_at_10']['median']:.3f}",
            f"{row['recall_at_10_text']['median']:.3f}",
        ]
        for row in r["sq8"]["rows"]
    ]
    header = ("vectors", "index", "build", "bytes/vector", "p50 (1 thread)", "recall@10", "text")
    return _table(header, rows)


# -- issue 19 encoders (bench/encoders.py -> encoders.json) --------------------------------


def _source(url: str) -> str:
    return f"[source]({url})"


def render_encoders(r: dict) -> str:
    pub = r["published"]
    base = r["pictures"][r["picture_baseline"]]["images_per_s"]["median"]
    pictures = _table(
        (
            "preset",
            "ImageNet zero-shot",
            "retrieval",
            "languages",
            "images/s vs default",
            "one text query (ms)",
            "",
        ),
        [
            [
                f"`{name}`",
                f"{pub[name]['imagenet_zero_shot']:.1f}%",
                pub[name]["retrieval"],
                pub[name]["languages"],
                f"{p['images_per_s']['median'] / base:.2f}x",
                _spread(p["text_query_ms"]),
                _source(pub[name]["source"]),
            ]
            for name, p in r["pictures"].items()
        ],
    )
    sound_base = r["sounds"][r["sound_baseline"]]["windows_per_s"]["median"]
    sounds = _table(
        ("preset", "published", "window", "windows/s vs CLAP", "s per minute of audio", ""),
        [
            [
                f"`{name}`",
                pub[name]["task"],
                f"{s['window_s']:g} s at {s['sample_rate'] // 1000} kHz",
                f"{s['windows_per_s']['median'] / sound_base:.2f}x",
                f"{s['seconds_per_audio_minute']:.0f} s",
                _source(pub[name]["source"]),
            ]
            for name, s in r["sounds"].items()
        ],
    )
    v = r["videos"]
    mach = r["machine"]
    intro = _para(
        f"Measured here (`python bench/encoders.py`, {r['date']}): each preset's real "
        f"architecture with random weights, {r['precision']}, {r['threads']} thread on "
        f"{mach['cores']} cores ({mach['cpu']}) shared with other work, median (min-max) of "
        f"{r['repeats']}. Absolute figures move with the machine's load; the ratios are what "
        "to read. Quality figures are the published ones (linked)."
    )
    ratio = v["xclip_seconds_per_video_minute"] / v["frame_pooling_seconds_per_video_minute"]
    video = _para(
        f"Video: X-CLIP (`xclip-base-patch32`, {_source(pub['xclip-base-patch32']['source'])}: "
        f"{pub['xclip-base-patch32']['task']}) encodes "
        f"{v['xclip_clips_per_s']['median']:.2f} clips of {v['frames_per_clip']} frames per "
        f"second: **{v['xclip_seconds_per_video_minute']:.0f} s per minute of video** at "
        f"{v['frame_rate']:g} frame/s, against frame pooling's "
        f"{v['frame_pooling_seconds_per_video_minute']:.0f} s for the same frames through "
        f"`{r['picture_baseline']}` (timed in turns, under the same load): {ratio:.2f}x. "
        f"X-CLIP adds to frame pooling rather than replacing it, so turning it on makes a "
        f"video's picture encoding cost about {1 + ratio:.1f}x."
    )
    return intro + "\n" + pictures + "\n" + sounds + "\n" + video


def render_watch(r: dict) -> str:
    searchable = r["to_searchable_s"]
    return _para(
        f"Measured here (`python bench/watch.py`, {r['date']}, {r['platform']}, {r['cpus']} "
        f"cores, {r['model']}): `python app.py watch` over a library of {r['files']:,} "
        f"indexed photos in {r['folders']} folders used **{r['idle_cpu_s']:.2f} CPU seconds "
        f"in {r['idle_window_s']:.0f} idle seconds** (its start, the first scan of every "
        f"folder included, took {r['watch_ready_s']:.0f} s). A photo copied into a watched "
        f"folder was in the catalog, and so found by every search, after "
        f"**{searchable['median']:.1f} s** (median of {r['samples']}, "
        f"{searchable['min']:.1f}-{searchable['max']:.1f} s): the {r['debounce_s']:.0f} s "
        f"debounce, a scan of the library folder's {r['files']:,} files (every change "
        "rescans its library folder), and the encoding and commit of the photo."
    )


# -- speech transcription (bench/speech.py -> speech.json) -----------------------------------

SPEECH_COMPUTE = {"int8": "int8", "float32": "fp32"}
SPEECH_SCRIPT = "python -m bench.speech --out bench/results/speech.json"


def _speech_machine(r: dict) -> str:
    return (
        f"the {r['cores']}-core development machine, shared (load average "
        f"{r['load_average_before']:g} at the start, {r['load_average_after']:g} at the end; "
        f"{r['date']})"
    )


def render_speech_speed(r: dict) -> str:
    rows = []
    for row in r["speed"]:
        rows.append(
            [
                SPEECH_COMPUTE[row["compute_type"]],
                row["audio"],
                "on" if row["vad"] else "off",
                _spread(row["audio_s_per_cpu_s"], "{:.0f}"),
                _spread(row["audio_s_per_wall_s"], "{:.0f}"),
                f"{row['voice_s']:.0f} s",
                str(row["words_kept"]),
            ]
        )
    intro = _para(
        f"Seconds of sound transcribed per second of compute by whisper-tiny-en (greedy, one "
        f"CPU thread as in each decode worker), {r['speed'][0]['audio_s']:.0f} s of espeak-ng "
        f"speech and of synthesised music, {r['speed'][0]['audio_s_per_cpu_s']['n']} runs each "
        f"(median, min-max), on {_speech_machine(r)}. CPU time is the figure to read: the wall "
        "clock on a busy shared machine mostly measures the neighbours."
    )
    table = _table(
        (
            "weights",
            "sound",
            "voice detection",
            "audio s per CPU s",
            "audio s per wall s",
            "sound Whisper heard",
            "words written",
        ),
        rows,
    )
    return intro + "\n" + table


def render_speech_accuracy(r: dict) -> str:
    c = r["corpus"]
    chosen = r["chosen"]
    rows, missing = [], []
    for row in r["accuracy"]:
        if not row["weights_here"]:
            missing.append(f"`{row['model']}`")
            continue
        cells = [
            f"`{row['model']}`",
            SPEECH_COMPUTE[row["compute_type"]],
            str(row["beam_size"]),
            f"{100 * row['wer']:.1f}%",
            f"{row['audio_s_per_cpu_s']:.0f}",
        ]
        used = (row["compute_type"], row["beam_size"]) == (
            chosen["compute_type"],
            chosen["beam_size"],
        ) and row["model"] == "whisper-tiny-en"
        rows.append(_bold(cells) if used else cells)
    intro = _para(
        f"Word error rate on {c['recordings']} generated recordings ({c['sentences']} sentences, "
        f"{c['words']} words, read by espeak-ng voices {', '.join(c['voices'])} at "
        f"{', '.join(str(w) for w in c['wpm'])} words per minute; {c['audio_s']:.0f} s in all), "
        "through Trove's transcription with voice detection on. Words are compared lower-case "
        "without punctuation; every substituted, missing or extra word counts."
    )
    table = _table(("preset", "weights", "beam", "WER", "audio s per CPU s"), rows)
    if missing:
        table += "\n" + _para(
            f"Not measured, no weights on this machine: {', '.join(missing)} "
            "(`python app.py models download NAME`, then rerun the benchmark)."
        )
    default = next(
        row
        for row in r["accuracy"]
        if row["weights_here"]
        and row["model"] == "whisper-tiny-en"
        and (row["compute_type"], row["beam_size"]) == (chosen["compute_type"], chosen["beam_size"])
    )
    by = {(x["voice"], x["wpm"]): x["wer"] for x in default["recordings"]}
    grid = _table(
        ("voice", *(f"{w} words/min" for w in c["wpm"])),
        [[f"`{v}`", *(f"{100 * by[(v, w)]:.1f}%" for w in c["wpm"])] for v in c["voices"]],
    )
    label = f"{SPEECH_COMPUTE[chosen['compute_type']]}, beam {chosen['beam_size']}"
    return (
        intro
        + "\n"
        + table
        + "\n"
        + _para(f"By voice and pace, whisper-tiny-en ({label}):")
        + "\n"
        + grid
    )


def render_speech_cost(r: dict) -> str:
    cost, words = r["cost"], r["word_times"]
    worker, index = cost["worker"], cost["indexing"]
    off, on = index["speech_off"], index["speech_on"]
    extra = on["cpu_s_per_hour"] - off["cpu_s_per_hour"]
    without, with_ = words["without"], words["with"]
    return (
        _para(
            f"**Per hour of voice memos, transcription costs "
            f"{worker['speech']['cpu_s_per_hour'] / 60:.1f} CPU minutes** in the decode worker "
            f"(decoding the Opus file at 16 kHz, voice detection, Whisper: "
            f"{worker['speech']['files']} memos, {worker['speech']['audio_s']:.0f} s); **per hour "
            f"of music, {worker['music']['cpu_s_per_hour']:.0f} CPU seconds** (voice detection "
            f"finds no voice, Whisper never runs: {worker['music']['files']} songs, "
            f"{worker['music']['audio_s']:.0f} s)."
        )
        + "\n"
        + _para(
            f"End to end, the real indexer over those {worker['speech']['files']} memos and "
            f"{worker['music']['files']} songs ({cost['indexing_audio_s']:.0f} s; CLAP "
            "HTSAT-unfused with seeded weights, all-MiniLM-L6-v2, "
            f"{index['workers']} decode workers; runs alternated, "
            f"{off['cpu_s']['n']} each): {off['cpu_s_per_hour'] / 60:.1f} CPU minutes per "
            f"hour of recordings with speech off, {on['cpu_s_per_hour'] / 60:.1f} with it on "
            f"(+{extra / 60:.1f} minutes, {100 * extra / off['cpu_s_per_hour']:.0f}% more: "
            "transcribing, and embedding the passages); wall clock "
            f"{_spread(off['wall_s'])} s against {_spread(on['wall_s'])} s on "
            f"{_speech_machine(r)}."
        )
        + "\n"
        + _para(
            f"Word timestamps: on {words['audio_s']:.0f} s of speech with silences of "
            f"{', '.join(f'{g:g}' for g in words['gaps_s'])} s between its "
            f"{words['sentences']} sentences, a line's start lands a median "
            f"{without['start_error_s']['median']:g} s (at worst "
            f"{without['start_error_s']['max']:g} s) from the sentence's true start without "
            f"them ({without['start_error_s']['within_1s']} of {words['sentences']} within 1 s), "
            f"{with_['start_error_s']['median']:g} s (at worst "
            f"{with_['start_error_s']['max']:g} s; {with_['start_error_s']['within_1s']} of "
            f"{words['sentences']}) with them, at "
            f"{_spread(without['audio_s_per_cpu_s'], '{:.0f}')} against "
            f"{_spread(with_['audio_s_per_cpu_s'], '{:.0f}')} audio seconds per CPU second."
        )
    )


def render_speech_defaults(r: dict) -> str:
    """The comparisons the defaults are chosen from, side by side."""
    acc = {
        (row["compute_type"], row["beam_size"]): row
        for row in r["accuracy"]
        if row["weights_here"] and row["model"] == "whisper-tiny-en"
    }
    speed = {(row["compute_type"], row["audio"], row["vad"]): row for row in r["speed"]}

    def pair(a: tuple, b: tuple) -> str:
        x, y = acc[a], acc[b]
        return (
            f"WER {100 * x['wer']:.1f}% against {100 * y['wer']:.1f}%; "
            f"{x['audio_s_per_cpu_s']:.0f} against {y['audio_s_per_cpu_s']:.0f} audio seconds "
            "per CPU second"
        )

    def vad(audio: str) -> str:
        on = speed[("int8", audio, True)]
        off = speed[("int8", audio, False)]
        ratio = on["audio_s_per_cpu_s"]["median"] / off["audio_s_per_cpu_s"]["median"]
        return (
            f"{ratio:.1f}x the audio per CPU second with it as without "
            f"({on['words_kept']} words written with it, {off['words_kept']} without)"
        )

    lines = [
        f"- int8 against fp32 (beam 1): {pair(('int8', 1), ('float32', 1))}.",
        f"- beam 1 against beam 5 (int8): {pair(('int8', 1), ('int8', 5))}.",
        f"- Voice detection, on music: {vad('music')}; on speech: {vad('speech')}.",
    ]
    return "\n".join(lines) + "\n"


# -- registry ------------------------------------------------------------------------------

BLOCKS: dict[str, Block] = {
    "perf": Block("latest.json", "bench/run.py", render_perf),
    "model-paths": Block("latest.json", "bench/run.py", render_model_paths),
    "fusion-full": Block("fusion.json", "bench/fusion.py", render_fusion_full),
    "paraphrase": Block("paraphrase.json", "bench/paraphrase.py", render_paraphrase),
    "text-finetune": Block("text_finetune.json", "bench/text_finetune.py", render_text_finetune),
    "video-decode-full": Block(
        "video_decode.json",
        "python bench/video_decode.py --out bench/results/video_decode.json",
        render_video_decode_full,
    ),
    "video-cost": Block(
        "video_cost.json",
        "python -m bench.video_cost --out bench/results/video_cost.json",
        render_video_cost,
    ),
    "presets": Block("presets.json", "bench/presets.py", render_presets),
    "encoders": Block("encoders.json", "bench/encoders.py", render_encoders),
    "watch": Block("watch.json", "bench/watch.py", render_watch),
    "watch-backends": Block(
        "watch_backends.json", "bench/watch_backends.py", render_watch_backends
    ),
    "ray-overhead": Block("ray.json", "bench/ray_overhead.py", render_ray_overhead),
    "scale-plan": Block("ray.json", "bench/ray_overhead.py", render_scale_plan),
    "sq8-simulation": Block("ray.json", "bench/ray_overhead.py", render_sq8_simulation),
    "finetune-full": Block("finetune.json", "bench/finetune.py", render_finetune_full),
    "bridge": Block(
        "bridge.json", "python -m bench.bridge --out bench/results/bridge.json", render_bridge
    ),
    "speech-speed": Block("speech.json", SPEECH_SCRIPT, render_speech_speed),
    "speech-accuracy": Block("speech.json", SPEECH_SCRIPT, render_speech_accuracy),
    "speech-cost": Block("speech.json", SPEECH_SCRIPT, render_speech_cost),
    "speech-defaults": Block("speech.json", SPEECH_SCRIPT, render_speech_defaults),
}


def render(text: str, results: Path = RESULTS) -> tuple[str, list[str]]:
    """`text` with every generated block rendered again; and the problems found (an unknown
    block name, a missing result, an opening marker without its closing one)."""
    problems = []
    opened = OPENING.findall(text)
    closed = [m.group(2) for m in BLOCK.finditer(text)]
    if opened != closed:
        problems.append(f"unclosed block(s): {sorted(set(opened) - set(closed)) or opened}")
    cache: dict[str, dict] = {}

    def replace(match: re.Match) -> str:
        name = match.group(2)
        block = BLOCKS.get(name)
        if block is None:
            problems.append(f"unknown block {name!r}; known: {', '.join(BLOCKS)}")
            return match.group(0)
        path = results / block.result
        if block.result not in cache:
            if not path.is_file():
                problems.append(f"block {name!r}: {path} is missing (run {block.script})")
                return match.group(0)
            cache[block.result] = json.loads(path.read_text())
        return match.group(1) + block.render(cache[block.result]) + match.group(4)

    return BLOCK.sub(replace, text), problems


def check(files: Iterable[Path] | None = None, results: Path = RESULTS) -> list[str]:
    """One line per generated block that differs from what its JSON renders, and per
    problem; empty when every figure matches its result."""
    out = []
    for path in files or documents():
        text = path.read_text()
        rendered, problems = render(text, results)
        out += [f"{path.name}: {p}" for p in problems]
        if rendered != text:
            old = {m.group(2): m.group(3) for m in BLOCK.finditer(text)}
            for m in BLOCK.finditer(rendered):
                if old.get(m.group(2)) != m.group(3):
                    block = BLOCKS[m.group(2)]
                    out.append(
                        f"{path.name}: block {m.group(2)!r} differs from "
                        f"bench/results/{block.result}"
                    )
    return out


def blocks_in(files: Iterable[Path] | None = None) -> set[str]:
    """The names of the generated blocks the documents hold."""
    return {m.group(2) for path in files or documents() for m in BLOCK.finditer(path.read_text())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report differences, change nothing")
    args = parser.parse_args(argv)
    if args.check:
        differences = check()
        for line in differences:
            print(line)
        if differences:
            print("Run `python bench/figures.py` to render them again.", file=sys.stderr)
        return 1 if differences else 0
    failed = False
    for path in documents():
        text = path.read_text()
        rendered, problems = render(text)
        for problem in problems:
            print(f"{path.name}: {problem}", file=sys.stderr)
            failed = True
        if rendered != text:
            path.write_text(rendered)
            print(f"rewrote {path.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
