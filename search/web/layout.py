"""The page: the title, a status line, the Search, Library and Models tabs, and the named API
endpoints, over one `TroveUI`."""

from __future__ import annotations

import gradio as gr

from search.web.api import register_api
from search.web.library_tab import library_tab
from search.web.models_tab import models_tab
from search.web.search_tab import search_tab
from search.web.service import TroveUI


def build_app(ui: TroveUI) -> gr.Blocks:
    """The Blocks app: Search, Library and Models tabs, plus the API endpoints."""
    with gr.Blocks(title="Trove", analytics_enabled=False) as demo:
        gr.Markdown("# Trove", elem_id="title")
        header = gr.Markdown(elem_id="header-status")
        with gr.Tabs(elem_id="tabs"):
            search_tab(ui, demo, header)
            library_tab(ui, demo, header)
            models_tab(ui, demo)
        register_api(ui)
    return demo
