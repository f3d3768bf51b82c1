"""``duomo predict RUN_DIR VIDEO [--question TEXT]``: a caption, an answer, or labels for one video."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("predict", help="caption, answer a question about, or classify one video")
    parser.add_argument("run_dir", help="folder written by duomo train")
    parser.add_argument("video", help="any video file")
    parser.add_argument("--question", help="question for a qa or dialog model")
    parser.add_argument("--choices", help="comma-separated answers to choose from (multiple choice)")
    parser.add_argument("--history", action="append", default=[], metavar="Q=A",
                        help="an earlier dialog turn 'question=answer' (repeatable, oldest first)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import duomo
    from duomo.errors import DuomoError

    predictor = duomo.load(args.run_dir)
    if predictor.task in ("qa", "dialog"):
        if not args.question:
            raise DuomoError(f"{args.run_dir} is a {predictor.task} model: pass --question")
        choices = [c.strip() for c in args.choices.split(",")] if args.choices else None
        history = [tuple(h.split("=", 1)) for h in args.history if "=" in h]
        answer = predictor.answer(args.video, args.question, choices, history)
        result = {"task": predictor.task, "video": args.video, "question": args.question,
                  "answer": answer.text, "score": round(answer.score, 4)}
        text = f"{answer.text}  ({answer.score:.2f})"
    elif predictor.task == "caption":
        caption = predictor.caption(args.video)
        result = {"task": "caption", "video": args.video, "caption": caption}
        text = caption
    else:
        labels = predictor.classify(args.video)
        result = {"task": "classify", "video": args.video, "labels": [[n, round(s, 4)] for n, s in labels.labels],
                  "top": [[n, round(s, 4)] for n, s in labels.top]}
        text = "\n".join(f"{name:20s} {score:.3f}" for name, score in labels.top)
    print(json.dumps(result) if args.json else text)
    return 0
