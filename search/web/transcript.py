"""The detail panel's transcript: what was said in a sound or a video, line by line with
its time. Clicking a line plays the file's player from there; the lines of a search hit's
moment are marked and scrolled into view.

`render_transcript` is a pure function of the stored lines (search/decode/speech.py's
SpeechLine); the component's own script (TRANSCRIPT_JS) finds the detail panel's player
(`#detail-audio`, `#detail-video`) and seeks it.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from search.decode.speech import SpeechLine
from search.timefmt import clock

# A line belongs to a hit's moment when they overlap by more than this (seconds): Whisper's
# line ends and the passage's bounds are rounded differently, and a touching neighbour is
# not part of it.
OVERLAP_S = 0.05

# Runs once when the component mounts; the listener serves every transcript shown later.
# A line's click seeks the visible player and plays it: the audio element of Gradio's
# sound player (WaveSurfer keeps it inside its shadow root) or the video element. After
# each new transcript, the first line of the hit's moment is scrolled into view.
TRANSCRIPT_JS = """
const player = (kind) => {
    const box = document.querySelector(kind === 'video' ? '#detail-video' : '#detail-audio');
    if (!box) return null;
    const direct = box.querySelector(kind === 'video' ? 'video' : 'audio');
    if (direct) return direct;
    for (const node of box.querySelectorAll('*')) {
        const found = node.shadowRoot && node.shadowRoot.querySelector('audio, video');
        if (found) return found;
    }
    return null;
};
element.addEventListener('click', (event) => {
    const line = event.target.closest('[data-start]');
    const list = event.target.closest('[data-kind]');
    if (!line || !list) return;
    const media = player(list.dataset.kind);
    if (!media) return;
    media.currentTime = parseFloat(line.dataset.start);
    media.play().catch(() => {});
    for (const other of element.querySelectorAll('.playing')) other.classList.remove('playing');
    line.classList.add('playing');
});
new MutationObserver(() => {
    const hit = element.querySelector('.transcript-line.hit');
    if (hit) hit.scrollIntoView({block: 'nearest'});
}).observe(element, {childList: true, subtree: true});
"""

TRANSCRIPT_CSS = """
.transcript { max-height: 16rem; overflow-y: auto; border: 1px solid var(--border-color-primary);
    border-radius: var(--radius-md); padding: var(--spacing-sm); }
.transcript-title { font-weight: 600; margin-bottom: var(--spacing-sm); }
.transcript-line { display: flex; gap: var(--spacing-md); width: 100%; text-align: left;
    padding: 2px var(--spacing-sm); border-radius: var(--radius-sm); cursor: pointer;
    background: none; border: none; color: inherit; font: inherit; }
.transcript-line:hover { background: var(--background-fill-secondary); }
.transcript-line .at { color: var(--body-text-color-subdued); font-variant-numeric: tabular-nums;
    flex: 0 0 auto; }
.transcript-line.hit { background: var(--color-accent-soft); font-weight: 600; }
.transcript-line.playing { outline: 2px solid var(--color-accent); }
"""


def render_transcript(
    lines: Sequence[SpeechLine],
    kind: str,
    start: float | None = None,
    end: float | None = None,
) -> str:
    """The transcript as HTML buttons, one per line ("0:04  words said"), those inside the
    hit's moment `start`..`end` marked `hit`; "" when nothing was said (no transcript)."""
    if not lines:
        return ""
    rows = []
    for line in lines:
        inside = start is not None and _overlaps(line, start, end)
        classes = "transcript-line hit" if inside else "transcript-line"
        rows.append(
            f'<button type="button" class="{classes}" data-start="{line.start_s:g}" '
            f'title="Play from {clock(line.start_s)}">'
            f'<span class="at">{clock(line.start_s)}</span>'
            f'<span class="said">{html.escape(line.text)}</span></button>'
        )
    return (
        f'<div class="transcript" data-kind="{html.escape(kind)}">'
        '<div class="transcript-title">What was said</div>' + "".join(rows) + "</div>"
    )


def _overlaps(line: SpeechLine, start: float, end: float | None) -> bool:
    end = start if end is None else end
    if end <= start:  # an instant: the line that holds it
        return line.start_s <= start < line.end_s
    return min(line.end_s, end) - max(line.start_s, start) > OVERLAP_S
