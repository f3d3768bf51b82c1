"""``duomo synth OUT_DIR``: generate a SynthWorld set (videos + manifest.jsonl). First version: parser only."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("synth", help="generate a SynthWorld video set with exact annotations")
    parser.add_argument("out_dir", help="output folder (videos/ and manifest.jsonl are written there)")
    parser.add_argument("--videos", type=int, default=100, help="number of videos")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("duomo synth is being written")
