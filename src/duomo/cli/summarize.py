"""``duomo summarize VIDEO [--budget 15%|SECONDS] [--out DIR]``: highlight reel, contact sheet,
chapters and text summary of one video."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "summarize", help="summarize a video: highlight reel, contact sheet, chapters, text summary",
        description="Score each segment's importance, pick segments under a duration budget (0/1 knapsack) and "
                    "write highlights.mp4, contact_sheet.png, chapters.json, summary.txt and summary.json.",
    )
    parser.add_argument("video", help="video file")
    parser.add_argument("--budget", default="15%", help="reel length: a share of the video (15%%) or seconds (20); "
                        "default %(default)s")
    parser.add_argument("--out", help="output folder (default: VIDEO's name + _summary beside it)")
    parser.add_argument("--model", help="a `duomo train summarize` run to score importance (default: unsupervised)")
    parser.add_argument("--caption", help="a caption run to title the chapters (default: key phrases of the text)")
    parser.add_argument("--no-speech", action="store_true", help="do not transcribe speech")
    parser.add_argument("--no-ocr", action="store_true", help="do not read on-screen text")
    parser.add_argument("--json", action="store_true", help="print summary.json on stdout instead of a table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from duomo.summarize.pipeline import parse_budget, summarize_video

    parse_budget(args.budget)  # a bad budget fails before any model loads
    video = Path(args.video)
    out = Path(args.out) if args.out else video.with_name(video.stem + "_summary")
    result = summarize_video(video, out, budget=args.budget, model=args.model, caption=args.caption,
                             use_speech=not args.no_speech, use_ocr=not args.no_ocr)
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    console = Console()
    chosen = [s for s in result.segments if s.selected]
    console.print(f"{escape(str(video))}: {result.duration_sec:.1f} s, budget {result.budget_sec:.1f} s, "
                  f"scorer {escape(result.scorer)}; reel {result.reel_sec:.1f} s from {len(chosen)} of "
                  f"{len(result.segments)} segments ({'streams copied' if result.reel_copied else 're-encoded'})")
    table = Table(title="chapters")
    for column in ("start", "end", "title"):
        table.add_column(column, justify="left" if column == "title" else "right")
    for c in result.chapters:
        table.add_row(f"{c.start:.1f}", f"{c.end:.1f}", escape(c.title))
    console.print(table)
    for s in result.sentences:
        console.print(f"[{s['start']:.1f}s] {escape(s['text'])}")
    console.print(f"written to {escape(str(result.out_dir))}")
    return 0
