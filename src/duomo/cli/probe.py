"""``duomo probe VIDEO...``: print what a video file holds (duration, fps, frames, streams)."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.table import Table

from duomo.errors import MediaError
from duomo.video import probe


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("probe", help="describe video files: duration, fps, size, codecs, streams")
    parser.add_argument("videos", nargs="+", help="video files")
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    console = Console()
    failed = 0
    for path in args.videos:
        try:
            info = probe(path).to_dict()
        except MediaError as err:
            # one bad file never hides the others: report it and go on
            failed += 1
            if args.json:
                print(json.dumps({"path": path, "error": err.reason}))
            else:
                print(f"duomo probe: error: {err}", file=sys.stderr)
            continue
        if args.json:
            print(json.dumps(info))
            continue
        table = Table(title=path, show_header=False)
        for key, value in info.items():
            table.add_row(key, _format(value))
        console.print(table)
    return 2 if failed else 0


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list):
        return "\n".join(_format(v) for v in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_format(v)}" for k, v in value.items())
    return "-" if value is None else str(value)
