"""Generated clips shared by the video tests: written once per session, all tiny."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.videos import make_audio, make_video, tone

FPS = 10
NUM_FRAMES = 30
SIZE = (64, 48)
GOP = 10


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def ffv1_clip(media_dir) -> Path:
    """30 "index" frames at 10 fps, 64x48, lossless, keyframes every 10 frames (0, 1, 2 s)."""
    return make_video(media_dir / "index.mkv", NUM_FRAMES, FPS, size=SIZE, gop=GOP)


@pytest.fixture(scope="session")
def h264_clip(media_dir) -> Path:
    """40 "index" frames at 25 fps, 96x64, H.264 with B-frames, keyframes every 10 frames."""
    return make_video(media_dir / "index_h264.mp4", 40, 25, size=(96, 64), codec="libx264", gop=10)


@pytest.fixture(scope="session")
def vfr_clip(media_dir) -> Path:
    """Variable frame rate: 8 lossless frames at irregular times."""
    return make_video(media_dir / "vfr.mkv", len(VFR_PTS), 10, size=SIZE, pts_sec=VFR_PTS, gop=4)


VFR_PTS = [0.0, 0.1, 0.15, 0.4, 0.5, 0.55, 1.0, 1.2]


@pytest.fixture(scope="session")
def rotated_clip(media_dir) -> Path:
    """The ffv1 clip stored with a 90 degree display rotation (pixels unturned)."""
    return make_video(media_dir / "rotated.mkv", 12, FPS, size=SIZE, pattern="square", gop=GOP, rotation=90)


@pytest.fixture(scope="session")
def av_clip(media_dir) -> Path:
    """H.264 + AAC mp4: 20 frames at 10 fps with a 2 s 440 Hz tone."""
    return make_video(
        media_dir / "with_audio.mp4", 20, FPS, size=(96, 64), codec="libx264", audio=tone(440, 2.0, 16000),
        sample_rate=16000,
    )


@pytest.fixture(scope="session")
def audio_only(media_dir) -> Path:
    """1 s 440 Hz tone, 16 kHz PCM wav."""
    return make_audio(media_dir / "tone.wav", 440.0, 1.0, 16000)
