"""Library folders: the checks a folder passes before it is added to a library or indexed.

The CLI's `index`, the `Indexer` and the web UI's Library tab all ask here, so a folder the
one refuses the others refuse too, with the same message. Every check runs before anything
in the data folder is created or changed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from search.errors import LibraryRootError
from search.storage.catalog import Catalog, Root


def typed_folder(text: str, data_dir: Path) -> Path:
    """The folder a person typed (the web UI has no working folder, so the path must be full;
    `~` is expanded), resolved and checked by `check_folder`. LibraryRootError saying what
    is wrong when it is blank, relative, or fails a check."""
    text = text.strip()
    if not text:
        raise LibraryRootError("Type the full path of a folder to add, e.g. /home/you/Pictures.")
    folder = Path(text).expanduser()
    if not folder.is_absolute():
        raise LibraryRootError(
            f"{text} is a relative path: give the folder's full path, e.g. /home/you/Pictures."
        )
    folder = folder.resolve()
    check_folder(folder, data_dir)
    return folder


def check_folder(folder: Path, data_dir: Path) -> None:
    """LibraryRootError saying what is wrong when `folder` (absolute) is missing, is a file,
    cannot be read, lies inside Trove's data folder `data_dir`, or holds it where the walk
    would find it."""
    if not folder.exists():
        raise LibraryRootError(
            f"Library folder {folder} does not exist. Check the path, or plug in the drive "
            f"that holds it; nothing in the catalog was changed."
        )
    if not folder.is_dir():
        raise LibraryRootError(f"{folder} is a file, not a folder. Give the folder that holds it.")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise LibraryRootError(f"{folder} cannot be read (permission denied).")
    real, data_dir = folder.resolve(), data_dir.resolve()
    if real.is_relative_to(data_dir):
        raise LibraryRootError(f"{folder} is Trove's own data folder, not a library folder.")
    if data_dir.is_relative_to(real):
        inside = data_dir.relative_to(real).parts
        if not any(part.startswith(".") for part in inside):  # the walk skips hidden folders
            raise LibraryRootError(
                f"{folder} holds Trove's data folder ({data_dir}), whose thumbnails would be "
                f"indexed as photos. Add the folders beside it, or move the data folder "
                f"(--data-dir or TROVE_DATA_DIR)."
            )


def roots_to_index(
    folders: Sequence[str], include: Sequence[str], exclude: Sequence[str], catalog: Catalog | None
) -> list[Root]:
    """The library folders an index run was given (absolute paths), with their globs: a
    folder the library already has keeps its remembered --include globs unless new ones are
    given, and likewise its --exclude globs."""
    known = {root.path: root for root in catalog.roots()} if catalog is not None else {}
    roots = []
    for folder in folders:
        old = known.get(folder, Root(folder, (), ()))
        roots.append(Root(folder, tuple(include) or old.include, tuple(exclude) or old.exclude))
    return roots


def check_roots(roots: Sequence[Root], data_dir: Path, catalog: Catalog | None = None) -> None:
    """Refuse to start an index run when a library folder fails `check_folder`, or is empty
    while the catalog holds files from it (an unmounted drive often leaves its empty mount
    point behind): an unplugged drive is not a deletion, so its items must not be dropped
    from the catalog."""
    for root in roots:
        check_folder(Path(root.path), data_dir)
        if catalog is not None and _is_empty(root.path):
            known = len(catalog.items_under(root.path))
            if known:
                raise LibraryRootError(
                    f"Library folder {root.path} is empty, but the catalog holds {known} files "
                    f"from it. Is its drive mounted? Nothing in the catalog was changed. If "
                    f"the files really are gone, remove the folder from the library "
                    f"(`python app.py` > Library > Remove) instead."
                )


def _is_empty(folder: str) -> bool:
    try:
        with os.scandir(folder) as entries:
            return next(entries, None) is None
    except OSError:
        return False
