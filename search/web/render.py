"""What the web UI says, as Markdown and text: the header, the Library tab's summary and
index progress, the detail panel, gallery captions and error lines. Pure functions of what
search/web/service.py returns.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from search.engine import SearchResult
from search.filters import format_score
from search.timefmt import clock, duration_words, local_time
from search.web.jobs import (
    DONE,
    FAILED,
    IDLE,
    INDEXING,
    SCANNING,
    STOPPED,
    STOPPING,
    JobStatus,
)
from search.web.media import file_url
from search.web.service import ItemDetail, TroveUI


def header_line(ui: TroveUI) -> str:
    """The line under the title: the data folder and the model's state."""
    return f"{ui.data_dir} · {ui.model_status()}"


def human_bytes(n: float) -> str:
    """A size in decimal units, bytes up to GB ("512 bytes", "3.4 MB", "1200.0 GB")."""
    for unit in ("bytes", "kB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def one_line(message: str) -> str:
    """A message with its line breaks and runs of spaces made single spaces."""
    return " ".join(str(message).split())


def error_line(exc: Exception) -> str:
    """A TroveError's message as the one line the UI shows."""
    return f"**Error:** {one_line(str(exc))}"


def render_progress(status: JobStatus) -> str:
    """The Library tab's progress display for an index run."""
    if status.state == IDLE:
        return "No index run yet. Press **Start indexing** to index the library folders."
    titles = {
        SCANNING: "Scanning folders",
        INDEXING: "Indexing",
        STOPPING: "Stopping",
        DONE: "Done",
        STOPPED: "Stopped",
        FAILED: "Failed",
    }
    lines = [f"**{titles[status.state]}** with {status.model}"]
    if status.total or status.state in (INDEXING, STOPPING, DONE, STOPPED):
        share = status.done / status.total if status.total else 1.0
        filled = int(round(share * 24))
        bar = "█" * filled + "░" * (24 - filled)
        speed = f"{status.rate:.1f} files/s" if status.rate else "measuring speed"
        eta = f"about {duration_words(status.eta_s)} left" if status.eta_s is not None else ""
        parts = [f"{status.done} / {status.total} files ({share:.0%})", speed]
        if status.running and eta:
            parts.append(eta)
        lines.append(f"`{bar}` " + " · ".join(parts))
    if status.running and status.current:
        lines.append(f"Now: `{status.current}`")
    if status.message:
        first, *rest = status.message.splitlines()
        lines.append(first if status.state != FAILED else f"**Error:** {one_line(first)}")
        lines += [line for line in rest if not line.startswith("  failed: ")]
    if status.errors:
        lines.append(f"{len(status.errors)} files failed: see the list below.")
    return "\n\n".join(lines)


def render_library(status: dict, model_line: str) -> str:
    """The Library tab's summary: data folder, model, counts, index size."""
    if not status["exists"]:
        return (
            f"**No library yet** in `{status['data_dir']}`. Add a folder below (its full path, "
            f"e.g. /home/you/Pictures), then press **Start indexing**. New libraries are "
            f"indexed with {status['new_library_model']}."
        )
    counts = ", ".join(f"{n} {kind}" for kind, n in status["counts"].items()) or "no files yet"
    return "\n\n".join(
        [
            f"**Data folder** `{status['data_dir']}`",
            f"**Files** {counts} · **Index** {human_bytes(status['size_on_disk_bytes'])} on "
            f"disk · **Failed** {len(status['failed'])}",
            f"**{model_line}**",
        ]
    )


def render_detail(
    detail: ItemDetail,
    score: float | None,
    start: float | None = None,
    end: float | None = None,
    snippet: str | None = None,
    matched: Sequence[str] = (),
) -> str:
    """The detail panel's text: path, kind, score, why it matched and the result's moment
    or passage, then what the catalog knows of the file (duration, sound, codec, pages,
    camera, dates)."""
    info = detail.details
    head = f"**Kind** {detail.kind}"
    if score is not None:
        head += f" · **Score** {format_score(score)}"
    if start is not None:
        head += f" · **Moment** {moment_text(start, end)}"
    if matched:
        head += f" · **Matched** {', '.join(matched)}"
    rows = [f"**Path** `{detail.path}`", head]
    if snippet:
        rows.append("> " + _markdown_text(snippet))
    described = [
        ("Title", info.get("title")),
        ("Artist", info.get("artist")),
        ("Album", info.get("album")),
        ("Pages", info.get("pages")),
    ]
    rows.append(_fields(described))
    size = [("Size", human_bytes(detail.size))]
    if detail.width:
        size.append(("Dimensions", f"{detail.width} × {detail.height}"))
    if detail.duration_s is not None:
        size.append(("Duration", clock(detail.duration_s)))
    rows.append(_fields(size))
    rate = info.get("sample_rate")
    channels = info.get("channels")
    fps = info.get("fps")
    media = [
        ("Sample rate", f"{rate / 1000:g} kHz" if isinstance(rate, int | float) else None),
        ("Channels", _channels(channels) if isinstance(channels, int) else None),
        ("Codec", info.get("codec")),
        ("Frame rate", f"{fps:.3g} fps" if isinstance(fps, int | float) else None),
    ]
    rows.append(_fields(media))
    rows.append(_fields([("Camera", info.get("camera")), ("Lens", info.get("lens"))]))
    dates = [("Taken", local_time(detail.taken_at) if detail.taken_at is not None else None)]
    dates += [("Modified", local_time(detail.modified))]
    dates += [("Indexed", local_time(detail.indexed) if detail.indexed else None)]
    rows.append(_fields(dates))
    if info.get("notice"):
        rows.append(f"**Note** {_markdown_text(str(info['notice']))}")
    timed = detail.kind in ("audio", "video") and start is not None
    link = file_url(detail.path, start, end) if timed else file_url(detail.path)
    label = f"Open the original at {clock(start)}" if timed and start else "Open the original"
    rows.append(f"[{label}]({link})")
    return "\n\n".join(row for row in rows if row)


def _fields(pairs: list[tuple[str, Any]]) -> str:
    """One line of `**Name** value` pairs, leaving out the unknown ones."""
    shown = [f"**{name}** {_markdown_text(str(value))}" for name, value in pairs if value]
    return " · ".join(shown)


def _channels(n: int) -> str:
    return {1: "mono", 2: "stereo"}.get(n, str(n))


def _markdown_text(text: str) -> str:
    """Text from a file (a tag, a passage) shown as itself, not as Markdown or HTML."""
    flat = " ".join(text.split())
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else ch for ch in flat)


_MARKDOWN_SPECIAL = set("\\`*_[]<>|~#")


def moment_text(start: float, end: float | None) -> str:
    """A moment as players show it: "0:20–0:28" (or "0:20" for an instant)."""
    if end is None or clock(end) == clock(start):
        return clock(start)
    return f"{clock(start)}–{clock(end)}"


def caption(result: SearchResult, roots: list[str]) -> str:
    """A gallery caption: kind, score, the moment (sounds, videos, subtitles) and the path
    (from its library folder's name on)."""
    shown = result.path
    for root in sorted(roots, key=len, reverse=True):
        if result.path.startswith(root.rstrip("/") + "/"):
            shown = os.path.join(os.path.basename(root.rstrip("/")), result.path[len(root) + 1 :])
            break
    moment = f" · {moment_text(result.start, result.end)}" if result.start is not None else ""
    why = f" · {result.matched[0]}" if result.matched else ""
    return f"{result.kind} · {format_score(result.score)}{moment}{why} · {shown}"


def weights_label(model: dict) -> str:
    """The Models table's "Weights here" cell for a row of `TroveUI.list_models`."""
    if not model["weights_here"]:
        return "no"
    if "built locally" in model["weights"]:
        return "yes (built locally)"
    return f"yes ({model['weights']})"
