"""Fine-tune the sentence model that ranks documents; save it as a text preset.

    python app.py finetune --text-model all-minilm-l6-v2 --pairs pairs.csv --out my-text
    python app.py finetune --text-model all-minilm-l6-v2 --documents ~/Notes --out my-text
    python app.py index --text-model my-text ...

Supervised: (query, passage) pairs, trained with the multiple-negatives ranking loss (each
query's passage against the batch's other passages). Unsupervised, from a folder of the
user's own documents: `headings` (each Markdown heading, or a file's name or title, paired
with the passage under it: the document's own words say what the passage is about) or
`simcse` (each passage paired with itself under dropout noise). bench/text_finetune.py
measures which helps on a domain corpus; `--documents` uses `headings` unless told.

`--distill W` keeps general meaning: the squared distance between the trained and the base
model's embeddings of general sentences (the caption set shipped for the bridge) is added to
the loss with weight W. The trained weights (the transformer blocks; the word embeddings
stay the base's) are saved as an adapter over the base model in <data dir>/models/NAME/
with a manifest saying `"space": "text"`; `load_text_encoder(NAME)` lays it over the base.
"""

from __future__ import annotations

import csv
import json
import random
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from search.bridge import CAPTIONS_PATH
from search.decode.documents.document import Document
from search.decode.documents.load import load_document
from search.decode.kinds import DOCUMENT_EXTENSIONS
from search.errors import BadFileError, TroveError
from search.models.user_presets import ADAPTER_FILE, MANIFEST, check_preset_name
from search.storage.datadir import DataDir

TEXT_METHODS = ("pairs", "headings", "simcse")
# The multiple-negatives ranking loss scales cosines by this (sentence-transformers' default).
SCALE = 20.0
# Passages longer than this many characters are cut (the model reads 256 word pieces).
MAX_PASSAGE_CHARS = 1200
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.M)


@dataclass
class TextFinetuneConfig:
    base: str
    out: str
    pairs: str | None = None
    documents: str | None = None
    method: str | None = None
    epochs: int = 4
    batch_size: int = 32
    lr: float = 3e-5
    distill: float = 0.0
    general: str | None = None
    seed: int = 0
    force: bool = False
    data_dir: str | None = None


@dataclass
class TextFinetuneResult:
    preset: str
    folder: Path
    method: str
    pairs: int
    epochs: int
    losses: list[float] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [
            f"Saved text preset {self.preset} in {self.folder} ({self.method}, {self.pairs} "
            f"pairs, {self.epochs} epochs; loss {self.losses[0]:.3f} -> {self.losses[-1]:.3f}).",
            f"Use it: python app.py index --text-model {self.preset} FOLDER",
        ]


def read_pairs(path: str | Path) -> list[tuple[str, str]]:
    """(query, passage) pairs from a .csv (two columns, a header `query,passage` optional),
    .jsonl ({"query": ..., "passage": ...} per line) or .json (a list of such objects or of
    [query, passage]). Raises TroveError naming the file and the line that is wrong."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise TroveError(f"--pairs {path}: no such file (a .csv, .jsonl or .json of pairs).")
    suffix = path.suffix.lower()
    rows: list = []
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            rows = [r for r in csv.reader(f) if any(c.strip() for c in r)]
        if rows and [c.strip().lower() for c in rows[0][:2]] == ["query", "passage"]:
            rows = rows[1:]
    elif suffix == ".jsonl":
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise TroveError(f"--pairs {path}, line {n}: not JSON ({exc.msg}).") from None
    elif suffix == ".json":
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise TroveError(f"--pairs {path}: not JSON ({exc.msg}, line {exc.lineno}).") from None
    else:
        raise TroveError(f"--pairs {path}: use a .csv, .jsonl or .json file of (query, passage).")
    pairs = []
    for n, row in enumerate(rows, start=1):
        if isinstance(row, dict):
            query, passage = row.get("query"), row.get("passage")
        elif isinstance(row, list | tuple) and len(row) >= 2:
            query, passage = row[0], row[1]
        else:
            query = passage = None
        if not isinstance(query, str) or not isinstance(passage, str):
            raise TroveError(
                f"--pairs {path}, pair {n}: expected a query and a passage (two columns, or "
                f'{{"query": ..., "passage": ...}}), got {str(row)[:80]!r}.'
            )
        if query.strip() and passage.strip():
            pairs.append((query.strip(), passage.strip()[:MAX_PASSAGE_CHARS]))
    if len(pairs) < 2:
        raise TroveError(f"--pairs {path}: {len(pairs)} usable pair(s); at least 2 are needed.")
    return pairs


def document_texts(folder: str | Path) -> list[tuple[Path, str, Document]]:
    """Every document under `folder` Trove reads: (path, raw text for Markdown else "",
    the document read)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise TroveError(f"--documents {root}: no such folder.")
    out = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix.lower() not in DOCUMENT_EXTENSIONS and path.suffix.lower() != ".pdf":
            continue
        try:
            document = load_document(path)
        except BadFileError:
            continue
        raw = (
            path.read_text(errors="replace") if path.suffix.lower() in (".md", ".markdown") else ""
        )
        out.append((path, raw, document))
    if not out:
        raise TroveError(f"--documents {root}: no document Trove reads in it.")
    return out


def heading_pairs(folder: str | Path) -> list[tuple[str, str]]:
    """(heading, passage) pairs mined from a folder: each Markdown heading with the text
    under it, and each file's name (its words) with the start of its text."""
    pairs = []
    for path, raw, document in document_texts(folder):
        sections = _markdown_sections(raw) if raw else []
        pairs.extend(sections)
        name = re.sub(r"[-_.]+", " ", path.stem).strip()
        text = " ".join(document.text.split())[:MAX_PASSAGE_CHARS]
        if name and text:
            pairs.append((name, text))
        title = (document.title or "").strip()
        if title and not sections and not text.startswith(title):
            pairs.append((title, text))
    return pairs


def _markdown_sections(raw: str) -> list[tuple[str, str]]:
    marks = list(_HEADING.finditer(raw))
    out = []
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(raw)
        body = " ".join(raw[mark.end() : end].split())[:MAX_PASSAGE_CHARS]
        if body:
            out.append((mark.group(1).strip(), body))
    return out


def passages(folder: str | Path) -> list[str]:
    """The documents' text in passages of about MAX_PASSAGE_CHARS (for SimCSE)."""
    out = []
    for _, _, document in document_texts(folder):
        words = document.text.split()
        chunk: list[str] = []
        for word in words:
            chunk.append(word)
            if sum(len(w) + 1 for w in chunk) > MAX_PASSAGE_CHARS // 2:
                out.append(" ".join(chunk))
                chunk = []
        if chunk:
            out.append(" ".join(chunk))
    return out


def general_sentences(path: str | None = None, limit: int = 2000) -> list[str]:
    """General sentences whose embeddings distillation keeps: a file of one per line, else
    the caption set shipped for the bridge."""
    source = Path(path).expanduser() if path else CAPTIONS_PATH
    if not source.is_file():
        raise TroveError(f"--general {source}: no such file (one sentence per line).")
    lines = [line.strip() for line in source.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line][:limit]


def training_pairs(config: TextFinetuneConfig) -> tuple[str, list[tuple[str, str]]]:
    """(method, pairs): SimCSE pairs are (passage, the same passage)."""
    if (config.pairs is None) == (config.documents is None):
        raise TroveError("Give one of --pairs FILE (query, passage) or --documents FOLDER.")
    if config.pairs is not None:
        if config.method not in (None, "pairs"):
            raise TroveError(f"--method {config.method} learns from --documents, not --pairs.")
        return "pairs", read_pairs(config.pairs)
    method = config.method or "headings"
    if method == "pairs":
        raise TroveError("--method pairs needs --pairs FILE; --documents takes headings or simcse.")
    if method == "headings":
        pairs = heading_pairs(config.documents)
    else:
        pairs = [(p, p) for p in passages(config.documents)]
    if len(pairs) < 2:
        raise TroveError(
            f"--documents {config.documents}: {len(pairs)} pair(s) found for {method}; "
            f"at least 2 are needed (more documents, or Markdown headings)."
        )
    return method, pairs


def finetune_text(
    config: TextFinetuneConfig,
    progress: bool = True,
    announce: Callable[[list[str]], None] | None = None,
) -> TextFinetuneResult:
    """Train, save the preset, return what was done."""
    from search.models.text import TEXT_PRESETS, SentenceTransformerEncoder, load_text_encoder

    check_preset_name(config.out)
    if config.out in TEXT_PRESETS:
        raise TroveError(f"--out {config.out}: that is a built-in text preset; pick another.")
    base = load_text_encoder(config.base)
    if not isinstance(base, SentenceTransformerEncoder) or config.base not in TEXT_PRESETS:
        trained = ", ".join(n for n, p in TEXT_PRESETS.items() if p.seed is None)
        raise TroveError(
            f"--text-model {config.base}: fine-tuning starts from a built-in sentence-"
            f"transformers preset ({trained})."
        )
    folder = DataDir(config.data_dir).models / config.out if config.data_dir else None
    if folder is None:
        folder = DataDir.default().models / config.out
    if folder.exists() and not config.force:
        raise TroveError(f"--out {config.out}: {folder} exists; add --force to replace it.")
    method, pairs = training_pairs(config)
    if announce:
        announce([f"Fine-tuning {config.base} on {len(pairs)} {method} pairs."])
    general = general_sentences(config.general) if config.distill > 0 else []
    state, losses = train_pairs(base.resolve(), pairs, config, general, progress=progress)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    from search.models.adapters import save_adapter

    digest = save_adapter(state, folder / ADAPTER_FILE)
    manifest = {
        "space": "text",
        "base": config.base,
        "adapter": ADAPTER_FILE,
        "sha256": digest,
        "method": method,
        "pairs": len(pairs),
        "epochs": config.epochs,
        "distill": config.distill,
        "losses": losses,
        "trained": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return TextFinetuneResult(config.out, folder, method, len(pairs), config.epochs, losses)


def trainable(name: str) -> bool:
    """The tensors a text fine-tune trains: the transformer blocks and the pooler, not the
    word embeddings (most of the parameters, and what general meaning leans on)."""
    return ".embeddings." not in name and not name.startswith("embeddings.")


def train_pairs(model_folder, pairs, config, general, *, progress):
    """The trained tensors (the base model's names) and the mean loss per epoch."""
    import torch
    from sentence_transformers import SentenceTransformer
    from tqdm import tqdm

    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    model = SentenceTransformer(str(model_folder), device="cpu")
    teacher = None
    if general:
        with torch.no_grad():
            teacher = torch.tensor(
                model.encode(general, convert_to_numpy=True, normalize_embeddings=True)
            )
    transformer = model[0].auto_model
    for name, param in transformer.named_parameters():
        param.requires_grad = trainable(name)
    params = [p for p in transformer.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=config.lr)
    model.train()  # dropout on: SimCSE's noise, and ordinary regularisation for pairs

    def embed(texts):
        features = model.tokenize(list(texts))
        out = model(features)["sentence_embedding"]
        return torch.nn.functional.normalize(out, dim=-1)

    losses = []
    order = list(range(len(pairs)))
    steps = config.epochs * max(1, (len(pairs) + config.batch_size - 1) // config.batch_size)
    bar = tqdm(total=steps, desc="Fine-tuning", unit="step", disable=not progress)
    for _ in range(config.epochs):
        rng.shuffle(order)
        total, count = 0.0, 0
        for start in range(0, len(order), config.batch_size):
            batch = [pairs[i] for i in order[start : start + config.batch_size]]
            if len(batch) < 2:
                continue
            queries = embed([q for q, _ in batch])
            targets = embed([p for _, p in batch])
            scores = SCALE * queries @ targets.T
            labels = torch.arange(len(batch))
            loss = torch.nn.functional.cross_entropy(scores, labels)
            if teacher is not None:
                picked = rng.sample(range(len(general)), min(len(batch), len(general)))
                student = embed([general[i] for i in picked])
                loss = loss + config.distill * ((student - teacher[picked]) ** 2).sum(-1).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach())
            count += 1
            bar.update(1)
        losses.append(total / max(count, 1))
    bar.close()
    model.eval()
    state = {
        name: tensor.detach().clone()
        for name, tensor in transformer.state_dict().items()
        if trainable(name)
    }
    return state, losses
