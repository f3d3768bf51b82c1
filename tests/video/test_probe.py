"""probe(): sizes, rates, counts, codecs, rotation, audio streams, damage."""

from __future__ import annotations

import json

import pytest

from duomo.errors import MediaError
from duomo.video import VideoInfo, probe
from tests.helpers.videos import make_video, truncated_copy

from .conftest import FPS, NUM_FRAMES, SIZE


def test_probe_lossless_clip(ffv1_clip):
    info = probe(ffv1_clip)
    assert isinstance(info, VideoInfo)
    assert (info.width, info.height, info.rotation) == (*SIZE, 0)
    assert info.codec == "ffv1"
    assert "matroska" in info.container_format
    assert info.fps == pytest.approx(FPS)
    assert info.duration_sec == pytest.approx(NUM_FRAMES / FPS)
    assert (info.num_frames, info.is_num_frames_exact) == (NUM_FRAMES, True)
    assert info.is_variable_fps is False
    assert info.keyframe_interval_sec == pytest.approx(1.0)
    assert info.audio == ()
    assert info.damage is None


def test_to_dict_is_json_ready(av_clip):
    data = probe(av_clip).to_dict()
    text = json.dumps(data)
    assert json.loads(text)["audio"][0]["codec"] == "aac"
    assert data["width"] == 96


def test_probe_variable_frame_rate(vfr_clip):
    info = probe(vfr_clip)
    assert info.is_variable_fps is True
    assert (info.num_frames, info.is_num_frames_exact) == (8, True)
    # average rate: 7 gaps over 1.2 s
    assert info.fps == pytest.approx(7 / 1.2)


def test_probe_reports_size_after_rotation(rotated_clip):
    info = probe(rotated_clip)
    assert info.rotation == 90
    assert (info.width, info.height) == (SIZE[1], SIZE[0])


def test_probe_audio_streams(av_clip):
    info = probe(av_clip)
    assert info.codec == "h264"
    assert len(info.audio) == 1
    audio = info.audio[0]
    assert (audio.codec, audio.sample_rate, audio.channels) == ("aac", 16000, 1)
    assert audio.duration_sec == pytest.approx(2.0, abs=0.15)


@pytest.mark.parametrize(
    ("name", "codec", "expected"),
    [
        ("h264.mp4", "libx264", "h264"),
        ("hevc.mp4", "libx265", "hevc"),
        ("vp9.webm", "libvpx-vp9", "vp9"),
        ("av1.mp4", "libsvtav1", "av1"),
        ("h264.mov", "libx264", "h264"),
        ("mpeg4.avi", "mpeg4", "mpeg4"),
    ],
)
def test_probe_codecs(media_dir, name, codec, expected):
    path = make_video(media_dir / f"probe_{name}", 20, 10, size=(96, 64), codec=codec, gop=10)
    info = probe(path)
    assert info.codec == expected
    assert (info.num_frames, info.is_num_frames_exact) == (20, True)
    assert info.duration_sec == pytest.approx(2.0)
    assert (info.width, info.height) == (96, 64)


def test_probe_keyframe_interval_from_packets(h264_clip):
    assert probe(h264_clip).keyframe_interval_sec == pytest.approx(0.4)


def test_probe_truncated_file_reports_damage(ffv1_clip, tmp_path):
    info = probe(truncated_copy(ffv1_clip, tmp_path / "cut.mkv"))
    assert info.damage is not None and "truncated" in info.damage
    assert info.duration_sec == pytest.approx(3.0)  # the header's word
    assert info.is_num_frames_exact is False


def test_probe_audio_only_file_is_not_a_video(audio_only):
    with pytest.raises(MediaError, match="no video stream") as err:
        probe(audio_only)
    assert str(audio_only) in str(err.value)


def test_probe_absurd_dimensions(tmp_path):
    path = make_video(tmp_path / "wide.mkv", 2, 10, size=(20000, 8))
    with pytest.raises(MediaError, match="20000x8 is out of range"):
        probe(path)
