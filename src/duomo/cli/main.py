"""Entry point of the ``duomo`` command: builds the parser and maps errors to one line."""

from __future__ import annotations

import argparse
import logging
import sys

from duomo import __version__
from duomo.cli import (data, dub, evaluate, index, predict, probe, search, serve, shots, similar, subtitle, summarize,
                       synth, train)
from duomo.errors import DuomoError

# Each subcommand module has ``add_parser(subparsers)`` and ``run(args) -> int``.
SUBCOMMANDS = [probe, shots, synth, data, train, evaluate, predict, index, search, similar, serve, subtitle, dub, summarize]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="duomo",
        description="Duomo: understand videos by fusing what they show, say and write.",
    )
    parser.add_argument("--version", action="version", version=f"duomo {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.run(args)
    except DuomoError as err:
        print(f"duomo {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"duomo {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
