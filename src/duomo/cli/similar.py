"""``duomo similar VIDEO_OR_ID --db DIR``: the most similar videos, or with ``--at SEC`` the
segments most like the one at that second."""

from __future__ import annotations

import argparse
import json

from duomo.cli.search import print_results


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("similar", help="videos (or segments) most like a video")
    parser.add_argument("video", metavar="VIDEO_OR_ID", help="an indexed video id or path, or any video file")
    parser.add_argument("--db", required=True, help="library folder made by duomo index")
    parser.add_argument("-k", type=int, default=10, help="results to return")
    parser.add_argument("--at", type=float, dest="at_sec", metavar="SEC",
                        help="compare the segment at this second instead of the whole video")
    parser.add_argument("--by", choices=("picture", "words", "both"), default="both",
                        help="compare what the videos show, what they say and write (indexed videos), or both "
                             "(default; a video without words by picture alone); --at compares pictures")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from duomo.library.search import LibrarySearcher

    searcher = LibrarySearcher(args.db)
    matched, results = searcher.similar(args.video, k=args.k, at_sec=args.at_sec, by=args.by)
    if args.json:
        print(json.dumps({"video": matched, "results": [r.to_dict() for r in results]}))
        return 0
    print_results(f"like {matched}: {len(results)} result(s)", results, searcher.store.thumbs)
    return 0
