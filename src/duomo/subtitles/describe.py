"""Audio description: cues that say what happens on screen where nobody speaks, captioned by
a trained caption run from the frames (and sound) of each long enough gap."""

from __future__ import annotations

from collections.abc import Sequence
import logging
import math
from pathlib import Path
from typing import Protocol

from duomo.subtitles.cues import Cue, split_lines

logger = logging.getLogger(__name__)


class SpanCaptioner(Protocol):
    """What describing needs of a model: ``duomo.load(caption_run)`` is one."""

    def caption_span(self, video: str | Path, start_sec: float, end_sec: float) -> str: ...


def find_gaps(cues: Sequence[Cue], duration_sec: float, *, min_gap_sec: float = 3.0,
              max_sec: float = 7.0) -> list[tuple[float, float]]:
    """(start_sec, end_sec) stretches of ``[0, duration_sec)`` that no cue covers and that last
    at least ``min_gap_sec``, each cut into equal pieces of at most ``max_sec``."""
    spans = []
    previous_end = 0.0
    for cue in sorted(cues, key=lambda c: c.start_sec) + [Cue(duration_sec, duration_sec, "")]:
        start, end = previous_end, min(cue.start_sec, duration_sec)
        if end - start >= min_gap_sec:
            num_pieces = math.ceil((end - start) / max_sec - 1e-9)
            step = (end - start) / num_pieces
            spans += [(round(start + i * step, 3), round(start + (i + 1) * step, 3)) for i in range(num_pieces)]
        previous_end = max(previous_end, cue.end_sec)
    return spans


def describe_gaps(video: str | Path, cues: Sequence[Cue], captioner: SpanCaptioner, duration_sec: float, *,
                  min_gap_sec: float = 3.0, max_sec: float = 7.0, max_chars: int = 42,
                  max_lines: int = 2) -> list[Cue]:
    """Description cues for the gaps of ``find_gaps``: each gap's caption in square brackets,
    ``"[a red circle moves left]"``, broken into at most ``max_lines`` lines of ``max_chars``
    (words that do not fit are cut, ending with "…"). Empty captions give no cue. Returns the
    description cues only, in time order; merge them with ``cues`` for a full track."""
    out = []
    for start, end in find_gaps(cues, duration_sec, min_gap_sec=min_gap_sec, max_sec=max_sec):
        caption = " ".join(captioner.caption_span(video, start, end).split())
        if not caption:
            continue
        words = caption.split()
        text = f"[{caption}]"
        while split_lines(text, max_chars, max_lines) is None and len(words) > 1:
            words = words[:-1]
            text = f"[{' '.join(words)}…]"
        lines = split_lines(text, max_chars, max_lines) or [text[: max_chars - 2] + "…]"]
        out.append(Cue(start, end, "\n".join(lines)))
        logger.debug("described %.2f-%.2f s as %r", start, end, caption)
    return out
