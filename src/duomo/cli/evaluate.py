"""``duomo eval RUN_DIR --data MANIFEST --split test [--json]``: score a trained run."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="score a trained run on a split of a manifest")
    parser.add_argument("run_dir", help="folder written by duomo train")
    parser.add_argument("--data", required=True, help="manifest.jsonl")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    parser.add_argument("--checkpoint", default="best.pt", help="checkpoint file in the run folder")
    parser.add_argument("--beam", type=int, help="caption beam size (1 = greedy; default: the run's)")
    parser.add_argument("--skip-bad-videos", action="store_true", help="skip videos that fail to decode")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from duomo.eval.evaluate import confusion, evaluate_run

    report = evaluate_run(args.run_dir, args.data, args.split, checkpoint=args.checkpoint, beam_size=args.beam,
                          skip_bad_videos=True if args.skip_bad_videos else None)
    metrics = report.metrics
    out = Path(args.run_dir)
    with open(out / f"eval_{args.split}_predictions.jsonl", "w") as handle:
        for p in report.predictions:
            line = {"video_id": p.video_id, "question": p.row.question, "prediction": p.text,
                    "answer": p.row.answer or None, "references": p.row.references or None, "score": p.score}
            if p.span is not None:  # moment retrieval: predicted and true [start_sec, end_sec]
                line.update(span=[round(t, 3) for t in p.span], target=list(p.row.span))
            if p.row.importance:  # summarize: per-frame predicted importance, true per-second importance
                line.update(importance=[round(s, 4) for s in p.scores], target=p.row.importance)
            handle.write(json.dumps(line) + "\n")
    if metrics["task"] == "classify":
        from duomo.data.datasets import TaskVocab
        from duomo.eval.plots import plot_confusion_matrix

        vocab = TaskVocab.load(out / "vocab.json")
        plot_confusion_matrix(confusion(report.predictions, vocab), vocab.labels, out / f"eval_{args.split}_confusion.png")
    if report.skipped:
        print(f"duomo eval: skipped {len(report.skipped)} video(s) that failed to decode", file=sys.stderr)
    if args.json:
        print(json.dumps(_clean(metrics)))
        return 0
    table = Table(title=f"{metrics['task']} on {args.split} ({metrics['n']} rows)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        if key in ("task", "split", "n"):
            continue
        if isinstance(value, dict):
            for sub, v in value.items():
                table.add_row(escape(f"{key}[{sub}]"), _fmt(v))
        else:
            table.add_row(key, _fmt(value))
    Console().print(table)
    return 0


def _fmt(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else (
        f"{value:.4f}" if isinstance(value, float) else str(value))


def _clean(value):
    """JSON-safe: NaN becomes null."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
