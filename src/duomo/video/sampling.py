"""Which frames to decode: pure index and timestamp selection, no I/O.

Every function takes the presentation timestamps of a video's frames (seconds, sorted) or a
frame count and returns frame indices into them, so the decoders stay free of selection rules.
"""

from __future__ import annotations

import numpy as np

# Timestamps are rationals turned into float64; a target time that lands exactly on a frame
# (t = 1.0 for frame 30 of a 30 fps clip) must pick that frame despite rounding either way.
TIME_EPS_SEC = 1e-6


def uniform_indices(num_total: int, num_frames: int) -> np.ndarray:
    """Centres of ``num_frames`` equal segments of ``range(num_total)``.

    Returns (num_frames,) int64, non-decreasing: index k is ``floor((k + 0.5) * num_total /
    num_frames)``, so one frame is the middle frame and ``num_frames == num_total`` is every
    frame. Asking for more frames than exist repeats frames rather than failing.
    """
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    if num_total <= 0:
        raise ValueError(f"num_total must be positive, got {num_total}")
    # integer arithmetic: (2k + 1) * N // (2n) is exact where the float formula can round
    k = np.arange(num_frames, dtype=np.int64)
    return (2 * k + 1) * num_total // (2 * num_frames)


def frames_at_times(pts_sec: np.ndarray, times_sec: np.ndarray) -> np.ndarray:
    """Index of the frame on screen at each time: the last frame whose pts is <= the time.

    pts_sec (N,) sorted float64, times_sec (K,) -> (K,) int64. Times before the first frame
    pick frame 0.
    """
    idx = np.searchsorted(pts_sec, np.asarray(times_sec, dtype=np.float64) + TIME_EPS_SEC, side="right") - 1
    return np.clip(idx, 0, len(pts_sec) - 1).astype(np.int64)


def every_times(start_sec: float, end_sec: float, step_sec: float) -> np.ndarray:
    """Times ``start, start + step, ...`` strictly before ``end_sec``; (K,) float64.

    Computed as ``start + k * step`` (no accumulated rounding); a time within
    ``TIME_EPS_SEC`` of ``end_sec`` counts as at the end and is left out.
    """
    if step_sec <= 0:
        raise ValueError(f"step must be positive, got {step_sec}")
    count = max(0, int(np.ceil((end_sec - start_sec - TIME_EPS_SEC) / step_sec)))
    return start_sec + step_sec * np.arange(count, dtype=np.float64)


def window_indices(pts_sec: np.ndarray, start_sec: float, end_sec: float, num_frames: int) -> np.ndarray:
    """``num_frames`` frames spread uniformly over those with ``start_sec <= pts < end_sec``.

    pts_sec (N,) sorted float64 -> (num_frames,) int64. When no frame starts inside the
    window (it is shorter than one frame), the frame on screen at ``start_sec`` is repeated.
    """
    first = int(np.searchsorted(pts_sec, start_sec - TIME_EPS_SEC, side="left"))
    stop = int(np.searchsorted(pts_sec, end_sec - TIME_EPS_SEC, side="left"))
    if stop <= first:
        return np.repeat(frames_at_times(pts_sec, np.array([start_sec])), num_frames)
    return first + uniform_indices(stop - first, num_frames)


def nearest_indices(values: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Index of the nearest entry of sorted ``values`` (M,) for each target (K,) -> (K,) int64.

    Ties go to the earlier entry.
    """
    values = np.asarray(values, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    right = np.clip(np.searchsorted(values, targets, side="left"), 0, len(values) - 1)
    left = np.clip(right - 1, 0, len(values) - 1)
    pick_left = np.abs(targets - values[left]) <= np.abs(values[right] - targets)
    return np.where(pick_left, left, right).astype(np.int64)


def resized_shape(
    width: int, height: int, size: tuple[int, int] | None, short_side: int | None
) -> tuple[int, int]:
    """Output ``(width, height)`` for a frame of ``width x height`` after an optional resize.

    ``size=(w, h)`` is exact (aspect ratio not kept); ``short_side=n`` scales the shorter side
    to n and the longer one in proportion (rounded, at least 1). Neither: unchanged.
    """
    if size is not None and short_side is not None:
        raise ValueError("give size or short_side, not both")
    if size is not None:
        out_w, out_h = int(size[0]), int(size[1])
        if out_w <= 0 or out_h <= 0:
            raise ValueError(f"size must be positive, got {size}")
        return out_w, out_h
    if short_side is not None:
        if short_side <= 0:
            raise ValueError(f"short_side must be positive, got {short_side}")
        scale = short_side / min(width, height)
        if width <= height:
            return short_side, max(1, round(height * scale))
        return max(1, round(width * scale)), short_side
    return width, height
