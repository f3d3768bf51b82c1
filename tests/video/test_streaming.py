"""iter_frames on a longer clip: memory stays flat, frames keep coming in order."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc

from duomo.video import iter_frames
from tests.helpers.videos import make_video, read_index


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_iter_frames_memory_is_flat(tmp_path):
    num_frames = 3000  # 100 s at 30 fps; all frames together would be ~28 MB
    path = make_video(tmp_path / "long.mkv", num_frames, 30, size=(64, 48), gop=30)
    tracemalloc.start()
    try:
        count = 0
        for frame in iter_frames(path):
            assert frame.frame_idx == count
            count += 1
            if count == 200:
                tracemalloc.reset_peak()
                rss_early = rss_bytes()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == num_frames
    assert peak < 1_000_000  # Python-side: a few frames' worth, not thousands
    assert rss_bytes() - rss_early < 10_000_000  # decoder side: no growth with length


def test_iter_frames_resized_with_every_and_range(tmp_path):
    path = make_video(tmp_path / "clip.mkv", 300, 30, size=(64, 48), gop=30)
    frames = list(iter_frames(path, every_sec=1.0, start_sec=2.0, end_sec=6.0, short_side=24))
    assert [f.frame_idx for f in frames] == [60, 90, 120, 150]
    assert [read_index(f.image) for f in frames] == [60, 90, 120, 150]
    assert frames[0].image.shape == (24, 32, 3)


def test_video_package_does_not_import_torch():
    code = "import sys, duomo.video; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
