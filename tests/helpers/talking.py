"""Generated "talking" videos: synthesized sentences at known times and captions drawn on
known frames, so speech recognition and OCR tests can check what they find against the truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from duomo.speech.tts import synthesize_many
from duomo.video.encode import write_video

SAMPLE_RATE = 16000
CAPTION_FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class SpokenLine:
    """A sentence in the soundtrack: placed at ``start_sec``; ``voice_start_sec`` /
    ``voice_end_sec`` bound the samples that are actually audible (TTS pads with silence)."""

    text: str
    start_sec: float
    end_sec: float
    voice_start_sec: float
    voice_end_sec: float


@dataclass(frozen=True)
class CaptionLine:
    """Text drawn on every frame with start_sec <= t < end_sec; ``box`` is (x0, y0, x1, y1),
    x1/y1 exclusive, around the drawn glyphs."""

    text: str
    start_sec: float
    end_sec: float
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class TalkingVideo:
    path: Path
    duration_sec: float
    fps: float
    size: tuple[int, int]
    speech: tuple[SpokenLine, ...]
    captions: tuple[CaptionLine, ...]

    def transcript(self) -> str:
        """Every spoken sentence, in order, joined by spaces."""
        return " ".join(line.text for line in self.speech)


def speech_track(
    speech: list[tuple[float, str]], duration_sec: float, voice: str = "joe"
) -> tuple[np.ndarray, tuple[SpokenLine, ...]]:
    """A 16 kHz soundtrack (round(duration * 16000),) float32 with each sentence synthesized
    by ``voice`` (one Piper process for all of them) and placed at its start time, plus the
    truth about each. Sentences must not overlap or run past the end."""
    audio = np.zeros(round(duration_sec * SAMPLE_RATE), dtype=np.float32)
    lines = []
    previous_end = 0.0
    speech = sorted(speech)
    spoken = synthesize_many([text for _, text in speech], voice=voice, sample_rate=SAMPLE_RATE)
    for (start_sec, text), (voice_audio, _) in zip(speech, spoken):
        first = round(start_sec * SAMPLE_RATE)
        end_sec = start_sec + len(voice_audio) / SAMPLE_RATE
        if start_sec < previous_end or first + len(voice_audio) > len(audio):
            raise ValueError(f"sentence at {start_sec} s ({end_sec - start_sec:.2f} s long) overlaps the one "
                             f"before it or runs past {duration_sec} s")
        audio[first : first + len(voice_audio)] = voice_audio
        audible = np.flatnonzero(np.abs(voice_audio) > 0.02 * np.abs(voice_audio).max())
        lines.append(SpokenLine(text, start_sec, end_sec, start_sec + float(audible[0]) / SAMPLE_RATE,
                                start_sec + float(audible[-1] + 1) / SAMPLE_RATE))
        previous_end = end_sec
    return audio, tuple(lines)


def caption_layout(text: str, size: tuple[int, int]) -> tuple[tuple[int, int], float, int, tuple[int, int, int, int]]:
    """Where ``make_talking_video`` draws ``text`` on a (W, H) frame: centred, in the lower
    third, about 1/12 of the height tall (narrower for long text). Returns (origin for
    cv2.putText, font scale, thickness, box)."""
    width, height = size
    thickness = max(2, height // 120)
    scale = height / 12 / cv2.getTextSize("X", CAPTION_FONT, 1.0, thickness)[0][1]
    text_width = cv2.getTextSize(text, CAPTION_FONT, scale, thickness)[0][0]
    if text_width > 0.9 * width:
        scale *= 0.9 * width / text_width
    (text_width, text_height), baseline = cv2.getTextSize(text, CAPTION_FONT, scale, thickness)
    x, y = (width - text_width) // 2, round(height * 0.8)  # y is the baseline
    pad = thickness  # strokes reach thickness / 2 past the glyph outline
    box = (max(0, x - pad), max(0, y - text_height - pad), min(width, x + text_width + pad),
           min(height, y + baseline + pad))
    return (x, y), scale, thickness, box


def make_talking_video(
    path: str | Path,
    *,
    speech: list[tuple[float, str]] = (),
    captions: list[tuple[float, float, str]] = (),
    duration_sec: float,
    size: tuple[int, int] = (640, 360),
    fps: float = 10,
    moving_background: bool = True,
    voice: str = "joe",
    codec: str = "libx264",
) -> TalkingVideo:
    """Write a video of ``duration_sec`` whose soundtrack speaks each ``(start_sec, sentence)``
    and whose frames show each ``(start_sec, end_sec, TEXT)`` caption (white on a dark band),
    over a slowly drifting colour gradient with a moving square (``moving_background``) or a
    flat grey. Returns the ground truth. The soundtrack is 16 kHz mono, AAC in .mp4/.mkv.
    """
    path = Path(path)
    width, height = size
    audio, lines = speech_track(list(speech), duration_sec, voice) if speech else (
        np.zeros(round(duration_sec * SAMPLE_RATE), np.float32), ())
    layouts = [(start, end, text, caption_layout(text, size)) for start, end, text in captions]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)

    def frames():
        for i in range(round(duration_sec * fps)):
            t = i / fps
            if moving_background:
                frame = np.empty((height, width, 3), np.uint8)
                frame[..., 0] = (60 + 50 * np.sin(xs / width * 6 + t)).astype(np.uint8)
                frame[..., 1] = (60 + 50 * np.sin(ys / height * 4 - 0.7 * t)).astype(np.uint8)
                frame[..., 2] = 90
                side = height // 6
                x = int((width - side) * (0.5 + 0.5 * np.sin(0.9 * t)))
                frame[height // 10 : height // 10 + side, x : x + side] = (200, 120, 40)
            else:
                frame = np.full((height, width, 3), 80, np.uint8)
            for start, end, text, (origin, scale, thickness, box) in layouts:
                if start <= t < end:
                    x0, y0, x1, y1 = box
                    frame[y0:y1, x0:x1] //= 4  # a dark band keeps the text high-contrast
                    cv2.putText(frame, text, origin, CAPTION_FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA)
            yield frame

    write_video(path, frames(), fps, codec=codec, crf=18, audio=audio, sample_rate=SAMPLE_RATE)
    truth_captions = tuple(CaptionLine(text, start, end, layout[3]) for start, end, text, layout in layouts)
    return TalkingVideo(path, duration_sec, fps, size, lines, truth_captions)
