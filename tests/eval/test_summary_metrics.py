"""Knapsack selection and summary F1 (TVSum/SumMe protocol) on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from duomo.data.datasets import Row
from duomo.eval import metrics
from duomo.eval.evaluate import scores_at_steps, summary_protocol, summary_scores


def test_knapsack_takes_the_best_total_value_that_fits():
    # weight 5: {1, 2} is worth 22, {0, 2} 18, {0, 1} 16
    assert metrics.knapsack_select([6, 10, 12], [1, 2, 3], 5) == [1, 2]
    assert metrics.knapsack_select([6, 10, 12], [1, 2, 3], 3) == [0, 1]  # 16 beats 12
    assert metrics.knapsack_select([6, 10, 12], [1, 2, 3], 0) == []
    assert metrics.knapsack_select([5, 1], [4, 1], 3) == [1]  # the better item does not fit


def test_knapsack_ties_go_to_the_earlier_item_and_weightless_items_are_skipped():
    assert metrics.knapsack_select([1, 1, 1], [1, 1, 1], 1) == [0]
    assert metrics.knapsack_select([9, 1], [0, 1], 1) == [1]
    with pytest.raises(ValueError):
        metrics.knapsack_select([1, 2], [1], 1)


def test_split_segments_cuts_each_shot_into_equal_pieces():
    # shot [0, 5) -> 2 pieces, shot [5, 12) -> 3 pieces of at most 3 steps
    assert metrics.split_segments([0, 5], 12, 3) == [(0, 2), (2, 5), (5, 7), (7, 10), (10, 12)]
    assert metrics.split_segments([0.0], 6, 3) == [(0, 3), (3, 6)]
    assert metrics.split_segments([2], 4, 10) == [(0, 2), (2, 4)]  # a first shot is implied at 0


def test_overlap_f1_by_hand():
    assert metrics.overlap_f1(np.array([1, 1, 1, 0]), np.array([0, 1, 1, 1])) == pytest.approx(2 / 3)
    # P = 1/2, R = 1/3: F1 = 2 * (1/6) / (5/6) = 0.4
    assert metrics.overlap_f1(np.array([1, 1, 0, 0, 0, 0]), np.array([0, 1, 1, 1, 0, 0])) == pytest.approx(0.4)
    assert metrics.overlap_f1(np.array([1, 0]), np.array([0, 1])) == 0.0


def test_summary_mask_fills_floor_of_budget_with_the_best_segments():
    segments = [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    scores = np.array([0, 0, 0.2, 0.2, 0.9, 0.9, 0.1, 0.1, 0.5, 0.5])
    assert metrics.summary_mask(scores, segments, 0.2).nonzero()[0].tolist() == [4, 5]
    assert metrics.summary_mask(scores, segments, 0.45).nonzero()[0].tolist() == [4, 5, 8, 9]  # capacity 4


def test_summary_f1_one_for_the_true_segment_zero_for_another():
    segments = [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    truth = np.array([0.1, 0.1, 0.5, 0.5, 0.9, 0.9, 0.3, 0.3, 0.2, 0.2])
    assert metrics.summary_f1(truth, truth, segments, 0.2) == 1.0
    assert metrics.summary_f1(np.array([1.0, 1, 0, 0, 0, 0, 0, 0, 0, 0]), truth, segments, 0.2) == 0.0  # (0, 2)
    # capacity 4: truth takes (2, 4) and (4, 6); this prediction (4, 6) and (6, 8): F1 = 1/2
    guess = np.array([0, 0, 0, 0, 1, 1, 1, 1, 0, 0])
    assert metrics.summary_f1(guess, truth, segments, 0.4) == 0.5


def test_true_ties_are_broken_in_the_predictions_favour():
    segments = [(0, 2), (2, 4), (4, 6)]
    truth = np.array([0.5, 0.5, 0.9, 0.9, 0.9, 0.9])  # (2, 4) and (4, 6) tie
    assert metrics.summary_f1(np.array([0, 0, 0, 0, 1, 1.0]), truth, segments, 0.34) == 1.0
    assert metrics.summary_f1(np.array([0, 0, 1, 1, 0, 0.0]), truth, segments, 0.34) == 1.0
    assert metrics.summary_f1(np.array([1, 1, 0, 0, 0, 0.0]), truth, segments, 0.34) == 0.0


def test_uniform_scores_peak_at_evenly_spaced_steps():
    scores = metrics.uniform_scores(10, 2)  # centres at 2.5 and 7.5 steps
    assert scores.argmax() == 2 and scores[2] == scores[7] == 1.0
    assert scores[0] == pytest.approx(1 - 2 / 10)


def test_protocol_grid_and_segments_of_a_synthworld_row():
    row = Row(importance=[0.1, 0.9, 0.5], shots=(0.0, 1.6), duration_sec=2.5)
    truth, segments = summary_protocol(row)
    assert truth.tolist() == [0.1] * 10 + [0.9] * 10 + [0.5] * 5
    # shot [0, 16) in 6 pieces of at most 3 steps, shot [16, 25) in 3
    assert segments[0] == (0, 3) and segments[-1] == (22, 25) and len(segments) == 9
    assert all(b - a <= 3 for a, b in segments) and sum(b - a for a, b in segments) == 25
    assert scores_at_steps([0.0, 1.0], 4).tolist() == [0.0, 0.25, 0.75, 1.0]


def test_summary_scores_reports_model_and_baselines():
    row = Row(importance=[0.1, 0.9, 0.1, 0.1], shots=(0.0,), duration_sec=4.0)
    perfect = np.array([0.1] * 10 + [0.9] * 10 + [0.1] * 20)  # samples at the protocol's own steps
    result = summary_scores([(row, perfect)])
    assert result["f1"] == 1.0
    assert 0.0 <= result["uniform_f1"] <= 1.0 and 0.0 <= result["random_f1"] <= 1.0
    assert result == summary_scores([(row, perfect)])  # the random baseline is seeded
