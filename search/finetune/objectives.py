"""Training objectives over a batch of L2-normalised text and media embeddings.

Every loss takes `positives`, a (texts, media) boolean matrix: a caption shared by several
pictures (folder labels) or a picture with several captions has several positives in one
batch, and treating those as negatives would teach the model to separate matching pairs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

TRIPLET_MARGIN = 0.2


def clip_loss(texts, media, positives, scale: float) -> torch.Tensor:
    """Cross-entropy both ways over the batch's similarities, targets spread over positives."""
    logits = scale * texts @ media.T
    return (_soft_cross_entropy(logits, positives) + _soft_cross_entropy(logits.T, positives.T)) / 2


def mnrl_loss(texts, media, positives, scale: float, hard=None) -> torch.Tensor:
    """Each text against every batch medium plus its own hard negative (one direction)."""
    logits = scale * texts @ media.T
    if hard is not None:
        extra = scale * (texts * hard).sum(-1, keepdim=True)
        logits = torch.cat([logits, extra], dim=1)
        positives = torch.cat([positives, torch.zeros_like(positives[:, :1])], dim=1)
    return _soft_cross_entropy(logits, positives)


def triplet_loss(texts, media, positives, hard, margin: float = TRIPLET_MARGIN) -> torch.Tensor:
    """max(0, margin - sim(text, its medium) + sim(text, negative)) over the mined hard
    negative and every in-batch negative, averaged over the triplets that violate the
    margin. The hardest negative alone, early in training, mostly picks pictures that are
    near for the wrong reasons; the batch keeps the gradient informative."""
    sims = texts @ media.T
    own = (sims * positives).sum(-1) / positives.sum(-1)
    candidates = torch.cat([sims, (texts * hard).sum(-1, keepdim=True)], dim=1)
    is_negative = torch.cat([~positives, torch.ones_like(positives[:, :1])], dim=1)
    violations = F.relu(margin - own[:, None] + candidates) * is_negative
    active = (violations > 0).sum().clamp(min=1)
    return violations.sum() / active


def distill_loss(tuned: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """1 - cosine between fine-tuned and base embeddings of the same general inputs."""
    return (1 - (tuned * base).sum(-1)).mean()


def _soft_cross_entropy(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    targets = positives.float() / positives.float().sum(-1, keepdim=True)
    return -(targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()
