"""Unsupervised importance of a video's segments: what they show, how much moves, whether
someone speaks, how loud it is.

Every signal is one number per segment, rescaled to [0, 1] over the video; the importance is
their weighted sum. Representativeness (how like the rest of the video a segment looks) and
diversity (how unlike the segment just before it) are the two rewards of DR-DSN (Zhou et al.,
2018, https://arxiv.org/abs/1801.00054) applied to segments instead of chosen summaries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_WEIGHTS = {"motion": 1.0, "speech": 0.5, "sound": 0.5, "representative": 0.3, "diverse": 0.3}
"""Weights of the signals in ``unsupervised_importance`` (chosen on SynthWorld val videos)."""
MOTION_CLIP_PERCENTILE = 90
"""Motion above this percentile of the video's is clipped to it before rescaling."""


class MotionTap:
    """Wraps a shot detector (push / finish / boundaries) and records how much each frame it is
    fed differs from the previous one, so motion comes from the analysis' own decoding pass."""

    def __init__(self, detector):
        self.detector = detector
        self.times: list[float] = []
        self.motion: list[float] = []
        self._last: np.ndarray | None = None

    def push(self, rgb: np.ndarray, frame_idx: int, time_sec: float):
        small = rgb[::2, ::2].astype(np.int16)
        self.motion.append(0.0 if self._last is None or self._last.shape != small.shape
                           else float(np.abs(small - self._last).mean()) / 255.0)
        self.times.append(float(time_sec))
        self._last = small
        return self.detector.push(rgb, frame_idx, time_sec)

    def finish(self, end_sec: float):
        return self.detector.finish(end_sec)

    @property
    def boundaries(self):
        return getattr(self.detector, "boundaries", [])


def frame_motion(frames: np.ndarray) -> np.ndarray:
    """(N, H, W, C) uint8 frames -> (N,) mean absolute difference to the previous frame in [0, 1]
    (the first frame gets the second's value)."""
    if len(frames) < 2:
        return np.zeros(len(frames))
    diff = np.abs(frames[1:].astype(np.int16) - frames[:-1].astype(np.int16)).mean(axis=(1, 2, 3)) / 255.0
    return np.concatenate([diff[:1], diff])


def span_means(times: np.ndarray, values: np.ndarray, spans: list[tuple[float, float]]) -> np.ndarray:
    """(S,) mean of the ``values`` (N,) whose ``times`` (N,) fall in each [start, end) span; a span
    with none takes the value nearest its middle."""
    times, values = np.asarray(times, dtype=np.float64), np.asarray(values, dtype=np.float64)
    out = np.zeros(len(spans))
    if not len(times):
        return out
    for i, (a, b) in enumerate(spans):
        inside = (times >= a) & (times < b)
        out[i] = values[inside].mean() if inside.any() else values[np.argmin(np.abs(times - (a + b) / 2))]
    return out


def coverage(spans: list[tuple[float, float]], intervals: list[tuple[float, float]]) -> np.ndarray:
    """(S,) share of each [start, end) span covered by the union of ``intervals`` (speech)."""
    out = np.zeros(len(spans))
    for i, (a, b) in enumerate(spans):
        clipped = sorted((max(a, s), min(b, e)) for s, e in intervals if s < b and e > a)
        covered, reach = 0.0, a
        for s, e in clipped:
            covered += max(0.0, e - max(s, reach))
            reach = max(reach, e)
        out[i] = covered / (b - a) if b > a else 0.0
    return out


def loudness(waveform: np.ndarray, sample_rate: int, spans: list[tuple[float, float]]) -> np.ndarray:
    """(S,) RMS of a mono waveform (starting at time 0) over each span."""
    tap = LoudnessTap(sample_rate, spans)
    tap.add(0.0, waveform)
    return tap.values()


class LoudnessTap:
    """Per-span RMS of a soundtrack fed in consecutive windows, so a long file never has to be
    in memory at once (and the speech recognizer's own decoding can feed it).

    ``add(start_sec, waveform (S,))`` for each window; ``values()`` -> (spans,) RMS, 0 for a
    span no sample falls in. Span i covers samples [int(a * rate), max(that + 1, int(b * rate))).
    """

    def __init__(self, sample_rate: int, spans: list[tuple[float, float]]):
        self.sample_rate = sample_rate
        lo = np.array([int(a * sample_rate) for a, _ in spans], dtype=np.int64)
        hi = np.maximum(lo + 1, np.array([int(b * sample_rate) for _, b in spans], dtype=np.int64))
        self.bounds = np.stack([lo, hi], axis=1)  # (spans, 2)
        self.sums = np.zeros(len(spans))
        self.counts = np.zeros(len(spans), dtype=np.int64)

    def add(self, start_sec: float, waveform: np.ndarray) -> None:
        first = int(round(start_sec * self.sample_rate))
        squares = np.concatenate([[0.0], np.cumsum(np.asarray(waveform, np.float64) ** 2)])
        lo = np.clip(self.bounds[:, 0] - first, 0, len(waveform))
        hi = np.clip(self.bounds[:, 1] - first, 0, len(waveform))
        self.sums += squares[hi] - squares[lo]
        self.counts += hi - lo

    def values(self) -> np.ndarray:
        out = np.zeros(len(self.sums))
        seen = self.counts > 0
        out[seen] = np.sqrt(np.maximum(self.sums[seen], 0.0) / self.counts[seen])
        return out


def representativeness(descriptors: np.ndarray) -> np.ndarray:
    """(S, D) -> (S,) cosine similarity of each segment's descriptor to the video's mean one."""
    unit = _unit(descriptors)
    return unit @ _unit(unit.mean(axis=0, keepdims=True))[0]


def diversity(descriptors: np.ndarray) -> np.ndarray:
    """(S, D) -> (S,) cosine distance of each segment to the segment before it (0 for the first
    if alone, else the second's distance to it): high where the picture changes."""
    unit = _unit(descriptors)
    if len(unit) < 2:
        return np.zeros(len(unit))
    change = 1.0 - (unit[1:] * unit[:-1]).sum(axis=1)
    return np.concatenate([change[:1], change])


def rescale(values: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1]; a constant signal becomes zeros (it says nothing about any segment)."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return values
    span = values.max() - values.min()
    return (values - values.min()) / span if span > 1e-12 else np.zeros_like(values)


@dataclass
class Signals:
    """One value per segment of each signal (None: not available for this video)."""

    motion: np.ndarray
    descriptors: np.ndarray
    """(S, D) visual descriptors (or a model's embeddings)."""
    speech: np.ndarray | None = None
    sound: np.ndarray | None = None


def unsupervised_importance(signals: Signals, weights: dict[str, float] | None = None) -> np.ndarray:
    """(S,) importance in [0, 1]: the weighted mean of the rescaled signals that are available
    (motion first clipped at its ``MOTION_CLIP_PERCENTILE``th percentile)."""
    weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
    motion = np.asarray(signals.motion, dtype=np.float64)
    if len(motion):  # a cut is one huge difference: it must not flatten every other segment's motion
        motion = np.minimum(motion, np.percentile(motion, MOTION_CLIP_PERCENTILE))
    parts = {"motion": motion, "representative": representativeness(signals.descriptors),
             "diverse": diversity(signals.descriptors), "speech": signals.speech, "sound": signals.sound}
    total = np.zeros(len(signals.motion))
    weight_sum = 0.0
    for name, values in parts.items():
        if values is None or not weights.get(name):
            continue
        total += weights[name] * rescale(values)
        weight_sum += weights[name]
    return total / weight_sum if weight_sum else total


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def step_signals(path, num_steps: int, step_sec: float, *, size: int = 32) -> Signals:
    """Signals of each ``step_sec`` step of a video (a fixed time grid instead of its segments):
    motion from the frames on screen every half step, a descriptor of the step's middle frame,
    and the loudness of its sound (None when it has none). For scoring a video at the grid a
    protocol fixes (see ``duomo.eval.evaluate.summary_protocol``)."""
    from duomo.errors import MediaError
    from duomo.library.visual import describe_frames
    from duomo.video.audio import decode_audio
    from duomo.video.decode import sample_every

    clip = sample_every(path, seconds=step_sec / 2, size=(size, size))
    frames = clip.frames  # (2N', H, W, 3), two per step
    motion_frames = frame_motion(frames)
    times = np.arange(len(frames)) * step_sec / 2
    spans = [(i * step_sec, (i + 1) * step_sec) for i in range(num_steps)]
    motion = span_means(times, motion_frames, spans)
    pick = np.clip(np.round((np.arange(num_steps) + 0.5) * 2).astype(int) - 1, 0, len(frames) - 1)
    descriptors = np.stack([describe_frames([frames[i]]) for i in pick])
    try:
        sound = loudness(decode_audio(path, 16000), 16000, spans)
    except MediaError:
        sound = None
    return Signals(motion=motion, descriptors=descriptors, sound=sound)
