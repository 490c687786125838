"""`app.py finetune`: the argument parser and the command, wired into app.py by two calls."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from search.errors import TroveError
from search.finetune.choices import OBJECTIVES, TRAINABLE
from search.finetune.pairs import LABEL_SOURCES


def add_finetune_parser(
    subparsers, parents: Sequence[argparse.ArgumentParser] = ()
) -> argparse.ArgumentParser:
    """Add the `finetune` sub-command to app.py's sub-parsers; `parents` hold the options
    every command shares (--data-dir)."""
    p = subparsers.add_parser(
        "finetune",
        parents=list(parents),
        help="teach a CLIP model your captions or labels; saves a new model preset",
        description="Fine-tune a CLIP preset on captioned or labelled pictures, report "
        "held-out recall before and after, and save the result as preset NAME "
        "(in <data dir>/models/NAME) for `python app.py index --model NAME`.",
    )
    p.add_argument(
        "--pairs",
        metavar="PATH",
        help="a folder of photo.jpg + photo.txt captions, a pairs .csv/.jsonl/.json "
        "(path, caption), or a folder of label folders (Pets/Bella/*.jpg -> 'Bella'); with "
        "--text-model: a .csv/.jsonl/.json of (query, passage) pairs",
    )
    p.add_argument(
        "--text-model",
        metavar="BASE",
        help="fine-tune this sentence model (all-minilm-l6-v2) for documents instead of CLIP: "
        "with --pairs (query, passage) or --documents FOLDER",
    )
    p.add_argument(
        "--documents",
        metavar="FOLDER",
        help="with --text-model: learn from your own documents, no labels needed",
    )
    p.add_argument(
        "--method",
        choices=["pairs", "headings", "simcse"],
        help="with --text-model --documents: headings (default; each heading or file name "
        "paired with its passage) or simcse (each passage with itself under dropout)",
    )
    p.add_argument("--model", default="clip-vit-b-32", help="base preset (default clip-vit-b-32)")
    p.add_argument("--model-path", help="local checkpoint file or folder for the base preset")
    p.add_argument("--out", required=True, metavar="NAME", help="name of the new preset")
    p.add_argument(
        "--objective",
        choices=list(OBJECTIVES),
        default="clip",
        help="; ".join(f"{k}: {v}" for k, v in OBJECTIVES.items()) + " (default clip)",
    )
    p.add_argument(
        "--train",
        choices=TRAINABLE,
        default="heads",
        help="heads (default): the two projection matrices only, towers frozen and "
        "computed once; last-blocks: also the last --blocks transformer blocks",
    )
    p.add_argument("--blocks", type=int, default=1, help="blocks per tower for last-blocks")
    p.add_argument("--epochs", type=int, help="at most this many (default 30; a text model: 4)")
    p.add_argument("--patience", type=int, default=5, help="stop after N epochs without gain")
    p.add_argument("--batch-size", type=int, help="pairs per step (default 64; a text model: 32)")
    p.add_argument("--lr", type=float, help="learning rate (default 3e-3 heads, 1e-3 blocks)")
    p.add_argument(
        "--holdout", type=float, default=0.2, help="share of files held out for the figures"
    )
    p.add_argument("--seed", type=int, default=0, help="same seed, same split and weights")
    p.add_argument(
        "--labels",
        choices=LABEL_SOURCES,
        default="auto",
        help="how a folder is read: sidecar .txt captions, folder names, or auto",
    )
    p.add_argument(
        "--label-template",
        default="{}",
        metavar="TEXT",
        help='turn a folder label into a caption, e.g. "a photo of {}"',
    )
    p.add_argument(
        "--general",
        metavar="PATH",
        help="general pictures with captions (same formats as --pairs) whose embeddings "
        "should stay as the base has them; their retrieval is reported before and after",
    )
    p.add_argument(
        "--distill",
        type=float,
        default=0.0,
        metavar="W",
        help="weight of the pull towards the base model on --general (default 0: off)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing preset NAME")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_finetune)
    return p


def run_finetune(args: argparse.Namespace) -> int:
    if args.text_model:
        return _run_text_finetune(args)
    if args.documents or args.method:
        raise TroveError("--documents and --method fine-tune a text model: add --text-model.")
    if not args.pairs:
        raise TroveError("finetune needs --pairs PATH (or --text-model with --documents).")
    from search.finetune.train import FinetuneConfig, finetune

    config = FinetuneConfig(
        pairs=args.pairs,
        model=args.model,
        out=args.out,
        model_path=args.model_path,
        objective=args.objective,
        train=args.train,
        blocks=args.blocks,
        epochs=args.epochs or 30,
        batch_size=args.batch_size or 64,
        lr=args.lr,
        holdout=args.holdout,
        patience=args.patience,
        seed=args.seed,
        distill=args.distill,
        general=args.general,
        labels=args.labels,
        label_template=args.label_template,
        force=args.force,
        data_dir=args.data_dir,
    )
    result = finetune(config, progress=not args.quiet, announce=_print_lines)
    _print_lines(result.lines())
    return 0


def _run_text_finetune(args: argparse.Namespace) -> int:
    from search.finetune.text import TextFinetuneConfig, finetune_text

    config = TextFinetuneConfig(
        base=args.text_model,
        out=args.out,
        pairs=args.pairs,
        documents=args.documents,
        method=args.method,
        epochs=args.epochs or TextFinetuneConfig.epochs,
        batch_size=args.batch_size or TextFinetuneConfig.batch_size,
        lr=args.lr if args.lr is not None else TextFinetuneConfig.lr,
        distill=args.distill,
        general=args.general,
        seed=args.seed,
        force=args.force,
        data_dir=args.data_dir,
    )
    result = finetune_text(config, progress=not args.quiet, announce=_print_lines)
    _print_lines(result.lines())
    return 0


def _print_lines(lines: list[str]) -> None:
    print("\n".join(lines), flush=True)
