"""The detail panel's transcript (search/web/transcript.py): one button per line with its
time, the hit's moment marked, words shown as text; the browser side (clicking plays from
the line) is tests/e2e/test_browser.py::test_a_transcript_in_a_real_browser."""

from __future__ import annotations

import re

from search.decode.speech import SpeechLine
from search.web.transcript import render_transcript

LINES = (
    SpeechLine(0.11, 3.71, "Remember to water the tomatoes."),
    SpeechLine(3.71, 9.91, "The shop closes early on Saturday."),
    SpeechLine(9.91, 13.91, "Your appointment with the <dentist> & co."),
    SpeechLine(65.0, 70.5, "A minute later."),
)


def marked(html: str) -> list[bool]:
    return ["hit" in c.split() for c in re.findall(r'<button type="button" class="([^"]+)"', html)]


def test_each_line_is_a_button_with_its_time_and_start():
    html = render_transcript(LINES, "audio")
    assert html.count("<button") == 4
    assert re.findall(r'data-start="([^"]+)"', html) == ["0.11", "3.71", "9.91", "65"]
    assert re.findall(r'<span class="at">([^<]+)</span>', html) == ["0:00", "0:03", "0:09", "1:05"]
    assert 'data-kind="audio"' in html
    # Words said are text, never markup.
    assert "&lt;dentist&gt; &amp; co." in html and "<dentist>" not in html
    assert marked(html) == [False] * 4


def test_the_lines_of_the_hit_moment_are_marked():
    assert marked(render_transcript(LINES, "video", 9.91, 13.91)) == [False, False, True, False]
    # A passage of two lines marks both; a neighbour that only touches it is not marked.
    assert marked(render_transcript(LINES, "video", 0.11, 9.91)) == [True, True, False, False]
    # An instant marks the line that holds it.
    assert marked(render_transcript(LINES, "audio", 66.0, None)) == [False, False, False, True]
    assert marked(render_transcript(LINES, "audio", 30.0, 40.0)) == [False] * 4


def test_nothing_said_shows_nothing():
    assert render_transcript((), "audio", 1.0, 2.0) == ""
