"""``duomo train``, ``duomo eval`` and ``duomo predict`` as a user runs them: real processes,
their output and exit status. Tests that train through the CLI are slow (a few seconds each)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from duomo.config import load_config
from duomo.train.run import fit
from tests.helpers.learning import TINY_OVERRIDES, TINY_TASK_OVERRIDES, make_tiny_world
from tests.helpers.videos import make_video

# --set overrides for a tiny qa model (the qa preset's parts at toy sizes)
TINY = [*TINY_OVERRIDES, *TINY_TASK_OVERRIDES["qa"], "train.batch_size=4"]


def duomo(*args: str | Path) -> subprocess.CompletedProcess:
    """Run ``duomo ARGS`` in a fresh interpreter, as the console script does (one torch thread)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "duomo.cli.main", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def settings(*extra: str) -> list[str]:
    return [arg for item in [*TINY, *extra] for arg in ("--set", item)]


def assert_one_line_error(result: subprocess.CompletedProcess, command: str, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"duomo {command}: error: ")
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """8 tiny SynthWorld videos: 4 train, 2 val, 2 test."""
    return make_tiny_world(tmp_path_factory.mktemp("world")).manifest_path


@pytest.fixture(scope="module")
def qa_run(manifest, tmp_path_factory) -> Path:
    """A tiny qa run, trained in this process (fast) for the eval and predict commands."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = load_config("qa", None, [f"data.manifest={manifest}", *TINY, "train.epochs=1"])
        return fit(cfg, tmp_path_factory.mktemp("qa_run")).out_dir
    finally:
        torch.set_num_threads(before)


# --- fast: no training in the CLI -----------------------------------------------------------------


def test_help_lists_train_eval_predict():
    result = duomo("--help")
    assert result.returncode == 0
    for name in ("train", "eval", "predict"):
        assert f"    {name} " in result.stdout


def test_train_help_names_its_options():
    result = duomo("train", "--help")
    assert result.returncode == 0
    for option in ("--data", "--out", "--config", "--set", "--epochs", "--max-minutes", "--resume"):
        assert option in result.stdout
    assert "{caption,qa,dialog,classify,retrieval,summarize}" in result.stdout


def test_a_mistyped_setting_names_the_right_one(tmp_path):
    result = duomo("train", "qa", "--data", tmp_path / "manifest.jsonl", "--out", tmp_path / "run",
                   "--set", "train.lrr=0.1")
    assert_one_line_error(result, "train", "train.lrr", "did you mean train.lr?")
    assert not (tmp_path / "run").exists()


def test_a_missing_manifest_gives_one_line_and_leaves_no_run_folder(tmp_path):
    result = duomo("train", "qa", "--data", tmp_path / "nope.jsonl", "--out", tmp_path / "run")
    assert_one_line_error(result, "train", "nope.jsonl")
    assert not (tmp_path / "run").exists()


def test_resume_on_an_empty_folder_gives_one_line(tmp_path):
    (tmp_path / "run").mkdir()
    result = duomo("train", "qa", "--data", tmp_path / "manifest.jsonl", "--out", tmp_path / "run", "--resume")
    assert_one_line_error(result, "train", str(tmp_path / "run"), "nothing to resume")


def test_eval_json_prints_exactly_one_object(qa_run, manifest):
    result = duomo("eval", qa_run, "--data", manifest, "--split", "test", "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)  # the whole of stdout is one JSON object
    assert {"task", "split", "n", "accuracy", "accuracy_by_type"} <= metrics.keys()
    assert (metrics["task"], metrics["split"]) == ("qa", "test") and metrics["n"] > 0
    assert 0.0 <= metrics["accuracy"] <= 1.0
    predictions = (qa_run / "eval_test_predictions.jsonl").read_text().splitlines()
    assert len(predictions) == metrics["n"]
    assert {"video_id", "question", "prediction", "answer"} <= json.loads(predictions[0]).keys()


def test_predict_answers_a_question(qa_run, tmp_path):
    video = make_video(tmp_path / "clip.mkv", num_frames=9, fps=6, size=(40, 24), pattern="square")
    result = duomo("predict", qa_run, video, "--question", "what color is the square?", "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["task"] == "qa" and answer["question"] == "what color is the square?"
    assert isinstance(answer["answer"], str) and answer["answer"] and 0.0 < answer["score"] <= 1.0


# --- slow: training through the CLI ---------------------------------------------------------------


@pytest.mark.slow
def test_train_then_eval_then_predict(manifest, tmp_path):
    run = tmp_path / "run"
    result = duomo("train", "qa", "--data", manifest, "--out", run, "--epochs", "1", *settings("train.num_threads=1"))
    assert result.returncode == 0, result.stderr
    [summary] = result.stdout.strip().splitlines()
    assert summary.startswith("trained qa: 1 epochs, ") and f"run in {run}" in summary
    for name in ("config.yaml", "vocab.json", "best.pt", "last.pt", "metrics.csv", "learning_curves.png"):
        assert (run / name).is_file(), name

    table = duomo("eval", run, "--data", manifest, "--split", "val")
    assert table.returncode == 0, table.stderr
    assert "qa on val" in table.stdout and "accuracy" in table.stdout
    assert "accuracy_by_type[count]" in table.stdout  # per-type rows keep their names (no markup eaten)

    video = str(manifest.parent / "videos" / "v0000.mp4")
    answer = duomo("predict", run, video, "--question", "how many shapes can you see?")
    assert answer.returncode == 0, answer.stderr
    [line] = answer.stdout.strip().splitlines()
    text, score = line.rsplit("  (", 1)
    assert text and 0.0 < float(score.rstrip(")")) <= 1.0

    no_question = duomo("predict", run, video)
    assert_one_line_error(no_question, "predict", "pass --question")

    # a second epoch on top of the first, then a new run into the same folder is refused
    more = duomo("train", "qa", "--data", manifest, "--out", run, "--epochs", "2", "--resume")
    assert more.returncode == 0, more.stderr
    assert more.stdout.startswith("trained qa: 2 epochs, ")
    again = duomo("train", "qa", "--data", manifest, "--out", run, "--epochs", "1", *settings())
    assert_one_line_error(again, "train", "already holds a run", "--resume")


@pytest.mark.slow
def test_train_skips_bad_videos_when_asked(manifest, tmp_path):
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video\n" * 100)
    first_train = next(row for row in rows if row["split"] == "train")
    for row in rows:
        row["video"] = str(bad if row is first_train else manifest.parent / row["video"])
    broken = tmp_path / "manifest.jsonl"
    broken.write_text("".join(json.dumps(row) + "\n" for row in rows))

    stopped = duomo("train", "qa", "--data", broken, "--out", tmp_path / "a", "--epochs", "1", *settings())
    assert_one_line_error(stopped, "train", str(bad), "--set data.skip_bad_videos=true")

    skipped = duomo("train", "qa", "--data", broken, "--out", tmp_path / "b", "--epochs", "1",
                    *settings("data.skip_bad_videos=true"))
    assert skipped.returncode == 0, skipped.stderr
    assert "3 train videos" in skipped.stdout
    assert "skipped 1 video(s) that failed to decode:" in skipped.stderr and str(bad) in skipped.stderr
