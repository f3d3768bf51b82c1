"""On-screen text: RapidOCR (PP-OCRv4 detection + recognition on onnxruntime) per frame.

The models ship inside the ``rapidocr-onnxruntime`` wheel, so nothing is downloaded at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging

import numpy as np

from duomo.errors import DuomoError

logger = logging.getLogger(__name__)

LINE_TOLERANCE = 0.5
"""Boxes whose vertical centres differ by less than this share of the taller box's height
count as one line when sorting (then left to right)."""


@dataclass(frozen=True)
class TextBox:
    """One line of text found in a frame; ``box`` is (x0, y0, x1, y1) in pixels, x1/y1
    exclusive, the axis-aligned hull of the detected quadrilateral, clipped to the frame."""

    text: str
    score: float
    box: tuple[int, int, int, int]


class TextReader:
    """Loads the OCR models once; ``read`` finds the text lines in one RGB frame.

    Args:
        min_score: recognition confidence below which a line is dropped.
        num_threads: onnxruntime threads per model (intra-op and inter-op).
        detect_side: the text detector sees the frame scaled down so its longer side is at
            most this many pixels (never scaled up). RapidOCR's own default scales the shorter
            side up to 736 px, which costs 360p frames 2.5x the time and on generated captions
            read no better (it ran small words together).
    """

    def __init__(self, *, min_score: float = 0.5, num_threads: int = 1, detect_side: int = 960):
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError:
            raise DuomoError("on-screen text needs rapidocr-onnxruntime: pip install duomo[ocr]") from None
        self.min_score = min_score
        self._engine = RapidOCR(
            text_score=min_score,
            intra_op_num_threads=num_threads,
            inter_op_num_threads=num_threads,
            det_limit_type="max",
            det_limit_side_len=detect_side,
        )

    def read(self, frame: np.ndarray) -> list[TextBox]:
        """Text lines in ``frame``, uint8 (H, W, 3) RGB, sorted top to bottom and, within a
        line, left to right. A frame without text gives ``[]``."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame must be uint8 (H, W, 3) RGB, got {frame.dtype} {frame.shape}")
        height, width = frame.shape[:2]
        # RapidOCR takes arrays as OpenCV's BGR
        result, _ = self._engine(np.ascontiguousarray(frame[..., ::-1]))
        boxes = []
        for quad, text, score in result or ():
            if float(score) < self.min_score or not text.strip():
                continue
            points = np.asarray(quad, dtype=np.float64)  # (4, 2) corners, x then y
            x0, y0 = np.floor(points.min(axis=0)).astype(int)
            x1, y1 = np.ceil(points.max(axis=0)).astype(int)
            box = (max(0, int(x0)), max(0, int(y0)), min(width, int(x1)), min(height, int(y1)))
            boxes.append(TextBox(text.strip(), float(score), box))
        return sort_reading_order(boxes)


def sort_reading_order(boxes: list[TextBox]) -> list[TextBox]:
    """Boxes top to bottom, and left to right among boxes on the same line (vertical centres
    within ``LINE_TOLERANCE`` of a box height of the line's first box)."""
    lines: list[list[TextBox]] = []
    for box in sorted(boxes, key=lambda b: (b.box[1] + b.box[3]) / 2):
        centre = (box.box[1] + box.box[3]) / 2
        if lines:
            first = lines[-1][0]
            first_centre = (first.box[1] + first.box[3]) / 2
            height = max(first.box[3] - first.box[1], box.box[3] - box.box[1])
            if abs(centre - first_centre) < LINE_TOLERANCE * height:
                lines[-1].append(box)
                continue
        lines.append([box])
    return [box for line in lines for box in sorted(line, key=lambda b: b.box[0])]
