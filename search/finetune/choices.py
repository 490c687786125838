"""The finetune command's choices, importable without torch (app.py builds its parser
at start-up, before any command runs)."""

from __future__ import annotations

OBJECTIVES = {
    "clip": "symmetric contrastive (InfoNCE, the CLIP loss): text->media and media->text",
    "mnrl": "multiple-negatives ranking: text->media over in-batch and mined hard negatives",
    "triplet": "triplet margin loss: the hard negative mined from the index + in-batch ones",
}
TRAINABLE = ("heads", "last-blocks")
