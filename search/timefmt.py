"""Time as people read it: a moment or a length as media players show it, a rough length in
words, a date and time. Every place Trove shows time asks here."""

from __future__ import annotations

from datetime import datetime


def clock(seconds: float) -> str:
    """Seconds as m:ss (h:mm:ss from an hour on), the way players show time; fractions of a
    second are dropped, as a player's counter does."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    if hours:
        return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{rest // 60}:{rest % 60:02d}"


def duration_words(seconds: float) -> str:
    """A length in words, rounded to what matters for a wait: "45 s", "3 min 05 s",
    "1 h 02 min"."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def local_time(epoch: float) -> str:
    """Epoch seconds as this machine's local date and time, to the second."""
    return datetime.fromtimestamp(epoch).isoformat(sep=" ", timespec="seconds")
