"""``duomo subtitle VIDEO``: subtitles from the video's speech (SRT or WebVTT), optionally
burned into a new video and with audio-description cues from a caption run."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from duomo.errors import DuomoError
from duomo.subtitles.cues import make_cues
from duomo.subtitles.formats import write_srt, write_vtt
from duomo.subtitles.partial import partial_file


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "subtitle", help="write subtitles (SRT or WebVTT) from a video's speech; burn them in; describe silent parts",
        description="Recognize the speech with word timestamps and cut it into cues: at sentence ends and pauses, "
                    "at most 2 lines of 42 characters and 7 seconds, at least 1 second each.",
    )
    parser.add_argument("video", help="video file")
    parser.add_argument("--format", choices=("srt", "vtt"), default=None,
                        help="subtitle format (default: from --out's extension, else srt)")
    parser.add_argument("--out", type=Path, default=None, help="subtitle file to write (default: VIDEO.srt / .vtt)")
    parser.add_argument("--burn", type=Path, default=None, metavar="OUT_VIDEO",
                        help="also write this video with the subtitles drawn on it (audio copied)")
    parser.add_argument("--describe", type=Path, default=None, metavar="RUN_DIR",
                        help="a caption run: add '[...]' cues describing the picture where nobody speaks")
    parser.add_argument("--min-gap", type=float, default=3.0,
                        help="shortest silence in seconds that --describe describes (default %(default)s)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from duomo.speech.asr import SpeechRecognizer
    from duomo.video.probe import probe

    fmt = args.format or (args.out.suffix.lower().lstrip(".") if args.out and args.out.suffix.lower() in
                          (".srt", ".vtt") else "srt")
    out = args.out or Path(args.video).with_suffix(f".{fmt}")
    if args.min_gap <= 0:
        raise DuomoError("--min-gap must be positive")
    predictor = None
    if args.describe is not None:
        import duomo

        predictor = duomo.load(args.describe)  # a bad run folder fails before the slow work
        if predictor.task != "caption":
            raise DuomoError(f"{args.describe}: a {predictor.task} run; --describe needs a caption run")
    info = probe(args.video)
    console = Console()
    with console.status("recognizing speech"):
        cues = make_cues(SpeechRecognizer().transcribe(args.video))
    descriptions = []
    if predictor is not None:
        from duomo.subtitles.describe import describe_gaps

        with console.status("describing the parts without speech"):
            descriptions = describe_gaps(args.video, cues, predictor, info.duration_sec, min_gap_sec=args.min_gap)
    all_cues = sorted(cues + descriptions, key=lambda cue: cue.start_sec)
    with partial_file(out) as tmp:
        (write_vtt if fmt == "vtt" else write_srt)(all_cues, tmp)
    summary = f"{len(cues)} speech cues" + (f", {len(descriptions)} descriptions" if predictor else "")
    console.print(f"{summary} -> {out}" + ("" if all_cues else " (no speech found)"))
    if args.burn is not None:
        from duomo.subtitles.burn import burn_subtitles

        with console.status("burning subtitles in"):
            burn_subtitles(args.video, all_cues, args.burn)
        console.print(f"burned in -> {args.burn}")
    return 0
