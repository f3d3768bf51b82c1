"""Draw a SynthWorld scene: RGB frames with numpy, and a soundtrack of beeps.

Both read ``object_state`` and ``scene_sounds`` from the scene, the same functions the
annotations are computed from, so pixels and audio match the manifest exactly.
"""

from __future__ import annotations

import math

import numpy as np

from duomo.synth.scene import BACKGROUNDS, SceneSpec, object_state, scene_sounds, shape_vertices

SUPERSAMPLE = 2
"""Samples per pixel side: light anti-aliasing, edges stay sharp enough for H.264 at 64 px."""
TONE_SEC = 0.25
TONE_AMPLITUDE = 0.4
FADE_SEC = 0.01  # ramps at both ends of a beep, so it starts and stops without a click


def render_frames(scene: SceneSpec) -> np.ndarray:
    """All frames of the video: uint8 (T, H, W, 3), objects drawn in index order over the background."""
    size = scene.size
    frames = np.empty((scene.num_frames, size, size, 3), np.uint8)
    for frame_idx in range(scene.num_frames):
        shot_idx = scene.shot_at(frame_idx)
        canvas = np.empty((size, size, 3), np.float32)
        canvas[:] = BACKGROUNDS[scene.shots[shot_idx].background]
        time_sec = frame_idx / scene.fps
        for obj in scene.objects:
            if obj.shot_idx != shot_idx:
                continue
            state = object_state(obj, time_sec)
            if state.alpha <= 0:
                continue
            _draw(canvas, obj.shape, state.x, state.y, state.radius, state.angle, state.rgb, state.alpha)
        frames[frame_idx] = np.clip(np.rint(canvas), 0, 255)
    return frames


def _draw(canvas: np.ndarray, shape: str, x: float, y: float, radius: float, angle: float,
          rgb: tuple[float, ...], alpha: float) -> None:
    """Blend one shape into ``canvas`` (H, W, 3) float, in place; coordinates are frame fractions."""
    size = canvas.shape[0]
    # only the pixels under the shape's bounding circle are touched
    x0, x1 = max(0, math.floor((x - radius) * size)), min(size, math.ceil((x + radius) * size))
    y0, y1 = max(0, math.floor((y - radius) * size)), min(size, math.ceil((y + radius) * size))
    if x0 >= x1 or y0 >= y1:
        return
    step = 1.0 / (size * SUPERSAMPLE)
    xs = (np.arange(x0 * SUPERSAMPLE, x1 * SUPERSAMPLE) + 0.5) * step - x  # sample offsets from the centre
    ys = (np.arange(y0 * SUPERSAMPLE, y1 * SUPERSAMPLE) + 0.5) * step - y
    px, py = np.meshgrid(xs, ys)  # (h*S, w*S)
    if shape == "circle":
        inside = px * px + py * py <= radius * radius
    else:
        inside = _inside_polygon(px, py, shape_vertices(shape, radius, angle))
    h, w = y1 - y0, x1 - x0
    coverage = inside.reshape(h, SUPERSAMPLE, w, SUPERSAMPLE).mean(axis=(1, 3), dtype=np.float32) * alpha
    region = canvas[y0:y1, x0:x1]
    region += (np.asarray(rgb, np.float32) - region) * coverage[..., None]


def _inside_polygon(px: np.ndarray, py: np.ndarray, vertices: list[tuple[float, float]]) -> np.ndarray:
    """Even-odd point-in-polygon test for every sample point (works for the concave star)."""
    inside = np.zeros(px.shape, bool)
    for (ax, ay), (bx, by) in zip(vertices, vertices[1:] + vertices[:1]):
        if ay == by:
            continue
        crosses = (ay > py) != (by > py)
        inside ^= crosses & (px < ax + (py - ay) * (bx - ax) / (by - ay))
    return inside


def render_audio(scene: SceneSpec, sample_rate: int) -> np.ndarray:
    """The soundtrack: float32 mono in [-1, 1], silent except a short tone at every beep.

    Each tone lasts TONE_SEC from the beep's frame time, at the beeping object's shape pitch.
    """
    audio = np.zeros(round(scene.duration_sec * sample_rate), np.float32)
    length = round(TONE_SEC * sample_rate)
    t = np.arange(length) / sample_rate
    ramp = np.minimum(1.0, np.minimum(t, TONE_SEC - t) / FADE_SEC)
    for sound in scene_sounds(scene):
        start = round(sound.time_sec * sample_rate)
        tone = (TONE_AMPLITUDE * ramp * np.sin(2 * np.pi * sound.pitch_hz * t)).astype(np.float32)
        stop = min(len(audio), start + length)
        audio[start:stop] += tone[: stop - start]
    return np.clip(audio, -1.0, 1.0)
