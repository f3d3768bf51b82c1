"""join_shots: transitions between shots with exact pixels and start frames."""

from __future__ import annotations

import numpy as np
import pytest

from duomo.synth.transitions import join_shots


def flat(num_frames: int, value: int) -> np.ndarray:
    return np.full((num_frames, 2, 2, 3), value, np.uint8)


def levels(frames: np.ndarray) -> list[int]:
    return [int(f[0, 0, 0]) for f in frames]


def test_cut_concatenates():
    frames, starts = join_shots([flat(3, 100), flat(2, 200)], [("cut", 0)])
    assert levels(frames) == [100, 100, 100, 200, 200] and starts == [3]


def test_fade_goes_through_black_and_the_new_shot_starts_after_it():
    frames, starts = join_shots([flat(5, 100), flat(5, 200)], [("fade", 4)])
    # out: 100 * 3/4, 2/4, 1/4, 0 over the last 4 frames; in: 200 * 1/4, 2/4, 3/4, 4/4
    assert levels(frames) == [100, 75, 50, 25, 0, 50, 100, 150, 200, 200]
    assert starts == [5]


def test_dissolve_overlaps_and_starts_at_the_first_frame_half_new():
    frames, starts = join_shots([flat(4, 0), flat(4, 120)], [("dissolve", 3)])
    # 3 overlap frames with a = 1/4, 2/4, 3/4; the shared frames replace 3 of each shot
    assert levels(frames) == [0, 30, 60, 90, 120]
    assert starts == [2]
    frames, starts = join_shots([flat(4, 0), flat(4, 100)], [("dissolve", 2)])
    assert levels(frames) == [0, 0, 33, 67, 100, 100] and starts == [3]  # a = 1/3, 2/3


def test_bad_transitions_are_refused():
    with pytest.raises(ValueError, match="transitions"):
        join_shots([flat(3, 0), flat(3, 0)], [])
    with pytest.raises(ValueError, match="kind"):
        join_shots([flat(3, 0), flat(3, 0)], [("wipe", 2)])
    with pytest.raises(ValueError, match="at least that long"):
        join_shots([flat(3, 0), flat(3, 0)], [("fade", 4)])
