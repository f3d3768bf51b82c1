"""partial_file: the target appears complete at the end of the block, or not at all."""

from __future__ import annotations

import os

import pytest

from duomo.subtitles.partial import partial_file


def test_the_file_appears_only_when_the_block_ends(tmp_path):
    out = tmp_path / "deep" / "out.mp4"
    with partial_file(out) as tmp:
        assert tmp.parent == out.parent and tmp.suffix == ".mp4" and tmp != out
        tmp.write_bytes(b"data")
        assert not out.exists()
    assert out.read_bytes() == b"data" and list(out.parent.iterdir()) == [out]
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_a_failure_leaves_the_old_file_and_no_temporary(tmp_path, error):
    out = tmp_path / "out.srt"
    out.write_text("old")
    with pytest.raises(type(error)):
        with partial_file(out) as tmp:
            tmp.write_text("half of the new")
            raise error
    assert out.read_text() == "old" and list(tmp_path.iterdir()) == [out]
