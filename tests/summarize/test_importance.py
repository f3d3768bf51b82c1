"""Unsupervised importance signals and their combination, on hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest

from duomo.summarize import importance as imp


def test_frame_motion_is_the_mean_absolute_difference():
    frames = np.zeros((3, 2, 2, 3), np.uint8)
    frames[1] = 255
    frames[2, 0] = 255  # half of the picture goes back to black
    assert imp.frame_motion(frames).tolist() == pytest.approx([1.0, 1.0, 0.5])


def test_motion_tap_records_motion_and_passes_frames_on():
    class Detector:
        def __init__(self):
            self.pushed, self.boundaries = [], ["b"]

        def push(self, rgb, idx, t):
            self.pushed.append(idx)

        def finish(self, end):
            return ["shot"]

    tap = imp.MotionTap(Detector())
    for i, value in enumerate([0, 0, 51]):
        tap.push(np.full((4, 4, 3), value, np.uint8), i, i / 10)
    assert tap.detector.pushed == [0, 1, 2] and tap.finish(0.3) == ["shot"] and tap.boundaries == ["b"]
    assert tap.times == [0.0, 0.1, 0.2] and tap.motion == pytest.approx([0.0, 0.0, 0.2])


def test_span_means_coverage_and_loudness():
    times = np.array([0.0, 0.5, 1.0, 1.5])
    assert imp.span_means(times, np.array([1, 3, 5, 7]), [(0, 1), (1, 2), (2.1, 2.3)]).tolist() == [2, 6, 7]
    # speech over [0.5, 1.5) and [1.2, 1.8): union covers half of [0, 1) and 80% of [1, 2)
    assert imp.coverage([(0, 1), (1, 2)], [(0.5, 1.5), (1.2, 1.8)]).tolist() == pytest.approx([0.5, 0.8])
    wave = np.concatenate([np.zeros(100), np.full(100, 0.5)])
    assert imp.loudness(wave, 100, [(0, 1), (1, 2)]).tolist() == pytest.approx([0.0, 0.5])


def test_representativeness_and_diversity():
    descriptors = np.array([[1.0, 0], [1, 0], [1, 0], [0, 1]])
    rep = imp.representativeness(descriptors)
    assert rep[0] == rep[1] == rep[2] > rep[3]
    assert imp.diversity(descriptors).tolist() == pytest.approx([0, 0, 0, 1])


def test_rescale_and_the_weighted_combination():
    assert imp.rescale(np.array([2.0, 4, 3])).tolist() == [0, 1, 0.5]
    assert imp.rescale(np.array([5.0, 5])).tolist() == [0, 0]
    same = np.ones((4, 2))
    # motion clipped at its 90th percentile (0.2) then rescaled: 0, 1, 1, 0.5
    signals = imp.Signals(motion=np.array([0.0, 0.2, 0.2, 0.1]), descriptors=same, speech=np.array([1.0, 0, 0, 0]))
    scores = imp.unsupervised_importance(signals, {"motion": 1.0, "speech": 1.0})
    assert scores.tolist() == pytest.approx([0.5, 0.5, 0.5, 0.25])
    assert imp.unsupervised_importance(signals, {"motion": 1.0}).argmax() == 1


def test_a_cut_spike_does_not_flatten_the_rest_of_the_motion():
    motion = np.array([0.0] * 5 + [0.02] * 5 + [0.9] + [0.0] * 9)  # one huge difference at a cut
    scores = imp.unsupervised_importance(imp.Signals(motion=motion, descriptors=np.ones((20, 2))), {"motion": 1.0})
    assert scores[5:10].min() == scores.max() == 1.0


def test_loudness_fed_in_windows_equals_loudness_of_the_whole():
    rng = np.random.default_rng(0)
    wave = rng.normal(0, 0.3, 1000).astype(np.float32)
    spans = [(0.0, 1.5), (1.5, 3.3), (3.3, 3.3), (9.5, 10.0), (9.99, 12.0), (11.0, 12.0)]  # empty, past the end
    whole = imp.loudness(wave, 100, spans)
    tap = imp.LoudnessTap(100, spans)
    for start, stop in [(0, 137), (137, 500), (500, 999), (999, 1000)]:
        tap.add(start / 100, wave[start:stop])
    assert tap.values() == pytest.approx(whole, rel=1e-6)
    # [3.3, 3.3) still reads its one sample; a span wholly past the end reads nothing
    assert whole[2] == pytest.approx(abs(float(wave[330]))) and whole[5] == 0.0
    assert whole[0] == pytest.approx(float(np.sqrt(np.mean(wave[:150].astype(np.float64) ** 2))))
