"""Retrieval figures on a held-out split: recall@k both ways, and the chance level of each."""

from __future__ import annotations

from math import comb

import numpy as np

KS = (1, 5, 10)


def relevance(text_ids: list[int], media_ids: list[int], n_texts: int, n_media: int) -> np.ndarray:
    """(texts, media) boolean matrix from the pairs' text and media indices."""
    rel = np.zeros((n_texts, n_media), dtype=bool)
    rel[text_ids, media_ids] = True
    return rel


def retrieval_recalls(texts: np.ndarray, media: np.ndarray, rel: np.ndarray) -> dict[str, float]:
    """recall@1/5/10 text->media (each distinct caption finds any of its files) and
    media->text (each file finds any of its captions)."""
    sims = texts @ media.T
    out = {}
    for direction, scores, truth in (("t2i", sims, rel), ("i2t", sims.T, rel.T)):
        ranked = np.argsort(-scores, axis=1, kind="stable")
        for k in KS:
            top = ranked[:, :k]
            out[f"{direction}_r{k}"] = float(np.take_along_axis(truth, top, 1).any(1).mean())
    return out


def chance_recalls(rel: np.ndarray) -> dict[str, float]:
    """What a random ranking scores on average: 1 - C(N-p, k) / C(N, k) per query."""
    out = {}
    for direction, truth in (("t2i", rel), ("i2t", rel.T)):
        n = truth.shape[1]
        for k in KS:
            kk = min(k, n)
            hits = [1 - comb(n - p, kk) / comb(n, kk) for p in truth.sum(1)]
            out[f"{direction}_r{k}"] = float(np.mean(hits))
    return out


def neighbour_overlap(base: np.ndarray, tuned: np.ndarray, k: int = 10) -> float:
    """Share of each item's k nearest neighbours (by the base model) that the tuned model
    keeps: 1.0 means the fine-tune left this set's geometry as it was."""
    k = min(k, len(base) - 1)
    if k < 1:
        return 1.0
    kept = []
    for emb in (base, tuned):
        sims = emb @ emb.T
        np.fill_diagonal(sims, -np.inf)
        kept.append(np.argsort(-sims, axis=1, kind="stable")[:, :k])
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(*kept, strict=True)]))


def format_recalls(figures: dict[str, float]) -> str:
    return "  ".join(
        f"{d} " + "/".join(f"{100 * figures[f'{d}_r{k}']:.1f}" for k in KS) for d in ("t2i", "i2t")
    )
