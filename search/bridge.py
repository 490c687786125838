"""The CLIP <-> CLAP bridge: fitted, measured on held-out captions, saved and loaded.

CLIP and CLAP vectors live in unrelated spaces, but both have a text tower. Both
towers embed the same shipped caption set (assets/captions/captions.txt); a linear map
fitted between the two sets of caption vectors then carries a vector from one space to the
other (a CLAP sound vector to a CLIP image query, and back).

The method is orthogonal Procrustes after centring, with one global scale: subtract each
space's caption mean, rotate, scale, add the target mean, re-normalise. Ridge least squares
after centring is implemented too (`method="ridge"`), and every fit measures both on the
held-out fifth of the captions (`Bridge.metrics`). Procrustes is the default because:
- a rotation keeps the geometry of the source space (distances, and the spread of a
  query's similarities), which the score calibration (search/vectors.py `standardize`) relies on;
- least squares shrinks the directions it cannot predict towards the target mean, which
  crowds mapped vectors together and makes a few targets nearest to everything (hubs): the
  reason orthogonal maps replaced least squares for mapping between word-embedding spaces;
- it has no regularisation strength to tune, and a rotation cannot overfit 512x512
  parameters to a few thousand captions.
On the tiny (untrained) towers ridge reaches a slightly higher mean cosine (0.882 vs 0.880
CLIP->CLAP) and both are at chance for recall@1, because two random towers share no structure
to map; `python -m bench.bridge --clip clip-vit-b-32 --clap clap-htsat-unfused` measures the
real towers, and should ridge win recall@1 there, the default should change with it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from search.models.encoders import Encoder
from search.vectors import normalise

CAPTIONS_PATH = Path(__file__).resolve().parent.parent / "assets" / "captions" / "captions.txt"
HOLDOUT_FRACTION = 0.2
SPLIT_SEED = 0
METHODS = ("procrustes", "ridge")
DEFAULT_METHOD = "procrustes"
# Ridge strength, relative to the mean eigenvalue of the centred source covariance; picked on
# an inner split of the training captions from this grid.
RIDGE_ALPHAS = (1e-3, 1e-2, 1e-1, 1.0)
CACHE_VERSION = 1


@dataclass(frozen=True)
class LinearMap:
    """y = normalise(scale * (x - source_mean) @ matrix + target_mean)."""

    matrix: np.ndarray
    source_mean: np.ndarray
    target_mean: np.ndarray
    scale: float = 1.0

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        y = self.scale * (x - self.source_mean) @ self.matrix + self.target_mean
        y = normalise(y.astype(np.float32))
        return y[0] if np.ndim(vectors) == 1 else y


@dataclass
class Bridge:
    """A fitted CLIP <-> CLAP map pair with its held-out measurements."""

    clip_to_clap: LinearMap
    clap_to_clip: LinearMap
    method: str
    metrics: dict = field(default_factory=dict)

    def map_clip_to_clap(self, vectors: np.ndarray) -> np.ndarray:
        return self.clip_to_clap(vectors)

    def map_clap_to_clip(self, vectors: np.ndarray) -> np.ndarray:
        return self.clap_to_clip(vectors)


def load_captions(path: Path = CAPTIONS_PATH) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def fit_map(source: np.ndarray, target: np.ndarray, method: str = DEFAULT_METHOD) -> LinearMap:
    """Fit a map from paired source rows to target rows (see the module docstring)."""
    if method not in METHODS:
        raise ValueError(f"unknown bridge method {method!r}; use one of {', '.join(METHODS)}")
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    xs, yt = source - mu_s, target - mu_t
    if method == "procrustes":
        # The (semi-)orthogonal W minimising ||xs W - yt|| is U V^T from the SVD of xs^T yt;
        # the scale that then fits best is trace(S) / ||xs||^2.
        u, s, vt = np.linalg.svd(xs.T @ yt, full_matrices=False)
        matrix = u @ vt
        scale = float(s.sum() / max((xs**2).sum(), 1e-12))
    else:
        alpha = _pick_ridge_alpha(xs, yt)
        matrix = _ridge(xs, yt, alpha)
        scale = 1.0
    return LinearMap(
        matrix.astype(np.float32), mu_s.astype(np.float32), mu_t.astype(np.float32), scale
    )


def holdout_split(n: int, fraction: float = HOLDOUT_FRACTION, seed: int = SPLIT_SEED):
    """Fixed train / held-out row indices: the same captions are held out on every run."""
    order = np.random.default_rng(seed).permutation(n)
    held = max(1, int(round(n * fraction)))
    return np.sort(order[held:]), np.sort(order[:held])


def map_quality(mapped: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Mean cosine of each mapped row to its own target row, and caption retrieval recall@1:
    how often a mapped row's nearest target (among all targets given) is its own."""
    mapped, target = normalise(mapped), normalise(target)
    sims = mapped @ target.T
    return {
        "mean_cosine": float(np.mean(np.diag(sims))),
        "recall_at_1": float(np.mean(sims.argmax(axis=1) == np.arange(len(sims)))),
    }


def fit_bridge(
    clip_texts: np.ndarray, clap_texts: np.ndarray, method: str = DEFAULT_METHOD
) -> Bridge:
    """Fit both directions on 80% of the captions; measure on the held-out 20%.

    The shipped map is the one measured (fitted on the training part only). Metrics hold, per
    direction, the chosen method, the other method, a random rotation through the same
    centring (chance level for this pipeline) and the identity (only when dimensions match).
    """
    train, held = holdout_split(len(clip_texts))
    spaces = {"clip": np.asarray(clip_texts), "clap": np.asarray(clap_texts)}
    maps, metrics = {}, {"held_out": int(len(held)), "train": int(len(train)), "method": method}
    for source, target in (("clip", "clap"), ("clap", "clip")):
        x, y = spaces[source], spaces[target]
        row = {}
        for m in METHODS:
            fitted = fit_map(x[train], y[train], m)
            row[m] = map_quality(fitted(x[held]), y[held])
            if m == method:
                maps[source] = fitted
        rotation = _random_rotation(x.shape[1], y.shape[1])
        rand = LinearMap(rotation, x[train].mean(0), y[train].mean(0))
        row["random"] = map_quality(rand(x[held]), y[held])
        row["identity"] = map_quality(x[held], y[held]) if x.shape[1] == y.shape[1] else None
        metrics[f"{source}_to_{target}"] = row
    return Bridge(maps["clip"], maps["clap"], method, metrics)


def load_or_fit_bridge(
    cache_dir: str | os.PathLike,
    clip_encoder: Encoder,
    clap_encoder: Encoder,
    captions_path: Path = CAPTIONS_PATH,
    method: str = DEFAULT_METHOD,
) -> Bridge:
    """The bridge for these two encoders, from the cache or fitted (and cached) now.

    The cache file is named by both models' fingerprints and the caption set's hash, so a
    change of weights on either side or of the captions fits a new one. An unreadable cache
    file is fitted again and replaced.
    """
    captions_text = captions_path.read_bytes()
    key = hashlib.sha256(
        b"|".join(
            [
                clip_encoder.fingerprint.encode(),
                clap_encoder.fingerprint.encode(),
                hashlib.sha256(captions_text).digest(),
                method.encode(),
                str(CACHE_VERSION).encode(),
            ]
        )
    ).hexdigest()[:12]
    path = Path(cache_dir) / (
        f"bridge-{clip_encoder.name}-{clip_encoder.fingerprint}-"
        f"{clap_encoder.name}-{clap_encoder.fingerprint}-{key}.npz"
    )
    if path.is_file():
        try:
            return _read_bridge(path)
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            pass  # a damaged cache is rebuilt below
    captions = load_captions(captions_path)
    bridge = fit_bridge(
        clip_encoder.encode_texts(captions), clap_encoder.encode_texts(captions), method
    )
    bridge.metrics["captions"] = len(captions)
    bridge.metrics["clip_model"] = clip_encoder.name
    bridge.metrics["clap_model"] = clap_encoder.name
    _write_bridge(path, bridge)
    return bridge


def _pick_ridge_alpha(xs: np.ndarray, yt: np.ndarray) -> float:
    train, held = holdout_split(len(xs), seed=SPLIT_SEED + 1)
    scale = float(np.trace(xs[train].T @ xs[train]) / xs.shape[1])
    best, best_err = RIDGE_ALPHAS[0] * scale, np.inf
    for alpha in RIDGE_ALPHAS:
        matrix = _ridge(xs[train], yt[train], alpha * scale)
        err = float(((xs[held] @ matrix - yt[held]) ** 2).sum())
        if err < best_err:
            best, best_err = alpha * scale, err
    return best


def _ridge(xs: np.ndarray, yt: np.ndarray, alpha: float) -> np.ndarray:
    gram = xs.T @ xs + alpha * np.eye(xs.shape[1])
    return np.linalg.solve(gram, xs.T @ yt)


def _random_rotation(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(max(rows, cols), max(rows, cols))))
    return q[:rows, :cols].astype(np.float32)


def _write_bridge(path: Path, bridge: Bridge) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for direction, linear in (
        ("clip_to_clap", bridge.clip_to_clap),
        ("clap_to_clip", bridge.clap_to_clip),
    ):
        arrays[f"{direction}.matrix"] = linear.matrix
        arrays[f"{direction}.source_mean"] = linear.source_mean
        arrays[f"{direction}.target_mean"] = linear.target_mean
        arrays[f"{direction}.scale"] = np.float32(linear.scale)
    arrays["meta"] = np.frombuffer(
        json.dumps({"method": bridge.method, "metrics": bridge.metrics}).encode(), dtype=np.uint8
    )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".bridge-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_bridge(path: Path) -> Bridge:
    with np.load(path, allow_pickle=False) as data:
        maps = {
            d: LinearMap(
                data[f"{d}.matrix"],
                data[f"{d}.source_mean"],
                data[f"{d}.target_mean"],
                float(data[f"{d}.scale"]),
            )
            for d in ("clip_to_clap", "clap_to_clip")
        }
        meta = json.loads(data["meta"].tobytes().decode())
    return Bridge(maps["clip_to_clap"], maps["clap_to_clip"], meta["method"], meta["metrics"])
