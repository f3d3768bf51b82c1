"""Frame sampling: exact frames and timestamps on lossless clips, codecs, seeking, resizing."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from duomo.errors import MediaError
from duomo.video import (
    decode_clip,
    decode_frames,
    iter_frames,
    sample_every,
    sample_keyframes,
    sample_uniform,
    sample_window,
)
from tests.helpers.videos import expected_frames, make_video, read_index

from .conftest import FPS, NUM_FRAMES, SIZE, VFR_PTS

EXPECTED = expected_frames(NUM_FRAMES, SIZE)


def assert_exact(clip, frame_idx):
    """Frames, indices and timestamps are exactly those of the lossless clip's frames."""
    assert clip.frames.dtype == np.uint8 and clip.frames.shape[1:] == (SIZE[1], SIZE[0], 3)
    assert clip.frame_idx.tolist() == list(frame_idx)
    np.testing.assert_array_equal(clip.frames, EXPECTED[list(frame_idx)])
    np.testing.assert_allclose(clip.pts_sec, np.asarray(frame_idx) / FPS, atol=1e-9)
    assert clip.pts_sec.dtype == np.float64 and clip.frame_idx.dtype == np.int64


def test_sample_uniform_exact(ffv1_clip):
    assert_exact(sample_uniform(ffv1_clip, 4), [3, 11, 18, 26])
    assert_exact(sample_uniform(ffv1_clip, NUM_FRAMES), range(NUM_FRAMES))


def test_sample_uniform_more_frames_than_video_repeats(tmp_path):
    path = make_video(tmp_path / "two.mkv", 2, FPS, size=SIZE)
    clip = sample_uniform(path, 4)
    assert clip.frame_idx.tolist() == [0, 0, 1, 1]
    np.testing.assert_array_equal(clip.frames, EXPECTED[[0, 0, 1, 1]])


def test_one_frame_video(tmp_path):
    path = make_video(tmp_path / "one.mkv", 1, FPS, size=SIZE)
    assert_exact(sample_uniform(path, 3), [0, 0, 0])
    assert [f.frame_idx for f in iter_frames(path)] == [0]
    assert_exact(sample_every(path, seconds=0.05), [0, 0])


def test_sample_every_seconds_and_fps(ffv1_clip):
    assert_exact(sample_every(ffv1_clip, seconds=1.0), [0, 10, 20])
    assert_exact(sample_every(ffv1_clip, fps=2), [0, 5, 10, 15, 20, 25])
    assert_exact(sample_every(ffv1_clip, seconds=0.7, start_sec=0.5, end_sec=2.5), [5, 12, 19])


def test_sample_every_needs_one_step(ffv1_clip):
    with pytest.raises(ValueError):
        sample_every(ffv1_clip)
    with pytest.raises(ValueError):
        sample_every(ffv1_clip, seconds=1, fps=1)


def test_sample_window_exact(ffv1_clip):
    assert_exact(sample_window(ffv1_clip, 0.3, 1.0, 3), [4, 6, 8])
    assert_exact(decode_clip(ffv1_clip, num_frames=3, start_sec=0.3, end_sec=1.0), [4, 6, 8])
    assert_exact(decode_clip(ffv1_clip, num_frames=4), [3, 11, 18, 26])


def test_window_past_the_end_is_clipped(ffv1_clip):
    assert_exact(sample_window(ffv1_clip, 2.5, 10.0, 5), [25, 26, 27, 28, 29])
    assert_exact(sample_every(ffv1_clip, seconds=1.0, start_sec=2.0, end_sec=99.0), [20])


def test_window_after_the_end_names_the_duration(ffv1_clip):
    with pytest.raises(MediaError, match=r"past the end of the video \(3.00 s\)") as err:
        sample_window(ffv1_clip, 3.0, 4.0, 2)
    assert str(ffv1_clip) in str(err.value)
    with pytest.raises(MediaError, match="3.00 s"):
        sample_every(ffv1_clip, seconds=1.0, start_sec=5.0)


def test_bad_window_arguments(ffv1_clip):
    with pytest.raises(ValueError):
        sample_window(ffv1_clip, 1.0, 0.5, 2)
    with pytest.raises(ValueError):
        sample_window(ffv1_clip, -1.0, 0.5, 2)
    with pytest.raises(ValueError):
        sample_uniform(ffv1_clip, 0)


def test_decode_frames_any_order_with_repeats(ffv1_clip):
    assert_exact(decode_frames(ffv1_clip, [29, 0, 15, 15, 9, 10]), [29, 0, 15, 15, 9, 10])


def test_decode_frames_past_the_last_frame(ffv1_clip):
    with pytest.raises(MediaError, match="frame 30 requested but the video has 30 frames"):
        decode_frames(ffv1_clip, [0, 30])


def test_resize_exact_size(ffv1_clip):
    clip = sample_uniform(ffv1_clip, 3, size=(32, 24))
    assert clip.frames.shape == (3, 24, 32, 3)
    # halving each side averages 2x2 blocks (area filter)
    blocks = EXPECTED[clip.frame_idx].reshape(3, 24, 2, 32, 2, 3).mean(axis=(2, 4))
    assert np.abs(clip.frames - blocks).max() <= 0.5
    assert sample_uniform(ffv1_clip, 1, size=(50, 10)).frames.shape == (1, 10, 50, 3)


def test_resize_short_side_keeps_aspect(ffv1_clip):
    clip = sample_every(ffv1_clip, seconds=1.0, short_side=24)
    assert clip.frames.shape == (3, 24, 32, 3)
    assert [read_index(f) for f in clip.frames] == [0, 10, 20]


def test_rotation_applied_to_frames(rotated_clip):
    clip = sample_uniform(rotated_clip, 12)
    stored = expected_frames(12, SIZE, pattern="square")
    # the display matrix turns the picture 90 degrees counter-clockwise, like np.rot90
    np.testing.assert_array_equal(clip.frames, np.rot90(stored, 1, axes=(1, 2)))
    resized = sample_uniform(rotated_clip, 2, size=(24, 32))
    assert resized.frames.shape == (2, 32, 24, 3)
    first = next(iter_frames(rotated_clip))
    np.testing.assert_array_equal(first.image, np.rot90(stored[0]))


def test_fast_mode_returns_nearest_keyframes_with_true_pts(ffv1_clip):
    # exact picks 3, 11, 18, 26; keyframes are 0, 10, 20
    clip = sample_uniform(ffv1_clip, 4, fast=True)
    assert_exact(clip, [0, 10, 20, 20])
    # picks 8 and 16 of frames 5..19; the keyframe nearest 16 is 20, outside the window
    assert_exact(sample_window(ffv1_clip, 0.5, 2.0, 2, fast=True), [10, 20])


def test_fast_mode_on_h264(h264_clip):
    clip = sample_uniform(h264_clip, 4, fast=True)
    assert clip.frame_idx.tolist() == [0, 10, 20, 30]
    np.testing.assert_allclose(clip.pts_sec, [0.0, 0.4, 0.8, 1.2])
    assert [read_index(f) for f in clip.frames] == [0, 10, 20, 30]


def test_sample_keyframes(ffv1_clip):
    assert_exact(sample_keyframes(ffv1_clip), [0, 10, 20])
    assert_exact(sample_keyframes(ffv1_clip, max_frames=2), [0, 20])


def test_variable_frame_rate_timestamps(vfr_clip):
    clip = sample_uniform(vfr_clip, 8)
    np.testing.assert_allclose(clip.pts_sec, VFR_PTS)
    assert clip.frame_idx.tolist() == list(range(8))
    np.testing.assert_array_equal(clip.frames, expected_frames(8, SIZE))
    # on screen at 0.0, 0.3, 0.6, 0.9: frames at 0.0, 0.15, 0.55, 0.55
    assert sample_every(vfr_clip, seconds=0.3, end_sec=1.0).frame_idx.tolist() == [0, 2, 5, 5]
    assert [f.frame_idx for f in iter_frames(vfr_clip, every_sec=0.3, end_sec=1.0)] == [0, 2, 5, 5]


CODECS = [
    ("h264.mp4", "libx264"),
    ("hevc.mp4", "libx265"),
    ("vp9.webm", "libvpx-vp9"),
    ("av1.mp4", "libsvtav1"),
    ("h264.mov", "libx264"),
    ("mpeg4.avi", "mpeg4"),
]


@pytest.mark.parametrize(("name", "codec"), CODECS)
def test_lossy_codecs_seek_matches_sequential(media_dir, name, codec):
    """Seeking to the keyframe before each pick gives the same frames as decoding everything."""
    path = make_video(media_dir / f"seek_{name}", 36, 12, size=(96, 64), codec=codec, gop=8)
    sequential = list(iter_frames(path))
    assert [read_index(f.image) for f in sequential] == list(range(36))
    assert [f.frame_idx for f in sequential] == list(range(36))
    picks = [35, 2, 17, 9, 8, 30, 31]
    clip = decode_frames(path, picks)
    assert clip.frame_idx.tolist() == picks
    np.testing.assert_allclose(clip.pts_sec, np.array(picks) / 12, atol=5e-4)  # webm keeps ms
    for image, idx in zip(clip.frames, picks):
        np.testing.assert_array_equal(image, sequential[idx].image)
    # streaming from a seek point counts frame indices from the packets before it
    late = list(iter_frames(path, start_sec=1.0))
    assert [f.frame_idx for f in late] == list(range(12, 36))
    for frame in late:
        np.testing.assert_array_equal(frame.image, sequential[frame.frame_idx].image)


def test_iter_frames_every_frame_exact(ffv1_clip):
    frames = list(iter_frames(ffv1_clip))
    assert [f.frame_idx for f in frames] == list(range(NUM_FRAMES))
    np.testing.assert_array_equal(np.stack([f.image for f in frames]), EXPECTED)
    np.testing.assert_allclose([f.pts_sec for f in frames], np.arange(NUM_FRAMES) / FPS)


def test_iter_frames_range_and_every(ffv1_clip):
    frames = list(iter_frames(ffv1_clip, start_sec=1.45, end_sec=2.2))
    assert [f.frame_idx for f in frames] == list(range(15, 22))
    np.testing.assert_array_equal(np.stack([f.image for f in frames]), EXPECTED[15:22])
    every = list(iter_frames(ffv1_clip, every_sec=0.7, start_sec=0.5, end_sec=2.5, size=(32, 24)))
    assert [f.frame_idx for f in every] == [5, 12, 19]
    assert every[0].image.shape == (24, 32, 3)
    # the same picks as sample_every, over the whole clip
    assert [f.frame_idx for f in iter_frames(ffv1_clip, every_sec=0.35)] == sample_every(
        ffv1_clip, seconds=0.35
    ).frame_idx.tolist()


def test_iter_frames_start_past_the_end(ffv1_clip):
    with pytest.raises(MediaError, match="past the end"):
        list(iter_frames(ffv1_clip, start_sec=4.0))


def test_h264_exact_sampling_reads_the_right_frames(h264_clip):
    clip = sample_every(h264_clip, fps=5)  # every 5th frame of 40 at 25 fps
    assert clip.frame_idx.tolist() == list(range(0, 40, 5))
    assert [read_index(f) for f in clip.frames] == list(range(0, 40, 5))


@pytest.fixture
def unscanned(monkeypatch):
    """Treat every file as too big to scan: frame times come from duration and rate."""
    # `duomo.video.probe` the attribute is the function; patch the module itself
    monkeypatch.setattr(sys.modules["duomo.video.probe"], "SCAN_MAX_BYTES", 0)


def test_unscanned_files_still_sample_exactly(unscanned, ffv1_clip, h264_clip):
    from duomo.video import probe

    info = probe(ffv1_clip)
    assert (info.num_frames, info.is_num_frames_exact, info.keyframe_interval_sec) == (30, False, None)
    assert_exact(sample_uniform(ffv1_clip, 4), [3, 11, 18, 26])
    assert_exact(sample_every(ffv1_clip, seconds=0.5), [0, 5, 10, 15, 20, 25])
    assert_exact(decode_frames(ffv1_clip, [5, 1, 20]), [5, 1, 20])
    clip = sample_window(h264_clip, 0.3, 1.0, 3)
    assert clip.frame_idx.tolist() == [10, 16, 22]
    assert [read_index(f) for f in clip.frames] == [10, 16, 22]
    # no keyframe list: fast mode gives the keyframe at or before each pick
    fast = sample_uniform(h264_clip, 4, fast=True)
    assert fast.frame_idx.tolist() == [0, 10, 20, 30]
    with pytest.raises(MediaError, match="pass max_frames"):
        sample_keyframes(h264_clip)
    assert sample_keyframes(h264_clip, max_frames=2).frame_idx.tolist() == [10, 30]  # at or before 10, 30


@pytest.mark.parametrize(("name", "codec"), [("late.mkv", "ffv1"), ("late.mp4", "libx264")])
def test_stream_starting_late_is_timed_from_the_container_start(tmp_path, name, codec):
    """A first frame stamped 1.0 s is time 0 on our timeline; it is not mistaken for damage."""
    path = make_video(tmp_path / name, 10, FPS, size=(96, 64), codec=codec, pts_sec=[1.0 + i / 10 for i in range(10)])
    from duomo.video import probe

    info = probe(path)
    assert info.damage is None and info.duration_sec == pytest.approx(1.0)
    clip = sample_uniform(path, 3)
    assert clip.frame_idx.tolist() == [1, 5, 8]
    np.testing.assert_allclose(clip.pts_sec, [0.1, 0.5, 0.8])
    assert [f.pts_sec for f in iter_frames(path, every_sec=0.4)] == [0.0, 0.4, 0.8]


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_every_rotation_matches_ffmpeg_autorotate(tmp_path, rotation):
    import shutil
    import subprocess

    path = make_video(tmp_path / f"rot{rotation}.mkv", 3, FPS, size=SIZE, pattern="square", rotation=rotation)
    clip = decode_frames(path, [0, 2])
    stored = expected_frames(3, SIZE, pattern="square")[[0, 2]]
    np.testing.assert_array_equal(clip.frames, np.rot90(stored, rotation // 90, axes=(1, 2)))
    if shutil.which("ffmpeg") is None:
        return  # the cross-check below needs the CLI; the library never does
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout
    np.testing.assert_array_equal(np.frombuffer(raw, np.uint8).reshape(clip.frames.shape[1:]), clip.frames[0])


def test_frame_views_convert_on_demand_at_each_size(tmp_path):
    from duomo.video import iter_frame_views

    path = make_video(tmp_path / "v.mkv", 6, 10.0, size=(64, 48))
    views = []
    for view in iter_frame_views(path):
        full, small = view.rgb(), view.rgb(size=(32, 24))
        views.append((view.frame_idx, view.pts_sec, full.shape, small.shape, view.width, view.height))
        np.testing.assert_array_equal(full, expected_frames(6, (64, 48))[view.frame_idx])
    assert views == [(i, pytest.approx(i / 10), (48, 64, 3), (24, 32, 3), 64, 48) for i in range(6)]


def test_frame_views_without_loop_filter_are_close_to_the_filtered_ones(tmp_path):
    from duomo.video import iter_frame_views

    from duomo.video import write_video

    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    frames = [np.roll(texture, 3 * i, axis=1) for i in range(20)]  # detail that moves: blocks to smooth
    path = write_video(tmp_path / "v.mp4", frames, 10.0, codec="libx264", crf=35)
    filtered = [v.rgb().astype(int) for v in iter_frame_views(path)]
    unfiltered = [v.rgb().astype(int) for v in iter_frame_views(path, skip_loop_filter=True)]
    assert len(unfiltered) == len(filtered) == 20
    assert max(np.abs(a - b).mean() for a, b in zip(filtered, unfiltered)) < 8.0
    assert any((a != b).any() for a, b in zip(filtered, unfiltered))  # the filter really was skipped
