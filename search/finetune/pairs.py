"""Training pairs from a user's library: (picture or sound, caption), checked and split.

Three sources, chosen by what --pairs points at:

- a folder with sidecar captions: photo.jpg + photo.txt (each non-empty line one caption);
- a table: pairs.csv (header with a path and a caption column), pairs.jsonl (one object a
  line) or a .json object {path: caption}; paths are relative to the table's folder;
- a folder of label folders: Pets/Bella/*.jpg -> "Bella" (used when no sidecar exists, or
  asked for with labels="folders").

Every pair that cannot be used is reported with its reason and left out; the run goes on.
The held-out split is a pure function of (file contents, seed), so it is the same on every
run and machine, and the same picture under two names never lands on both sides.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from search.decode.kinds import kind_for_path
from search.errors import BadFileError

TRAINABLE_KINDS = ("image", "audio")
PATH_COLUMNS = ("path", "file", "file_name", "filename", "image", "audio")
CAPTION_COLUMNS = ("caption", "text", "label", "description")
TABLE_SUFFIXES = (".csv", ".jsonl", ".json")
LABEL_SOURCES = ("auto", "sidecar", "folders")
EXAMPLES_SHOWN = 5


@dataclass(frozen=True)
class Pair:
    """One training example. `group` is the media file's content hash: the unit of splitting."""

    media: Path
    text: str
    kind: str
    group: str


@dataclass
class PairsReport:
    """What loading found: usable pairs, duplicates and broken pairs, each with a reason."""

    source: str
    layout: str = ""
    pairs: int = 0
    media: int = 0
    captions: int = 0
    uncaptioned: int = 0
    duplicates: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"Pairs from {self.source} ({self.layout}): {self.pairs} pairs, {self.media} files, "
            f"{self.captions} distinct captions."
        ]
        if self.uncaptioned:
            out.append(f"  {self.uncaptioned} media files have no caption (not used).")
        for title, items in (("duplicates", self.duplicates), ("broken", self.broken)):
            if items:
                out.append(f"  {len(items)} {title} (left out):")
                out += [f"    {item}" for item in items[:EXAMPLES_SHOWN]]
                if len(items) > EXAMPLES_SHOWN:
                    out.append(f"    ... and {len(items) - EXAMPLES_SHOWN} more")
        return out


@dataclass(frozen=True)
class PairSet:
    pairs: list[Pair]
    report: PairsReport

    @property
    def kinds(self) -> set[str]:
        return {p.kind for p in self.pairs}


def load_pairs(
    source: str | Path, labels: str = "auto", label_template: str = "{}", kind: str | None = None
) -> PairSet:
    """Read and check the pairs at `source` (a folder or a table).

    `labels` picks how a folder is read: "sidecar", "folders", or "auto" (sidecar captions
    when the folder has any, else folder names). `label_template` turns a folder label into
    a caption ("a photo of {}"). `kind` keeps only "image" or "audio" pairs.
    """
    if labels not in LABEL_SOURCES:
        raise BadFileError(f"labels must be one of {', '.join(LABEL_SOURCES)}, not {labels!r}")
    if "{}" not in label_template:
        raise BadFileError(f"the label template {label_template!r} needs a {{}} for the label")
    root = Path(source).expanduser()
    if not root.exists():
        raise BadFileError(f"{root} does not exist: give a folder of captioned media or a table")
    report = PairsReport(str(root))
    if root.is_file():
        if root.suffix.lower() not in TABLE_SUFFIXES:
            raise BadFileError(
                f"{root.name}: a pairs table is .csv, .jsonl or .json (path and caption)"
            )
        report.layout = f"{root.suffix.lower()[1:]} table"
        raw = _table_pairs(root, report)
    else:
        media = _media_files(root)
        sidecars = [m for m in media if m.with_suffix(".txt").is_file()]
        use_sidecars = labels == "sidecar" or (labels == "auto" and sidecars)
        if use_sidecars:
            report.layout = "sidecar captions"
            raw = _sidecar_pairs(root, media, report)
        else:
            report.layout = "folder names as labels"
            raw = _folder_pairs(root, media, label_template, report)
    pairs = _checked(raw, kind, report)
    if not pairs:
        raise BadFileError(
            f"No usable pairs in {root} ({report.layout}). "
            + (f"First problem: {report.broken[0]}. " if report.broken else "")
            + "Give captioned media: photo.jpg + photo.txt, a pairs.csv of path,caption, or "
            "label folders such as Pets/Bella/*.jpg."
        )
    return PairSet(pairs, report)


def split_pairs(pairs: list[Pair], fraction: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """(kept, held out): about `fraction` of the media files, chosen by hashing their contents.

    Whole files move together, so every caption of a held-out picture is held out with it.
    """
    if not 0 < fraction < 1:
        raise BadFileError(f"the held-out fraction must be between 0 and 1, not {fraction}")
    groups = sorted({p.group for p in pairs}, key=lambda g: _hash(f"{seed}:{g}"))
    count = round(len(groups) * fraction)
    if count < 2 or len(groups) - count < 2:
        raise BadFileError(
            f"{len(groups)} distinct files are too few to hold {fraction:.0%} out for "
            f"evaluation: give at least {max(4, round(2 / fraction))} captioned files."
        )
    held = set(groups[:count])
    return [p for p in pairs if p.group not in held], [p for p in pairs if p.group in held]


def _media_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
        and kind_for_path(p) in TRAINABLE_KINDS
    )


def _sidecar_pairs(root: Path, media: list[Path], report: PairsReport):
    captioned = set()
    for path in media:
        sidecar = path.with_suffix(".txt")
        if not sidecar.is_file():
            report.uncaptioned += 1
            continue
        captioned.add(sidecar)
        try:
            lines = sidecar.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            report.broken.append(f"{_rel(sidecar, root)}: unreadable caption file ({exc})")
            continue
        captions = [" ".join(line.split()) for line in lines if line.strip()]
        if not captions:
            report.broken.append(f"{_rel(sidecar, root)}: empty caption file")
        for caption in captions:
            yield path, caption, _rel(path, root)
    for orphan in sorted(root.rglob("*.txt")):
        hidden = any(part.startswith(".") for part in orphan.relative_to(root).parts)
        if orphan not in captioned and not hidden and not _has_media_sibling(orphan):
            report.broken.append(f"{_rel(orphan, root)}: caption with no media file beside it")


def _has_media_sibling(caption: Path) -> bool:
    return any(
        sibling.stem == caption.stem and kind_for_path(sibling) in TRAINABLE_KINDS
        for sibling in caption.parent.iterdir()
    )


def _folder_pairs(root: Path, media: list[Path], template: str, report: PairsReport):
    for path in media:
        rel = path.relative_to(root)
        if len(rel.parts) < 2:
            report.broken.append(f"{rel}: not inside a label folder (e.g. Pets/Bella/{rel})")
            continue
        yield path, template.format(path.parent.name), str(rel)


def _table_pairs(table: Path, report: PairsReport):
    base = table.parent
    for where, row in _table_rows(table):
        path_key = next((k for k in PATH_COLUMNS if row.get(k)), None)
        caption_key = next((k for k in CAPTION_COLUMNS if k in row), None)
        if path_key is None or caption_key is None:
            report.broken.append(
                f"{where}: needs a path column ({'/'.join(PATH_COLUMNS)}) and a caption column "
                f"({'/'.join(CAPTION_COLUMNS)})"
            )
            continue
        media = Path(str(row[path_key])).expanduser()
        media = media if media.is_absolute() else base / media
        caption = " ".join(str(row[caption_key] or "").split())
        if not caption:
            report.broken.append(f"{where}: empty caption for {row[path_key]}")
            continue
        yield media, caption, where


def _table_rows(table: Path):
    try:
        text = table.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadFileError(f"{table.name}: unreadable ({exc})") from None
    suffix = table.suffix.lower()
    if suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        for number, row in enumerate(reader, 2):
            yield f"{table.name}:{number}", {(k or "").strip().lower(): v for k, v in row.items()}
    elif suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                yield f"{table.name}:{number}", {"_error": str(exc)}
                continue
            yield f"{table.name}:{number}", row if isinstance(row, dict) else {}
    else:
        try:
            mapping = json.loads(text)
        except ValueError as exc:
            raise BadFileError(f"{table.name}: not valid JSON ({exc})") from None
        if not isinstance(mapping, dict):
            raise BadFileError(f"{table.name}: expected a JSON object of path -> caption")
        for path, caption in mapping.items():
            yield f"{table.name}:{path}", {"path": path, "caption": caption}


def _checked(raw, kind: str | None, report: PairsReport) -> list[Pair]:
    """Drop missing and unsupported files and repeated pairs; group files by content."""
    pairs: list[Pair] = []
    seen_pairs: set[tuple[str, str]] = set()
    first_name: dict[str, Path] = {}
    content_cache: dict[Path, str] = {}
    for media, caption, where in raw:
        media_kind = kind_for_path(media)
        if media_kind not in TRAINABLE_KINDS:
            report.broken.append(f"{where}: {media.name} is not a picture or a sound file")
            continue
        if kind is not None and media_kind != kind:
            report.broken.append(f"{where}: {media.name} is {media_kind}; this model takes {kind}")
            continue
        if not media.is_file():
            report.broken.append(f"{where}: {media} does not exist")
            continue
        group = content_cache.get(media) or content_cache.setdefault(media, _file_hash(media))
        first = first_name.setdefault(group, media)
        if (group, caption) in seen_pairs:
            same = f" (the same file as {first.name})" if first != media else ""
            report.duplicates.append(f"{where}: {media.name}{same} with {caption!r} again")
            continue
        seen_pairs.add((group, caption))
        pairs.append(Pair(media.resolve(), caption, media_kind, group))
    report.pairs = len(pairs)
    report.media = len({p.group for p in pairs})
    report.captions = len({p.text for p in pairs})
    return pairs


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root))
