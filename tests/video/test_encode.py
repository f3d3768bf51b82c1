"""write_video: keyframe interval and the caller's own encoder parameters both apply."""

from __future__ import annotations

import av

from tests.helpers.videos import make_video


def keyframe_indices(path) -> list[int]:
    with av.open(str(path)) as container:
        return [i for i, packet in enumerate(p for p in container.demux(video=0) if p.size) if packet.is_keyframe]


def test_gop_and_caller_x264_params_are_merged(tmp_path):
    path = make_video(tmp_path / "gop.mp4", 20, 10, codec="libx264", gop=5,
                      options={"x264-params": "mbtree=0", "threads": "1"})
    assert keyframe_indices(path) == [0, 5, 10, 15]

