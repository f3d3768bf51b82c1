"""The default visual descriptor of a segment when no retrieval model is given: colour and
layout statistics of a few frames, good for "more like this" between looks, not for text queries.

A joint HSV histogram (8 hue x 3 saturation x 3 value bins) and a 4x4 grid of mean colours,
each square-rooted (Hellinger) and weighted, averaged over the frames, L2-normalised.
"""

from __future__ import annotations

import numpy as np

HUE_BINS, SAT_BINS, VAL_BINS = 8, 3, 3
GRID = 4
DIM = HUE_BINS * SAT_BINS * VAL_BINS + GRID * GRID * 3
DESCRIPTOR_NAME = f"hsv{HUE_BINS}x{SAT_BINS}x{VAL_BINS}+grid{GRID}"


def describe_frames(frames: list[np.ndarray]) -> np.ndarray:
    """frames: (H, W, 3) uint8 RGB, any size (small is fine) -> (DIM,) float32, unit length."""
    if not frames:
        raise ValueError("describe_frames needs at least one frame")
    total = np.zeros(DIM, dtype=np.float64)
    for frame in frames:
        total += _describe(frame)
    norm = np.linalg.norm(total)
    return (total / norm if norm > 0 else total).astype(np.float32)


def _describe(frame: np.ndarray) -> np.ndarray:
    rgb = frame.astype(np.float32) / 255.0
    hue, sat, val = _hsv(rgb)
    h_bin = np.minimum((hue * HUE_BINS).astype(np.int64), HUE_BINS - 1)
    s_bin = np.minimum((sat * SAT_BINS).astype(np.int64), SAT_BINS - 1)
    v_bin = np.minimum((val * VAL_BINS).astype(np.int64), VAL_BINS - 1)
    joint = (h_bin * SAT_BINS + s_bin) * VAL_BINS + v_bin
    hist = np.bincount(joint.ravel(), minlength=HUE_BINS * SAT_BINS * VAL_BINS).astype(np.float64)
    hist = np.sqrt(hist / max(hist.sum(), 1.0))
    height, width = rgb.shape[:2]
    rows = np.array_split(np.arange(height), GRID)
    cols = np.array_split(np.arange(width), GRID)
    grid = np.array([rgb[r[0]:r[-1] + 1, c[0]:c[-1] + 1].reshape(-1, 3).mean(axis=0) if len(r) and len(c) else
                     np.zeros(3) for r in rows for c in cols], dtype=np.float64).ravel()
    grid = np.sqrt(grid) / np.sqrt(GRID * GRID)  # same overall weight as the histogram
    return np.concatenate([hist, grid])


def _hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H, W, 3) float RGB in [0, 1] -> hue in [0, 1), saturation, value, each (H, W)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    high = rgb.max(axis=-1)
    low = rgb.min(axis=-1)
    spread = high - low
    safe = np.where(spread > 0, spread, 1.0)
    hue = np.where(high == r, ((g - b) / safe) % 6.0, np.where(high == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0))
    hue = np.where(spread > 0, hue / 6.0, 0.0) % 1.0
    sat = np.where(high > 0, spread / np.where(high > 0, high, 1.0), 0.0)
    return hue, sat, high
