"""``duomo dub VIDEO``: a new soundtrack spoken from subtitles (or the video's own speech),
ducked under or replacing the original, muxed with the video stream copied."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from duomo.errors import DuomoError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "dub", help="speak subtitles with a voice over a video (video stream copied, not re-encoded)",
        description="Speak each cue with a text-to-speech voice (joe: the bundled Piper voice; espeak-ng languages "
                    "such as es, fr, de), fit it to its slot, and mix it over the original sound.",
    )
    parser.add_argument("video", help="video file with an audio track")
    parser.add_argument("--subtitles", type=Path, default=None,
                        help="SRT or WebVTT script to speak, e.g. a translation (default: the video's own speech)")
    parser.add_argument("--voice", default="joe", help="voice name (default %(default)s); see `espeak-ng --voices`")
    parser.add_argument("--mix", choices=("duck", "replace"), default="duck",
                        help="lower the original sound under each cue, or silence it there (default %(default)s)")
    parser.add_argument("--duck-db", type=float, default=-15.0,
                        help="how far duck lowers the original, in dB (default %(default)s)")
    parser.add_argument("--max-speedup", type=float, default=1.5,
                        help="fastest a line may be sped up to fit its cue (default %(default)s)")
    parser.add_argument("--out", type=Path, default=None, help="output video (default: VIDEO.dub.EXT)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from duomo.subtitles.dub import dub_video
    from duomo.subtitles.formats import parse_subtitles

    if args.max_speedup < 1:
        raise DuomoError("--max-speedup must be at least 1")
    if args.duck_db > 0:
        raise DuomoError("--duck-db must be 0 or negative")
    video = Path(args.video)
    out = args.out or video.with_name(f"{video.stem}.dub{video.suffix}")
    cues = parse_subtitles(args.subtitles) if args.subtitles is not None else None
    console = Console()
    with console.status("dubbing"):
        placed = dub_video(video, cues, out, voice=args.voice, mix=args.mix, max_speedup=args.max_speedup,
                           duck_db=args.duck_db, cues_name=str(args.subtitles or video))
    faster = sum(1 for p in placed if p.speedup > 1)
    console.print(f"{len(placed)} cues spoken by {args.voice} ({faster} sped up), mix {args.mix} -> {out}")
    return 0
