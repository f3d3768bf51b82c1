"""Highlight reels: packets copied when every span starts on a keyframe, re-encoded otherwise;
the right frames, in order, with sound."""

from __future__ import annotations

import numpy as np
import pytest

from duomo.errors import MediaError
from duomo.summarize.reel import keyframe_times, write_reel
from duomo.video.audio import decode_audio
from duomo.video.decode import iter_frames
from duomo.video.probe import probe
from tests.helpers.videos import make_video, read_index, tone


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """3 s at 10 fps, frame i shows the number i, a keyframe every 5 frames, a 440 Hz tone."""
    path = tmp_path_factory.mktemp("reel") / "clip.mp4"
    return make_video(path, 30, 10, size=(64, 48), codec="libx264", crf=0, gop=5,
                      audio=tone(440, 3.0, 16000), sample_rate=16000)


def _indices(path) -> list[int]:
    return [read_index(frame.image) for frame in iter_frames(path)]


def test_keyframes_are_read_from_the_packets(clip):
    assert keyframe_times(clip).tolist() == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])


def test_spans_on_keyframes_are_copied(clip, tmp_path):
    reel = write_reel(clip, [(0.5, 1.0), (2.0, 2.5)], tmp_path / "reel.mp4")
    assert reel.copied and reel.duration_sec == pytest.approx(1.0)
    assert _indices(reel.path) == [5, 6, 7, 8, 9, 20, 21, 22, 23, 24]
    info = probe(reel.path)
    assert info.duration_sec == pytest.approx(1.0, abs=0.05) and info.audio
    assert np.abs(decode_audio(reel.path, 16000)).max() > 0.3


def test_spans_off_keyframes_are_re_encoded_frame_exact(clip, tmp_path):
    reel = write_reel(clip, [(0.3, 0.8), (1.2, 1.4)], tmp_path / "reel.mp4")
    assert not reel.copied and reel.duration_sec == pytest.approx(0.7)
    assert _indices(reel.path) == [3, 4, 5, 6, 7, 12, 13]
    sound = decode_audio(reel.path, 16000)
    assert len(sound) == pytest.approx(0.7 * 16000, abs=1100) and np.abs(sound).max() > 0.3


def test_no_span_is_an_error(clip, tmp_path):
    with pytest.raises(MediaError, match="no span"):
        write_reel(clip, [], tmp_path / "reel.mp4")
