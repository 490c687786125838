"""Fine-tune a CLIP (or CLAP) preset on (picture or sound, caption) pairs; save a new preset.

The frozen part of the model runs once over every picture and caption; the trained part
(see split.py) then trains on those features, so an epoch costs a few small matrix
products. Hard negatives for the triplet and ranking losses are mined each epoch with FAISS
over the current media embeddings of the training files. Early stopping watches a
validation slice of the training files; the before/after figures come from a separate
held-out split that training never sees.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from search.errors import BadFileError, TroveError
from search.finetune import objectives
from search.finetune.choices import OBJECTIVES, TRAINABLE
from search.finetune.evaluate import (
    chance_recalls,
    format_recalls,
    neighbour_overlap,
    relevance,
    retrieval_recalls,
)
from search.finetune.pairs import Pair, PairsReport, load_pairs, split_pairs
from search.finetune.split import split_model
from search.models import get_preset
from search.models.adapters import save_adapter
from search.models.user_presets import ADAPTER_FILE, MANIFEST, check_preset_name
from search.storage.datadir import DataDir

DEFAULT_LR = {"heads": 3e-3, "last-blocks": 1e-3}
VALIDATION_FRACTION = 0.15
MEDIA_KIND = {"clip": "image", "clap": "audio"}
MINED_CANDIDATES = 16


@dataclass
class FinetuneConfig:
    pairs: str
    model: str
    out: str
    model_path: str | None = None
    objective: str = "clip"
    train: str = "heads"
    blocks: int = 1
    epochs: int = 30
    batch_size: int = 64
    lr: float | None = None
    holdout: float = 0.2
    patience: int = 5
    seed: int = 0
    distill: float = 0.0
    general: str | None = None
    labels: str = "auto"
    label_template: str = "{}"
    force: bool = False
    # The data folder whose models folder receives the preset (None: the user's default).
    data_dir: str | None = None


@dataclass
class FinetuneResult:
    name: str
    folder: Path
    report: PairsReport
    counts: dict[str, int]
    before: dict[str, float]
    after: dict[str, float]
    chance: dict[str, float]
    general: dict[str, float] = field(default_factory=dict)
    epochs_run: int = 0
    best_epoch: int = 0
    data_dir: str | None = None

    def lines(self) -> list[str]:
        c = self.counts
        out = [
            f"Split: {c['train']} training pairs, {c['validation']} validation (early "
            f"stopping), {c['held_out']} held out ({c['held_out_files']} files, "
            f"{c['held_out_captions']} captions) for the figures below.",
            "Held-out recall@1/5/10 (%):",
            f"  chance  {format_recalls(self.chance)}",
            f"  before  {format_recalls(self.before)}",
            f"  after   {format_recalls(self.after)}",
        ]
        if self.general:
            g = self.general
            out.append(
                f"General set ({g['files']:.0f} files): text->image R@1 "
                f"{100 * g['base_t2i_r1']:.1f}% -> {100 * g['tuned_t2i_r1']:.1f}%; "
                f"image neighbours kept "
                f"{100 * g['neighbours_kept']:.0f}%; cosine to the base model "
                f"{g['image_cosine']:.3f} (images), {g['text_cosine']:.3f} (texts)."
            )
        where = f" --data-dir {self.data_dir}" if self.data_dir else ""
        out.append(
            f"Best epoch {self.best_epoch} of {self.epochs_run}. Saved as preset {self.name} "
            f"({self.folder}); re-index with it: python app.py index --model {self.name}{where}"
        )
        if self.best_epoch == 0:
            # The weights kept are the ones validation liked best: here, the untouched base.
            out.append(
                "Training did not improve on the base model: no epoch beat it on the "
                "validation pairs, so the preset holds the base model's weights. More or "
                "more varied pairs, or another --train or --lr, may help."
            )
        return out


@dataclass
class _Features:
    """The frozen part's output for a set of pairs, with their text and image indices."""

    images: torch.Tensor
    texts: torch.Tensor
    tokens: torch.Tensor
    text_of: torch.Tensor  # per pair
    image_of: torch.Tensor  # per pair

    def relevance(self) -> np.ndarray:
        return relevance(
            self.text_of.tolist(), self.image_of.tolist(), len(self.texts), len(self.images)
        )


def finetune(
    config: FinetuneConfig,
    progress: bool = True,
    announce: Callable[[list[str]], None] | None = None,
) -> FinetuneResult:
    """Train, evaluate before and after on the held-out split, save preset `config.out`.

    `announce` gets the pairs report as soon as the pairs are checked, before training.
    """
    _check_config(config)
    spec = get_preset(config.model)
    if spec.adapter:
        raise TroveError(
            f"{config.model} is itself fine-tuned; fine-tune its base {spec.base} on all "
            "the pairs together instead."
        )
    if spec.space not in MEDIA_KIND:
        raise TroveError(
            f"Fine-tuning trains CLIP (pictures) and CLAP (sounds) presets; {spec.name} is "
            f"a {spec.space} model."
        )
    if not spec.finetunable:
        # Refused by the preset, before its weights are looked for (or downloaded).
        raise TroveError(
            f"Fine-tuning {spec.name} is not supported: it trains OpenCLIP ViT models "
            "(clip-vit-b-32, clip-vit-l-14, tiny-clip) and CLAP presets."
        )
    data_dir = DataDir(config.data_dir) if config.data_dir else DataDir.default()
    folder = data_dir.models / config.out
    if (folder / MANIFEST).exists() and not config.force:
        raise TroveError(
            f"A fine-tuned model {config.out} already exists in {folder}; add --force to "
            "replace it, or pick another --out name."
        )
    encoder = _training_encoder(spec, config.model_path)
    encoder.resolve()  # a missing-weights error before any file is read
    kind = MEDIA_KIND[spec.space]
    pairset = load_pairs(config.pairs, config.labels, config.label_template, kind=kind)
    split = split_model(encoder, _blocks(config))
    decoded, pairs = _decode_media(pairset.pairs, split, pairset.report)
    if announce is not None:
        announce(pairset.report.lines())
    train_pairs, held_out = split_pairs(pairs, config.holdout, config.seed)
    try:
        train_pairs, validation = split_pairs(train_pairs, VALIDATION_FRACTION, config.seed + 1)
    except BadFileError:
        validation = []  # too few files to spare some: train the full epochs instead

    train_f, held_f = (_frozen_features(split, s, decoded) for s in (train_pairs, held_out))
    val_f = _frozen_features(split, validation, decoded) if validation else None
    general = _general_features(config, split, kind)

    before = _recalls(split, held_f)
    with _deterministic(config.seed):
        epochs_run, best_epoch = _train(config, split, train_f, val_f, general, progress)
    after = _recalls(split, held_f)
    general_figures = _general_figures(split, general) if general else {}

    counts = {
        "train": len(train_pairs),
        "validation": len(validation),
        "held_out": len(held_out),
        "held_out_files": len(held_f.images),
        "held_out_captions": len(held_f.texts),
    }
    metrics = {
        "before": before,
        "after": after,
        "chance": chance_recalls(held_f.relevance()),
        "general": general_figures,
    }
    _save(config, spec.name, split, folder, counts, metrics, pairset.report, best_epoch)
    return FinetuneResult(
        config.out,
        folder,
        pairset.report,
        counts,
        before,
        after,
        metrics["chance"],
        general_figures,
        epochs_run,
        best_epoch,
        config.data_dir,
    )


def _check_config(config: FinetuneConfig) -> None:
    check_preset_name(config.out)
    if config.objective not in OBJECTIVES:
        raise TroveError(
            f"Unknown objective {config.objective!r}; use one of {', '.join(OBJECTIVES)}."
        )
    if config.train not in TRAINABLE:
        raise TroveError(f"--train must be one of {', '.join(TRAINABLE)}.")
    if config.epochs < 1 or config.batch_size < 2:
        raise TroveError("--epochs must be at least 1 and --batch-size at least 2.")
    if config.distill < 0:
        raise TroveError("--distill is a weight: 0 (off) or more.")
    if config.distill > 0 and not config.general:
        raise TroveError(
            "--distill needs --general: pictures (with captions) whose embeddings should stay "
            "as the base model has them."
        )


def _blocks(config: FinetuneConfig) -> int:
    if config.train == "heads":
        return 0
    if config.blocks < 1:
        raise TroveError("--blocks must be at least 1 with --train last-blocks.")
    return config.blocks


def _decode_media(pairs: list[Pair], split, report: PairsReport):
    """The decoded input of each file; undecodable files are reported, their pairs dropped."""
    decoded: dict[Path, object] = {}
    bad: set[Path] = set()
    for pair in pairs:
        if pair.media in decoded or pair.media in bad:
            continue
        try:
            decoded[pair.media] = split.decode(pair.media)
        except BadFileError as exc:
            report.broken.append(f"{pair.media.name}: {exc}")
            bad.add(pair.media)
    kept = [p for p in pairs if p.media not in bad]
    report.pairs = len(kept)
    report.media = len({p.group for p in kept})
    return decoded, kept


def _frozen_features(split, pairs: list[Pair], decoded) -> _Features:
    files = list(dict.fromkeys(p.media for p in pairs))
    texts = list(dict.fromkeys(p.text for p in pairs))
    file_index = {f: i for i, f in enumerate(files)}
    text_index = {t: i for i, t in enumerate(texts)}
    text_features, tokens = split.frozen_texts(texts)
    return _Features(
        split.frozen_media([decoded[f] for f in files]),
        text_features,
        tokens,
        torch.tensor([text_index[p.text] for p in pairs]),
        torch.tensor([file_index[p.media] for p in pairs]),
    )


@dataclass
class _General:
    features: _Features
    base_images: torch.Tensor
    base_texts: torch.Tensor


def _general_features(config: FinetuneConfig, split, kind: str) -> _General | None:
    if not config.general:
        return None
    pairset = load_pairs(config.general, kind=kind)
    decoded, pairs = _decode_media(pairset.pairs, split, pairset.report)
    feats = _frozen_features(split, pairs, decoded)
    with torch.no_grad():
        return _General(feats, split.media(feats.images), split.texts(feats.texts, feats.tokens))


def _training_encoder(spec, model_path):
    """A private fp32 encoder on the CPU: training changes its weights."""
    if spec.space == "clap":
        from search.models.clap import ClapEncoder

        return ClapEncoder(spec, model_path, device="cpu")
    from search.models.clip import ClipEncoder

    return ClipEncoder(spec, model_path, device="cpu", precision="fp32")


def _embed(split, f: _Features) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return split.texts(f.texts, f.tokens), split.media(f.images)


def _recalls(split, f: _Features) -> dict[str, float]:
    texts, images = _embed(split, f)
    return retrieval_recalls(texts.numpy(), images.numpy(), f.relevance())


def _general_figures(split, g: _General) -> dict[str, float]:
    texts, images = _embed(split, g.features)
    rel = g.features.relevance()
    base = retrieval_recalls(g.base_texts.numpy(), g.base_images.numpy(), rel)
    tuned = retrieval_recalls(texts.numpy(), images.numpy(), rel)
    return {
        "files": float(len(images)),
        "base_t2i_r1": base["t2i_r1"],
        "tuned_t2i_r1": tuned["t2i_r1"],
        "base_i2t_r1": base["i2t_r1"],
        "tuned_i2t_r1": tuned["i2t_r1"],
        "neighbours_kept": neighbour_overlap(g.base_images.numpy(), images.numpy()),
        "image_cosine": float((images * g.base_images).sum(-1).mean()),
        "text_cosine": float((texts * g.base_texts).sum(-1).mean()),
    }


def _train(config, split, train_f, val_f, general, progress) -> tuple[int, int]:
    params = split.parameters()
    optimiser = torch.optim.AdamW(params, lr=config.lr or DEFAULT_LR[config.train])
    scale = split.scale
    generator = torch.Generator().manual_seed(config.seed)
    rel = torch.from_numpy(train_f.relevance())
    best_score, best_epoch, best_state = _validation_score(split, val_f), 0, split.adapter_state()
    stale, epochs_run = 0, 0
    bar = tqdm(range(1, config.epochs + 1), desc="fine-tuning", unit="epoch", disable=not progress)
    for epoch in bar:
        epochs_run = epoch
        hard = _mine_hard_negatives(split, train_f, rel) if config.objective != "clip" else None
        order = torch.randperm(len(train_f.text_of), generator=generator)
        losses = []
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            if len(batch) < 2:
                continue
            loss = _batch_loss(config, split, train_f, rel, batch, hard, scale)
            if general is not None and config.distill > 0:
                loss = loss + config.distill * _distill_loss(split, general)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
        score = _validation_score(split, val_f)
        if val_f is None or score > best_score:
            best_score, best_epoch, best_state, stale = score, epoch, split.adapter_state(), 0
        else:
            stale += 1
        bar.set_postfix(loss=f"{np.mean(losses):.3f}", val=f"{100 * score:.1f}")
        if stale >= config.patience:
            break
    split.load_adapter_state(best_state)
    return epochs_run, best_epoch


def _batch_loss(config, split, f: _Features, rel, batch, hard, scale) -> torch.Tensor:
    text_ids, image_ids = f.text_of[batch], f.image_of[batch]
    texts = split.texts(f.texts[text_ids], f.tokens[text_ids])
    images = split.media(f.images[image_ids])
    positives = rel[text_ids][:, image_ids]
    if config.objective == "clip":
        return objectives.clip_loss(texts, images, positives, scale)
    negatives = split.media(f.images[hard[text_ids]])
    if config.objective == "mnrl":
        return objectives.mnrl_loss(texts, images, positives, scale, negatives)
    return objectives.triplet_loss(texts, images, positives, negatives)


def _mine_hard_negatives(split, f: _Features, rel: torch.Tensor) -> torch.Tensor:
    """For each training caption, the most similar training picture that it does not
    describe, by the current model: FAISS exact inner-product search over the pictures."""
    import faiss

    texts, images = (e.numpy().astype(np.float32) for e in _embed(split, f))
    index = faiss.IndexFlatIP(images.shape[1])
    index.add(images)
    _, found = index.search(texts, min(MINED_CANDIDATES, len(images)))
    hard = []
    for t, candidates in enumerate(found):
        negatives = [int(c) for c in candidates if c >= 0 and not rel[t, c]]
        if not negatives:  # every near picture matches: fall back to any non-matching one
            negatives = [int(i) for i in torch.nonzero(~rel[t]).flatten()[:1]] or [0]
        hard.append(negatives[0])
    return torch.tensor(hard)


def _distill_loss(split, g: _General) -> torch.Tensor:
    f = g.features
    images = split.media(f.images)
    texts = split.texts(f.texts, f.tokens)
    image_loss = objectives.distill_loss(images, g.base_images)
    return (image_loss + objectives.distill_loss(texts, g.base_texts)) / 2


def _validation_score(split, val_f: _Features | None) -> float:
    if val_f is None:
        return 0.0
    r = _recalls(split, val_f)
    return float(np.mean([r["t2i_r1"], r["i2t_r1"], r["t2i_r5"], r["i2t_r5"]]))


@contextlib.contextmanager
def _deterministic(seed: int):
    """Same seed, same data order, same weights: fixed RNG and deterministic kernels."""
    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.use_deterministic_algorithms(was)


def _save(config, base, split, folder: Path, counts, metrics, report, best_epoch) -> None:
    """Write adapter + manifest into a fresh folder, then swap it in."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    digest = save_adapter(split.adapter_state(), tmp / ADAPTER_FILE)
    manifest = {
        "format": 1,
        "base": base,
        "adapter": ADAPTER_FILE,
        "adapter_sha256": digest,
        "trained": config.train,
        "blocks": split.blocks,
        "objective": config.objective,
        "seed": config.seed,
        "train_pairs": counts["train"],
        "best_epoch": best_epoch,
        # Where it was saved is not how it was trained.
        "config": {
            k: v for k, v in asdict(config).items() if k not in ("force", "out", "data_dir")
        },
        "pairs_report": {"source": report.source, "layout": report.layout},
        "counts": counts,
        "metrics": metrics,
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
