"""Shot-boundary detection over decoded frames: hard cuts, fades through black and dissolves.

``ShotDetector`` is streaming: push small RGB frames in time order, read ``boundaries`` and call
``finish`` for the shots. Memory stays flat in video length (thumbnails of at most the last
``max_fade_sec``, and of one transition of at most twice that). ``detect_shots`` decodes a file
with ``iter_frames`` and runs the detector on it.

Cuts. Each pair of consecutive frames gets a score in [0, 1], the geometric mean of two shares:
how much of the colour histogram changed (half the L1 distance of 8x8x8 RGB histograms) and
how much of the picture changed in place (share of 32-column thumbnail cells whose colour moved
by more than 10% of full scale in some channel). A cut needs both, so camera pans (pixels
change, colours stay) and dissolve steps (a histogram bin flips, pixels barely move) score low.
Frame t starts a new shot when its score is at least ``threshold`` and ``adaptive_ratio`` times
the mean of the previous scores (about a second of them), the previous score and the next one
(motion raises every score of a shot alike; a flash or a fade step raises its neighbours too),
and when at least 60% of the change from frame t-2 to t+1 happens at t (a hard cut is abrupt,
a dissolve step is a third of that span). Cuts are decided one frame late.

Gradual transitions. A dissolve from frame A to frame B shows frames (1 - a) A + a B with a
growing a. Among the frames of the last ``max_fade_sec`` (after the last boundary), the
detector looks for the earliest start s such that every frame from s to the newest lies near
the line from frame s to the newest (mean residual at most ``blend_tolerance`` of the mean
change), with a that never falls back, at least two frames strictly in between, no jump of
more than half the way and no pause of 4 steps or more between two changes (that is two
transitions), and at least ``fade_threshold`` of the picture changing overall (an object fading
in or out changes too little). Windows that overlap, or follow within two frames,
are one transition when together they pass through a dark frame (a fade out, then in) or stay
near one line. When no window continues it, the transition is reported:

- through a dark frame: the new shot starts on the frame after the darkest one, unless that is
  the last frame (a fade out: the fade in, if any, comes next) or nothing but dark came before
  (a fade in at the start);
- otherwise (a cross-dissolve), if its two ends differ as much as a cut would: the new shot starts
  on the first frame half-way through the run of steps that makes up the blend.

A frame is dark when at most 1% of its thumbnail cells have a luma above 0.1. ``kind`` is
``"fade"`` for both gradual cases. ``duomo.synth.transitions.join_shots`` builds clips by the same
definitions (bench/shots.py measures both against it).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import logging
from pathlib import Path

import numpy as np

from duomo.video.decode import iter_frames
from duomo.video.probe import probe

logger = logging.getLogger(__name__)

GRID_COLS = 32
"""Thumbnail width in cells: frames are block-averaged to about this many columns."""
HIST_LEVELS = 8
"""Histogram levels per RGB channel (8 x 8 x 8 = 512 bins)."""
CHANGE_DELTA = 0.1
"""A thumbnail cell 'changed' when some channel moved by more than this (of full scale 1.0)."""
DARK_LUMA = 0.1
DARK_MAX_SHARE = 0.01
"""A frame is dark when at most this share of its cells has a luma above DARK_LUMA."""
SCORE_HISTORY = 24
"""Previous cut scores the adaptive test averages (about a second of video)."""
CUT_LOOKAHEAD = 1
"""Frames seen after a candidate cut before it is decided (for its next score and abruptness)."""
MIN_ABRUPTNESS = 0.6
"""Share of the change around a cut (two frames before to one after) that must happen at it."""
PAUSE_STEPS = 4
"""Quiet steps inside a window that split it into two changes (a blend never pauses)."""
BLEND_GAP = 2
"""Frames a gradual transition waits for a window that continues it before it is reported."""
MAX_FADE_FRAMES = 240
"""Hard cap on the frames a gradual transition may span, whatever the frame rate."""


@dataclass(frozen=True)
class ShotBoundary:
    """A shot starts at ``frame_idx`` / ``time_sec``.

    ``kind`` is ``"cut"`` or ``"fade"`` (fades to or from black and cross-dissolves);
    ``score`` is the cut score for cuts and the share of the picture that changed over the
    transition for fades, both in [0, 1].
    """

    frame_idx: int
    time_sec: float
    kind: str
    score: float


@dataclass(frozen=True)
class Shot:
    """Frames ``[start_frame, end_frame)``, shown from ``start_sec`` to ``end_sec``."""

    start_sec: float
    end_sec: float
    start_frame: int
    end_frame: int
    start_kind: str = "start"
    """How the shot begins: "start" (the first shot), "cut" or "fade"."""


@dataclass
class _Seen:
    """What the detector keeps of one pushed frame."""

    frame_idx: int
    time_sec: float
    cells: np.ndarray  # (3 * h * w,) float32 in [0, 1]: the block-averaged thumbnail, channel by channel
    hist: np.ndarray  # (512,) float32, sums to 1
    luma: float  # mean luma of the cells, in [0, 1]
    is_dark: bool


@dataclass
class _Blend:
    """A gradual transition: one or more overlapping windows that passed the dissolve test."""

    frames: list[_Seen]  # first, ..., last
    changed: float  # share of cells that changed from first to last, the most of its windows


class ShotDetector:
    """Streaming shot-boundary detector; see the module docs for the method.

    Push frames, uint8 (H, W, 3) RGB of one size (a small one: 64-160 px wide is plenty),
    in time order with their index and time; ``boundaries`` fills in as they are found
    (a cut one frame later, a fade once the transition is over), ``finish`` returns the shots.

    Args:
        threshold: cut score (in [0, 1]: 0 identical frames, 1 nothing in common in colour
            or in place) a frame pair must reach to be a cut. Lower finds subtler cuts.
        adaptive_ratio: how many times the recent and the next scores a cut score must be.
        fade_threshold: share of the picture (in [0, 1]) a fade or dissolve must change.
        min_shot_sec: boundaries closer than this to the previous one (or to the first frame)
            are dropped.
        max_fade_sec: longest gradual transition found (and the detector's look-back).
        blend_tolerance: largest residual, relative to the whole change, of a frame inside a
            dissolve from the straight line between its ends.
    """

    def __init__(
        self,
        *,
        threshold: float = 0.3,
        adaptive_ratio: float = 2.0,
        fade_threshold: float = 0.5,
        min_shot_sec: float = 0.3,
        max_fade_sec: float = 2.0,
        blend_tolerance: float = 0.3,
    ):
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        if not 0 < fade_threshold <= 1:
            raise ValueError(f"fade_threshold must be in (0, 1], got {fade_threshold}")
        if adaptive_ratio < 1:
            raise ValueError(f"adaptive_ratio must be at least 1, got {adaptive_ratio}")
        if min_shot_sec < 0 or max_fade_sec <= 0 or blend_tolerance <= 0:
            raise ValueError("min_shot_sec must be >= 0, max_fade_sec and blend_tolerance > 0")
        self.threshold = threshold
        self.adaptive_ratio = adaptive_ratio
        self.fade_threshold = fade_threshold
        self.min_shot_sec = min_shot_sec
        self.max_fade_sec = max_fade_sec
        self.blend_tolerance = blend_tolerance
        self.boundaries: list[ShotBoundary] = []

        self._window: deque[_Seen] = deque()  # frames of the last max_fade_sec, oldest first
        self._scores: deque[float] = deque(maxlen=SCORE_HISTORY)  # cut scores before the pending one
        self._cut_queue: deque[tuple[_Seen, float]] = deque()  # (frame, cut score) awaiting the frames after
        self._blend: _Blend | None = None  # the growing gradual transition, if any
        self._floor_idx = -1  # gradual transitions start at or after this frame
        self._fade_in_end_idx = -BLEND_GAP - 1  # last frame of the last fade in reported
        self._first: _Seen | None = None
        self._last: _Seen | None = None
        self._first_content_idx: int | None = None  # first frame that is not dark
        self._frame_step_sec = 0.0
        self._shape: tuple[int, ...] | None = None

    # --- input -----------------------------------------------------------------------------

    def push(self, frame: np.ndarray, frame_idx: int, time_sec: float) -> None:
        """Add the next frame: uint8 (H, W, 3) RGB, the same size every time."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        if self._shape is None:
            self._shape = frame.shape
        elif frame.shape != self._shape:
            raise ValueError(f"frame {frame_idx} is {frame.shape}, earlier frames were {self._shape}")
        if self._last is not None and time_sec <= self._last.time_sec:
            raise ValueError(f"frame {frame_idx} at {time_sec} s is not after the previous one")
        seen = _describe(frame, int(frame_idx), float(time_sec))
        if self._first is None:
            self._first = seen
        if self._first_content_idx is None and not seen.is_dark:
            self._first_content_idx = seen.frame_idx
        previous, self._last = self._last, seen
        if previous is None:
            self._window.append(seen)
            return
        self._frame_step_sec = seen.time_sec - previous.time_sec

        self._window.append(seen)
        self._cut_queue.append((seen, _cut_score(previous, seen)))
        if len(self._cut_queue) > CUT_LOOKAHEAD:
            self._decide_cut()

        while len(self._window) > MAX_FADE_FRAMES or (
            self._window[0].time_sec < seen.time_sec - self.max_fade_sec - 1e-9
        ):
            self._window.popleft()
        self._track_blend()

    def finish(self, end_sec: float | None = None) -> list[Shot]:
        """Close the stream and return the shots, in order, covering every pushed frame.

        ``end_sec`` is when the last frame stops showing (default: its time plus one frame
        step). No frames pushed gives ``[]``.
        """
        while self._cut_queue:
            self._decide_cut()
        if self._blend is not None:
            self._report_blend(self._blend)
            self._blend = None
        if self._first is None or self._last is None:
            return []
        end = end_sec if end_sec is not None else self._last.time_sec + self._frame_step_sec
        starts = [(self._first.frame_idx, self._first.time_sec, "start")]
        starts += [(b.frame_idx, b.time_sec, b.kind) for b in self.boundaries]
        ends = [(idx, sec) for idx, sec, _ in starts[1:]] + [(self._last.frame_idx + 1, max(end, self._last.time_sec))]
        return [
            Shot(start_sec, end_sec, start_idx, end_idx, kind)
            for (start_idx, start_sec, kind), (end_idx, end_sec) in zip(starts, ends)
        ]

    # --- cuts ------------------------------------------------------------------------------

    def _decide_cut(self) -> None:
        """Decide whether the oldest queued frame starts a shot, seeing CUT_LOOKAHEAD frames past it."""
        seen, score = self._cut_queue.popleft()
        next_score = self._cut_queue[0][1] if self._cut_queue else 0.0
        recent = float(np.mean(self._scores)) if self._scores else 0.0
        previous = self._scores[-1] if self._scores else 0.0
        is_cut = score >= self.threshold and score >= self.adaptive_ratio * max(recent, previous, next_score)
        if is_cut and self._abruptness(seen) < MIN_ABRUPTNESS:
            logger.debug("frame %d: a step of a gradual transition, not a cut", seen.frame_idx)
            is_cut = False
        if is_cut:
            self._add(ShotBoundary(seen.frame_idx, seen.time_sec, "cut", round(score, 4)))
            self._floor_idx = max(self._floor_idx, seen.frame_idx)
            # a cut's score would make the next shot's test too strict
            self._scores.clear()
        else:
            self._scores.append(score)

    def _abruptness(self, seen: _Seen) -> float:
        """How much of the change from two frames before ``seen`` to one after happens at ``seen``.

        Mean absolute cell difference of (previous, seen) over that of (two before, one after):
        near 1 for a hard cut (all at once), 1/3 for a step inside a dissolve.
        """
        around = {s.frame_idx: s for s in self._window if -2 <= s.frame_idx - seen.frame_idx <= 1}
        order = sorted(around)
        at = order.index(seen.frame_idx)
        if at == 0:
            return 1.0
        step = float(np.abs(seen.cells - around[order[at - 1]].cells).mean())
        span = float(np.abs(around[order[-1]].cells - around[order[0]].cells).mean())
        return step / span if span > 0 else 1.0

    # --- gradual transitions ---------------------------------------------------------------

    def _track_blend(self) -> None:
        """Grow the current gradual transition with the newest frame, or report it once it is over.

        A window found within BLEND_GAP frames of the current transition's end joins it when the
        two make one transition: through a dark frame (a fade out, then in), or still close to
        one line (motion can break a long dissolve's line part-way). The transition is reported
        when BLEND_GAP frames pass without a window, or a window that does not join it.
        """
        blend = self._find_blend()
        pending = self._blend
        newest = self._window[-1].frame_idx
        if pending is None:
            self._blend = blend
            return
        last_idx = pending.frames[-1].frame_idx
        # a fade in's first frames change too little for a window of their own: wait longer
        gap = BLEND_GAP if not _has_risen(pending.frames) else max(BLEND_GAP, newest - pending.frames[0].frame_idx)
        if blend is None:
            if newest - last_idx > gap or self._window[-1].time_sec - pending.frames[-1].time_sec > self.max_fade_sec:
                self._report_blend(pending)
                self._blend = None
            return
        if blend.frames[0].frame_idx <= last_idx + gap:
            tail = [s for s in self._window if s.frame_idx > last_idx]
            merged = pending.frames + tail
            if _has_risen(pending.frames):
                # after a fade in, only more of the same fade in joins (it is a line from black)
                merged_line = merged[merged.index(_darkest(pending.frames)) :]
                through_dark = False
            else:
                merged_line = merged  # a fade out joins the fade in after it
                through_dark = _darkest(merged).is_dark
            on_line = _blend_alphas(np.stack([s.cells for s in merged_line]), 1.5 * self.blend_tolerance) is not None
            too_long = merged[-1].time_sec - merged[0].time_sec > 2 * self.max_fade_sec
            if (through_dark or on_line) and not too_long:
                self._blend = _Blend(merged, max(pending.changed, blend.changed))
                return
        self._report_blend(pending)
        self._blend = self._find_blend()  # anew, from where the reported one ended

    def _find_blend(self) -> _Blend | None:
        """The earliest-starting window ending at the newest frame that passes the dissolve test."""
        window = [s for s in self._window if s.frame_idx >= self._floor_idx]
        if len(window) < 4:
            return None
        cells = np.stack([s.cells for s in window])  # (M, D)
        last = cells[-1]
        diff = np.abs(cells - last).reshape(len(window), 3, -1)  # (M, 3, D / 3)
        per_cell = np.maximum(np.maximum(diff[:, 0], diff[:, 1]), diff[:, 2])  # (M, D / 3)
        changed = (per_cell > CHANGE_DELTA).mean(axis=1)  # (M,)
        for start in np.flatnonzero(changed[:-3] >= self.fade_threshold):
            alphas = _blend_alphas(cells[start:], self.blend_tolerance)
            if alphas is not None:
                return _Blend(window[start:], float(changed[start]))
        return None

    def _report_blend(self, blend: _Blend) -> None:
        """Turn a finished gradual transition into a boundary (or none, for a fade out)."""
        frames = blend.frames
        self._floor_idx = max(self._floor_idx, frames[-1].frame_idx)
        darkest = frames.index(_darkest(frames))
        if frames[darkest].is_dark:
            # through black: the new shot starts on the first frame after the darkest one
            if darkest == len(frames) - 1:
                logger.debug("fade out from frame %d to %d", frames[0].frame_idx, frames[-1].frame_idx)
                return  # the fade in, if any, comes with the next window (which starts here)
            if self._first_content_idx is None or self._first_content_idx >= frames[darkest].frame_idx:
                return  # a fade in from the first frames: nothing came before it
            start = frames[darkest + 1]
            self._fade_in_end_idx = frames[-1].frame_idx
        elif frames[0].is_dark or frames[-1].is_dark:
            return
        elif frames[0].frame_idx <= self._fade_in_end_idx + BLEND_GAP and frames[-1].luma > frames[0].luma:
            return  # the rest of a fade in already reported
        elif _cut_score(frames[0], frames[-1]) < self.threshold:
            return  # the two ends would not make a cut: a change within one shot (light, motion)
        else:
            start = frames[_half_way(_line_alphas(np.stack([s.cells for s in frames])))]
        self._add(ShotBoundary(start.frame_idx, start.time_sec, "fade", round(blend.changed, 4)))

    # --- output ----------------------------------------------------------------------------

    def _add(self, boundary: ShotBoundary) -> None:
        """Insert in time order unless it is within min_shot_sec of the start or a neighbour."""
        times = [self._first.time_sec] + [b.time_sec for b in self.boundaries]
        if any(abs(boundary.time_sec - t) < self.min_shot_sec - 1e-9 for t in times):
            logger.debug("dropped %s boundary at frame %d: too close to another", boundary.kind, boundary.frame_idx)
            return
        at = sum(b.frame_idx < boundary.frame_idx for b in self.boundaries)
        self.boundaries.insert(at, boundary)


def _cut_score(a: _Seen, b: _Seen) -> float:
    """Cut score of two consecutive frames in [0, 1]: sqrt(histogram change * share of cells changed)."""
    hist_change = 0.5 * float(np.abs(a.hist - b.hist).sum())
    diff = np.abs(a.cells - b.cells).reshape(3, -1)
    per_cell = np.maximum(np.maximum(diff[0], diff[1]), diff[2])
    cell_change = float((per_cell > CHANGE_DELTA).mean())
    return float(np.sqrt(hist_change * cell_change))


def _describe(frame: np.ndarray, frame_idx: int, time_sec: float) -> _Seen:
    """Thumbnail cells, colour histogram and darkness of one uint8 (H, W, 3) frame."""
    height, width, _ = frame.shape
    block = max(1, width // GRID_COLS)
    rows, cols = max(1, height // block), max(1, width // block)
    crop = frame[: rows * block, : cols * block].astype(np.float32)
    cells = crop.reshape(rows, block, cols, block, 3).mean(axis=(1, 3)) / 255.0  # (rows, cols, 3)
    shift = 8 - int(np.log2(HIST_LEVELS))
    q = (frame >> shift).astype(np.int32)
    bins = (q[..., 0] * HIST_LEVELS + q[..., 1]) * HIST_LEVELS + q[..., 2]
    hist = np.bincount(bins.ravel(), minlength=HIST_LEVELS**3).astype(np.float32) / bins.size
    luma = cells @ np.array([0.299, 0.587, 0.114], np.float32)
    is_dark = bool((luma > DARK_LUMA).mean() <= DARK_MAX_SHARE)
    planar = np.ascontiguousarray(cells.transpose(2, 0, 1)).reshape(-1)  # (3 * rows * cols,)
    return _Seen(frame_idx, time_sec, planar, hist, float(luma.mean()), is_dark)


def _pauses(steps: np.ndarray) -> bool:
    """Whether position steps (M - 1,) change, stop for PAUSE_STEPS or more, then change again:
    two transitions (or a transition and motion), not one blend."""
    big = steps >= 0.25 * float(np.max(steps))
    active = np.flatnonzero(big)
    if active.size < 2:
        return False
    gaps = np.diff(active) - 1  # quiet steps between consecutive active ones
    return bool(np.any(gaps >= PAUSE_STEPS))


def _line_alphas(cells: np.ndarray) -> np.ndarray:
    """Position of each of cells (M, D) projected on the line from the first to the last: (M,)."""
    direction = cells[-1] - cells[0]
    norm = float(direction @ direction)
    return (cells - cells[0]) @ direction / norm if norm > 0 else np.zeros(len(cells))


def _half_way(alphas: np.ndarray) -> int:
    """Index of the first frame half-way through the blend, given positions (M,) on its line.

    The blend is the run of steps around the largest whose increments stay at least 40% of a
    typical large step (the median of those above half the largest): the ends of the window
    may lie well before and after it. The new shot starts half-way through that run in time
    (for a run of L steps, ceil(L / 2) frames after it begins), which for a linear dissolve is
    the first frame at least half new, and which motion in either shot does not shift the way
    it shifts the positions themselves.
    """
    steps = np.diff(alphas)  # (M - 1,): steps[i] leads to frame i + 1
    peak = int(np.argmax(steps))
    level = 0.4 * float(np.median(steps[steps >= 0.5 * steps[peak]]))
    lo, hi = peak, peak
    while lo > 0 and steps[lo - 1] >= level:
        lo -= 1
    while hi < len(steps) - 1 and steps[hi + 1] >= level:
        hi += 1
    return lo + 1 + (hi - lo + 2) // 2 - 1


def _darkest(frames: list[_Seen]) -> _Seen:
    """The darkest frame (the last of those within 0.004 of the lowest mean luma)."""
    lumas = np.array([s.luma for s in frames])
    return frames[int(np.flatnonzero(lumas <= lumas.min() + 0.004)[-1])]


def _has_risen(frames: list[_Seen]) -> bool:
    """Whether the frames went through a dark frame and out of it (a fade in happened)."""
    darkest = _darkest(frames)
    return darkest.is_dark and darkest is not frames[-1] and not frames[-1].is_dark


def _blend_alphas(cells: np.ndarray, tolerance: float) -> np.ndarray | None:
    """Where each frame sits on the line from the first to the last, if all lie near it.

    cells (M, D) float, M >= 4. Returns alphas (M,) (0 at the first, 1 at the last) when every
    frame's mean residual off the line is at most ``tolerance`` times the mean change, the
    alphas never fall back by more than 0.15, and at least two frames lie strictly between
    (0.1 < alpha < 0.9) and no step of more than 0.5 (a hard cut jumps); else None.
    """
    first, direction = cells[0], cells[-1] - cells[0]
    norm = float(direction @ direction)
    if norm == 0.0:
        return None
    projected = cells @ direction  # (M,)
    alphas = (projected - projected[0]) / norm
    # the cheap tests first: most windows fail one of them
    if np.any(alphas < np.maximum.accumulate(alphas) - 0.15):
        return None
    if np.count_nonzero((alphas > 0.1) & (alphas < 0.9)) < 2 or np.max(np.diff(alphas)) > 0.5:
        return None
    if _pauses(np.diff(alphas)):
        return None
    residual = np.abs(cells - first - alphas[:, None] * direction).mean(axis=1)  # (M,)
    if residual.max() > tolerance * float(np.abs(direction).mean()):
        return None
    return alphas


def detect_shots(
    path: str | Path,
    *,
    threshold: float = 0.3,
    fade_threshold: float = 0.5,
    min_shot_sec: float = 0.3,
    analysis_width: int = 96,
) -> list[Shot]:
    """Shots of a video file, from every frame decoded at ``analysis_width`` pixels wide
    (height in proportion); each shot says how it begins (``start_kind``).

    The last shot ends at the video's duration after its first frame. Raises MediaError for a
    file that cannot be read, including one whose frames stop decoding part-way. See
    ``ShotDetector`` for the other arguments.
    """
    info = probe(path)
    width = min(analysis_width, info.width)
    height = max(2, round(width * info.height / info.width))
    detector = ShotDetector(threshold=threshold, fade_threshold=fade_threshold, min_shot_sec=min_shot_sec)
    first_sec = None
    for frame in iter_frames(path, size=(width, height)):
        first_sec = frame.pts_sec if first_sec is None else first_sec
        detector.push(frame.image, frame.frame_idx, frame.pts_sec)
    end_sec = first_sec + info.duration_sec if first_sec is not None and info.duration_sec > 0 else None
    return detector.finish(end_sec)
