"""Every file, folder, module and section the README and docs/*.md point at exists in the
repository: a relative link (and its #section), a `backticked/repo/path`, a
`search.module.name`. A file renamed or removed without its documentation fails here."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\n]+)`")
PATHLIKE = re.compile(r"[\w.*/-]+")
MODULE = re.compile(r"(search|indexers|bench|tests)(\.\w+)+")
HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.M)


@cache
def repo_files() -> frozenset[str]:
    """The repository's files: tracked, or new and not ignored (.gitignore'd output such as
    caches and screenshots is not part of the repository)."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return frozenset(line for line in listing.stdout.splitlines() if (ROOT / line).exists())


@cache
def repo_folders() -> frozenset[str]:
    return frozenset(str(parent) for f in repo_files() for parent in Path(f).parents)


def in_repo(path: str) -> bool:
    """`path` (relative to the root; a folder may end in /; may hold a * glob) is in the repo."""
    path = path.rstrip("/")
    if "*" in path:
        return any(Path(f).match(path) for f in repo_files())
    return path in repo_files() or path in repo_folders()


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[`*]|\[([^]]*)\]\([^)]*\)", r"\1", heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def prose(text: str) -> str:
    """A document without its fenced code blocks (examples, not references)."""
    return FENCE.sub("", text)


def anchors(text: str) -> set[str]:
    return {slug(h) for h in HEADING.findall(prose(text))}


def module_defines(source: Path, names: list[str]) -> bool:
    """The module's source defines the first name at top level, and any further names (a
    method, an attribute) somewhere."""
    text = source.read_text()
    first, *rest = names
    top = rf"^(def|class|async def) {first}\b|^{first}\b\s*[:=]|^\s*(from .+ )?import .*\b{first}\b"
    if not re.search(top, text, re.M):
        return False
    return all(
        re.search(rf"\b(def|class) {n}\b|\bself\.{n}\b|^\s*{n}\b\s*[:=]", text, re.M) for n in rest
    )


def module_exists(dotted: str) -> bool:
    """`package.module[.attribute...]` names a module of the repo and, after it, names that
    module defines."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        base = "/".join(parts[:i])
        for source in (f"{base}.py", f"{base}/__init__.py"):
            if source in repo_files():
                return not parts[i:] or module_defines(ROOT / source, parts[i:])
    return False


def references(document: Path, text: str | None = None) -> list[str]:
    """What is wrong with the references of `document` (its `text`, when given, as if it
    were there): one line per missing target."""
    whole = document.read_text() if text is None else text
    text, missing = prose(whole), []
    here = document.parent
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (here / path).resolve() if path else document
        relative = resolved.relative_to(ROOT).as_posix() if resolved.is_relative_to(ROOT) else ""
        if path and not in_repo(relative):
            missing.append(f"link {target}: no {relative or path} in the repository")
        elif anchor and resolved.suffix == ".md":
            headings = anchors(whole if resolved == document else resolved.read_text())
            if anchor in headings:
                continue
            missing.append(f"link {target}: {resolved.name} has no section #{anchor}")
    tops = {Path(f).parts[0] for f in repo_files()}
    for code in CODE.findall(text):
        if MODULE.fullmatch(code):
            if not module_exists(code):
                missing.append(f"`{code}`: no such module or name in the repository")
        elif PATHLIKE.fullmatch(code) and code.split("/")[0] in tops and not in_repo(code):
            missing.append(f"`{code}`: no such file or folder in the repository")
    return missing


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.relative_to(ROOT).as_posix())
def test_every_reference_exists(document: Path):
    assert references(document) == []


def test_the_checks_find_what_is_missing():
    # Read as if it were in docs/, so relative links resolve as for the real documents.
    fake = ROOT / "docs" / "fake.md"
    text = (
        "# Title\n\n"
        "[ok](../README.md) [gone](missing.md) [section](#title) [no section](#nothing)\n"
        "`search/engine.py` `search/no_such.py` `search/*.py` `tests/unit/` `~/Pictures`\n"
        "`search.engine.SearchEngine` `search.engine.no_such_name` `search.nowhere`\n"
        "```\n`search/inside_a_code_block.py`\n```\n"
        "[a real section](ranking.md#the-fusion-study) [a lost one](ranking.md#gone)\n"
    )
    assert references(fake, text) == [
        "link missing.md: no docs/missing.md in the repository",
        "link #nothing: fake.md has no section #nothing",
        "link ranking.md#gone: ranking.md has no section #gone",
        "`search/no_such.py`: no such file or folder in the repository",
        "`search.engine.no_such_name`: no such module or name in the repository",
        "`search.nowhere`: no such module or name in the repository",
    ]
