"""The Search tab: the query box, the drop areas, filters and sort, the results gallery
with "more results", and the detail panel with its players, the transcript of a sound or
video (search/web/transcript.py) and "Find similar"."""

from __future__ import annotations

import gradio as gr

from search.decode.kinds import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from search.engine import SearchResult
from search.errors import TroveError
from search.filters import KINDS, SORTS, SearchFilters
from search.web.access import require_local_client
from search.web.render import caption, error_line, header_line, render_detail
from search.web.service import (
    PAGE_SIZE,
    QUERY_HINT,
    QUERY_SLOTS,
    SearchPage,
    SearchRequest,
    TroveUI,
    empty_library_message,
)
from search.web.transcript import TRANSCRIPT_CSS, TRANSCRIPT_JS, render_transcript

# How often a page with results checks whether the library changed under them.
LIVE_REFRESH_S = 3.0
# What the drop area takes.
QUERY_FILE_TYPES = sorted(IMAGE_EXTENSIONS | AUDIO_EXTENSIONS | VIDEO_EXTENSIONS)


def search_tab(ui: TroveUI, demo: gr.Blocks, header: gr.Markdown) -> None:
    """Lay out the Search tab and wire its events (private: the API is the public surface);
    `header` is the page's status line, which each search refreshes."""
    kinds = list(KINDS)
    with gr.Tab("Search", id="search", elem_id="tab-search"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                query = gr.Textbox(
                    label="Search",
                    placeholder='e.g. a dog in the snow, or "beach at sunset" - people',
                    info=QUERY_HINT,
                    lines=1,
                    max_lines=3,
                    elem_id="query",
                    autofocus=True,
                )
                similar_to = gr.Textbox(
                    label="Similar to (a library file; set by Find similar)",
                    placeholder="empty: not searching by a library file",
                    elem_id="similar-to",
                    lines=1,
                )
                with gr.Row():
                    search_btn = gr.Button(
                        "Search", variant="primary", scale=3, elem_id="search-btn"
                    )
                    clear_btn = gr.Button("Clear", scale=1, elem_id="clear-btn")
            with gr.Column(scale=1, min_width=220):
                image = gr.Image(
                    label="Image query (drop, paste or click)",
                    type="filepath",
                    sources=["upload", "clipboard"],
                    height=190,
                    elem_id="image-query",
                )
            with gr.Column(scale=1, min_width=220):
                query_file = gr.File(
                    label="Sound or video query (or a photo: drop or click)",
                    file_types=QUERY_FILE_TYPES,
                    type="filepath",
                    height=190,
                    elem_id="file-query",
                )
        with gr.Accordion("Filters and sort", open=False, elem_id="filters"):
            with gr.Row():
                kind_box = gr.CheckboxGroup(
                    kinds, label="Kind (none ticked: every kind)", elem_id="kinds"
                )
                folder = gr.Textbox(
                    label="Folder",
                    placeholder="only files inside this folder",
                    elem_id="folder-filter",
                )
                after = gr.Textbox(label="Modified from", placeholder="YYYY-MM-DD", elem_id="after")
                before = gr.Textbox(
                    label="Modified until", placeholder="YYYY-MM-DD", elem_id="before"
                )
            with gr.Row():
                min_duration = gr.Number(
                    None,
                    label="Shortest (seconds)",
                    info="sounds and videos only",
                    minimum=0,
                    elem_id="min-duration",
                )
                max_duration = gr.Number(
                    None,
                    label="Longest (seconds)",
                    info="0 or empty: no limit",
                    minimum=0,
                    elem_id="max-duration",
                )
                min_score = gr.Slider(
                    0,
                    1,
                    value=0,
                    step=0.01,
                    label="Minimum score (0: none)",
                    elem_id="min-score",
                )
                sort = gr.Radio(
                    list(SORTS),
                    value="relevance",
                    label="Sort",
                    info="date: newest first among the best matches",
                    elem_id="sort",
                )
        status_line = gr.Markdown(elem_id="search-status")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                gallery = gr.Gallery(
                    label="Results",
                    columns=4,
                    height="auto",
                    object_fit="cover",
                    allow_preview=False,
                    buttons=[],
                    elem_id="results",
                )
                more_btn = gr.Button("More results", visible=False, elem_id="more-btn")
            with gr.Column(scale=2, visible=False, elem_id="detail") as detail_col:
                detail_image = gr.Image(
                    label="Selected",
                    type="filepath",
                    interactive=False,
                    height=420,
                    buttons=["fullscreen"],
                    elem_id="detail-image",
                )
                detail_audio = gr.Audio(
                    label="Listen",
                    type="filepath",
                    interactive=False,
                    visible=False,
                    elem_id="detail-audio",
                )
                detail_video = gr.Video(
                    label="Watch",
                    interactive=False,
                    height=420,
                    visible=False,
                    elem_id="detail-video",
                )
                detail_transcript = gr.HTML(
                    "",
                    js_on_load=TRANSCRIPT_JS,
                    css_template=TRANSCRIPT_CSS,
                    elem_id="detail-transcript",
                )
                detail_meta = gr.Markdown(elem_id="detail-meta")
                with gr.Row():
                    similar_btn = gr.Button(
                        "Find similar", variant="primary", elem_id="find-similar"
                    )
                    # On this machine's own desktop: shown only to a browser on this machine.
                    open_btn = gr.Button("Open", visible=False, elem_id="open-file")
                    reveal_btn = gr.Button("Show in folder", visible=False, elem_id="reveal-file")
                    close_btn = gr.Button("Close", elem_id="close-detail")
        # What the page keeps between events; inside the tab, as a State among the tabs
        # would be taken for one.
        results_state = gr.State([])
        request_state = gr.State(None)
        selected_state = gr.State(None)
        # The catalog generation the shown results were searched at; while it moves on (the
        # folder watcher indexed files), the search runs again: results without a reload.
        shown_generation = gr.State(None)
        live_timer = gr.Timer(LIVE_REFRESH_S)

    def run_search(
        q, img, file_, sim, kinds_, folder_, after_, before_, shortest, longest, min_s, sort_
    ):
        try:
            request = SearchRequest(
                query=q or "",
                image=img,
                similar_to=sim or "",
                filters=form_filters(
                    kinds_, folder_, after_, before_, min_s, sort_, shortest, longest
                ),
                files=(file_,) if file_ else (),
            )
            page = ui.search(request)
        except TroveError as exc:
            return (
                gr.Gallery(value=[], selected_index=None),
                error_line(exc),
                [],
                None,
                gr.Button(visible=False),
                gr.Column(visible=False),
                header_line(ui),
            )
        return _page_outputs(page, [], request)

    def _page_outputs(page: SearchPage, before_: list[dict], request: SearchRequest):
        roots = ui.roots()
        shown = before_ + [_shown_row(r) for r in page.results]
        items = [
            (ui.thumbnail(r["path"], r.get("thumbnail")), caption(_as_result(r), roots))
            for r in shown
        ]
        # A new search drops the old selection; more results keep it.
        gallery_update = (
            gr.Gallery(value=items) if before_ else gr.Gallery(value=items, selected_index=None)
        )
        return (
            gallery_update,
            page.message,
            shown,
            request,
            gr.Button(visible=page.has_more),
            gr.skip() if before_ else gr.Column(visible=False),
            header_line(ui),
        )

    def follow_library(shown, request, seen):
        generation = ui.library_generation()
        if request is None or seen is None or generation == seen:
            return (*(gr.skip(),) * len(search_outputs), generation)
        try:
            page = ui.search(request, page_size=max(len(shown), PAGE_SIZE))
        except TroveError:
            return (*(gr.skip(),) * len(search_outputs), generation)
        roots = ui.roots()
        rows = [_shown_row(r) for r in page.results]
        items = [
            (ui.thumbnail(r["path"], r.get("thumbnail")), caption(_as_result(r), roots))
            for r in rows
        ]
        # The same search again: the open detail panel stays.
        more = gr.Button(visible=page.has_more)
        outputs = (gr.Gallery(value=items), page.message, rows, request, more, gr.skip())
        return (*outputs, header_line(ui), generation)

    def more_results(shown, request):
        if request is None:
            hide = gr.Button(visible=False)
            return gr.skip(), "Search first.", shown, request, hide, gr.skip(), gr.skip()
        try:
            page = ui.search(request, offset=len(shown))
        except TroveError as exc:
            failed = error_line(exc)
            return gr.skip(), failed, shown, request, gr.Button(), gr.skip(), gr.skip()
        return _page_outputs(page, shown, request)

    def select_result(shown, evt: gr.SelectData):
        index = evt.index if isinstance(evt.index, int) else evt.index[0]
        if not shown or index >= len(shown):
            return (gr.skip(),) * 8
        picked = shown[index]
        start, end = picked.get("start"), picked.get("end")
        try:
            detail = ui.item_detail(picked["path"], start)
        except TroveError as exc:
            hidden = gr.Audio(value=None, visible=False), gr.Video(value=None, visible=False)
            failed = error_line(exc)
            column = gr.Column(visible=True)
            return None, *hidden, "", failed, picked["path"], column, gr.Button()
        kind = detail.kind
        # Sounds and videos play in their own player; the picture is for the others.
        return (
            gr.Image(value=detail.preview, visible=kind not in ("audio", "video")),
            gr.Audio(value=detail.path if kind == "audio" else None, visible=kind == "audio"),
            gr.Video(value=detail.path if kind == "video" else None, visible=kind == "video"),
            render_transcript(detail.transcript, kind, start, end),
            render_detail(
                detail,
                picked["score"],
                start,
                end,
                picked.get("snippet"),
                picked.get("matched", ()),
            ),
            picked["path"],
            gr.Column(visible=True),
            gr.Button(visible=kind in QUERY_SLOTS),
        )

    def find_similar(path, kinds_, folder_, after_, before_, shortest, longest, min_s, sort_):
        if not path:
            return (gr.skip(),) * 11
        outputs = run_search(
            "",
            None,
            None,
            path,
            kinds_,
            folder_,
            after_,
            before_,
            shortest,
            longest,
            min_s,
            sort_,
        )
        return ("", None, None, path, *outputs)

    filter_inputs = [kind_box, folder, after, before, min_duration, max_duration]
    filter_inputs += [min_score, sort]
    search_inputs = [query, image, query_file, similar_to, *filter_inputs]
    search_outputs = [gallery, status_line, results_state, request_state, more_btn]
    search_outputs += [detail_col, header]
    for trigger in (search_btn.click, query.submit, image.upload, query_file.upload):
        trigger(
            run_search,
            search_inputs,
            search_outputs,
            api_visibility="private",
            show_progress_on=[gallery],
        ).then(ui.library_generation, None, [shown_generation], api_visibility="private")
    live_timer.tick(
        follow_library,
        [results_state, request_state, shown_generation],
        [*search_outputs, shown_generation],
        api_visibility="private",
        show_progress="hidden",
    )
    more_btn.click(
        more_results,
        [results_state, request_state],
        search_outputs,
        api_visibility="private",
    )
    gallery.select(
        select_result,
        [results_state],
        [
            detail_image,
            detail_audio,
            detail_video,
            detail_transcript,
            detail_meta,
            selected_state,
            detail_col,
            similar_btn,
        ],
        api_visibility="private",
    )
    similar_btn.click(
        find_similar,
        [selected_state, *filter_inputs],
        [query, image, query_file, similar_to, *search_outputs],
        api_visibility="private",
    )
    close_btn.click(
        # Stop a playing sound or video with the panel.
        lambda: (gr.Column(visible=False), None, None),
        None,
        [detail_col, detail_audio, detail_video],
        api_visibility="private",
    )
    clear_btn.click(
        lambda: ("", None, None, "", [], "", [], None, gr.Button(visible=False)),
        None,
        [
            query,
            image,
            query_file,
            similar_to,
            gallery,
            status_line,
            results_state,
            request_state,
            more_btn,
        ],
        api_visibility="private",
    )

    def show_empty_library():
        # First run: say at once how to add a folder, before anyone searches.
        counts = ui.library_status(folder_counts=False)["counts"]
        return "" if counts else empty_library_message(ui.index_status())

    demo.load(show_empty_library, None, [status_line], api_visibility="private")

    def offer_desktop(request: gr.Request):
        try:
            require_local_client(request)
        except TroveError:
            return gr.Button(visible=False), gr.Button(visible=False)
        return gr.Button(visible=True), gr.Button(visible=True)

    def open_selected(path, reveal: bool, request: gr.Request):
        if not path:
            return "Choose a result first."
        try:
            require_local_client(request)
            return ui.open_file(path, reveal)
        except TroveError as exc:
            return error_line(exc)

    def open_it(path, request: gr.Request):
        return open_selected(path, False, request)

    def reveal_it(path, request: gr.Request):
        return open_selected(path, True, request)

    demo.load(offer_desktop, None, [open_btn, reveal_btn], api_visibility="private")
    open_btn.click(open_it, [selected_state], [status_line], api_visibility="private")
    reveal_btn.click(reveal_it, [selected_state], [status_line], api_visibility="private")


def _shown_row(result: SearchResult) -> dict:
    """A result as the page keeps it between events (gr.State holds plain data)."""
    return {
        "path": result.path,
        "score": result.score,
        "kind": result.kind,
        "start": result.start,
        "end": result.end,
        "snippet": result.snippet,
        "thumbnail": result.thumbnail,
        "matched": list(result.matched),
    }


def _as_result(row: dict) -> SearchResult:
    return SearchResult(row["path"], row["kind"], row["score"], row.get("start"), row.get("end"))


def form_filters(
    kinds: list[str] | None = None,
    folder: str | None = "",
    after: str | None = "",
    before: str | None = "",
    min_score: float | None = None,
    sort: str | None = "relevance",
    min_duration: float | None = None,
    max_duration: float | None = None,
) -> SearchFilters:
    """SearchFilters from the form's fields: as `SearchFilters.from_options` reads them,
    except that a minimum score of 0 (the slider's rest) and a duration of 0 (where a cleared
    number field rests) are no limit."""
    return SearchFilters.from_options(
        kinds,
        folder,
        after,
        before,
        min_score or None,
        sort,
        min_duration or None,
        max_duration or None,
    )
