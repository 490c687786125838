"""Near-duplicate photos: the same picture resized, recompressed, re-saved or brightened.

Two tests, both needed: CLIP vectors nearly parallel (cheap: finds candidate pairs among all
photos with one exact range search) and perceptual hashes a few bits apart (confirms: two
different shots of the same scene can be close in CLIP space, but their pixels differ).
Groups are reported with paths and sizes; nothing is ever deleted or moved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from search.decode.image import load_image
from search.errors import BadFileError
from search.storage.catalog import Catalog

# Candidate pairs only: the hash decides. Not measured here (no real CLIP weights on the
# development machine); re-encodes of one photo are expected well above it, and a pair of
# different shots that passes it is still stopped by the hash.
CLIP_THRESHOLD = 0.92
# pHash bits (of 64) that may differ. Measured on the 12 demo photos: JPEG quality 50 or half
# size flips at most 2, brightness +20% at most 6; two different photos differ by at least 20
# (mean 32). Crops and rotations are not caught: a 5% crop already flips 12 on average.
HASH_MAX_DISTANCE = 10
HASH_SIZE = 8
_DCT_SIZE = 32


@dataclass(frozen=True)
class DuplicateMember:
    item_id: int
    path: str
    size: int


@dataclass(frozen=True)
class DuplicateGroup:
    """Files showing the same picture, largest first (the largest is usually the original).
    `reclaimable` is what keeping only the largest would free, in bytes."""

    members: tuple[DuplicateMember, ...]

    @property
    def reclaimable(self) -> int:
        return sum(m.size for m in self.members[1:])

    def to_dict(self) -> dict:
        return {
            "reclaimable_bytes": self.reclaimable,
            "files": [{"path": m.path, "size": m.size} for m in self.members],
        }


@dataclass(frozen=True)
class LibraryDuplicates:
    """The groups `find_library_duplicates` found, and how many indexed photos it compared."""

    groups: list[DuplicateGroup]
    photos: int


def phash(image: Image.Image) -> int:
    """64-bit perceptual hash: signs of the lowest 8x8 DCT frequencies of a 32x32 grey
    thumbnail against their median (the DC term left out)."""
    grey = image.convert("L").resize((_DCT_SIZE, _DCT_SIZE), Image.Resampling.LANCZOS)
    pixels = np.asarray(grey, dtype=np.float64)
    basis = _dct_matrix(_DCT_SIZE)
    low = (basis @ pixels @ basis.T)[:HASH_SIZE, :HASH_SIZE].ravel()
    bits = low > np.median(low[1:])
    return int("".join("1" if b else "0" for b in bits), 2)


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    basis = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2 / n)
    basis[0] /= np.sqrt(2)
    return basis


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def find_duplicates(
    item_ids: Sequence[int],
    paths: Sequence[str],
    sizes: Sequence[int],
    vectors: np.ndarray,
    clip_threshold: float = CLIP_THRESHOLD,
    hash_max_distance: int = HASH_MAX_DISTANCE,
    load: Callable[[str], Image.Image] | None = None,
) -> list[DuplicateGroup]:
    """Groups of near-identical images, the group that frees most space first.

    `vectors` are the items' L2-normalised CLIP image vectors, row i for item_ids[i]. Only
    images in a candidate pair are opened (with `load`, default: the indexer's image loader)
    to be hashed. An image that can no longer be read is left out of every group.
    """
    n = len(item_ids)
    if not (len(paths) == len(sizes) == n == len(vectors)):
        raise ValueError("item_ids, paths, sizes and vectors must have one entry per item")
    if n < 2:
        return []
    pairs = _candidate_pairs(np.ascontiguousarray(vectors, dtype=np.float32), clip_threshold)
    load = load or _load_upright
    hashes: dict[int, int | None] = {}

    def hash_of(i: int) -> int | None:
        if i not in hashes:
            try:
                hashes[i] = phash(load(paths[i]))
            except (OSError, ValueError, BadFileError):
                hashes[i] = None  # moved or unreadable since indexing: no claim either way
        return hashes[i]

    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        hi, hj = hash_of(i), hash_of(j)
        if hi is not None and hj is not None and hamming(hi, hj) <= hash_max_distance:
            parent[root(i)] = root(j)

    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    result = [
        DuplicateGroup(
            tuple(
                DuplicateMember(int(item_ids[i]), paths[i], int(sizes[i]))
                for i in sorted(members, key=lambda i: (-sizes[i], paths[i]))
            )
        )
        for members in groups.values()
        if len(members) > 1
    ]
    result.sort(key=lambda g: (-g.reclaimable, g.members[0].path))
    return result


def find_library_duplicates(
    catalog: Catalog,
    model: str | None,
    clip_threshold: float = CLIP_THRESHOLD,
    hash_max_distance: int = HASH_MAX_DISTANCE,
) -> LibraryDuplicates:
    """Near-identical photos among a library's indexed photos, by the vectors its CLIP
    `model` gave them (None before anything is indexed: no photos, no groups).

    Only photos take part: a video's frames share the model's vectors but are not files a
    person could delete one of.
    """
    if model is None:
        return LibraryDuplicates([], 0)
    segment_ids, vectors = catalog.vectors(model)
    found = catalog.resolve_segments([int(i) for i in segment_ids])
    rows, photos = [], []
    for row, segment_id in enumerate(segment_ids):
        item = found.get(int(segment_id), (None,))[0]
        if item is not None and item.kind == "image":
            rows.append(row)
            photos.append(item)
    groups = find_duplicates(
        [item.id for item in photos],
        [item.path for item in photos],
        [item.size for item in photos],
        vectors[rows] if rows else np.zeros((0, 1), np.float32),
        clip_threshold,
        hash_max_distance,
    )
    return LibraryDuplicates(groups, len(photos))


def _candidate_pairs(vectors: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Pairs (i < j) with cosine >= threshold: FAISS range search over an exact inner-product
    index, in blocks so memory stays bounded for a large library."""
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    pairs = []
    block = 4096
    for start in range(0, len(vectors), block):
        lims, _, neighbours = index.range_search(vectors[start : start + block], threshold)
        for row in range(len(lims) - 1):
            i = start + row
            for j in neighbours[lims[row] : lims[row + 1]]:
                if j > i:
                    pairs.append((i, int(j)))
    return pairs


def _load_upright(path: str) -> Image.Image:
    return load_image(path, min_side=_DCT_SIZE * 4)[0]
