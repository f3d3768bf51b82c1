"""``duomo predict RUN_DIR VIDEO [--question TEXT]``: a caption, an answer, labels, a query's
similarity (retrieval), a query's moment (moment retrieval) or importance over time (summarize)
for one video."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("predict", help="caption, answer a question about, or classify one video")
    parser.add_argument("run_dir", help="folder written by duomo train")
    parser.add_argument("video", help="any video file")
    parser.add_argument("--question", help="question for a qa or dialog model; query for a retrieval model")
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
    elif predictor.task == "retrieval" and predictor.cfg.model.head.name == "moment":
        if not args.question:
            raise DuomoError(f"{args.run_dir} is a moment retrieval model: pass --question with what to find")
        start, end, score = predictor.find_moment(args.video, args.question)
        result = {"task": "retrieval", "video": args.video, "query": args.question, "start_sec": round(start, 3),
                  "end_sec": round(end, 3), "score": round(score, 4)}
        text = f"{start:.2f}-{end:.2f} s  ({score:.2f})"
    elif predictor.task == "retrieval":
        video = predictor.embed_video(args.video)
        result = {"task": "retrieval", "video": args.video, "embedding_dim": int(video.shape[0])}
        if args.question:
            similarity = float(predictor.embed_text([args.question])[0] @ video)
            result.update({"query": args.question, "similarity": round(similarity, 4)})
            text = f"similarity {similarity:.3f}  (cosine, -1 to 1)"
            if predictor.model.head.matcher is not None:
                match = float(predictor.match(args.video, [args.question])[0])
                result["match"] = round(match, 4)
                text += f"\nmatch {match:.3f}  (the matcher's score, which ranks candidates; higher is better)"
        else:
            result["embedding"] = [round(float(x), 6) for x in video]
            text = f"embedding of {video.shape[0]} dims; pass --question to score a query against the video"
    elif predictor.task == "summarize":
        times, scores = predictor.importance(args.video)
        result = {"task": "summarize", "video": args.video,
                  "importance": [[round(float(t), 3), round(float(s), 4)] for t, s in zip(times, scores)]}
        text = "\n".join(f"{t:7.2f} s  {s:.3f}" for t, s in zip(times, scores))
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
