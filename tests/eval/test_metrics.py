"""Metrics against hand-computed values; caption scores through pycocoevalcap, METEOR's java process."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from duomo.eval import metrics
from duomo.eval.metrics import (
    MeteorScorer,
    accuracy,
    accuracy_by_group,
    caption_scores,
    confusion_matrix,
    multilabel_scores,
    precision_recall_f1,
    speech_words,
    top_k_accuracy,
    word_error_rate,
)

# three different captions, so CIDEr-D's document frequencies are not all the same
CAPTIONS = ["a man rides a brown horse", "two cats sleep on a red sofa", "a girl throws a ball to her dog"]


# --- answers and classes ------------------------------------------------------------------------


def test_accuracy_ignores_case_and_spacing_only():
    assert accuracy(["Red", " blue  sky", "green", "red."], ["red", "blue sky", "yellow", "red"]) == 0.5


def test_accuracy_rejects_bad_input():
    with pytest.raises(ValueError, match="differ in length"):
        accuracy(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="at least one"):
        accuracy([], [])


def test_accuracy_by_group_sorts_int_groups_as_numbers():
    predictions = ["a", "b", "c", "d", "e", "f"]
    answers = ["a", "x", "c", "d", "x", "f"]
    turns = [10, 2, 2, 0, 10, 10]
    assert list(accuracy_by_group(predictions, answers, turns).items()) == [
        ("0", 1.0), ("2", 0.5), ("10", pytest.approx(2 / 3))]
    by_type = accuracy_by_group(predictions, answers, ["what", "count", "count", "what", "color", "what"])
    assert list(by_type) == ["color", "count", "what"]
    assert by_type == {"color": 0.0, "count": 0.5, "what": 1.0}
    assert accuracy_by_group([], [], []) == {}


def test_top_k_accuracy_breaks_ties_by_class_index():
    scores = np.array([[0.1, 0.5, 0.4],     # target 2 is second
                       [0.3, 0.3, 0.4],     # target 1 ties class 0, which comes first: third
                       [0.9, 0.05, 0.05]])  # target 1 ties class 2, which comes after: second
    targets = np.array([2, 1, 1])
    assert top_k_accuracy(scores, targets, 1) == 0.0
    assert top_k_accuracy(scores, targets, 2) == pytest.approx(2 / 3)
    assert top_k_accuracy(scores, targets, 3) == 1.0
    assert top_k_accuracy(scores, targets, 10) == 1.0
    with pytest.raises(ValueError, match="outside"):
        top_k_accuracy(scores, np.array([0, 3, 1]), 1)
    with pytest.raises(ValueError, match="k must be"):
        top_k_accuracy(scores, targets, 0)


def test_confusion_matrix_rows_are_true_classes():
    target = np.array([0, 0, 1, 2, 2, 2])
    pred = np.array([0, 1, 1, 2, 0, 2])
    expected = np.array([[1, 1, 0, 0],
                         [0, 1, 0, 0],
                         [1, 0, 2, 0],
                         [0, 0, 0, 0]])
    matrix = confusion_matrix(pred, target, 4)
    np.testing.assert_array_equal(matrix, expected)
    assert matrix.dtype == np.int64
    with pytest.raises(ValueError, match="-100"):
        confusion_matrix(np.array([0, 1]), np.array([0, -100]), 4)


def test_precision_recall_f1_matches_hand_computed_sklearn_convention():
    # class 0: P 1/1, R 1/2, F1 2/3 | class 1: P 2/3, R 2/2, F1 4/5
    # class 2: true, never predicted: 0, 0, 0 | class 3: predicted, never true: 0, 0, 0
    # class 4: in neither, left out of the average
    target = np.array([0, 0, 1, 1, 2])
    pred = np.array([0, 1, 1, 1, 3])
    scores = precision_recall_f1(pred, target, num_classes=5)
    assert scores["macro_precision"] == pytest.approx((1 + 2 / 3) / 4)
    assert scores["macro_recall"] == pytest.approx((0.5 + 1) / 4)
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 4 / 5) / 4)
    perfect = precision_recall_f1(target, target, num_classes=5)
    assert perfect == {"macro_precision": 1.0, "macro_recall": 1.0, "macro_f1": 1.0}


def test_multilabel_scores_match_hand_computed_values():
    target = np.array([[1, 0, 1, 0],
                       [0, 1, 0, 0],
                       [1, 1, 0, 0]], dtype=bool)
    pred = np.array([[1, 0, 0, 0],
                     [1, 1, 0, 0],
                     [1, 1, 0, 0]], dtype=bool)
    # class 0: P 2/3 R 1 F1 4/5 | class 1: 1 1 1 | class 2 (never predicted): 0 0 0 | class 3 left out
    scores = multilabel_scores(pred, target)
    assert scores["macro_precision"] == pytest.approx((2 / 3 + 1) / 3)
    assert scores["macro_recall"] == pytest.approx(2 / 3)
    assert scores["macro_f1"] == pytest.approx((4 / 5 + 1) / 3)
    assert scores["micro_f1"] == pytest.approx(2 * 4 / (5 + 5))  # TP 4, 5 predicted, 5 true
    assert scores["exact_match"] == pytest.approx(1 / 3)
    nothing = multilabel_scores(np.zeros((2, 3), bool), np.zeros((2, 3), bool))
    assert nothing == {"macro_precision": 0.0, "macro_recall": 0.0, "macro_f1": 0.0, "micro_f1": 0.0,
                       "exact_match": 1.0}


# --- speech: word error rate -------------------------------------------------------------------


def test_word_error_rate_counts_substitutions_deletions_insertions():
    assert word_error_rate("the cat sat on the mat", "the cat sat on the mat") == 0.0
    # one deletion ("the") in six reference words
    assert word_error_rate("the cat sat on the mat", "the cat sat on mat") == pytest.approx(1 / 6)
    # "b" -> "x" substituted, "d" inserted: 2 edits over 3 words
    assert word_error_rate("a b c", "a x c d") == pytest.approx(2 / 3)
    # "kitten" for "cat" and "today" for "mat": 2 substitutions over 6 words
    assert word_error_rate("the cat sat on the mat", "the kitten sat on the today") == pytest.approx(2 / 6)
    assert word_error_rate("one two", "") == 1.0
    # insertions can take it past 1
    assert word_error_rate("yes", "no no no") == 3.0


def test_word_error_rate_ignores_case_and_punctuation():
    assert word_error_rate("Hello, world.", "hello world") == 0.0
    assert word_error_rate("Don't stop - now!", "don't stop now") == 0.0
    assert speech_words("Don't stop-me, NOW!") == ["don't", "stop", "me", "now"]
    assert speech_words("'quoted' words") == ["quoted", "words"]


def test_word_error_rate_needs_reference_words():
    with pytest.raises(ValueError, match="reference"):
        word_error_rate(" ... ", "something")


# --- captions: BLEU, ROUGE-L, CIDEr (fast) ----------------------------------------------------------


def test_bleu_1_and_rouge_l_match_hand_computed_values():
    # hypothesis 6 tokens, reference 7; clipped unigram matches a, cat, on, mat = 4 ("a" once)
    scores = caption_scores(["a cat sits on a mat"], [["a cat is on the red mat"]], use_meteor=False)
    assert scores["bleu_1"] == pytest.approx(4 / 6 * math.exp(1 - 7 / 6), abs=1e-6)
    precision, recall, beta = 4 / 6, 4 / 7, 1.2  # longest common subsequence "a cat on mat"
    rouge_l = (1 + beta**2) * precision * recall / (recall + beta**2 * precision)
    assert scores["rouge_l"] == pytest.approx(rouge_l, abs=1e-6)
    assert scores["meteor"] is None
    assert scores["cider"] == 0.0  # one item: every document frequency is 1, every weight 0


def test_identical_captions_score_perfectly():
    scores = caption_scores(CAPTIONS, [[c] for c in CAPTIONS], use_meteor=False)
    assert set(scores) == {"bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider"}
    for n in range(1, 5):
        assert scores[f"bleu_{n}"] == pytest.approx(1.0, abs=1e-6)
    assert scores["rouge_l"] == pytest.approx(1.0)
    assert scores["cider"] == pytest.approx(10.0, abs=1e-6)  # CIDEr-D is scaled by 10


def test_captions_are_tokenized_like_coco():
    references = [[c] for c in CAPTIONS]
    plain = caption_scores(CAPTIONS, references, use_meteor=False)
    shouting = [c.replace(" a ", " a, ").upper() + "!" for c in CAPTIONS]
    assert caption_scores(shouting, references, use_meteor=False) == plain
    worse = caption_scores(["a horse", "cats on a sofa", "a dog"], references, use_meteor=False)
    assert worse["bleu_4"] < 0.1 and worse["cider"] < plain["cider"]


def test_dict_predictions_and_references_are_matched_by_key():
    predictions = {"v2": CAPTIONS[1], "v1": CAPTIONS[0], "v3": "a dog"}
    references = {"v1": [CAPTIONS[0]], "v3": [CAPTIONS[2]], "v2": [CAPTIONS[1], "cats on a couch"]}
    by_key = caption_scores(predictions, references, use_meteor=False)
    in_order = caption_scores(list(predictions.values()), [references[k] for k in predictions], use_meteor=False)
    assert by_key == in_order
    with pytest.raises(ValueError, match="different keys"):
        caption_scores(predictions, {"v1": ["x"], "v2": ["y"], "v9": ["z"]}, use_meteor=False)
    with pytest.raises(ValueError, match="non-empty list"):
        caption_scores(["a dog"], [[]], use_meteor=False)
    with pytest.raises(ValueError, match="differ in length"):
        caption_scores(["a dog", "a cat"], [["a dog"]], use_meteor=False)


def test_without_java_meteor_is_none_and_tokenization_falls_back(monkeypatch, tmp_path, caplog):
    references = [[c] for c in CAPTIONS]
    with_java = caption_scores(CAPTIONS, references, use_meteor=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no java to be found
    with caplog.at_level(logging.WARNING, logger="duomo.eval.metrics"):
        scores = caption_scores(CAPTIONS, references)
    assert scores["meteor"] is None
    assert {k: v for k, v in scores.items() if k != "meteor"} == {k: v for k, v in with_java.items() if k != "meteor"}
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "METEOR needs Java" in messages and "falls back to a regex" in messages


# --- METEOR's java process (fast: none of these waits for METEOR's tables to load) ----------------


def test_caption_scores_closes_the_meteor_scorer_it_starts(monkeypatch):
    started = []

    class FakeScorer:
        def __init__(self):
            self.is_closed = False
            started.append(self)

        def score(self, references, predictions):
            assert set(references) == set(predictions) == {"0", "1", "2"}
            return 0.25

        def close(self):
            self.is_closed = True

    monkeypatch.setattr(metrics, "MeteorScorer", FakeScorer)
    assert caption_scores(CAPTIONS, [[c] for c in CAPTIONS])["meteor"] == 0.25
    assert len(started) == 1 and started[0].is_closed
    with pytest.raises(ValueError):
        caption_scores(CAPTIONS, [[]] * 3)
    assert len(started) == 1  # bad input is caught before java starts
    given = FakeScorer()
    caption_scores(CAPTIONS, [[c] for c in CAPTIONS], meteor=given)
    assert not given.is_closed  # a scorer passed in belongs to the caller


def test_meteor_close_ends_the_java_process():
    with MeteorScorer() as scorer:
        process = scorer.process
        assert process is not None and process.poll() is None
    assert process.poll() is not None
    assert process.stdin.closed and process.stdout.closed and process.stderr.closed
    assert scorer.process is None
    scorer.close()  # twice is fine
    assert scorer.score({"0": ["a dog"]}, {"0": "a dog"}) is None


def test_meteor_dead_process_gives_none_without_hanging(caplog):
    scorer = MeteorScorer()
    meteor = scorer._meteor
    scorer.process.kill()
    scorer.process.wait()
    with caplog.at_level(logging.WARNING, logger="duomo.eval.metrics"):
        assert scorer.score({"0": ["a dog"]}, {"0": "a dog"}) is None
    assert "METEOR failed" in caplog.text
    assert not meteor.lock.locked()  # pycocoevalcap's __del__ takes this lock: it must be free


def test_meteor_timeout_kills_a_slow_process(caplog):
    scorer = MeteorScorer(timeout_sec=0.2)  # loading METEOR's tables takes seconds
    process = scorer.process
    with caplog.at_level(logging.WARNING, logger="duomo.eval.metrics"):
        assert scorer.score({"0": ["a dog runs"]}, {"0": "a dog runs"}) is None
    assert "no answer within 0.2 s" in caplog.text
    assert process.poll() is not None and scorer.process is None


# --- METEOR for real (slow: java loads METEOR's paraphrase table, 6-8 s on 2 cores) --------------


@pytest.fixture(scope="module")
def meteor_scorer():
    with MeteorScorer() as scorer:
        yield scorer


@pytest.mark.slow
def test_meteor_scores_identical_captions_near_one(meteor_scorer):
    identical = caption_scores(CAPTIONS, [[c] for c in CAPTIONS], meteor=meteor_scorer)
    assert identical["meteor"] > 0.95
    different = caption_scores(["a horse", "a sofa", "a ball"], [[c] for c in CAPTIONS], meteor=meteor_scorer)
    assert 0.0 < different["meteor"] < identical["meteor"]
    assert meteor_scorer.process.poll() is None  # still open for the next call


@pytest.mark.slow
def test_meteor_survives_separator_and_newline_in_captions(meteor_scorer):
    scores = caption_scores(["a man ||| rides\na horse", ""], [["a man rides a horse"], ["a cat|||"]],
                            meteor=meteor_scorer)
    assert scores["meteor"] is not None and 0.0 < scores["meteor"] <= 1.0


# --- shot boundaries ----------------------------------------------------------------------------


def test_shot_boundary_scores_hand_computed():
    # 10 matches 10 (0 off); 21 matches 20 (1 off); 40 is 2 from 42: a miss and a false alarm;
    # 61 is a second prediction for 60, already taken by 60
    scores = metrics.shot_boundary_scores([10, 21, 40, 60, 61], [10, 20, 42, 60])
    assert (scores["tp"], scores["fp"], scores["fn"]) == (3, 2, 1)
    assert scores["precision"] == pytest.approx(3 / 5)
    assert scores["recall"] == pytest.approx(3 / 4)
    assert scores["f1"] == pytest.approx(2 * 0.6 * 0.75 / 1.35)


def test_shot_boundary_scores_match_one_to_one_at_most():
    # 11 is within reach of 10 and of 12; pairing 11 with 12 would leave 10 alone, so a maximum
    # matching pairs 11-10 and 12-12
    scores = metrics.shot_boundary_scores([11, 12], [10, 12])
    assert (scores["tp"], scores["fp"], scores["fn"]) == (2, 0, 0)
    # one prediction between two true boundaries counts once
    scores = metrics.shot_boundary_scores([11], [10, 12])
    assert (scores["tp"], scores["fp"], scores["fn"]) == (1, 0, 1)
    assert scores["precision"] == 1.0 and scores["recall"] == 0.5 and scores["f1"] == pytest.approx(2 / 3)


def test_shot_boundary_scores_tolerance_and_empty_lists():
    assert metrics.shot_boundary_scores([12], [10], tolerance=1)["tp"] == 0
    assert metrics.shot_boundary_scores([12], [10], tolerance=2)["tp"] == 1
    assert metrics.shot_boundary_scores([5], [5], tolerance=0)["f1"] == 1.0
    nothing = metrics.shot_boundary_scores([], [])
    assert (nothing["precision"], nothing["recall"], nothing["f1"]) == (1.0, 1.0, 1.0)
    missed = metrics.shot_boundary_scores([], [3, 9])
    assert (missed["precision"], missed["recall"], missed["f1"], missed["fn"]) == (1.0, 0.0, 0.0, 2)
    invented = metrics.shot_boundary_scores([4], [])
    assert (invented["precision"], invented["recall"], invented["f1"], invented["fp"]) == (0.0, 1.0, 0.0, 1)
    with pytest.raises(ValueError):
        metrics.shot_boundary_scores([1], [1], tolerance=-1)
