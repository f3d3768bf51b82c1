"""Evaluation: ``score`` on hand-made predictions gives hand-computed numbers, and
``evaluate_run`` reports each task's metrics for a tiny trained run."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from duomo.config import RunConfig
from duomo.data.datasets import DatasetError, Row, TaskVocab
from duomo.data.manifest import load_manifest
from duomo.eval.evaluate import SELECTION_METRIC, Prediction, evaluate_run, score
from duomo.text.tokenize import WordTokenizer
from duomo.train.checkpoint import CheckpointError
from tests.helpers.learning import make_tiny_world, tiny_config, train_once_each

CAPTION_KEYS = {"bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider"}


def vocab(labels: list[str] | None = None) -> TaskVocab:
    return TaskVocab(WordTokenizer.build([]), labels=labels or [])


def qa_pred(guess: str, answer: str, qa_type: str = "other", turn_idx: int = 0) -> Prediction:
    return Prediction("v", Row(answer=answer, qa_type=qa_type, turn_idx=turn_idx), guess)


# --- score on hand-made predictions ----------------------------------------------------------------


def test_qa_scores():
    preds = [qa_pred("red", "red", "color"), qa_pred(" Blue", "blue", "color"), qa_pred("3", "2", "count"),
             qa_pred("yes", "yes", "exist")]
    assert score("qa", preds, vocab()) == {
        "accuracy": 0.75, "accuracy_by_type": {"color": 1.0, "count": 0.0, "exist": 1.0}}


def test_dialog_scores_by_turn():
    preds = [qa_pred("a", "a", turn_idx=0), qa_pred("b", "x", turn_idx=1), qa_pred("c", "c", turn_idx=2),
             qa_pred("d", "d", turn_idx=1)]
    result = score("dialog", preds, vocab())
    assert result["accuracy"] == 0.75
    assert result["accuracy_turn2plus"] == pytest.approx(2 / 3)
    assert result["accuracy_by_turn"] == {"1": 1.0, "2": 0.5, "3": 1.0}


def test_dialog_without_later_turns_has_no_turn2plus_accuracy():
    result = score("dialog", [qa_pred("a", "a"), qa_pred("b", "c")], vocab())
    assert result["accuracy"] == 0.5 and math.isnan(result["accuracy_turn2plus"])


def classify_pred(answer: str, scores: list[float], labels: list[str], multi_hot: list[int] | None = None,
                  names: tuple[str, ...] = ("a", "b", "c")) -> Prediction:
    top = max(range(len(scores)), key=scores.__getitem__)
    return Prediction("v", Row(answer=answer, multi_hot=multi_hot or []), names[top], scores[top], scores, labels)


def test_classify_scores():
    preds = [
        classify_pred("a", [0.6, 0.3, 0.1], ["a"]),  # right
        classify_pred("b", [0.5, 0.4, 0.1], ["a"]),  # wrong, target second
        classify_pred("c", [0.2, 0.2, 0.6], ["c"]),  # right
        classify_pred("b", [0.1, 0.7, 0.2], ["b"]),  # right
        classify_pred("zzz", [0.1, 0.2, 0.7], ["c"]),  # a label the model does not know: left out
    ]
    result = score("classify", preds, vocab(["a", "b", "c"]))
    # per class (P, R, F1): a (1/2, 1, 2/3), b (1, 1/2, 2/3), c (1, 1, 1)
    assert result == pytest.approx({"top1": 0.75, "top5": 1.0, "macro_precision": 2.5 / 3, "macro_recall": 2.5 / 3,
                                    "macro_f1": (2 / 3 + 2 / 3 + 1) / 3})


def test_multi_label_classify_scores():
    preds = [classify_pred("a", [0.9, 0.8, 0.1], ["a", "b"], multi_hot=[0, 1]),
             classify_pred("b", [0.6, 0.4, 0.1], ["a"], multi_hot=[1])]
    result = score("classify", preds, vocab(["a", "b", "c"]))
    assert result["top1"] == 0.5
    # per class (P, R, F1): a (1/2, 1, 2/3), b (1, 1/2, 2/3), c absent; TP 2, 3 predicted, 3 true
    assert result["multi_label"] == pytest.approx({"macro_precision": 0.75, "macro_recall": 0.75,
                                                   "macro_f1": 2 / 3, "micro_f1": 2 / 3, "exact_match": 0.5})


def test_classify_with_only_unknown_labels_has_no_score():
    result = score("classify", [classify_pred("zzz", [0.5, 0.3, 0.2], ["a"])], vocab(["a", "b", "c"]))
    assert result.keys() == {"top1"} and math.isnan(result["top1"])


def test_caption_scores():
    preds = [Prediction("v1", Row(references=["a red circle moves right", "a circle"]), "a red circle moves right"),
             Prediction("v2", Row(references=["a blue square grows"]), "a blue square grows")]
    result = score("caption", preds, vocab(), use_meteor=False)
    assert result.keys() == CAPTION_KEYS and result["meteor"] is None
    assert result["bleu_1"] == pytest.approx(1.0) and result["bleu_4"] == pytest.approx(1.0)
    assert result["rouge_l"] == 1.0 and result["cider"] > 0


@pytest.mark.parametrize("task", ["qa", "dialog", "caption"])
def test_no_predictions_score_nan(task):
    result = score(task, [], vocab(), use_meteor=False)
    assert math.isnan(result[SELECTION_METRIC[task]])
    assert all(v is None or v == {} or math.isnan(v) for v in result.values())


# --- evaluate_run on tiny trained runs -------------------------------------------------------------

TRAIN = ["train.epochs=1", "train.batch_size=4"]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """8 tiny SynthWorld videos: 4 train, 2 val, 2 test."""
    return make_tiny_world(tmp_path_factory.mktemp("world")).manifest_path


@pytest.fixture(scope="module")
def run_for(manifest, tmp_path_factory) -> Callable[[str], Path]:
    """run_for(name) -> a tiny run folder, trained once per module; name is a task or
    ``multi_label`` (a multi-label classify run)."""

    def config_for(name: str) -> RunConfig:
        if name == "multi_label":
            return tiny_config("classify", manifest, *TRAIN, "model.head.args.multi_label=true")
        return tiny_config(name, manifest, *TRAIN)

    return train_once_each(tmp_path_factory, config_for)


def test_evaluate_run_qa(run_for, manifest):
    report = evaluate_run(run_for("qa"), str(manifest), "test")
    test = [r for r in load_manifest(manifest) if r.split == "test"]
    metrics = report.metrics
    assert metrics.keys() == {"task", "split", "n", "loss", "accuracy", "accuracy_by_type"}
    assert (metrics["task"], metrics["split"]) == ("qa", "test")
    assert metrics["n"] == len(report.predictions) == sum(len(r.qa) for r in test)
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["loss"] > 0
    assert set(metrics["accuracy_by_type"]) == {qa.type for r in test for qa in r.qa}
    assert {p.video_id for p in report.predictions} == {r.video_id for r in test}
    json.dumps(metrics)  # plain types only
    # multiple-choice questions are answered from their choices (those the model knows)
    known = set(run_vocab(run_for("qa")).answers)
    choices = {(r.video_id, qa.question): qa.choices for r in test for qa in r.qa}
    for p in report.predictions:
        options = choices[(p.video_id, p.row.question)]
        if options and known & set(options):
            assert p.text in options


def run_vocab(run: Path) -> TaskVocab:
    return TaskVocab.load(run / "vocab.json")


def test_evaluate_run_dialog(run_for, manifest):
    report = evaluate_run(run_for("dialog"), str(manifest), "val")
    val = [r for r in load_manifest(manifest) if r.split == "val"]
    metrics = report.metrics
    assert {"task", "split", "n", "accuracy", "accuracy_turn2plus", "accuracy_by_turn"} <= metrics.keys()
    assert metrics["n"] == sum(len(d) for r in val for d in r.dialog)
    longest = max(len(d) for r in val for d in r.dialog)
    assert list(metrics["accuracy_by_turn"]) == [str(i) for i in range(1, longest + 1)]
    assert 0.0 <= metrics["accuracy_turn2plus"] <= 1.0


def test_evaluate_run_classify(run_for, manifest):
    report = evaluate_run(run_for("classify"), str(manifest), "test")
    metrics = report.metrics
    assert {"task", "split", "n", "top1", "top5", "macro_precision", "macro_recall", "macro_f1"} <= metrics.keys()
    assert metrics["n"] == 2 and metrics["top1"] <= metrics["top5"]
    labels = run_vocab(run_for("classify")).labels
    for p in report.predictions:
        assert p.text in labels and len(p.scores) == len(labels)
        assert sum(p.scores) == pytest.approx(1.0, abs=1e-5)


def test_evaluate_run_multi_label_classify(run_for, manifest):
    metrics = evaluate_run(run_for("multi_label"), str(manifest), "test").metrics
    # SynthWorld videos carry several labels each
    assert metrics["multi_label"].keys() == {"macro_precision", "macro_recall", "macro_f1", "micro_f1", "exact_match"}


def test_evaluate_run_needs_a_non_empty_split(run_for, manifest, tmp_path):
    lines = [line for line in manifest.read_text().splitlines() if '"split": "test"' not in line]
    rows = [json.loads(line) for line in lines if line.strip()]
    for row in rows:
        row["video"] = str(manifest.parent / row["video"])
    no_test = tmp_path / "manifest.jsonl"
    no_test.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(DatasetError, match="the test split is empty"):
        evaluate_run(run_for("qa"), str(no_test), "test")


def test_evaluate_run_needs_a_run_folder(manifest, tmp_path):
    with pytest.raises(CheckpointError, match="not a finished run folder"):
        evaluate_run(tmp_path, str(manifest), "test")


@pytest.mark.slow
def test_evaluate_run_caption(run_for, manifest):
    """Slow: METEOR and the PTB tokenizer start Java."""
    run = run_for("caption")
    report = evaluate_run(run, str(manifest), "test", beam_size=1)
    metrics = report.metrics
    assert metrics.keys() == {"task", "split", "n"} | CAPTION_KEYS
    assert metrics["n"] == len(report.predictions) == 2
    assert metrics["meteor"] is None or 0.0 <= metrics["meteor"] <= 1.0
    assert all(0.0 <= metrics[f"bleu_{n}"] <= 1.0 for n in range(1, 5)) and metrics["cider"] >= 0
    words = set(run_vocab(run).tokenizer.words)
    assert all(set(p.text.split()) <= words for p in report.predictions)
