"""The web UI's handlers, without a browser: search (text, image, sound, video, a library
file), filters and paging, the empty-library and no-weights messages, library folders,
background index runs with progress, stop and resume, item details (players, moments,
snippets, metadata), the pictures of every kind, and the media rules."""

from __future__ import annotations

import inspect
import os
import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from search.errors import (
    AlreadyIndexingError,
    LibraryRootError,
    NoLibraryError,
    QueryError,
    WeightsNotFoundError,
)
from search.filters import SearchFilters, format_score
from search.models.encoders import meta_key
from search.thumbnails import page_card, waveform_picture
from search.web.jobs import DONE, FAILED, STOPPED, IndexJobs, JobStatus
from search.web.layout import build_app
from search.web.media import MediaPolicy, file_url, media_rules
from search.web.render import caption, error_line, render_detail, render_library, render_progress
from search.web.search_tab import form_filters
from search.web.service import SearchRequest, TroveUI
from tests.contract import API_NAMES
from tests.media import make_photo
from tests.media_audio import RATE, chirp, silence, tone, write_audio
from tests.media_docs import make_text_pdf
from tests.media_video import make_video, scene_frame

# The conftest photo library (its hidden folder and text file are not indexed).
PHOTOS = (
    "beach.jpg",
    "forest.jpg",
    "2023/party.png",
    "2023/snow.jpg",
    "2023/summer/lake.webp",
    "2023/summer/dog.jpg",
)


@pytest.fixture
def uploads(tmp_path: Path, monkeypatch) -> Path:
    """Gradio's upload folder for this test (where a dropped query image lands)."""
    folder = tmp_path / "gradio-uploads"
    folder.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    return folder


@pytest.fixture
def no_hf_weights(tmp_path: Path, monkeypatch) -> None:
    """An empty Hugging Face cache: no real model's weights on this machine."""
    import huggingface_hub.constants

    empty = tmp_path / "hf-empty"
    empty.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(empty))


def index_with_ui(ui: TroveUI, folder: Path, **patterns) -> JobStatus:
    ui.add_root(str(folder), **patterns)
    ui.start_indexing("tiny-clip")
    status = ui.jobs.wait(timeout=120)
    assert status.state == DONE, status
    return status


@pytest.fixture
def ui(tmp_path: Path, photo_library: Path):
    """A UI over a fresh data folder, with the conftest photo library indexed."""
    trove = TroveUI(tmp_path / "data", model="tiny-clip", jobs=IndexJobs(tmp_path / "data", 2))
    index_with_ui(trove, photo_library)
    yield trove
    trove.close()


def lib_file(photo_library: Path, name: str) -> str:
    return str((photo_library / name).resolve())


# -- empty states and errors ----------------------------------------------------------------


def test_empty_library_says_how_to_add_a_folder(tmp_path):
    ui = TroveUI(tmp_path / "data")
    page = ui.search(SearchRequest(query="a dog"))
    assert page.results == ()
    assert "library is empty" in page.message
    assert "Library tab" in page.message and "Start indexing" in page.message
    status = ui.library_status()
    assert status["exists"] is False and status["roots"] == []
    assert "Add a folder below" in render_library(status, ui.model_status())
    with pytest.raises(LibraryRootError, match="no folders yet"):
        ui.start_indexing()
    assert not (tmp_path / "data").exists(), "looking at an empty library must not create one"


def test_an_empty_query_asks_for_words_or_an_image(ui):
    page = ui.search(SearchRequest(query="   "))
    assert page.results == ()
    assert "Type some words or drop an image" in page.message


def test_no_weights_says_how_to_get_them_and_offers_tiny_clip(
    tmp_path, photo_library, no_hf_weights
):
    ui = TroveUI(tmp_path / "data")
    # The page says so before anything is tried, with the command that fixes it.
    assert "no weights on this machine" in ui.model_status()
    assert "models download clip-vit-b-32" in ui.model_status()
    ui.add_root(str(photo_library))
    with pytest.raises(WeightsNotFoundError) as caught:
        ui.start_indexing()  # a new library: the default model, clip-vit-b-32
    message = str(caught.value)
    assert "No weights for model clip-vit-b-32" in message
    assert "models download clip-vit-b-32" in message and "--model-path" in message
    assert "download not allowed" in message, "the web UI must never download weights"
    assert "choose tiny-clip under Library > Model" in message
    assert not ui.index_status().running
    line = error_line(caught.value)
    assert line.startswith("**Error:** No weights") and "\n" not in line

    # A library built with a model whose weights are gone: searching says the same.
    index_with_ui(ui, photo_library)
    ui.library().catalog.set_meta(meta_key("clip"), "clip-vit-b-32")
    with pytest.raises(WeightsNotFoundError, match="choose tiny-clip"):
        ui.search(SearchRequest(query="a dog"))
    assert "no weights" in ui.model_status()
    models = {m["name"]: m for m in ui.list_models()}
    assert models["clip-vit-b-32"]["weights_here"] is False
    assert models["tiny-clip"]["weights_here"] is True


# -- library folders ------------------------------------------------------------------------


def test_add_root_validates_the_path(tmp_path, photo_library):
    ui = TroveUI(tmp_path / "data", model="tiny-clip")
    cases = {
        "": "Type the full path",
        "photos": "relative path",
        str(tmp_path / "nope"): "does not exist",
        str(photo_library / "beach.jpg"): "is a file, not a folder",
        str(tmp_path / "data"): "Trove's own data folder",
        str(tmp_path): "holds Trove's data folder",
    }
    (tmp_path / "data").mkdir()
    for path, reason in cases.items():
        with pytest.raises(LibraryRootError, match=reason):
            ui.add_root(path)
    assert ui.roots() == []

    message = ui.add_root(f"  {photo_library}/  ", include="*.jpg, 2023/*", exclude="*.tmp\nx")
    assert message.startswith(f"Added `{photo_library.resolve()}`") and "Start indexing" in message
    [root] = ui.library_status()["roots"]
    assert root == {
        "folder": str(photo_library.resolve()),
        "include": ["*.jpg", "2023/*"],
        "exclude": ["*.tmp", "x"],
        "files": 0,
    }
    ui.add_root(str(photo_library))  # adding again replaces the patterns
    assert ui.library_status()["roots"][0]["include"] == []


def test_library_status_and_remove_root(ui, photo_library, tmp_path):
    status = ui.library_status()
    assert status["model"] == "tiny-clip"
    assert status["counts"] == {"image": 6}
    assert status["roots"][0]["files"] == 6
    assert status["size_on_disk_bytes"] > 0
    summary = render_library(status, ui.model_status())
    assert "6 image" in summary and "tiny-clip" in summary

    other = tmp_path / "more"
    make_photo(other / "extra.jpg", 77, quality=90)
    index_with_ui(ui, other)
    assert ui.library_status()["counts"] == {"image": 7}

    with pytest.raises(LibraryRootError, match="not a library folder"):
        ui.remove_root(str(tmp_path / "elsewhere"))
    message = ui.remove_root(str(photo_library))
    assert "6 files left the library" in message
    assert ui.roots() == [str(other.resolve())]
    assert ui.library_status()["counts"] == {"image": 1}
    page = ui.search(SearchRequest(query="anything"))
    assert [r.path for r in page.results] == [str((other / "extra.jpg").resolve())]
    # The index file followed: a fresh process finds one vector, not seven.
    fresh = TroveUI(ui.data_dir)
    assert len(fresh._search_engine().store) == 1
    fresh.close()


# -- index runs -----------------------------------------------------------------------------


def test_index_run_reports_progress_then_done(ui, photo_library):
    status = ui.index_status()
    assert status.state == DONE and not status.running
    assert (status.done, status.total) == (6, 6)
    assert status.rate > 0
    assert status.current in {lib_file(photo_library, name) for name in PHOTOS}
    assert status.message.startswith("Done in") and "6 indexed" in status.message
    assert status.errors == ()
    shown = render_progress(status)
    assert "**Done** with tiny-clip" in shown and "6 / 6 files (100%)" in shown
    as_json = status.to_dict()
    assert as_json["running"] is False and as_json["errors"] == []

    mid_run = JobStatus(
        state="indexing", model="tiny-clip", done=12, total=48, rate=3.0, eta_s=12.0,
        current="/photos/a.jpg", started_at=1.0, message="Encoding 48 new or changed files.",
    )  # fmt: skip
    shown = render_progress(mid_run)
    assert "**Indexing**" in shown
    assert "12 / 48 files (25%)" in shown and "3.0 files/s" in shown
    assert "about 12 s left" in shown and "Now: `/photos/a.jpg`" in shown

    again = ui.start_indexing()  # incremental: nothing new
    assert again.running
    final = ui.jobs.wait(60)
    assert final.state == DONE and final.total == 0 and "6 unchanged" in final.message


def test_stop_keeps_what_is_done_and_start_resumes(tmp_path, photo_library):
    jobs = IndexJobs(tmp_path / "data", batch_size=2)
    ui = TroveUI(tmp_path / "data", model="tiny-clip", jobs=jobs)
    ui.add_root(str(photo_library))
    seen: list[JobStatus] = []
    refused: list[str] = []
    report = jobs._on_progress

    def stop_after_first_batch(event):
        report(event)
        seen.append(jobs.status())
        if event.done == 2:
            try:
                ui.remove_root(str(photo_library))
            except AlreadyIndexingError as exc:
                refused.append(str(exc))
            with pytest.raises(AlreadyIndexingError, match="Already indexing"):
                ui.start_indexing()
            ui.stop_indexing()

    jobs._on_progress = stop_after_first_batch
    ui.start_indexing()
    stopped = jobs.wait(120)
    assert stopped.state == STOPPED, stopped
    assert (stopped.done, stopped.total) == (2, 6)
    assert "Interrupted" in stopped.message and "Everything committed is kept" in stopped.message
    assert refused and "Stop indexing" in refused[0]
    assert [s.state for s in seen[:2]] == ["indexing", "indexing"]
    assert (seen[0].done, seen[0].total) == (0, 6)
    assert seen[1].current is not None and seen[1].rate > 0
    assert ui.library_status()["counts"] == {"image": 2}
    assert "**Stopped**" in render_progress(stopped)

    jobs._on_progress = report
    ui.start_indexing()  # resume: only the four files not done yet
    resumed = jobs.wait(120)
    assert resumed.state == DONE
    assert (resumed.done, resumed.total) == (4, 4)
    assert "2 unchanged" in resumed.message
    assert ui.library_status()["counts"] == {"image": 6}
    ui.close()


def test_failed_files_are_listed_with_reasons(tmp_path, photo_library):
    (photo_library / "broken.jpg").write_text("not a JPEG at all\n")
    ui = TroveUI(tmp_path / "data", model="tiny-clip")
    status = index_with_ui(ui, photo_library)
    assert [p for p, _ in status.errors] == [str((photo_library / "broken.jpg").resolve())]
    [failed] = ui.library_status()["failed"]
    assert failed["file"].endswith("broken.jpg") and "text" in failed["reason"]
    assert "1 files failed" in render_progress(status)
    ui.close()


def test_an_index_run_that_fails_says_why(tmp_path, photo_library):
    ui = TroveUI(tmp_path / "data", model="tiny-clip")
    ui.add_root(str(photo_library))
    # Another writer (a CLI `index`) holds the library: the run fails with its message.
    ui.library()
    with ui.library().writer():
        ui.start_indexing()
        status = ui.jobs.wait(60)
    assert status.state == FAILED
    assert "Already indexing" in status.message
    assert "**Error:** Already indexing" in render_progress(status)
    ui.close()


# -- search ---------------------------------------------------------------------------------


def test_text_search_gives_a_page_of_captioned_thumbnails(ui, photo_library):
    page = ui.search(SearchRequest(query="a dog in the snow"))
    paths = {r.path for r in page.results}
    assert paths == {lib_file(photo_library, name) for name in PHOTOS}
    assert page.message.startswith("6 results") and "untrained" in page.message
    assert not page.has_more
    scores = [r.score for r in page.results]
    assert scores == sorted(scores, reverse=True)
    for result in page.results:
        thumb = Path(ui.thumbnail(result.path))
        assert thumb.is_relative_to(ui.data_dir / "thumbnails")
        with Image.open(thumb) as im:
            assert im.format == "JPEG" and max(im.size) <= 384
    first = page.results[0]
    label = caption(first, ui.roots())
    assert label.startswith(f"image · {format_score(first.score)} · picture · photos/")
    assert label.endswith(os.path.relpath(first.path, photo_library.resolve()))


def test_image_search_finds_the_same_photo_first(ui, photo_library, uploads):
    target = lib_file(photo_library, "2023/snow.jpg")
    dropped = uploads / "abc123" / "snow-copy.jpg"
    dropped.parent.mkdir()
    shutil.copy(target, dropped)
    page = ui.search(SearchRequest(image=str(dropped)))
    assert page.results[0].path == target
    assert page.results[0].score > 0.999
    assert all(r.score < 0.999 for r in page.results[1:])

    # Words and the image together are one query: the image still counts, but not alone.
    combined = ui.search(SearchRequest(query='"a red car" - people', image=str(dropped)))
    by_path = {r.path: r.score for r in combined.results}
    assert target in by_path and by_path[target] < 0.99

    # An image that was not uploaded (any other file on the server) is refused.
    with pytest.raises(QueryError, match="must be uploaded"):
        ui.search(SearchRequest(image=target))


def test_find_similar_uses_a_library_file_as_the_query(ui, photo_library, tmp_path):
    target = lib_file(photo_library, "2023/summer/lake.webp")
    page = ui.search(SearchRequest(similar_to=target))
    assert page.results[0].path == target and page.results[0].score > 0.999
    with pytest.raises(QueryError, match="not a file of this library"):
        ui.search(SearchRequest(similar_to=str(tmp_path / "elsewhere.jpg")))
    # Typed image terms must be library files too: the web UI reads no other server file.
    outside = make_photo(tmp_path / "outside.jpg", 9, quality=90)
    with pytest.raises(QueryError, match="inside the library folders"):
        ui.search(SearchRequest(query=f"{outside} + dog"))
    inside = ui.search(SearchRequest(query=f"{target} + dog"))
    assert target in {r.path for r in inside.results}


def test_find_similar_through_a_symlinked_folder(ui, photo_library, tmp_path):
    """The walker follows symlinked folders, so their files are library files too."""
    make_photo(tmp_path / "elsewhere" / "far.jpg", 31, quality=90)
    os.symlink(tmp_path / "elsewhere", photo_library / "linked")
    index_with_ui(ui, photo_library)
    path = str(photo_library.resolve() / "linked" / "far.jpg")
    page = ui.search(SearchRequest(similar_to=path))
    assert page.results[0].path == path


def test_filters_and_paging_through_the_handler(ui, photo_library):
    folder = str((photo_library / "2023" / "summer").resolve())
    page = ui.search(SearchRequest(query="x", filters=form_filters(folder=folder)))
    assert {r.path for r in page.results} == {
        lib_file(photo_library, "2023/summer/lake.webp"),
        lib_file(photo_library, "2023/summer/dog.jpg"),
    }
    nothing = ui.search(SearchRequest(query="x", filters=form_filters(min_score=0.9999)))
    assert nothing.results == () and "Nothing matches the filters" in nothing.message
    tomorrow = datetime.fromtimestamp(datetime.now().timestamp() + 86400).date().isoformat()
    later = ui.search(SearchRequest(query="x", filters=form_filters(after=tomorrow)))
    assert later.results == ()
    today = ui.search(SearchRequest(query="x", filters=form_filters(before=tomorrow, sort="date")))
    assert len(today.results) == 6 and "newest first" in today.message
    with pytest.raises(QueryError, match="YYYY-MM-DD"):
        form_filters(after="31/12/2024")
    assert form_filters(["image"], " ", "", "", 0, "relevance") == SearchFilters(kinds=("image",))

    request = SearchRequest(query="a beach")
    pages = [ui.search(request, offset=o, page_size=4) for o in (0, 4)]
    assert [len(p.results) for p in pages] == [4, 2]
    assert [p.has_more for p in pages] == [True, False]
    assert pages[1].message.startswith("Results 5-6")
    everything = ui.search(request).results
    assert pages[0].results + pages[1].results == everything
    assert ui.search(request, offset=6).message == "No more results."


def test_item_detail(ui, photo_library, tmp_path):
    path = lib_file(photo_library, "beach.jpg")
    detail = ui.item_detail(path)
    assert (detail.kind, detail.width, detail.height) == ("image", 320, 240)
    assert detail.size == os.path.getsize(path)
    assert detail.modified == pytest.approx(os.path.getmtime(path))
    assert detail.indexed is not None and detail.folder == str(photo_library.resolve())
    with Image.open(detail.preview) as im:
        assert im.size == (320, 240), "a small photo is shown whole, not upscaled"
    as_json = detail.to_dict()
    assert as_json["file"] == path and "path" not in as_json
    assert as_json["original_url"] == f"/gradio_api/file={path}"
    with pytest.raises(QueryError, match="not a file of this library"):
        ui.item_detail(str(photo_library / "settings.ini"))
    os.remove(path)
    with pytest.raises(QueryError, match="moved or deleted"):
        ui.item_detail(path)
    missing = Path(ui.thumbnail(path))
    assert missing.name == "missing.png"


def test_search_sees_files_indexed_after_it_opened_the_index(ui, tmp_path):
    assert len(ui.search(SearchRequest(query="x")).results) == 6
    later = tmp_path / "later"
    make_photo(later / "new.jpg", 55, quality=90)
    index_with_ui(ui, later)
    assert len(ui.search(SearchRequest(query="x")).results) == 7


# -- media rules and the app ----------------------------------------------------------------


def test_media_policy_serves_only_library_files_and_thumbnails(ui, photo_library, tmp_path):
    outside = make_photo(tmp_path / "outside.jpg", 8, quality=90)
    os.symlink(outside, photo_library / "link-out.jpg")
    (photo_library / ".secret.jpg").write_bytes(outside.read_bytes())
    index_with_ui(ui, photo_library)  # the symlinked file is indexed: it lies in the folder
    assert ui.library().catalog.item_by_path(str(photo_library.resolve() / "link-out.jpg"))
    policy = MediaPolicy(ui)
    root = photo_library.resolve()
    thumb = ui.thumbnail(str(root / "beach.jpg"))

    assert policy.allows(str(root / "beach.jpg"))
    assert policy.allows(str(root / "2023" / "summer" / "dog.jpg"))
    assert policy.allows(thumb)
    refused = [
        str(outside),
        f"{root}/../outside.jpg",
        f"{root}/2023/../../outside.jpg",
        str(root / "link-out.jpg"),  # a symlink pointing out of the library folder
        str(root / ".secret.jpg"),  # hidden: not indexed, so not served
        str(root / "settings.ini"),  # in the folder but not a library file
        str(ui.data_dir / "catalog.sqlite3"),
        "/etc/passwd",
        "https://example.com/x.jpg",
    ]
    for path in refused:
        assert not policy.allows(path), path


def test_every_operation_is_a_named_api_endpoint(ui):
    demo = build_app(ui)
    public = {
        fn.api_name for fn in demo.fns.values() if fn.api_visibility == "public" and fn.api_name
    }
    assert public == API_NAMES
    ui_events = [fn for fn in demo.fns.values() if fn.api_name not in API_NAMES]
    assert ui_events and all(fn.api_visibility == "private" for fn in ui_events)


def test_an_unknown_model_is_refused_up_front(tmp_path):
    from search.errors import UnknownModelError

    with pytest.raises(UnknownModelError, match="tiny-clip"):
        TroveUI(tmp_path / "data", model="nope")


def test_the_library_is_refused_when_missing(tmp_path):
    ui = TroveUI(tmp_path / "data")
    with pytest.raises(NoLibraryError):
        ui.item_detail("/x.jpg")


# -- `python app.py` / `serve` ---------------------------------------------------------------


@pytest.fixture
def launched(monkeypatch) -> list[dict]:
    """What `serve` was called with, instead of starting a server.

    app.py calls `search.web.server.serve` through the module (`search.web.server.serve(...)`,
    looked up at call time), so this attribute is what it runs; a call the real `serve` would
    not take fails here as it would there. Should a call get past it to Gradio, the test fails
    instead of serving."""
    import gradio as gr

    import search.web.server

    calls: list[dict] = []
    real = inspect.signature(search.web.server.serve)

    def fake_serve(*args, **options):
        bound = real.bind(*args, **options)
        calls.append({"data_dir": Path(bound.arguments.pop("data_dir")), **bound.arguments})

    def no_launch(self, **options):
        pytest.fail(
            f"a server was launched ({options}): app.py ran another serve than search.web.server's"
        )

    monkeypatch.setattr(search.web.server, "serve", fake_serve)
    monkeypatch.setattr(gr.Blocks, "launch", no_launch)
    return calls


def test_app_with_no_arguments_serves_the_ui_locally(tmp_path, monkeypatch, launched):
    import app

    monkeypatch.setenv("TROVE_DATA_DIR", str(tmp_path / "default"))
    monkeypatch.delenv("TROVE_AUTH", raising=False)
    assert app.main([]) == 0
    assert launched == [
        {
            "data_dir": tmp_path / "default",
            "host": "127.0.0.1",
            "port": 7860,
            "model": None,
            "model_path": None,
            "share": False,
            "auth": None,
            "watch": True,
            "poll_interval_s": 300.0,
            "open_browser": True,
        }
    ]


def test_serve_options(tmp_path, monkeypatch, launched, capsys):
    import app

    monkeypatch.delenv("TROVE_AUTH", raising=False)
    lib = str(tmp_path / "lib")
    argv = ["serve", "--library", lib, "--port", "8123", "--model", "tiny-clip"]
    assert app.main([*argv, "--host", "0.0.0.0", "--auth", "ann:s3:cret"]) == 0
    call = launched.pop()
    assert (call["data_dir"], call["host"], call["port"]) == (Path(lib), "0.0.0.0", 8123)
    assert (call["model"], call["auth"]) == ("tiny-clip", ("ann", "s3:cret"))
    # (serve refuses another host or --share without a login: tests/e2e/test_access.py.)

    assert app.main([*argv, "--auth", "nopassword"]) == 1
    assert "user:password" in capsys.readouterr().err
    assert app.main(["serve", "--library", lib, "--model", "nope"]) == 1
    assert "Unknown model 'nope'" in capsys.readouterr().err and not launched

    monkeypatch.setenv("TROVE_AUTH", "bo:pw")
    assert app.main([*argv, "--share"]) == 0
    call = launched.pop()
    assert (call["auth"], call["share"]) == (("bo", "pw"), True)


# -- a library of every kind: sounds, videos, documents ------------------------------------

BELL_RATE = 48_000


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Iterator[tuple[TroveUI, Path]]:
    """A UI over photos, two sounds, a video with a tone from 6 s to 10 s, a text note and
    a PDF, indexed with the tiny CLIP, CLAP and text models (and a sound that is noise to
    every decoder, which the index run records as failed). Indexing it (the CLIP <-> CLAP
    bridge included) takes about 20 s here, so the tests using it are marked slow."""
    from indexers.pipeline import Indexer
    from search.library import Library
    from search.models.encoders import Encoders
    from search.storage.catalog import Root

    base = tmp_path_factory.mktemp("mixed")
    root = base / "library"
    make_photo(root / "beach.jpg", 10, quality=90)
    make_photo(root / "forest.jpg", 11, quality=90)
    write_audio(
        root / "sounds" / "bell.wav", tone(660, 4.0, BELL_RATE), BELL_RATE, {"title": "Bell"}
    )
    write_audio(root / "sounds" / "birds.flac", chirp(2000, 5000, 6.0), RATE)
    make_video(root / "videos" / "late-tone.mp4", duration_s=12.0, fps=2, tone=(6.0, 10.0))
    (root / "docs").mkdir()
    (root / "docs" / "cat-notes.txt").write_text(
        "Cat notes\nOur cat Miso sleeps on the windowsill all afternoon and purrs."
    )
    make_text_pdf(
        root / "docs" / "harbour.pdf",
        ["The harbour at dawn: fishing boats come back, gulls circle.", "Page two."],
        title="Harbour notes",
    )
    (root / "sounds" / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
    root = root.resolve()
    library = Library(base / "data")
    encoders = Encoders("tiny-clip", "tiny-clap", "tiny-text")
    Indexer(library, encoders, batch_size=4, progress=False).run([Root(str(root), (), ())])
    library.close()
    ui = TroveUI(base / "data")
    yield ui, root
    ui.close()


@pytest.mark.slow
def test_every_kind_gets_a_gallery_picture_and_a_captioned_moment(mixed):
    ui, root = mixed
    page = ui.search(SearchRequest(query="a bell ringing in the harbour"))
    by_kind = {}
    for result in page.results:
        by_kind.setdefault(result.kind, result)
    assert set(by_kind) == {"image", "audio", "video", "document"}
    sizes = {}
    for kind, result in by_kind.items():
        picture = Path(ui.thumbnail(result.path, result.thumbnail))
        assert picture.is_relative_to(ui.data_dir / "thumbnails") and picture.suffix == ".jpg"
        with Image.open(picture) as im:
            sizes[kind] = im.size
            pixels = np.asarray(im.convert("RGB"), dtype=float)
        if kind == "video":  # the frame shown at the moment's start
            expected = scene_frame(result.start, 160, 120).astype(float)
            assert np.abs(pixels - expected).mean() < 25
        else:
            assert pixels.std() > 10, f"{kind}: a blank picture"
    assert sizes["audio"] == sizes["document"] == (384, 384), "squares, as the gallery shows"
    assert sizes["video"] == (160, 120), "a video still is the frame, not upscaled"

    video = by_kind["video"]
    assert video.start is not None and video.thumbnail
    assert ui.thumbnail(video.path, video.thumbnail) == video.thumbnail
    label = caption(video, ui.roots())
    assert re.fullmatch(
        r"video · -?\d\.\d{4} · \d:\d\d(–\d:\d\d)? · (picture|sound) · "
        r"library/videos/late-tone.mp4",
        label,
    )
    assert caption(by_kind["image"], ui.roots()).startswith("image · ")
    # A file no decoder reads shows the grey square (the catalog lists it as failed).
    assert Path(ui.thumbnail(str(root / "sounds" / "broken.wav"))).name == "missing.png"


def test_the_waveform_follows_the_sound(tmp_path):
    quiet_then_loud = np.concatenate([silence(2.0, 8000), tone(440, 2.0, 8000, amplitude=0.5)])
    picture = waveform_picture(quiet_then_loud, 200, "0:04")
    assert picture.size == (200, 200)
    column = np.asarray(picture.convert("L"), dtype=float)[30:]  # below the time label
    lit = (column > 120).sum(axis=0)
    assert lit[5:95].max() <= 3, "silence is a flat line"
    assert lit[105:195].min() > 60, "the tone fills most of the height"


def test_a_sound_file_is_drawn_up_to_high_pitches(tmp_path):
    from search.decode.isolation import IsolatedDecoder
    from search.thumbnails import Thumbnails

    whistle = write_audio(tmp_path / "whistle.wav", chirp(3000, 9000, 2.0))
    with IsolatedDecoder() as decoder:
        thumbnail = Thumbnails(tmp_path / "thumbs", decoder).get(str(whistle))
    with Image.open(thumbnail) as im:
        assert im.size == (384, 384)
        lit = (np.asarray(im.convert("L"), dtype=float)[60:] > 120).sum(axis=0)
    assert lit[8:-8].min() > 150, "a 9 kHz whistle is drawn as loud as its start, not silence"


def test_the_page_card_shows_the_title_and_first_lines():
    card = np.asarray(page_card("Harbour notes", "The harbour at dawn.", 384, ".pdf").convert("L"))
    blank = np.asarray(page_card("", "", 384).convert("L"))
    ink = card < 150
    assert card.shape == (384, 384)
    assert ink[10:60].sum() > 200, "the title is drawn at the top"
    assert ink[60:120].sum() > 100, "then the text"
    assert (blank < 150).sum() == 0


@pytest.mark.slow
def test_details_of_a_sound_a_video_and_a_document(mixed):
    ui, root = mixed
    bell = ui.item_detail(str(root / "sounds" / "bell.wav"))
    assert bell.kind == "audio" and bell.duration_s == pytest.approx(4.0, abs=0.05)
    assert bell.details["sample_rate"] == BELL_RATE and bell.details["title"] == "Bell"
    text = render_detail(bell, 0.5, 1.0, 3.0)
    assert "**Moment** 0:01–0:03" in text and "**Duration** 0:04" in text
    assert "**Sample rate** 48 kHz" in text and "**Title** Bell" in text
    assert f"({file_url(bell.path)}#t=1,3)" in text and "Open the original at 0:01" in text
    with Image.open(bell.preview) as im:
        assert im.size == (1600, 1600), "the panel's waveform is drawn at its own size"

    video_path = str(root / "videos" / "late-tone.mp4")
    at_start, at_eight = ui.item_detail(video_path), ui.item_detail(video_path, 8.0)
    assert at_start.preview != at_eight.preview, "the preview is the moment's still"
    assert at_eight.duration_s == pytest.approx(12.0, abs=0.6)
    text = render_detail(at_eight, 0.2, 8.0, 10.0)
    assert "**Moment** 0:08–0:10" in text and "**Codec** h264" in text
    assert "#t=8,10)" in text

    pdf = ui.item_detail(str(root / "docs" / "harbour.pdf"))
    text = render_detail(pdf, 0.3, snippet="The harbour at dawn: *boats*")
    assert "**Pages** 2" in text and "> The harbour at dawn: \\*boats\\*" in text
    assert "#t=" not in text and "Moment" not in text
    as_json = pdf.to_dict()
    assert as_json["details"]["pages"] == 2 and as_json["duration_s"] is None
    # The same sound found by search carries its moment and no snippet.
    page = ui.search(SearchRequest(query="x", filters=form_filters(["audio"])))
    assert {r.kind for r in page.results} == {"audio"} and len(page.results) == 2


@pytest.mark.slow
def test_a_dropped_sound_or_video_is_the_query(mixed, uploads):
    ui, root = mixed
    for name in ("sounds/bell.wav", "videos/late-tone.mp4"):
        dropped = uploads / name.replace("/", "-")
        shutil.copy(root / name, dropped)
        page = ui.search(SearchRequest(files=(str(dropped),)))
        assert page.results[0].path == str(root / name), name
        assert page.results[0].score > 0.99
        # Find similar on the library file gives the same first result.
        similar = ui.search(SearchRequest(similar_to=str(root / name)))
        assert similar.results[0].path == str(root / name)
    note = uploads / "note.txt"
    note.write_text("a note")
    with pytest.raises(QueryError, match="note.txt is a document"):
        ui.search(SearchRequest(files=(str(note),)))
    data = uploads / "data.bin"
    data.write_bytes(b"\x00" * 16)
    with pytest.raises(QueryError, match="Search by a photo, a sound or a video; data.bin is"):
        ui.search(SearchRequest(files=(str(data),)))
    with pytest.raises(QueryError, match="type some of its words"):
        ui.search(SearchRequest(similar_to=str(root / "docs" / "harbour.pdf")))
    with pytest.raises(QueryError, match="must be uploaded"):
        ui.search(SearchRequest(files=(str(root / "sounds" / "bell.wav"),)))


@pytest.mark.slow
def test_kind_and_duration_filters(mixed):
    ui, root = mixed
    longer = ui.search(SearchRequest(query="x", filters=form_filters(min_duration=5)))
    assert {Path(r.path).name for r in longer.results} == {"birds.flac", "late-tone.mp4"}
    short = form_filters(["audio", "video"], max_duration=4.5)
    assert [Path(r.path).name for r in ui.search(SearchRequest("x", filters=short)).results] == [
        "bell.wav"
    ]
    # A cleared number field sends 0: no limit at either end.
    assert form_filters(min_duration=0, max_duration=0) == SearchFilters()
    assert form_filters(max_duration=None) == SearchFilters()
    with pytest.raises(QueryError, match="duration range is empty"):
        form_filters(min_duration=10, max_duration=5)
    docs = ui.search(SearchRequest(query="cat", filters=form_filters(["document"])))
    assert {r.kind for r in docs.results} == {"document"}


@pytest.mark.slow
def test_media_policy_serves_every_kind_of_library_file(mixed):
    ui, root = mixed
    policy = MediaPolicy(ui)
    for name in ("sounds/bell.wav", "videos/late-tone.mp4", "docs/harbour.pdf", "beach.jpg"):
        assert policy.allows(str(root / name)), name
    (root / "sounds" / ".hidden.wav").write_bytes((root / "sounds" / "bell.wav").read_bytes())
    for refused in ("sounds/broken.wav", "sounds/.hidden.wav", "sounds/nope.wav"):
        assert not policy.allows(str(root / refused)), refused
    allowed, blocked = media_rules(ui)
    assert allowed == [str(ui.thumbs.folder), str(root)]
    assert str(ui.data_dir / "catalog.sqlite3") in blocked
