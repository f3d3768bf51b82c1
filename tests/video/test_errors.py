"""Bad input: every public reader raises MediaError naming the file, never a raw traceback."""

from __future__ import annotations

import time

import numpy as np
import pytest

from duomo.errors import MediaError
from duomo.video import (
    decode_audio,
    decode_frames,
    iter_frames,
    probe,
    sample_every,
    sample_keyframes,
    sample_uniform,
    sample_window,
)
from tests.helpers.videos import (
    expected_frames,
    garbled_copy,
    garbled_mp4_payload,
    make_video,
    read_index,
    truncated_copy,
)

from .conftest import NUM_FRAMES, SIZE

READERS = {
    "probe": probe,
    "sample_uniform": lambda p: sample_uniform(p, 4),
    "sample_uniform_fast": lambda p: sample_uniform(p, 4, fast=True),
    "sample_every": lambda p: sample_every(p, seconds=0.5),
    "sample_window": lambda p: sample_window(p, 0.0, 1.0, 2),
    "sample_keyframes": sample_keyframes,
    "decode_frames": lambda p: decode_frames(p, [0]),
    "iter_frames": lambda p: list(iter_frames(p)),
    "decode_audio": decode_audio,
}


def broken_files(root, ffv1_clip, h264_clip):
    (root / "empty.mp4").write_bytes(b"")
    (root / "notes.mp4").write_text("this is a text file, not a video\n" * 20)
    (root / "noise.mkv").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    return {
        "missing": (root / "missing.mp4", "no such file"),
        "empty": (root / "empty.mp4", "empty file"),
        "text": (root / "notes.mp4", "not a media file"),
        "noise": (root / "noise.mkv", "not a media file"),
        "truncated_mp4": (truncated_copy(h264_clip, root / "cut.mp4"), "not a media file"),
        "directory": (root, "not a regular file"),
    }


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("kind", ["missing", "empty", "text", "noise", "truncated_mp4", "directory"])
def test_unreadable_files(tmp_path_factory, ffv1_clip, h264_clip, reader, kind):
    files = broken_files(tmp_path_factory.mktemp(kind), ffv1_clip, h264_clip)
    path, reason = files[kind]
    with pytest.raises(MediaError) as err:
        READERS[reader](path)
    assert str(err.value).startswith(str(path) + ": ")
    assert reason in str(err.value)


@pytest.mark.parametrize("reader", ["sample_uniform", "sample_every", "iter_frames", "sample_keyframes", "probe"])
def test_audio_only_file_has_no_video(audio_only, reader):
    with pytest.raises(MediaError, match="no video stream") as err:
        READERS[reader](audio_only)
    assert str(audio_only) in str(err.value)


def test_video_without_audio(ffv1_clip):
    with pytest.raises(MediaError, match="no audio stream"):
        decode_audio(ffv1_clip)


def test_absurd_dimensions(tmp_path):
    path = make_video(tmp_path / "tall.mkv", 2, 10, size=(8, 17000))
    for reader in ("sample_uniform", "iter_frames"):
        with pytest.raises(MediaError, match="out of range"):
            READERS[reader](path)


@pytest.fixture(scope="module")
def truncated_mkv(ffv1_clip, tmp_path_factory):
    """The 30-frame lossless clip cut at half its bytes: frames 0..13 survive."""
    return truncated_copy(ffv1_clip, tmp_path_factory.mktemp("cut") / "cut.mkv")


def test_truncated_sampling_says_where_it_broke(truncated_mkv):
    with pytest.raises(MediaError, match=r"decoding stopped at 1\.40 s: .*truncated") as err:
        sample_uniform(truncated_mkv, 4)
    assert str(truncated_mkv) in str(err.value)


def test_truncated_readable_part_still_decodes(truncated_mkv):
    clip = sample_window(truncated_mkv, 0.0, 1.0, 5)
    assert clip.frame_idx.tolist() == [1, 3, 5, 7, 9]
    np.testing.assert_array_equal(clip.frames, expected_frames(NUM_FRAMES, SIZE)[[1, 3, 5, 7, 9]])


def test_truncated_iterator_yields_then_raises(truncated_mkv):
    got = []
    with pytest.raises(MediaError, match=r"decoding stopped at 1\.40 s") as err:
        for frame in iter_frames(truncated_mkv):
            got.append(frame)
    assert str(truncated_mkv) in str(err.value)
    assert [f.frame_idx for f in got] == list(range(14))
    np.testing.assert_array_equal(np.stack([f.image for f in got]), expected_frames(14, SIZE))


def test_random_bytes_in_the_middle(ffv1_clip, tmp_path):
    path = garbled_copy(ffv1_clip, tmp_path / "garbled.mkv", start=0.5, num_bytes=2048)
    got = []
    with pytest.raises(MediaError, match="decoding stopped at"):
        for frame in iter_frames(path):
            got.append(frame)
    assert len(got) > 0  # the frames before the damage come out, exactly
    np.testing.assert_array_equal(np.stack([f.image for f in got]), expected_frames(len(got), SIZE))
    with pytest.raises(MediaError, match="decoding stopped at"):
        sample_uniform(path, 8)


def test_corrupt_h264_frame_data(tmp_path):
    """A bad packet mid-stream: iterators stop at it, picks that need it say where it broke."""
    path = make_video(tmp_path / "src.mp4", 60, 10, size=(96, 64), codec="libx264", gop=10)
    broken = garbled_copy(path, tmp_path / "bad.mp4", start=0.3, num_bytes=64)
    got = []
    with pytest.raises(MediaError, match=r"decoding stopped at .*packet at 2\.20 s") as err:
        for frame in iter_frames(broken):
            got.append(frame)
    assert str(broken) in str(err.value)
    assert len(got) >= 10
    assert [f.frame_idx for f in got] == list(range(len(got)))
    assert [read_index(f.image) for f in got] == list(range(len(got)))
    # uniform picks 7, 22, 37, 52: frame 22 (2.2 s) is the broken one
    with pytest.raises(MediaError, match=r"decoding stopped at .*the frame at 2\.20 s cannot be decoded"):
        sample_uniform(broken, 4)
    clip = sample_uniform(broken, 4, fast=True)  # keyframes 0, 20, 40, 50 are intact
    assert [read_index(f) for f in clip.frames] == clip.frame_idx.tolist()


def test_no_decodable_frame_gives_up_quickly(h264_clip, tmp_path):
    path = garbled_mp4_payload(h264_clip, tmp_path / "payload.mp4")
    for reader in ("probe", "sample_uniform", "sample_uniform_fast", "iter_frames", "sample_keyframes"):
        start = time.monotonic()
        with pytest.raises(MediaError) as err:
            READERS[reader](path)
        assert time.monotonic() - start < 5
        assert str(path) in str(err.value)
