"""Subtitle cues and how they are cut from word timestamps: at sentence ends and pauses, at
most ``max_lines`` lines of ``max_chars`` characters and ``max_sec`` seconds, at least
``min_sec`` seconds on screen."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
import math

from duomo.speech.asr import SpeechSegment, Word

SENTENCE_ENDS = (".", "!", "?", "…", '."', '?"', '!"')


@dataclass(frozen=True)
class Cue:
    """Text shown from ``start_sec`` to ``end_sec``; lines are separated by ``"\\n"``.

    Times are rounded to the millisecond (what SRT and WebVTT store), so a cue written and
    parsed back compares equal. A description of what is on screen (not speech) is written in
    square brackets, ``"[a red circle moves left]"``.
    """

    start_sec: float
    end_sec: float
    text: str

    def __post_init__(self):
        object.__setattr__(self, "start_sec", round(float(self.start_sec), 3))
        object.__setattr__(self, "end_sec", round(float(self.end_sec), 3))

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    @property
    def spoken_text(self) -> str:
        """The lines joined by spaces (what a voice reads)."""
        return " ".join(self.text.split())

    @property
    def is_description(self) -> bool:
        """True for an audio-description cue: its whole text is in square brackets."""
        text = self.text.strip()
        return text.startswith("[") and text.endswith("]")

    @property
    def duration_sec(self) -> float:
        return self.end_sec - self.start_sec


def split_lines(text: str, max_chars: int = 42, max_lines: int = 2) -> list[str] | None:
    """``text``'s words broken into at most ``max_lines`` lines of at most ``max_chars``
    characters: as few lines as possible, balanced (the longest line as short as it can be,
    earlier lines the fuller on a tie); None when they do not fit. A single word longer than ``max_chars``
    never fits."""
    words = text.split()
    if not words:
        return [""]
    if max(len(word) for word in words) > max_chars:
        return None
    num_lines = len(_fill(words, max_chars))  # the fewest lines it can take
    if num_lines > max_lines:
        return None
    total = len(" ".join(words))
    # the narrowest width at which greedy filling still needs only num_lines lines is the
    # smallest possible longest line
    for width in range(max(math.ceil(total / num_lines), max(len(w) for w in words)), max_chars + 1):
        lines = _fill(words, width)
        if len(lines) <= num_lines:
            return lines
    return None


def _fill(words: list[str], width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in words:
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    lines.append(current)
    return lines


def make_cues(
    segments: Iterable[SpeechSegment] | Sequence[Word],
    *,
    max_chars: int = 42,
    max_lines: int = 2,
    max_sec: float = 7.0,
    min_sec: float = 1.0,
    pause_sec: float = 0.6,
) -> list[Cue]:
    """Cues from recognized speech: ``segments`` (their words are used) or a list of words,
    in time order.

    A new cue starts after a word that ends a sentence (. ! ? …), after a silence of at least
    ``pause_sec`` between two words, and wherever the next word would not fit: more than
    ``max_lines`` balanced lines of ``max_chars`` characters, or more than ``max_sec`` from the
    cue's first word's start to the word's end. A cue spans its first word's start to its last
    word's end; one shorter than ``min_sec`` is extended to ``min_sec``, first later (up to the
    next cue's start), then earlier (down to the previous cue's end). A word longer than
    ``max_chars`` gets a cue of its own, on one overlong line.
    """
    words: list[Word] = []
    for item in segments:
        words.extend(item.words if isinstance(item, SpeechSegment) else [item])
    groups: list[list[Word]] = []
    for word in words:
        if not groups or _must_break(groups[-1], word, max_chars, max_lines, max_sec, pause_sec):
            groups.append([word])
        else:
            groups[-1].append(word)
    spans = [[group[0].start_sec, group[-1].end_sec] for group in groups]
    for i, span in enumerate(spans):
        if span[1] - span[0] >= min_sec:
            continue
        later = spans[i + 1][0] if i + 1 < len(spans) else math.inf
        span[1] = max(span[1], min(span[0] + min_sec, later))
        earlier = spans[i - 1][1] if i > 0 else 0.0
        span[0] = min(span[0], max(span[1] - min_sec, earlier))
    cues = []
    for group, (start, end) in zip(groups, spans):
        text = " ".join(word.text for word in group)
        lines = split_lines(text, max_chars, max_lines) or [text]
        cues.append(Cue(start, end, "\n".join(lines)))
    return cues


def _must_break(group: list[Word], word: Word, max_chars: int, max_lines: int, max_sec: float,
                pause_sec: float) -> bool:
    last = group[-1]
    if last.text.endswith(SENTENCE_ENDS) or word.start_sec - last.end_sec >= pause_sec:
        return True
    if word.end_sec - group[0].start_sec > max_sec:
        return True
    text = " ".join([w.text for w in group] + [word.text])
    return split_lines(text, max_chars, max_lines) is None
