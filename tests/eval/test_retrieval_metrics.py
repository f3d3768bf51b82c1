"""Retrieval and moment metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from duomo.eval.metrics import (
    mean_rank,
    median_rank,
    moment_recall_at_iou,
    recall_at_k,
    retrieval_ranks,
    temporal_iou,
)

# 3 queries x 4 candidates
SIMILARITY = np.array([
    [0.9, 0.1, 0.3, 0.2],   # positive 0 scores highest: rank 1
    [0.5, 0.2, 0.8, 0.4],   # positive 1 (0.2) is below 0.5, 0.8, 0.4: rank 4
    [0.1, 0.7, 0.6, 0.9],   # positives 1 and 2: the best (0.7) is below 0.9 only: rank 2
])
POSITIVE = np.array([
    [True, False, False, False],
    [False, True, False, False],
    [False, True, True, False],
])


def test_ranks_count_the_negatives_above_the_best_positive():
    assert retrieval_ranks(SIMILARITY, POSITIVE).tolist() == [1, 4, 2]


def test_ties_count_against_the_query():
    # a model that scores everything the same must rank last, not first
    flat = np.zeros((2, 3))
    positive = np.eye(2, 3, dtype=bool)
    assert retrieval_ranks(flat, positive).tolist() == [3, 3]
    # a tie between two positives is no penalty
    assert retrieval_ranks(np.array([[0.5, 0.5, 0.1]]), np.array([[True, True, False]])).tolist() == [1]


def test_transposed_matrix_ranks_the_other_direction():
    # candidates 0..3 as queries; candidate 3 is nobody's positive and is dropped
    sim_t, pos_t = SIMILARITY.T[:3], POSITIVE.T[:3]
    # video 0: its only caption (row 0) scores 0.9, the best: rank 1
    # video 1: captions 1 (0.2) and 2 (0.7); only caption 0 (0.1) is lower: rank 1
    # video 2: caption 2 (0.6); caption 1 scores 0.8, caption 0 scores 0.3: rank 2
    assert retrieval_ranks(sim_t, pos_t).tolist() == [1, 1, 2]


def test_a_query_without_a_positive_is_refused():
    with pytest.raises(ValueError, match="positive"):
        retrieval_ranks(np.zeros((1, 2)), np.zeros((1, 2), dtype=bool))
    with pytest.raises(ValueError, match="shape"):
        retrieval_ranks(np.zeros((2, 2)), np.ones((2, 3), dtype=bool))


def test_recall_and_ranks_summaries():
    ranks = np.array([1, 4, 2, 11, 1])
    assert recall_at_k(ranks, 1) == pytest.approx(2 / 5)
    assert recall_at_k(ranks, 2) == pytest.approx(3 / 5)
    assert recall_at_k(ranks, 10) == pytest.approx(4 / 5)
    assert median_rank(ranks) == 2.0
    assert median_rank(np.array([1, 2, 3, 10])) == 2.5
    assert mean_rank(ranks) == pytest.approx(19 / 5)
    with pytest.raises(ValueError):
        recall_at_k(ranks, 0)
    with pytest.raises(ValueError):
        median_rank(np.array([0, 1]))
    with pytest.raises(ValueError):
        mean_rank(np.array([]))


@pytest.mark.parametrize(("predicted", "target", "iou"), [
    ((1.0, 3.0), (1.0, 3.0), 1.0),
    ((1.0, 3.0), (2.0, 4.0), 1 / 3),      # overlap 1 s, union 3 s
    ((0.0, 1.0), (0.0, 4.0), 0.25),       # inside: 1 s of 4 s
    ((0.0, 1.0), (1.0, 2.0), 0.0),        # touching is no overlap
    ((0.0, 1.0), (5.0, 6.0), 0.0),
    ((2.0, 2.0), (2.0, 2.0), 0.0),        # empty spans
])
def test_temporal_iou(predicted, target, iou):
    assert temporal_iou(predicted, target) == pytest.approx(iou)
    assert temporal_iou(target, predicted) == pytest.approx(iou)


def test_temporal_iou_refuses_reversed_spans():
    with pytest.raises(ValueError, match="ends before it starts"):
        temporal_iou((2.0, 1.0), (0.0, 3.0))


def test_moment_recall_at_iou():
    predicted = [(1.0, 3.0), (1.0, 3.0), (0.0, 1.0), (0.0, 2.0)]
    targets = [(1.0, 3.0), (2.0, 4.0), (0.0, 1.5), (0.0, 1.2)]
    # IoUs: 1.0, 1/3, 2/3, 0.6
    assert moment_recall_at_iou(predicted, targets, 0.5) == pytest.approx(3 / 4)
    assert moment_recall_at_iou(predicted, targets, 0.7) == pytest.approx(1 / 4)
    assert moment_recall_at_iou(predicted, targets, 0.6) == pytest.approx(3 / 4)  # 0.6 counts at 0.6
    with pytest.raises(ValueError):
        moment_recall_at_iou([], [], 0.5)
    with pytest.raises(ValueError):
        moment_recall_at_iou(predicted, targets[:2], 0.5)
