"""Fine-tuning CLIP on a user's captioned or labelled media (`app.py finetune`).

pairs.py loads and checks (media, caption) pairs and splits them; objectives.py holds the
losses; train.py trains the chosen parts of the model on features of the frozen rest;
evaluate.py measures retrieval; adapters.py saves and applies the trained weights;
presets.py makes a saved result a model preset (built-in base + adapter). Importing this
package loads no torch: the model registry looks up fine-tuned presets through it.
"""
