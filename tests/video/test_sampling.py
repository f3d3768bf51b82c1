"""Pure frame-selection rules: exact indices and times."""

from __future__ import annotations

import numpy as np
import pytest

from duomo.video.sampling import (
    every_times,
    frames_at_times,
    nearest_indices,
    resized_shape,
    uniform_indices,
    window_indices,
)


@pytest.mark.parametrize(
    ("num_total", "num_frames", "expected"),
    [
        (10, 4, [1, 3, 6, 8]),
        (5, 5, [0, 1, 2, 3, 4]),
        (9, 1, [4]),
        (1, 3, [0, 0, 0]),
        (3, 6, [0, 0, 1, 1, 2, 2]),
        (1800, 8, [112, 337, 562, 787, 1012, 1237, 1462, 1687]),
    ],
)
def test_uniform_indices_are_segment_centres(num_total, num_frames, expected):
    assert uniform_indices(num_total, num_frames).tolist() == expected


def test_uniform_indices_rejects_non_positive():
    with pytest.raises(ValueError):
        uniform_indices(10, 0)
    with pytest.raises(ValueError):
        uniform_indices(0, 3)


def test_frames_at_times_picks_frame_on_screen():
    pts = np.array([0.0, 0.1, 0.2, 0.3])
    times = np.array([0.0, 0.05, 0.1, 0.299, 0.3, 5.0, -1.0])
    assert frames_at_times(pts, times).tolist() == [0, 0, 1, 2, 3, 3, 0]


def test_frames_at_times_survives_float_rounding():
    pts = np.arange(90) * (1001 / 30000)  # 29.97 fps: times land "between" by 1e-16
    times = np.array([30 * 1001 / 30000, 60 * 1001 / 30000])
    assert frames_at_times(pts, times).tolist() == [30, 60]
    assert frames_at_times(np.arange(90) / 30, np.array([1.0, 2.0])).tolist() == [30, 60]


@pytest.mark.parametrize(
    ("start", "end", "step", "expected"),
    [
        (0.0, 1.0, 0.25, [0.0, 0.25, 0.5, 0.75]),
        (0.5, 2.0, 0.5, [0.5, 1.0, 1.5]),
        (0.0, 1.0, 1 / 3, [0.0, 1 / 3, 2 / 3]),
        (0.0, 0.5, 1.0, [0.0]),
        (1.0, 1.0, 0.5, []),
    ],
)
def test_every_times(start, end, step, expected):
    np.testing.assert_allclose(every_times(start, end, step), expected)


def test_every_times_rejects_zero_step():
    with pytest.raises(ValueError):
        every_times(0, 1, 0)


def test_window_indices_spread_over_frames_inside():
    pts = np.arange(20) / 10
    # frames with 0.3 <= pts < 1.0 are 3..9 (7 frames); centres of 3 segments: 1, 3, 5 -> 4, 6, 8
    assert window_indices(pts, 0.3, 1.0, 3).tolist() == [4, 6, 8]
    assert window_indices(pts, 0.0, 2.0, 4).tolist() == [2, 7, 12, 17]
    assert window_indices(pts, 1.5, 10.0, 5).tolist() == [15, 16, 17, 18, 19]


def test_window_shorter_than_a_frame_repeats_frame_on_screen():
    pts = np.arange(20) / 10
    assert window_indices(pts, 0.31, 0.35, 2).tolist() == [3, 3]


def test_nearest_indices_ties_go_earlier():
    values = np.array([0.0, 10.0, 20.0])
    targets = np.array([0, 4, 5, 6, 19, 25, -3])
    assert nearest_indices(values, targets).tolist() == [0, 0, 0, 1, 2, 2, 0]


@pytest.mark.parametrize(
    ("width", "height", "size", "short_side", "expected"),
    [
        (1280, 720, None, 224, (398, 224)),
        (720, 1280, None, 224, (224, 398)),
        (64, 48, None, 48, (64, 48)),
        (64, 48, (32, 16), None, (32, 16)),
        (64, 48, None, None, (64, 48)),
    ],
)
def test_resized_shape(width, height, size, short_side, expected):
    assert resized_shape(width, height, size, short_side) == expected


def test_resized_shape_rejects_bad_arguments():
    with pytest.raises(ValueError):
        resized_shape(64, 48, (32, 16), 16)
    with pytest.raises(ValueError):
        resized_shape(64, 48, (0, 16), None)
    with pytest.raises(ValueError):
        resized_shape(64, 48, None, -1)
