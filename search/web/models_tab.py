"""The Models tab: every preset, whether its weights are on this machine and which one
the library uses, and how to bring weights to a machine without network."""

from __future__ import annotations

import gradio as gr

from search.web.render import weights_label
from search.web.service import TroveUI

OFFLINE_WEIGHTS = """\
Weights are looked up in this order, and nothing else is tried:

1. `--model-path`: a checkpoint file (an open_clip state dict `.bin`/`.pt` or a
   `.safetensors` file) or a folder holding `open_clip_model.safetensors` or
   `open_clip_pytorch_model.bin`.
2. The Hugging Face cache (`~/.cache/huggingface/hub`, or `$HF_HOME/hub`). This works with
   `HF_HUB_OFFLINE=1`.
3. A download from the Hugging Face hub (skipped when `HF_HUB_OFFLINE=1`; the web UI never
   downloads: use the command below).

So, on any machine with network: `python app.py models download clip-vit-b-32`, then copy
`~/.cache/huggingface/hub/models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K` into the same place
on the offline machine (or copy the single `open_clip_model.safetensors` and pass it with
`--model-path`). When no weights are found, the command stops with one paragraph naming the
model, each place it looked and why that failed, and these commands."""
BRIDGE_NOTE = (
    "How well sounds and pictures line up (the CLIP <-> CLAP bridge's held-out figures): "
    "`python app.py models info clap-htsat-unfused` (or tiny-clap) on this machine."
)


def models_tab(ui: TroveUI, demo: gr.Blocks) -> None:
    """Lay out the Models tab; its table fills as the page opens."""
    with gr.Tab("Models", id="models", elem_id="tab-models"):
        models_table = gr.Dataframe(
            headers=["Preset", "Dim", "Weights here", "In use", "About"],
            label="Presets",
            interactive=False,
            wrap=True,
            column_widths=["17%", "6%", "20%", "7%", "50%"],
            elem_id="models-table",
        )
        gr.Markdown("### Adding weights on a machine without network\n\n" + OFFLINE_WEIGHTS)
        gr.Markdown(BRIDGE_NOTE, elem_id="bridge-note")

    def show_models():
        return [
            [
                m["name"] + (" (default)" if m["default"] else ""),
                m["dim"],
                weights_label(m),
                "yes" if m["in_use"] else "",
                m["description"],
            ]
            for m in ui.list_models()
        ]

    demo.load(show_models, None, [models_table], api_visibility="private")
