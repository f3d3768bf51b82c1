"""``summarize_video``: score a video's segments, pick them under a duration budget, and write
the highlight reel, contact sheet, chapters and text summary into one folder, all or nothing.

Segments come from the library's one-pass analysis (shots cut into windows, a thumbnail and a
descriptor each, on-screen text), motion from the frames its shot detector reads, speech from
Whisper. The window length follows the budget (half of it, between 0.3 and 2 s), so even a
short clip has segments that fit.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from duomo.errors import DuomoError, MediaError
from duomo.eval.metrics import knapsack_select
from duomo.summarize import importance as imp
from duomo.summarize.reel import write_reel
from duomo.summarize.sheet import contact_sheet
from duomo.speech.asr import SAMPLE_RATE, audio_windows
from duomo.summarize.text import central_sentences, key_phrases, split_sentences
from duomo.video.probe import probe

log = logging.getLogger(__name__)

OUTPUT_FILES = ("highlights.mp4", "contact_sheet.png", "chapters.json", "summary.txt", "summary.json")
KNAPSACK_UNITS = 2000
"""The budget is cut into at most this many units for the knapsack (0.01 s at least)."""


class SummarizeError(DuomoError):
    """A summary that cannot be made: bad budget, a model of another task."""


def parse_budget(text: str) -> tuple[float, bool]:
    """'15%' -> (0.15, False): a share of the duration; '20' or '20s' -> (20.0, True): seconds.
    Raises SummarizeError for anything else or a budget that is not positive (or over 100%)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(%|s|sec)?\s*", str(text))
    if not match:
        raise SummarizeError(f"--budget {text}: expected a percentage (15%) or seconds (20)")
    value = float(match.group(1))
    if match.group(2) == "%":
        if not 0 < value <= 100:
            raise SummarizeError(f"--budget {text}: a percentage must be in (0, 100]")
        return value / 100.0, False
    if value <= 0:
        raise SummarizeError(f"--budget {text}: must be positive")
    return value, True


@dataclass
class Segment:
    start: float
    end: float
    shot: int
    score: float
    selected: bool = False
    thumbnail: str = ""


@dataclass
class Chapter:
    start: float
    end: float
    title: str


@dataclass
class SummaryResult:
    out_dir: Path
    video: str
    duration_sec: float
    budget_sec: float
    scorer: str
    """'unsupervised' or the summarize run used."""
    segments: list[Segment]
    reel_sec: float
    reel_copied: bool
    chapters: list[Chapter]
    sentences: list[dict] = field(default_factory=list)
    """The extractive summary: [{start, end, text}] in time order."""
    sheet_size: tuple[int, int] = (0, 0)

    def to_dict(self) -> dict:
        return {"video": self.video, "out_dir": str(self.out_dir), "duration_sec": round(self.duration_sec, 3),
                "budget_sec": round(self.budget_sec, 3), "scorer": self.scorer,
                "reel": {"file": "highlights.mp4", "duration_sec": round(self.reel_sec, 3),
                         "streams_copied": self.reel_copied},
                "contact_sheet": {"file": "contact_sheet.png", "size": list(self.sheet_size)},
                "chapters": [asdict(c) for c in self.chapters], "summary": self.sentences,
                "segments": [{k: v for k, v in asdict(s).items() if k != "thumbnail"} for s in self.segments]}


def select_segments(scores: np.ndarray, spans: list[tuple[float, float]], budget_sec: float) -> list[int]:
    """Indices of the segments the 0/1 knapsack picks: values their scores (shifted so the least
    is 1e-6 and the budget fills up), weights their lengths, in units of budget / KNAPSACK_UNITS
    seconds (at least 0.01 s), capacity the budget."""
    if not spans:
        return []
    unit = max(0.01, budget_sec / KNAPSACK_UNITS)
    weights = [max(1, int(round((b - a) / unit))) for a, b in spans]
    values = np.asarray(scores, dtype=np.float64)
    values = values - values.min() + 1e-6
    return knapsack_select(values, weights, int(math.floor(budget_sec / unit + 1e-9)))


def summarize_video(video: str | Path, out_dir: str | Path, *, budget: str = "15%", model: str | None = None,
                    caption: str | None = None, use_speech: bool = True, use_ocr: bool = True,
                    recognizer=None, ocr_reader=None, embedder=None) -> SummaryResult:
    """Summarize ``video`` into ``out_dir`` (created; files of the same names there are replaced,
    only once all of them are written). ``model``: a ``duomo train summarize`` run scoring the
    segments instead of the unsupervised default; ``caption``: a caption run titling the
    chapters. ``recognizer`` / ``ocr_reader`` / ``embedder`` reuse loaded models."""
    from duomo.library.analyze import IndexSettings, analyze_speech, analyze_visual
    from duomo.video.shots import ShotDetector

    video = Path(video)
    info = probe(video)
    duration = info.duration_sec
    value, in_seconds = parse_budget(budget)
    budget_sec = min(duration, value if in_seconds else value * duration)
    from duomo.inference import load_for

    predictor = load_for(model, "summarize", "summarize", "--model") if model else None
    captioner = load_for(caption, "caption", "caption", "--caption") if caption else None
    segment_sec = min(2.0, max(0.3, budget_sec / 2))
    settings = IndexSettings(segment_sec=segment_sec, sample_every_sec=min(0.5, segment_sec), use_speech=use_speech,
                             use_ocr=use_ocr, chunk_sec=0.0)
    if use_ocr and ocr_reader is None:
        from duomo.ocr.reader import TextReader

        ocr_reader = TextReader(num_threads=1)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".part", dir=out_dir.parent))
    try:
        tap = imp.MotionTap(ShotDetector())
        analysis = analyze_visual(video, work / "thumbs", settings, ocr_reader=ocr_reader if use_ocr else None,
                                  shot_detector=tap)
        spans = [(s.start_sec, s.end_sec) for s in analysis.segments]
        if not spans:
            raise MediaError(video, "no frame to summarize")
        # the unsupervised scorer's loudness is read from the soundtrack as speech recognition
        # decodes it (window by window), or in its own pass when speech is off
        sound = imp.LoudnessTap(SAMPLE_RATE, spans) if predictor is None and info.audio else None
        transcript = []
        if use_speech and info.audio:
            if recognizer is None:
                from duomo.speech.asr import SpeechRecognizer

                recognizer = SpeechRecognizer(num_threads=1)
            transcript, _ = analyze_speech(video, recognizer, on_audio=sound.add if sound else None)
        elif sound is not None:
            for start_sec, window in audio_windows(video):
                sound.add(start_sec, window)
        if predictor is not None:
            times, frame_scores = predictor.importance(video)
            scores = _span_scores(times, frame_scores, spans)
            scorer = str(model)
        else:
            scores = imp.unsupervised_importance(_signals(analysis, tap, transcript, spans, sound))
            scorer = "unsupervised"
        picked = select_segments(scores, spans, budget_sec)
        if not picked:  # every segment is longer than the budget: the best one, cut to it
            best = int(np.argmax(scores))
            spans[best] = (spans[best][0], spans[best][0] + budget_sec)
            picked = [best]
        log.info("%s: %d of %d segments picked for a %.2f s budget (%s scores)", video, len(picked), len(spans),
                 budget_sec, scorer)
        segments = [Segment(a, b, s.shot_idx, round(float(sc), 4), i in picked, s.thumbnail)
                    for i, ((a, b), s, sc) in enumerate(zip(spans, analysis.segments, scores))]
        reel = write_reel(video, _joined([spans[i] for i in picked]), work / "highlights.mp4")
        sheet_size = _write_sheet([segments[i] for i in picked], work / "thumbs", work / "contact_sheet.png")
        chapters = _chapters(video, duration, analysis.shots, transcript, analysis.ocr, captioner)
        (work / "chapters.json").write_text(json.dumps([asdict(c) for c in chapters], indent=1) + "\n")
        sentences = _extractive(transcript, budget_sec / duration if duration else 0.15, embedder)
        (work / "summary.txt").write_text("".join(s["text"] + "\n" for s in sentences))
        result = SummaryResult(out_dir, str(video), duration, budget_sec, scorer, segments, reel.duration_sec,
                               reel.copied, chapters, sentences, sheet_size)
        (work / "summary.json").write_text(json.dumps(result.to_dict(), indent=1) + "\n")
        _publish(work, out_dir)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _span_scores(times: np.ndarray, values: np.ndarray, spans: list[tuple[float, float]]) -> np.ndarray:
    """(S,) mean over each span of the curve through (times, values), read at 9 points a span."""
    return np.array([float(np.mean(np.interp(np.linspace(a, b, 11)[1:-1], times, values))) for a, b in spans])


def _signals(analysis, tap: imp.MotionTap, transcript: list[dict], spans: list[tuple[float, float]],
             sound: imp.LoudnessTap | None) -> imp.Signals:
    speech = imp.coverage(spans, [(t["start"], t["end"]) for t in transcript]) if transcript else None
    return imp.Signals(motion=imp.span_means(np.array(tap.times), np.array(tap.motion), spans),
                       descriptors=np.stack([s.descriptor for s in analysis.segments]), speech=speech,
                       sound=sound.values() if sound is not None else None)


def _joined(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Spans in order with touching ones merged (one cut fewer in the reel)."""
    merged: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1] + 1e-6:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _clock(sec: float) -> str:
    return f"{int(sec // 60):02d}:{sec % 60:04.1f}"


def _write_sheet(segments: list[Segment], thumbs: Path, out: Path) -> tuple[int, int]:
    from PIL import Image

    images = [np.asarray(Image.open(thumbs / s.thumbnail).convert("RGB")) for s in segments]
    return contact_sheet(images, [f"{_clock(s.start)}-{_clock(s.end)}" for s in segments], out)


def _chapters(video: Path, duration: float, shots: list[tuple[float, float]], transcript: list[dict],
              ocr: list[dict], captioner) -> list[Chapter]:
    """Shots merged into chapters of at least max(1 s, duration / 12), covering the video in
    order; titled by a caption run, else (or where its caption is empty) by the key phrases of the
    speech and on-screen text inside, else 'Chapter k'."""
    min_len = max(1.0, duration / 12)
    bounds: list[list[float]] = []
    for a, b in shots or [(0.0, duration)]:
        if bounds and (bounds[-1][1] - bounds[-1][0] < min_len or b - a < min_len / 2):
            bounds[-1][1] = b
        else:
            bounds.append([a, b])
    bounds[0][0], bounds[-1][1] = 0.0, duration
    for prev, nxt in zip(bounds, bounds[1:]):
        nxt[0] = prev[1]
    texts = [" ".join([t["text"] for t in transcript if t["start"] < b and t["end"] > a]
                      + [o["text"] for o in ocr if o["start"] < b and o["end"] > a]) for a, b in bounds]
    phrases = key_phrases(texts)
    chapters = []
    for k, ((a, b), words) in enumerate(zip(bounds, phrases)):
        title = captioner.caption_span(video, a, b).strip() if captioner is not None else ""
        if not title:  # no caption run, or it said nothing
            title = " ".join(words).capitalize() if words else f"Chapter {k + 1}"
        chapters.append(Chapter(round(a, 3), round(b, 3), title))
    return chapters


def _extractive(transcript: list[dict], fraction: float, embedder) -> list[dict]:
    """The most central transcript sentences (MiniLM), as many as ``fraction`` of them (at least
    one, at most ten), in time order."""
    sentences = [{"start": t["start"], "end": t["end"], "text": s} for t in transcript for s in split_sentences(t["text"])]
    if not sentences:
        return []
    if embedder is None:
        from duomo.text.sentence import SentenceEmbedder

        embedder = SentenceEmbedder(num_threads=1)
    vectors = embedder.embed([s["text"] for s in sentences])
    count = min(10, max(1, int(round(fraction * len(sentences)))))
    return [sentences[i] for i in central_sentences(vectors, count)]


def _publish(work: Path, out_dir: Path) -> None:
    """Move the finished files into ``out_dir``: the whole folder at once when it is new or
    empty, else file by file (each replace is atomic)."""
    shutil.rmtree(work / "thumbs", ignore_errors=True)
    if out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()
    if not out_dir.exists():
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(work, 0o777 & ~umask)  # mkdtemp makes it private; the result is an ordinary folder
        os.replace(work, out_dir)
        work.mkdir()  # the caller's cleanup removes it
        return
    for name in OUTPUT_FILES:
        os.replace(work / name, out_dir / name)
