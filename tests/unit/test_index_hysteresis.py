"""A library sitting on a threshold of the index type (exact/IVF, IVF's list count) does not
rebuild its index back and forth as a few files come and go (search/storage/store.py)."""

from __future__ import annotations

from search.storage.store import (
    FLAT,
    FLAT_MAX_COMPONENTS,
    HYSTERESIS,
    choose_index,
    settled_index,
)

DIM = 512
THRESHOLD = FLAT_MAX_COMPONENTS // DIM  # the last count searched exactly


def rebuilds(counts: list[int], pick) -> int:
    """How many times the index type changes as the library passes through `counts`."""
    current, changes = None, 0
    for count in counts:
        chosen = pick(current, count).factory
        if current is not None and chosen != current:
            changes += 1
        current = chosen
    return changes


def test_a_library_on_the_exact_ivf_line_keeps_its_index():
    wobble = [THRESHOLD + d for d in (0, 1, -1, 2, -2, 50, -50, 1, 0) * 3]
    assert rebuilds(wobble, lambda cur, n: choose_index(n, DIM)) > 10  # without hysteresis
    assert rebuilds(wobble, lambda cur, n: settled_index(cur, n, DIM)) == 0


def test_it_switches_once_the_library_really_grows_or_shrinks():
    assert settled_index(FLAT, int(THRESHOLD * (1 + HYSTERESIS / 2)), DIM).factory == FLAT
    grown = settled_index(FLAT, int(THRESHOLD * (1 + 2 * HYSTERESIS)), DIM)
    assert grown.factory.startswith("IVF")
    assert settled_index(grown.factory, int(THRESHOLD * (1 - HYSTERESIS / 2)), DIM) == (
        choose_index(THRESHOLD + 1, DIM)  # kept, with its own probes
    )
    assert settled_index(grown.factory, int(THRESHOLD * (1 - 2 * HYSTERESIS)), DIM).factory == (
        FLAT
    )


def test_the_ivf_list_count_has_the_same_hysteresis():
    # IVF's lists go up by powers of two with the library's size: at such a step, a library
    # keeps the list count it was built with.
    step = next(
        n
        for n in range(100_000, 2_000_000, 1000)
        if choose_index(n, DIM).factory != choose_index(n - 1000, DIM).factory
    )
    wobble = [step + d for d in (0, -1000, 1000, -2000, 0) * 3]
    assert rebuilds(wobble, lambda cur, n: choose_index(n, DIM)) > 5
    assert rebuilds(wobble, lambda cur, n: settled_index(cur, n, DIM)) == 0
    assert settled_index(None, step, DIM) == choose_index(step, DIM)
