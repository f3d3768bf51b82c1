"""``duomo shots VIDEO``: find where shots start (hard cuts, fades, dissolves) and list them."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from duomo.errors import DuomoError
from duomo.video.shots import ShotDetector, detect_shots


def add_parser(subparsers) -> None:
    defaults = ShotDetector()
    parser = subparsers.add_parser(
        "shots", help="split a video into shots: hard cuts, fades through black and dissolves",
        description="Decode every frame small and list the shots with the kind of transition each starts with.",
    )
    parser.add_argument("video", help="video file")
    parser.add_argument("--threshold", type=float, default=defaults.threshold,
                        help="cut score in (0, 1] a frame change must reach to be a cut: the geometric mean of the "
                             "share of the colour histogram and the share of the picture that changed "
                             "(default %(default)s; lower finds subtler cuts)")
    parser.add_argument("--fade-threshold", type=float, default=defaults.fade_threshold,
                        help="share of the picture in (0, 1] a fade or dissolve must change (default %(default)s)")
    parser.add_argument("--min-shot", type=float, default=defaults.min_shot_sec,
                        help="shortest shot in seconds; closer boundaries are dropped (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not 0 < args.threshold <= 1 or not 0 < args.fade_threshold <= 1:
        raise DuomoError("--threshold and --fade-threshold must be in (0, 1]")
    if args.min_shot < 0:
        raise DuomoError("--min-shot must be >= 0")
    shots = detect_shots(args.video, threshold=args.threshold, fade_threshold=args.fade_threshold,
                         min_shot_sec=args.min_shot)
    if args.json:
        print(json.dumps({
            "video": args.video,
            "shots": [{"start_sec": round(s.start_sec, 4), "end_sec": round(s.end_sec, 4), "start_frame": s.start_frame,
                       "end_frame": s.end_frame, "start_kind": s.start_kind} for s in shots],
        }))
        return 0
    table = Table(title=f"{args.video}: {len(shots)} shots")
    for column in ("#", "start", "end", "frames", "starts with"):
        table.add_column(column, justify="left" if column == "starts with" else "right")
    for i, shot in enumerate(shots, 1):
        table.add_row(str(i), f"{shot.start_sec:.2f}", f"{shot.end_sec:.2f}", f"{shot.start_frame}-{shot.end_frame - 1}",
                      shot.start_kind)
    Console().print(table)
    return 0
