"""End to end (slow), as a user works: ``duomo synth`` makes ~8 tiny videos, then for each task
``duomo train`` runs a few steps, ``duomo eval`` scores the test split and ``duomo predict``
answers for one video. Asserts files and output structure, not quality."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import duomo as duomo_api

pytestmark = pytest.mark.slow

# The presets' parts at toy sizes, sound included (a tiny mel CNN), with qa's frame encoder
# (a luma stack, pre-trained, then frozen in qa).
COMMON = [
    "data.num_frames=4", "data.frame_size=16", "data.num_mels=8", "data.num_workers=2",
    "model.dim=16",
    "model.video.args={channels: [4, 8], grid: 2, global_max: true, luma_branch: true, luma_stem: conv, luma_remap: true}",
    "model.temporal.args={num_layers: 1, num_heads: 2, ff_mult: 2}",
    "model.audio.args={channels: [4, 8], time_stride: 4}",
    "model.fusion.args={num_layers: 1, num_heads: 2, ff_mult: 2}",
    "train.batch_size=2", "train.warmup_steps=1", "train.num_threads=1", "train.pretrain_video_epochs=2",
]
TEXT = "model.text.args={num_layers: 1, num_heads: 2, ff_mult: 2}"
PER_TASK = {
    "caption": ["model.head.args={decoder: transformer, num_layers: 1, num_heads: 2, ff_mult: 2, beam_size: 2, "
                "max_len: 12}"],
    "qa": [TEXT, "model.head.args={hidden_dim: 16}"],
    "dialog": [TEXT, "model.head.args={hidden_dim: 16}"],
    "classify": ["model.head.args={hidden_dim: 16}"],
    "retrieval": ["model.fusion.args={}", "model.head.args={embed_dim: 8}"],
    "retrieval_moment": ["model.fusion.args={}", "model.head.args={num_layers: 1, num_heads: 2, ff_mult: 2}"],
    "summarize": ["model.fusion.args={hidden_dim: 8}", "model.head.args={num_layers: 1, num_heads: 2, ff_mult: 2}"],
}
# runs named after a preset of another task: name -> task
TASK_OF = {"retrieval_moment": "retrieval"}
METRICS = {
    "caption": {"bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider"},
    "qa": {"accuracy", "accuracy_by_type"},
    "dialog": {"accuracy", "accuracy_turn2plus", "accuracy_by_turn"},
    "classify": {"top1", "top5", "macro_precision", "macro_recall", "macro_f1"},
    "retrieval": {f"{d}_{m}" for d in ("t2v", "v2t") for m in ("r1", "r5", "r10", "mdr", "mnr")},
    "retrieval_moment": {"r1_iou0.5", "r1_iou0.7", "mean_iou"},
    "summarize": {"f1", "uniform_f1", "random_f1"},
}


def duomo(*args: str | Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "duomo.cli.main", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    result = duomo("synth", out, "--videos", "8", "--seed", "5", "--size", "32", "--min-duration", "1",
                   "--max-duration", "3", "--val-fraction", "0.25", "--test-fraction", "0.25", "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert len(list((out / "videos").glob("*.mp4"))) == 8
    return out


@pytest.mark.parametrize("run_name", list(PER_TASK))
def test_train_eval_predict(world, run_name, tmp_path):
    manifest = world / "manifest.jsonl"
    task = TASK_OF.get(run_name, run_name)
    run = tmp_path / run_name
    settings = [arg for item in [*COMMON, *PER_TASK[run_name]] for arg in ("--set", item)]
    trained = duomo("train", task, "--data", manifest, "--out", run, "--epochs", "2", "--config", run_name, *settings)
    assert trained.returncode == 0, trained.stderr
    assert trained.stdout.startswith(f"trained {task}: 2 epochs, ")
    for name in ("config.yaml", "vocab.json", "best.pt", "last.pt", "metrics.csv", "learning_curves.png"):
        assert (run / name).is_file(), name
    with open(run / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["1", "2"] and all(row["train_loss"] for row in rows)

    evaluated = duomo("eval", run, "--data", manifest, "--split", "test", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads(evaluated.stdout)
    assert (metrics["task"], metrics["split"]) == (task, "test") and metrics["n"] > 0
    assert METRICS[run_name] <= metrics.keys()
    predictions = [json.loads(line) for line in (run / "eval_test_predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == metrics["n"]
    if task == "classify":
        assert (run / "eval_test_confusion.png").is_file()

    video = world / "videos" / "v0000.mp4"
    extra = {
        "qa": ["--question", "how many shapes can you see?", "--choices", "1,2,3"],
        "dialog": ["--question", "what does it do at first?",
                   "--history", "which object is the first to act?=red circle"],
        "retrieval": ["--question", "a red circle grows"],
        "retrieval_moment": ["--question", "the red circle grows"],
    }.get(run_name, [])
    predicted = duomo("predict", run, video, "--json", *extra)
    assert predicted.returncode == 0, predicted.stderr
    answer = json.loads(predicted.stdout)
    assert answer["task"] == task and answer["video"] == str(video)
    if task == "caption":
        assert isinstance(answer["caption"], str)
        # the caption run titles the chapters of a summary: each title is its chapter's caption
        summarized = duomo("summarize", video, "--caption", run, "--out", tmp_path / "summary",
                           "--no-speech", "--no-ocr", "--json")
        assert summarized.returncode == 0, summarized.stderr
        chapters = json.loads(summarized.stdout)["chapters"]
        captioner = duomo_api.load(run)
        captions = [captioner.caption_span(video, c["start"], c["end"]) for c in chapters]
        assert chapters and all(c["title"] for c in chapters)
        assert [c["title"] for c in chapters] == [caption or f"Chapter {k + 1}" for k, caption in enumerate(captions)]
    elif task == "classify":
        assert answer["labels"] and all(isinstance(n, str) and 0 <= s <= 1 for n, s in answer["top"])
    elif run_name == "retrieval":
        assert answer["embedding_dim"] == 8 and -1 <= answer["similarity"] <= 1
    elif run_name == "summarize":
        assert len(answer["importance"]) == 4 and all(0 <= s <= 1 for _, s in answer["importance"])
        times = [t for t, _ in answer["importance"]]
        assert times == sorted(times) and 0 < times[0] and times[-1] < 3.0
        summarized = duomo("summarize", video, "--model", run, "--budget", "50%", "--out", tmp_path / "summary",
                           "--no-speech", "--no-ocr", "--json")
        assert summarized.returncode == 0, summarized.stderr
        summary = json.loads(summarized.stdout)
        assert summary["scorer"] == str(run) and any(s["selected"] for s in summary["segments"])
        assert (tmp_path / "summary" / "highlights.mp4").is_file()
    elif run_name == "retrieval_moment":
        assert 0 <= answer["start_sec"] < answer["end_sec"] <= 3.0 and 0 < answer["score"] <= 1
    else:
        assert isinstance(answer["answer"], str) and 0 < answer["score"] <= 1
    if task == "qa":
        vocab = json.loads((run / "vocab.json").read_text())
        offered = [c for c in ("1", "2", "3") if c in vocab["answers"]]
        assert not offered or answer["answer"] in offered
