"""``duomo search "QUERY" --db DIR``: hybrid search of an indexed library, grouped by video."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from duomo.store.library import MODALITIES


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("search", help="search an indexed library by what is said, written or shown")
    parser.add_argument("query", help="words to look for")
    parser.add_argument("--db", required=True, help="library folder made by duomo index")
    parser.add_argument("-k", type=int, default=10, help="videos to return")
    parser.add_argument("--modality", default="all", choices=MODALITIES,
                        help="speech, text (on screen and captions), visual (needs a --model library) or all")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from duomo.library.search import LibrarySearcher

    searcher = LibrarySearcher(args.db)
    results = searcher.search(args.query, k=args.k, modality=args.modality)
    if args.json:
        print(json.dumps({"query": args.query, "modality": args.modality,
                          "thumbs": str(searcher.store.thumbs), "results": [r.to_dict() for r in results]}))
        return 0
    print_results(f"{args.query!r}: {len(results)} video(s)", results, searcher.store.thumbs)
    return 0


def print_results(title: str, results, thumbs) -> None:
    """A table of grouped hits (shared by search and similar)."""
    table = Table(title=escape(title), caption=escape(f"thumbnails are under {thumbs}; --json gives full paths"))
    for column, justify in (("video", "left"), ("score", "right"), ("at", "right"), ("kind", "left"),
                            ("matched", "left"), ("thumbnail", "left")):
        table.add_column(column, justify=justify, overflow="fold")  # paths wrap, never cut
    for result in results:
        for n, hit in enumerate(result.hits):
            table.add_row(escape(Path(result.path).name) if n == 0 else "", f"{hit.score:.4f}",
                          f"{hit.start_sec:.1f}-{hit.end_sec:.1f} s", hit.modality, escape(hit.text[:60]),
                          escape(hit.thumbnail))
    Console().print(table)
