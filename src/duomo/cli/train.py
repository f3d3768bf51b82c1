"""``duomo train TASK --data MANIFEST --out RUN_DIR``: train a model for one task."""

from __future__ import annotations

import argparse
import math
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from duomo.config import TASKS


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train a caption, qa, dialog, classify, retrieval or summarize model from a manifest")
    parser.add_argument("task", choices=TASKS, help="what to learn")
    parser.add_argument("--data", required=True, help="manifest.jsonl (train and val splits are used)")
    parser.add_argument("--out", required=True, help="run folder for checkpoints, config, metrics and plots")
    parser.add_argument("--config", help="preset name (e.g. qa_seed_baseline) or YAML file; default: the task's preset")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one setting, e.g. --set model.fusion.name=cross_attn (repeatable)")
    parser.add_argument("--epochs", type=int, help="passes over the training split")
    parser.add_argument("--max-minutes", type=float, help="stop after this many minutes (best checkpoint kept)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from duomo.config import load_config

    overrides = [f"data.manifest={args.data}", *args.overrides]
    if args.epochs is not None:
        overrides.append(f"train.epochs={args.epochs}")
    if args.max_minutes is not None:
        overrides.append(f"train.max_minutes={args.max_minutes}")
    cfg = load_config(args.task, args.config, overrides)  # before importing torch: config typos fail at once
    from duomo.train.run import fit

    console = Console(stderr=True)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    # no bars when stderr is not a terminal: Rich would print their last frame there, even above an error
    with Progress(*columns, console=console, transient=False, disable=not console.is_terminal) as progress:
        prep = progress.add_task("decoding videos", total=None, info="")
        bar = None

        def on_prepare(done: int, total: int) -> None:
            progress.update(prep, completed=done, total=total)

        pretrain_bar = None

        def on_pretrain(done: int, total: int) -> None:
            nonlocal pretrain_bar
            if pretrain_bar is None:
                pretrain_bar = progress.add_task("pre-training frames", total=total, info="")
            progress.update(pretrain_bar, completed=done, total=total)

        def on_progress(p) -> None:
            nonlocal bar
            desc = f"epoch {p.epoch}/{p.num_epochs}" + (" val" if p.phase == "val" else "")
            info = f"loss {p.loss:.3f}" + (f"  {p.rows_per_sec:.0f} rows/s" if p.phase == "train" else "")
            if bar is None:
                bar = progress.add_task(desc, total=p.num_batches, info=info)
            progress.update(bar, description=desc, completed=p.batch, total=p.num_batches, info=info)

        result = fit(cfg, args.out, resume=args.resume, on_prepare=on_prepare, on_progress=on_progress,
                     on_pretrain=on_pretrain)
    r = result.result
    best = "n/a" if math.isinf(r.best_metric) or math.isnan(r.best_metric) else f"{r.best_metric:.4f}"
    print(f"trained {cfg.task}: {r.epochs_done} epochs, {r.steps} steps in {r.elapsed_sec / 60:.1f} min"
          f"{' (stopped at the time limit)' if r.stopped_early else ''}; "
          f"{result.num_train_videos} train videos ({result.num_train_rows} rows), {result.num_val_videos} val videos; "
          f"best val {best} at epoch {r.best_epoch}; run in {result.out_dir}")
    if result.skipped:
        print(f"skipped {len(result.skipped)} video(s) that failed to decode:", file=sys.stderr)
        for reason in list(result.skipped.values())[:10]:
            print(f"  {reason}", file=sys.stderr)
    return 0
