"""The Library tab: the data folder's summary, its folders (add, remove), the model to
index with, start and stop, the index run's progress (refreshed every second while it runs)
and the failed files. Every change passes `require_manager` first, and the tab says as it
opens when this page may not change the library."""

from __future__ import annotations

import gradio as gr

from indexers.watch import LIVE, POLLED, WatchState
from search.errors import TroveError
from search.models import list_presets
from search.timefmt import local_time
from search.web.access import NotAllowedError, require_manager
from search.web.jobs import FAILED, STOPPED, JobStatus
from search.web.render import (
    error_line,
    header_line,
    one_line,
    render_library,
    render_progress,
)
from search.web.service import TroveUI


def library_tab(ui: TroveUI, demo: gr.Blocks, header: gr.Markdown) -> None:
    """Lay out the Library tab and wire its events; `header` is the page's status line,
    refreshed with the tab."""
    presets = [spec.name for spec in list_presets()]
    with gr.Tab("Library", id="library", elem_id="tab-library"):
        library_md = gr.Markdown(elem_id="library-summary")
        roots_table = gr.Dataframe(
            headers=["Folder", "Include", "Exclude", "Files"],
            label="Library folders",
            interactive=False,
            wrap=True,
            column_widths=["52%", "18%", "18%", "12%"],
            elem_id="roots",
        )
        with gr.Row(elem_classes=["field-row"]):
            add_path = gr.Textbox(
                label="Folder to add",
                placeholder="/home/you/Pictures",
                info="Its full path; ~ is your home folder.",
                scale=4,
                elem_id="add-path",
            )
            include = gr.Textbox(
                label="Include only",
                placeholder="e.g. *.jpg, 2023/*",
                info="Globs, comma-separated; empty: every file Trove reads.",
                scale=2,
                elem_id="include",
            )
            exclude = gr.Textbox(
                label="Exclude",
                placeholder="e.g. *.tmp, Screenshots",
                info="Globs matching files or folders.",
                scale=2,
                elem_id="exclude",
            )
            add_btn = gr.Button(
                "Add folder", variant="primary", size="md", scale=1, elem_id="add-btn"
            )
        with gr.Row(elem_classes=["field-row"]):
            remove_choice = gr.Dropdown(
                [],
                label="Library folder to remove",
                info="Its files leave the library and the index (not the disk).",
                elem_id="remove-choice",
                scale=8,
            )
            remove_btn = gr.Button(
                "Remove folder", variant="stop", size="md", scale=1, elem_id="remove-btn"
            )
        library_message = gr.Markdown(elem_id="library-message")
        with gr.Row(elem_classes=["field-row"]):
            model_choice = gr.Dropdown(
                presets,
                label="Model",
                info="Indexing with another model than the library's re-encodes "
                "every file; searches use the old one until that is done.",
                elem_id="model-choice",
                scale=6,
            )
            start_btn = gr.Button(
                "Start indexing", variant="primary", size="md", scale=1, elem_id="start-btn"
            )
            stop_btn = gr.Button(
                "Stop",
                variant="stop",
                size="md",
                scale=1,
                interactive=False,
                elem_id="stop-btn",
            )
        progress = gr.Markdown(elem_id="index-progress")
        with gr.Row(elem_classes=["field-row"]):
            watch_md = gr.Markdown(elem_id="watch-state")
            pause_btn = gr.Button(
                "Pause watching",
                size="md",
                scale=0,
                visible=ui.watch is not None,
                elem_id="pause-btn",
            )
        # The watcher's state (and a run it starts) shows without a click.
        watch_timer = gr.Timer(2.0, active=ui.watch is not None)
        failed_table = gr.Dataframe(
            headers=["File", "Why it failed"],
            label="Failed files",
            interactive=False,
            wrap=True,
            column_widths=["45%", "55%"],
            elem_id="failed",
        )
        timer = gr.Timer(1.0, active=False)

    def refresh(message: str | None = None, light: bool = False):
        status = ui.index_status()
        lib = ui.library_status(folder_counts=not light)
        roots = [r["folder"] for r in lib["roots"]]
        start_label = "Resume indexing" if status.state == STOPPED else "Start indexing"
        return (
            header_line(ui),
            render_library(lib, ui.model_status()),
            gr.skip()
            if light
            else [
                [r["folder"], ", ".join(r["include"]), ", ".join(r["exclude"]), r["files"]]
                for r in lib["roots"]
            ],
            gr.Dropdown(choices=roots, value=roots[0] if roots else None),
            render_progress(status),
            [[f["file"], f["reason"]] for f in _failures(lib, status)],
            gr.Button(value=start_label, interactive=not status.running),
            gr.Button(interactive=status.running),
            gr.Timer(active=status.running),
            gr.skip() if message is None else message,
        )

    def watch_outputs():
        if ui.watch is None:
            return "Watching is off (`--no-watch`): index by hand.", gr.Button(visible=False)
        state = ui.watch.state()
        label = "Resume watching" if state.paused else "Pause watching"
        return render_watch(state), gr.Button(value=label, visible=True)

    refresh_outputs = [
        header,
        library_md,
        roots_table,
        remove_choice,
        progress,
        failed_table,
        start_btn,
        stop_btn,
        timer,
        library_message,
    ]

    def on_load(request: gr.Request):
        lib = ui.library_status(folder_counts=False)
        chosen = lib["model"] or lib["new_library_model"]
        try:
            require_manager(request)
            note = None
        except NotAllowedError as exc:  # say so before a change is tried
            note = one_line(str(exc))
        return (*refresh(note), gr.Dropdown(value=chosen))

    def tick():
        running = ui.index_status().running
        # Every second while a run goes: no per-folder counts until its last tick.
        outputs = list(refresh(light=running))
        outputs[3] = gr.skip()  # leave the folder picker alone while the user uses it
        if not running:  # the last tick: "Indexing started." is over
            outputs[refresh_outputs.index(library_message)] = ""
        return tuple(outputs)

    def add_folder(path, include_, exclude_, request: gr.Request):
        try:
            require_manager(request)
            message = ui.add_root(path, include_, exclude_)
        except TroveError as exc:
            return refresh(error_line(exc))
        return refresh(message)

    def remove_folder(path, request: gr.Request):
        if not path:
            return refresh("Choose a library folder to remove.")
        try:
            require_manager(request)
            message = ui.remove_root(path)
        except TroveError as exc:
            return refresh(error_line(exc))
        return refresh(message)

    def start(model, request: gr.Request):
        try:
            require_manager(request)
            status = ui.start_indexing(model or None)
        except TroveError as exc:
            return refresh(error_line(exc))
        return refresh("Indexing started." if status.state != FAILED else "")

    def watch_tick():
        running = ui.index_status().running
        return (*watch_outputs(), gr.Timer(active=True) if running else gr.skip())

    def pause_or_resume(request: gr.Request):
        try:
            require_manager(request)
            if ui.watch is None:
                return (*watch_outputs(), "Watching is off (`--no-watch`).")
            paused = ui.watch.state().paused
            ui.watch.resume() if paused else ui.watch.pause()
        except TroveError as exc:
            return (*watch_outputs(), error_line(exc))
        done = "Watching resumed." if paused else "Watching paused (remembered)."
        return (*watch_outputs(), done)

    def stop(request: gr.Request):
        try:
            require_manager(request)
        except TroveError as exc:
            return refresh(error_line(exc))
        ui.stop_indexing()
        return refresh("Stopping after the current batch; what is done is kept.")

    demo.load(on_load, None, [*refresh_outputs, model_choice], api_visibility="private")
    timer.tick(tick, None, refresh_outputs, api_visibility="private", show_progress="hidden")
    add_btn.click(
        add_folder, [add_path, include, exclude], refresh_outputs, api_visibility="private"
    )
    add_path.submit(
        add_folder, [add_path, include, exclude], refresh_outputs, api_visibility="private"
    )
    remove_btn.click(remove_folder, [remove_choice], refresh_outputs, api_visibility="private")
    start_btn.click(start, [model_choice], refresh_outputs, api_visibility="private")
    stop_btn.click(stop, None, refresh_outputs, api_visibility="private")
    pause_btn.click(
        pause_or_resume, None, [watch_md, pause_btn, library_message], api_visibility="private"
    )
    demo.load(watch_outputs, None, [watch_md, pause_btn], api_visibility="private")
    watch_timer.tick(
        watch_tick,
        None,
        [watch_md, pause_btn, timer],
        api_visibility="private",
        show_progress="hidden",
    )


def _failures(lib: dict, status: JobStatus) -> list[dict]:
    """The catalog's failed files, plus this run's walk errors (which the catalog lacks)."""
    rows = {f["file"]: f["reason"] for f in lib["failed"]}
    for path, reason in status.errors:
        rows.setdefault(path, reason)
    return [{"file": p, "reason": r} for p, r in sorted(rows.items())]


def render_watch(state: WatchState) -> str:
    """The watcher in a few lines: watching N folders (live or polled, and which), what is
    queued or being indexed, the last change, what the user can fix."""
    live = [f for f in state.folders if f.mode == LIVE]
    polled = [f for f in state.folders if f.mode == POLLED]
    waiting = [f for f in state.folders if f.mode not in (LIVE, POLLED)]
    head = "**Watching paused** (remembered)" if state.paused else "**Watching**"
    lines = [f"{head}: {len(live)} folder(s) live, {len(polled)} polled."]
    lines += [f"- polled: `{f.folder}` ({f.reason})" for f in polled]
    lines += [f"- waiting for `{f.folder}`: {f.reason}" for f in waiting]
    if state.current:
        lines.append(f"Indexing changes in `{state.current}`.")
    elif state.queued:
        lines.append(f"{state.queued} change(s) queued.")
    if state.held:
        lines.append(f"{len(state.held)} file(s) still being written: indexed once complete.")
    if state.last_change:
        lines.append(f"Last change seen {local_time(state.last_change)}.")
    lines += [f"> {warning}" for warning in state.warnings]
    return "\n".join(lines)
