"""``duomo synth OUT_DIR``: generate a SynthWorld set (H.264 videos with sound + manifest.jsonl)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from duomo.errors import DuomoError
from duomo.synth.scene import SPLIT_MODES, SynthConfig
from duomo.synth.world import WorldSummary, generate_world


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth", help="generate a SynthWorld video set with exact annotations",
        description="Write OUT_DIR/videos/<id>.mp4 (H.264 + AAC soundtrack) and OUT_DIR/manifest.jsonl with "
                    "captions, QA, labels, segments, shots, dialogs and importance; the same arguments give the same set.",
    )
    parser.add_argument("out_dir", help="output folder")
    parser.add_argument("--videos", type=int, default=SynthConfig.num_videos, help="number of videos (default %(default)s)")
    parser.add_argument("--seed", type=int, default=SynthConfig.seed, help="random seed (default %(default)s)")
    parser.add_argument("--split", choices=SPLIT_MODES, default=SynthConfig.split,
                        help="random train/val/test, or compositional: held-out colour-shape pairs only in test")
    parser.add_argument("--size", type=int, default=SynthConfig.size, help="frame side in pixels (default %(default)s)")
    parser.add_argument("--fps", type=int, default=SynthConfig.fps, help="frames per second (default %(default)s)")
    parser.add_argument("--min-duration", type=float, default=SynthConfig.min_duration_sec, help="shortest video, seconds")
    parser.add_argument("--max-duration", type=float, default=SynthConfig.max_duration_sec, help="longest video, seconds")
    parser.add_argument("--cut-prob", type=float, default=SynthConfig.cut_prob, help="share of videos with a cut")
    parser.add_argument("--val-fraction", type=float, default=SynthConfig.val_fraction,
                        help="share of videos in the val split (default %(default)s)")
    parser.add_argument("--test-fraction", type=float, default=SynthConfig.test_fraction,
                        help="share of videos in the test split (default %(default)s)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes to render in (default: all cores); does not change the output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DuomoError(f"{out_dir}: exists and is not a folder")
    if args.workers < 1:
        raise DuomoError("--workers must be at least 1")
    config = SynthConfig(
        num_videos=args.videos, seed=args.seed, split=args.split, size=args.size, fps=args.fps,
        min_duration_sec=args.min_duration, max_duration_sec=args.max_duration, cut_prob=args.cut_prob,
        val_fraction=args.val_fraction, test_fraction=args.test_fraction,
    )
    console = Console(stderr=True)
    columns = (TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("videos", total=config.num_videos)
        summary = generate_world(out_dir, config, workers=min(args.workers, config.num_videos),
                                 on_progress=lambda done: progress.update(task, completed=done))
    _print_summary(summary)
    return 0


def _print_summary(summary: WorldSummary) -> None:
    console = Console()
    splits = ", ".join(f"{name} {count}" for name, count in sorted(summary.splits.items()))
    console.print(
        f"wrote {summary.num_videos} videos ({splits}; {summary.total_duration_sec / 60:.1f} min), "
        f"{summary.num_captions} captions and {summary.num_questions} questions to {summary.manifest_path} "
        f"in {summary.elapsed_sec:.1f} s ({summary.num_videos / max(summary.elapsed_sec, 1e-9):.1f} videos/s)"
    )
    label_counts = sorted(summary.labels.values())
    console.print(f"primary labels: {len(summary.labels)} classes, {label_counts[0]}-{label_counts[-1]} videos each")
    imbalanced = [family for family, b in summary.balance.items() if not b["is_balanced"]]
    verdict = f"imbalanced: {', '.join(imbalanced)}" if imbalanced else "all balanced"
    console.print(f"answers of {len(summary.balance)} QA families: {verdict} "
                  f"(table: duomo data check {summary.manifest_path})", highlight=False)
