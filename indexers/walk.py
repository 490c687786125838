"""Library roots -> candidate media files.

Hidden files and folders are skipped unless asked for; symlinked folders are followed but
each real folder is visited once, so symlink loops end; unreadable folders are reported
through `on_error` and the walk goes on.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from fnmatch import fnmatchcase

from search.decode.kinds import FoundFile, kind_for_path


def matches(rel_path: str, patterns: Sequence[str]) -> bool:
    """True when a glob matches the path relative to the root, or its last component.

    Matching the name too lets `*.tmp` or `.thumbnails` exclude at any depth.
    """
    name = rel_path.rsplit("/", 1)[-1]
    return any(fnmatchcase(rel_path, p) or fnmatchcase(name, p) for p in patterns)


def walk(
    root: str,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    include_hidden: bool = False,
    on_error: Callable[[str, OSError], None] | None = None,
) -> Iterator[FoundFile]:
    """Yield the media files under `root` (an absolute folder), sorted per folder."""
    visited: set[tuple[int, int]] = set()

    def report(exc: OSError) -> None:
        if on_error is not None:
            on_error(exc.filename or root, exc)

    for folder, dirs, files in os.walk(root, onerror=report, followlinks=True):
        try:
            st = os.stat(folder)
        except OSError as exc:
            report(exc)
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in visited:
            dirs[:] = []
            continue
        visited.add((st.st_dev, st.st_ino))
        rel_folder = os.path.relpath(folder, root).replace(os.sep, "/")
        rel_folder = "" if rel_folder == "." else rel_folder + "/"
        dirs[:] = sorted(
            d
            for d in dirs
            if (include_hidden or not d.startswith(".")) and not matches(rel_folder + d, exclude)
        )
        for name in sorted(files):
            if not include_hidden and name.startswith("."):
                continue
            kind = kind_for_path(name)
            rel = rel_folder + name
            if kind is None or matches(rel, exclude) or (include and not matches(rel, include)):
                continue
            path = os.path.join(folder, name)
            try:
                st = os.stat(path)
            except OSError as exc:  # a dangling symlink, or a file gone since listing
                report(exc)
                continue
            if not stat.S_ISREG(st.st_mode):
                # Opening a named pipe waits for a writer for ever; sockets and devices are
                # not files anyone means to index either.
                report(OSError(errno.EINVAL, "not a regular file (a pipe, socket or device)", path))
                continue
            if not _utf8(path):
                # The catalog (and every tool that shows paths) needs text: say which file,
                # printably, and what to do.
                shown = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                report(
                    OSError(
                        errno.EILSEQ,
                        "the file name is not valid UTF-8: rename the file to index it",
                        shown,
                    )
                )
                continue
            yield FoundFile(path, st.st_size, st.st_mtime_ns, kind)


def _utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
