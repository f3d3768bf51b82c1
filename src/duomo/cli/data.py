"""``duomo data check MANIFEST``: validate a manifest and report counts and answer balance."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.table import Table

from duomo.data.manifest import load_manifest, summarize_manifest
from duomo.errors import ManifestError

def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("data", help="validate and describe a dataset manifest")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="check every line of a manifest.jsonl and print its statistics")
    check.add_argument("manifest", help="path to manifest.jsonl")
    check.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    check.add_argument("--no-files", action="store_true", help="do not check that video files exist")
    check.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        records = load_manifest(args.manifest, check_files=not args.no_files)
    except ManifestError as err:
        print(err.report(), file=sys.stderr)
        print(f"duomo data check: {len(err.problems)} problem(s) in {err.path}", file=sys.stderr)
        return 2
    summary = summarize_manifest(records)
    if args.json:
        print(json.dumps(summary))
        return 0
    _print_summary(summary, args.manifest)
    return 0


def _print_summary(summary: dict, manifest: str) -> None:
    console = Console()
    splits = ", ".join(f"{name} {count}" for name, count in sorted(summary["splits"].items()))
    console.print(f"[bold]{manifest}[/]: {summary['num_videos']} videos ({splits}), "
                  f"{summary['num_captions']} captions, {summary['num_qa']} questions "
                  f"({summary['num_multiple_choice']} multiple choice), {summary['num_segments']} segments, "
                  f"{summary['num_dialogs']} dialogs, {summary['num_with_cuts']} videos with a cut")
    if summary["answer_balance"]:
        console.print(balance_table(summary["answer_balance"]))
    if summary["labels"]:
        table = Table(title="Primary labels")
        table.add_column("label")
        table.add_column("videos", justify="right")
        table.add_column("share", justify="right")
        for label, count in summary["labels"].items():
            table.add_row(label, str(count), f"{count / summary['num_videos']:.1%}")
        console.print(table)


def balance_table(balance: dict[str, dict]) -> Table:
    """A table of ``answer_balance`` (from ``duomo.data.manifest``): one row per QA type."""
    table = Table(title="Questions by type and answer balance")
    for column in ("type", "questions", "answers", "most common", "share", "uniform", "balanced"):
        table.add_column(column, justify="left" if column in ("type", "most common") else "right")
    for qa_type, b in balance.items():
        table.add_row(qa_type, str(b["num_questions"]), str(b["num_answers"]), b["majority"],
                      f"{b['majority_share']:.1%}", f"{b['uniform_share']:.1%}",
                      "yes" if b["is_balanced"] else "[red]NO[/]")
    return table
