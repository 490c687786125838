"""Fine-tuning CLIP on a user's captioned or labelled media (`app.py finetune`).

pairs.py loads and checks (media, caption) pairs and splits them; objectives.py holds the
losses; train.py trains the chosen parts of the model on features of the frozen rest;
evaluate.py measures retrieval; split.py decides which weights train. A saved result is a
model preset (built-in base + adapter): search/models/adapters.py saves and applies the
adapter, search/models/user_presets.py reads the presets back.
"""
