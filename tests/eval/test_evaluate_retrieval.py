"""Scoring retrieval predictions: text-to-video and video-to-text ranks over a whole split from
hand-made embeddings, and moment recall at IoU thresholds, against hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from duomo.config import Component, RunConfig
from duomo.data.datasets import Row, TaskVocab
from duomo.eval.evaluate import Prediction, score, selection_metric
from duomo.text.tokenize import WordTokenizer

VOCAB = TaskVocab(WordTokenizer.build([]))


def caption_pred(video_id: str, text: list[float], video: list[float]) -> Prediction:
    return Prediction(video_id, Row(question="q"), "q", text_vector=np.array(text), video_vector=np.array(video))


def test_ranks_over_the_split_in_both_directions():
    a, b, c = [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]  # the three videos' embeddings
    preds = [
        caption_pred("a", [0.9, 0.1], a),   # a 0.9, b 0.1, c -0.9: rank 1
        caption_pred("a", [0.1, 0.9], a),   # b 0.9 beats a 0.1: rank 2
        caption_pred("b", [0.0, 1.0], b),   # rank 1
        caption_pred("c", [0.6, -0.8], c),  # a 0.6, c -0.6, b -0.8: rank 2
    ]
    result = score("retrieval", preds, VOCAB)
    assert result["num_videos"] == 3
    assert result["t2v_r1"] == 0.5 and result["t2v_r5"] == 1.0 and result["t2v_r10"] == 1.0
    assert result["t2v_mdr"] == 1.5 and result["t2v_mnr"] == pytest.approx(6 / 4)
    # video a: its best caption (0.9) comes first; b: its caption (1.0) first; c: its caption
    # scores -0.6, below captions 1 (-0.1) and 2 (0.0), above caption 0 (-0.9): rank 3
    assert result["v2t_r1"] == pytest.approx(2 / 3)
    assert result["v2t_mnr"] == pytest.approx((1 + 1 + 3) / 3) and result["v2t_mdr"] == 1.0


def test_empty_retrieval_predictions_give_nan():
    result = score("retrieval", [], VOCAB)
    assert math.isnan(result["t2v_r1"]) and math.isnan(result["v2t_mnr"])


def test_moment_scores():
    def moment(span, target):
        return Prediction("v", Row(question="q", span=target, duration_sec=10.0), "q", 0.5, span=span)

    preds = [moment((1.0, 3.0), (1.0, 3.0)), moment((1.0, 3.0), (2.0, 4.0)), moment((0.0, 1.0), (0.0, 1.5)),
             moment((5.0, 6.0), (0.0, 1.0))]
    result = score("retrieval", preds, VOCAB)
    # IoUs 1, 1/3, 2/3, 0
    assert result["r1_iou0.5"] == 0.5 and result["r1_iou0.7"] == 0.25
    assert result["mean_iou"] == pytest.approx((1 + 1 / 3 + 2 / 3 + 0) / 4)


def test_each_head_selects_checkpoints_by_its_own_metric():
    cfg = RunConfig(task="retrieval")
    assert selection_metric(cfg) == "t2v_r1"
    cfg.model.head = Component("moment")
    assert selection_metric(cfg) == "r1_iou0.5"
    assert selection_metric(RunConfig(task="qa")) == "accuracy"


def test_reranked_candidates_come_first_in_the_matchers_order():
    """A query's re-scored videos rank ahead of all others, in the order of their scores; the
    rest keep the cosine order. Video-to-text keeps the cosine order."""
    a, b, c = [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]
    preds = [caption_pred("a", [0.1, 0.9], a),   # cosine: b 0.9, a 0.1, c -0.1
             caption_pred("b", [0.9, 0.1], b),   # cosine: a 0.9, b 0.1, c -0.9
             caption_pred("c", [0.0, 1.0], c)]   # cosine: b 1.0, a 0.0, c 0.0
    before = score("retrieval", preds, VOCAB)
    assert before["t2v_r1"] == 0.0 and before["t2v_mnr"] == pytest.approx((2 + 2 + 3) / 3)
    preds[0].reranked = {"b": 3.0, "a": 5.0}  # its own video re-scored above b
    preds[1].reranked = {"a": 2.0, "c": 4.0}  # c re-scored first, its own video b stays below: rank 3
    preds[2].reranked = {"b": -1.0}           # the one re-scored video still comes first; c after a: rank 3
    after = score("retrieval", preds, VOCAB)
    assert after["t2v_r1"] == pytest.approx(1 / 3) and after["t2v_mnr"] == pytest.approx((1 + 3 + 3) / 3)
    # v2t without re-scoring: a's own caption (row 0) ranks 2; b's (row 1, 0.1) 3; c's (row 2, 0.0) 1
    assert before["v2t_mnr"] == pytest.approx((2 + 3 + 1) / 3)
    assert after["v2t_mnr"] == before["v2t_mnr"] and after["v2t_r1"] == before["v2t_r1"]
