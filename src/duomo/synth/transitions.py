"""Join shots with known transitions (cuts, fades through black, cross-dissolves) for shot-detection ground truth.

The frame where each new shot starts is defined here, and ``duomo.video.shots`` follows the same
rules: a cut's first frame of the new shot, a fade's first frame after black, a dissolve's first
frame that is at least half the new shot.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TRANSITIONS = ("cut", "fade", "dissolve")


def join_shots(shots: Sequence[np.ndarray], transitions: Sequence[tuple[str, int]]) -> tuple[np.ndarray, list[int]]:
    """Join shots, each uint8 (T_i, H, W, 3), into one clip; returns it and where each shot after the first starts.

    ``transitions[i] = (kind, num_frames)`` joins shot i to shot i + 1:

    - ``("cut", 0)``: shot i + 1 follows directly; it starts on its first frame.
    - ``("fade", n)``: the last n frames of shot i darken to black (weights (n-1)/n, ..., 1/n, 0:
      the last one is black), then the first n frames of shot i + 1 brighten (1/n, ..., n/n);
      it starts on its first frame, the first after black.
    - ``("dissolve", n)``: the last n frames of shot i and the first n of shot i + 1 overlap,
      overlap frame k being (1 - a) * old + a * new with a = (k + 1) / (n + 1); the new shot
      starts on the first overlap frame with a >= 0.5.

    Returns frames (T, H, W, 3) uint8 and the start frame of every shot after the first (len(shots) - 1,).
    """
    if len(transitions) != len(shots) - 1:
        raise ValueError(f"{len(shots)} shots need {len(shots) - 1} transitions, got {len(transitions)}")
    clip = np.asarray(shots[0], np.float32)
    starts: list[int] = []
    for shot, (kind, n) in zip(shots[1:], transitions):
        shot = np.asarray(shot, np.float32)
        if kind not in TRANSITIONS:
            raise ValueError(f"transition kind must be one of {', '.join(TRANSITIONS)}, got {kind!r}")
        if kind == "cut":
            starts.append(len(clip))
            clip = np.concatenate([clip, shot])
            continue
        if n < 1 or n > min(len(clip), len(shot)):
            raise ValueError(f"a {kind} of {n} frames needs shots at least that long")
        if kind == "fade":
            clip = clip.copy()
            clip[-n:] *= (1.0 - np.arange(1, n + 1) / n)[:, None, None, None]
            shot = shot.copy()
            shot[:n] *= (np.arange(1, n + 1) / n)[:, None, None, None]
            starts.append(len(clip))
            clip = np.concatenate([clip, shot])
        else:
            alphas = (np.arange(1, n + 1) / (n + 1))[:, None, None, None]
            overlap = (1.0 - alphas) * clip[-n:] + alphas * shot[:n]
            starts.append(len(clip) - n + int(np.argmax(alphas.ravel() >= 0.5)))
            clip = np.concatenate([clip[:-n], overlap, shot[n:]])
    return np.clip(np.rint(clip), 0, 255).astype(np.uint8), starts
