"""Search filters and paging: kind, folder, modification dates, minimum score, sort by date,
offsets, and the fetch widening that finds filtered results far down the ranking."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest

from search.engine import DATE_SORT_POOL, OVERFETCH, SearchEngine
from search.errors import QueryError
from search.filters import SCORE_DECIMALS, SearchFilters, parse_date
from tests.media import make_photo


def _at(day: str) -> float:
    return datetime.fromisoformat(day).timestamp()


@pytest.fixture
def dated_library(tmp_path: Path, library, index_run):
    """Eight photos in two folders, each modified on its own day (2019-01-10 + i years)."""
    root = tmp_path / "photos"
    photos = []
    for i in range(8):
        folder = root / ("trips" if i % 2 else "home")
        path = make_photo(folder / f"p{i}.jpg", 40 + i, quality=90)
        stamp = _at(f"{2019 + i}-01-10 12:00")
        os.utime(path, (stamp, stamp))
        photos.append(path.resolve())
    summary = index_run(root)
    assert summary.indexed == 8
    return root.resolve(), photos


def _paths(results) -> list[str]:
    return [r.path for r in results]


def test_no_filters_is_the_plain_search(dated_library, library):
    engine = SearchEngine(library)
    plain = engine.search("a red house", k=8)
    assert engine.search("a red house", k=8, filters=SearchFilters()) == plain
    assert len(plain) == 8
    scores = [r.score for r in plain]
    assert scores == sorted(scores, reverse=True)


def test_folder_filter_keeps_only_files_inside(dated_library, library):
    root, photos = dated_library
    engine = SearchEngine(library)
    trips = engine.search("a red house", k=10, filters=SearchFilters(folder=str(root / "trips")))
    assert sorted(_paths(trips)) == sorted(str(p) for p in photos[1::2])
    # A folder whose name merely starts like another is not inside it.
    (root / "trip").mkdir()
    none = engine.search("x", k=10, filters=SearchFilters(folder=str(root / "trip")))
    assert none == []
    # A trailing slash or ~ makes no difference.
    again = engine.search("a red house", k=10, filters=SearchFilters(folder=f"{root}/trips/"))
    assert _paths(again) == _paths(trips)


def test_kind_filter(dated_library, library):
    engine = SearchEngine(library)
    assert len(engine.search("x", k=10, filters=SearchFilters(kinds=("image",)))) == 8
    assert engine.search("x", k=10, filters=SearchFilters(kinds=("audio", "video"))) == []
    with pytest.raises(QueryError, match="Unknown kind 'sound'"):
        SearchFilters(kinds=("sound",))


def test_date_range_includes_both_days(dated_library, library):
    _, photos = dated_library
    engine = SearchEngine(library)
    filters = SearchFilters(
        modified_after=parse_date("2021-01-10"),
        modified_before=parse_date("2023-01-10", end_of_day=True),
    )
    found = engine.search("x", k=10, filters=filters)
    assert sorted(_paths(found)) == sorted(str(p) for p in photos[2:5])  # 2021, 2022, 2023
    only_after = engine.search("x", k=10, filters=SearchFilters(modified_after=_at("2025-01-01")))
    assert sorted(_paths(only_after)) == sorted(str(p) for p in photos[6:])


def test_minimum_score(dated_library, library):
    engine = SearchEngine(library)
    everything = engine.search("a red house", k=8)
    cut = everything[3].score
    kept = engine.search("a red house", k=8, filters=SearchFilters(min_score=cut))
    # Results that tie with the cut at the shown precision are kept too.
    assert _paths(kept) == _paths([r for r in everything if r.score >= cut])
    assert _paths(kept)[:4] == _paths(everything[:4])
    assert engine.search("x", k=8, filters=SearchFilters(min_score=1.0)) == []


def test_a_shown_score_typed_as_the_minimum_keeps_that_result(dated_library, library):
    """The score a user reads (CLI, --json, web UI) is the number the filter compares: any
    result's own score as the minimum keeps it, whichever way its last digit was rounded."""
    engine = SearchEngine(library)
    everything = engine.search("a red house", k=8)
    assert len(everything) == 8
    for result in everything:
        assert result.score == round(result.score, SCORE_DECIMALS)
        kept = engine.search("a red house", k=8, filters=SearchFilters(min_score=result.score))
        assert result.path in _paths(kept)
        assert min(r.score for r in kept) == result.score


def test_sort_by_date_is_newest_first_among_matches(dated_library, library):
    _, photos = dated_library
    engine = SearchEngine(library)
    by_date = engine.search("x", k=8, filters=SearchFilters(sort="date"))
    assert _paths(by_date) == [str(p) for p in reversed(photos)]
    assert [r.modified for r in by_date] == sorted((r.modified for r in by_date), reverse=True)
    assert by_date[0].to_dict()["modified"] == "2026-01-10T12:00:00"


def test_paging_gives_disjoint_pages_in_order(dated_library, library):
    engine = SearchEngine(library)
    everything = engine.search("a red house", k=8)
    pages = [engine.search("a red house", k=3, offset=o) for o in (0, 3, 6)]
    assert [len(p) for p in pages] == [3, 3, 2]
    assert [r.path for page in pages for r in page] == _paths(everything)
    assert engine.search("a red house", k=3, offset=9) == []
    with pytest.raises(QueryError, match="negative"):
        engine.search("x", offset=-1)
    dated = [engine.search("x", k=3, offset=o, filters=SearchFilters(sort="date")) for o in (0, 3)]
    newest_six = engine.search("x", k=6, filters=SearchFilters(sort="date"))
    assert _paths(dated[0] + dated[1]) == _paths(newest_six)


def test_widening_finds_filtered_files_far_down_the_ranking(tmp_path, library, index_run):
    """Three wanted files among 60: the first fetch (k * OVERFETCH segments) cannot hold
    them all whatever the ranking, so the engine must widen until it has them."""
    root = tmp_path / "photos"
    for i in range(60):
        make_photo(root / "many" / f"m{i:02d}.png", 100 + i, size=(64, 48))
    wanted = [make_photo(root / "few" / f"f{i}.png", 300 + i, size=(64, 48)) for i in range(3)]
    index_run(root)
    engine = SearchEngine(library)
    ranking = _paths(engine.search("a blue bird", k=63))
    # Beyond the first fetch (3 * OVERFETCH segments): only widening can reach it.
    assert max(ranking.index(str(p.resolve())) for p in wanted) >= 3 * OVERFETCH
    found = engine.search("a blue bird", k=3, filters=SearchFilters(folder=str(root / "few")))
    assert sorted(_paths(found)) == sorted(str(p.resolve()) for p in wanted)
    assert len(SearchEngine(library).search("x", k=3, filters=SearchFilters(sort="date"))) == 3
    assert DATE_SORT_POOL >= 100


def test_invalid_filters_say_what_is_wrong():
    with pytest.raises(QueryError, match="sort"):
        SearchFilters(sort="size")
    with pytest.raises(QueryError, match="outside -1..1"):
        SearchFilters(min_score=2.0)
    with pytest.raises(QueryError, match="date range is empty"):
        SearchFilters(modified_after=_at("2024-02-01"), modified_before=_at("2024-01-01"))
    with pytest.raises(QueryError, match="YYYY-MM-DD"):
        parse_date("last tuesday")
    with pytest.raises(QueryError, match="YYYY-MM-DD"):
        parse_date("2024-13-01")


def test_parse_date():
    assert parse_date("2024-06-30") == _at("2024-06-30 00:00")
    assert parse_date("2024-06-30", end_of_day=True) == _at("2024-07-01 00:00")
    assert parse_date(" 2024-06-30 18:15 ", end_of_day=True) == _at("2024-06-30 18:15")


def test_filters_from_what_a_user_gave():
    # The CLI's options, the API's arguments and the search form are read by this one builder.
    given = SearchFilters.from_options(
        ["image", "image"], " ~/photos ", "2024-06-01", "2024-06-30", 0.25, None, 5, 60
    )
    assert given == SearchFilters(
        kinds=("image",),
        folder=os.path.expanduser("~/photos"),
        modified_after=_at("2024-06-01 00:00"),
        modified_before=_at("2024-07-01 00:00"),  # the whole of the last day
        min_score=0.25,
        sort="relevance",
        min_duration=5.0,
        max_duration=60.0,
    )
    assert SearchFilters.from_options([], "  ", " ", "", None, "") == SearchFilters()
    assert SearchFilters.from_options(min_score=0).min_score == 0.0  # a minimum, not "none"
    with pytest.raises(QueryError, match="YYYY-MM-DD"):
        SearchFilters.from_options(after="31/12/2024")
    with pytest.raises(QueryError, match="date range is empty"):
        SearchFilters.from_options(after="2024-02-01", before="2024-01-01")
    with pytest.raises(QueryError, match="Unknown kind 'picture'"):
        SearchFilters.from_options(kinds=["picture"])


def test_cli_filter_flags(dated_library, library, tmp_path, capsys):
    import app

    root, photos = dated_library
    data = str(library.data_dir)
    argv = ["search", "x", "--data-dir", data, "--json", "-k", "10"]
    assert app.main([*argv, "--folder", str(root / "home"), "--after", "2021-01-10"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert sorted(r["path"] for r in found) == sorted(
        str(p) for p in (photos[2], photos[4], photos[6])
    )
    assert all(r["kind"] == "image" and "modified" in r for r in found)

    assert app.main([*argv, "--sort", "date", "--before", "2020-01-10", "--kind", "image"]) == 0
    assert [r["path"] for r in json.loads(capsys.readouterr().out)] == [
        str(photos[1]),
        str(photos[0]),
    ]
    assert app.main([*argv, "--min-score", "1", "--offset", "0"]) == 0
    assert json.loads(capsys.readouterr().out) == []

    assert app.main(["search", "x", "--data-dir", data, "--min-score", "1"]) == 0
    assert "nothing matches the filters" in capsys.readouterr().err

    assert app.main(["search", "x", "--data-dir", data, "--after", "someday"]) == 1
    assert "YYYY-MM-DD" in capsys.readouterr().err
