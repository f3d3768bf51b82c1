"""``duomo index PATH... --db DIR``: index videos (shots, segments, thumbnails, speech, on-screen
text, embeddings) into a searchable library; incremental."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("index", help="index videos into a searchable library (incremental)")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="video files or folders (searched recursively)")
    parser.add_argument("--db", required=True, help="library folder (created if missing)")
    parser.add_argument("--model", help="retrieval run folder: segment vectors from it (default: a colour/layout descriptor)")
    parser.add_argument("--captions", metavar="RUN_DIR",
                        help="caption run: describe every segment in words (searchable with --modality text)")
    parser.add_argument("--prune", action="store_true", help="drop indexed videos whose files are gone")
    parser.add_argument("--workers", type=int, help="worker processes (default: the number of cores)")
    parser.add_argument("--segment-sec", type=float, default=5.0, help="shots are cut into windows this long")
    parser.add_argument("--shot-threshold", type=float, help="shot detector threshold (see duomo shots --help)")
    parser.add_argument("--no-speech", action="store_true", help="skip speech recognition")
    parser.add_argument("--no-ocr", action="store_true", help="skip on-screen text")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.set_defaults(run=run)


class _Bars:
    """Rich progress bars, one per stage, with videos/s and ETA."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.tasks: dict[str, int] = {}

    def start(self, stage: str, total: int) -> None:
        if total:
            self.tasks[stage] = self.progress.add_task(stage, total=total)

    def advance(self, stage: str) -> None:
        if stage in self.tasks:
            self.progress.advance(self.tasks[stage])


def run(args: argparse.Namespace) -> int:
    from duomo.library.analyze import IndexSettings
    from duomo.library.index import index_paths

    settings = IndexSettings(segment_sec=args.segment_sec, shot_threshold=args.shot_threshold,
                             use_speech=not args.no_speech, use_ocr=not args.no_ocr)
    console = Console(stderr=True)
    columns = [TextColumn("{task.description:>7}"), BarColumn(), MofNCompleteColumn(), _SpeedColumn(),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        report = index_paths(args.paths, args.db, settings=settings, model_dir=args.model, caption_dir=args.captions,
                             prune=args.prune,
                             workers=args.workers, progress=_Bars(progress))
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        out = Console()
        speed = f", {report.video_seconds / report.seconds:.1f}x real time" if report.indexed and report.seconds else ""
        out.print(f"indexed {len(report.indexed)}, unchanged {len(report.skipped)}, failed {len(report.failed)}, "
                  f"pruned {len(report.pruned)} in {report.seconds:.1f} s{speed}")
        if report.stage_seconds:
            total = sum(report.stage_seconds.values()) or 1.0
            table = Table(title="time per stage (summed over workers)")
            table.add_column("stage")
            table.add_column("seconds", justify="right")
            table.add_column("share", justify="right")
            for stage, sec in sorted(report.stage_seconds.items(), key=lambda kv: -kv[1]):
                table.add_row(stage, f"{sec:.1f}", f"{100 * sec / total:.0f}%")
            out.print(table)
        for path, reason in report.failed:
            said = reason if reason.startswith(path) else f"{path}: {reason}"  # media errors name the file already
            out.print(f"[red]failed[/red] {escape(said)}", soft_wrap=True)
    return 1 if report.failed else 0


class _SpeedColumn(TextColumn):
    """Videos per second of a stage."""

    def __init__(self):
        super().__init__("")

    def render(self, task):
        from rich.text import Text

        speed = task.finished_speed or task.speed
        return Text(f"{speed:.2f} videos/s" if speed else "")
