"""On-screen text: RapidOCR reads drawn captions exactly, with boxes where they were drawn."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from duomo.errors import DuomoError
from duomo.ocr.reader import TextBox, TextReader, sort_reading_order
from duomo.video import decode_frames
from tests.helpers.talking import CAPTION_FONT, caption_layout, make_talking_video


@pytest.fixture(scope="module")
def reader():
    return TextReader()


def _caption_frame(text: str, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    width, height = size
    frame = np.zeros((height, width, 3), np.uint8)
    frame[..., 0] = np.linspace(30, 160, width, dtype=np.uint8)[None, :]  # a red ramp behind
    frame[..., 2] = 70
    origin, scale, thickness, box = caption_layout(text, size)
    cv2.putText(frame, text, origin, CAPTION_FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return frame, box


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union


def _hull(boxes: list[TextBox]) -> tuple[int, int, int, int]:
    return (min(b.box[0] for b in boxes), min(b.box[1] for b in boxes),
            max(b.box[2] for b in boxes), max(b.box[3] for b in boxes))


@pytest.mark.slow
@pytest.mark.parametrize("size", [(1280, 720), (640, 360)])
@pytest.mark.parametrize("text", ["OPEN THE WINDOW", "Kitchen sale 42"])
def test_reads_a_drawn_caption_exactly_where_it_was_drawn(reader, text, size):
    frame, box = _caption_frame(text, size)
    found = reader.read(frame)
    # the detector may split a line at a wide word gap; the pieces, left to right, are the line
    assert " ".join(b.text for b in found).lower().split() == text.lower().split()
    assert _overlap(_hull(found), box) > 0.6
    assert all(b.score >= 0.5 for b in found)
    assert all(0 <= b.box[0] < b.box[2] <= size[0] and 0 <= b.box[1] < b.box[3] <= size[1] for b in found)


@pytest.mark.slow
def test_blank_frames_give_nothing(reader):
    assert reader.read(np.zeros((360, 640, 3), np.uint8)) == []
    assert reader.read(np.full((720, 1280, 3), 200, np.uint8)) == []


@pytest.mark.slow
def test_lines_come_top_to_bottom(reader):
    frame = np.full((360, 640, 3), 20, np.uint8)
    for y, line in [(300, "BOTTOM LINE"), (80, "TOP LINE"), (190, "MIDDLE LINE")]:
        cv2.putText(frame, line, (60, y), CAPTION_FONT, 1.6, (255, 255, 255), 3, cv2.LINE_AA)
    texts = [b.text.upper() for b in reader.read(frame)]
    assert " ".join(texts).split() == "TOP LINE MIDDLE LINE BOTTOM LINE".split()


@pytest.mark.slow
def test_reads_captions_from_a_decoded_video(tmp_path, reader):
    video = make_talking_video(tmp_path / "captions.mp4", captions=[(0.0, 1.0, "FIRST CAPTION"),
                                                                    (1.0, 2.0, "second caption")],
                               duration_sec=2.0, size=(640, 360), fps=5)
    frames = decode_frames(video.path, [2, 7]).frames  # t = 0.4 s and 1.4 s
    for frame, caption in zip(frames, video.captions):
        found = reader.read(frame)
        assert " ".join(b.text for b in found).lower() == caption.text.lower()
        assert _overlap(_hull(found), caption.box) > 0.6


def test_sort_reading_order_groups_lines():
    def box(x0, y0, x1, y1):
        return TextBox(f"{x0},{y0}", 0.9, (x0, y0, x1, y1))

    right, left = box(300, 12, 400, 42), box(10, 10, 100, 40)  # one line, right piece a bit lower
    below = box(20, 60, 120, 90)
    assert sort_reading_order([below, right, left]) == [left, right, below]
    assert sort_reading_order([]) == []


def test_rejects_frames_that_are_not_rgb_uint8(reader):
    with pytest.raises(ValueError, match="uint8"):
        reader.read(np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        reader.read(np.zeros((32, 32, 3), np.float32))


def test_missing_extra_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)
    with pytest.raises(DuomoError, match=r"pip install duomo\[ocr\]"):
        TextReader()
