"""Per-video analysis for the library index: one decoding pass feeds shot detection, segments,
thumbnails, visual descriptors and on-screen text; speech is recognised from the soundtrack.

Runs in a worker process; returns plain data (no vectors of text yet: the parent embeds text
in batches and writes the store).

Segments are the shots cut into windows of ``segment_sec`` (the last window of a shot may be
shorter). They are closed while decoding, as soon as the shot detector can no longer move a
boundary before their end, so memory stays flat in the video's length.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from duomo.errors import MediaError
from duomo.library.visual import describe_frames
from duomo.video import VideoInfo, iter_frame_views, probe

logger = logging.getLogger(__name__)

BOUNDARY_LAG_SEC = 1.5
"""How long after a moment the shot detector has surely reported a boundary before it."""
LEAD_IN_SEC = 2.0
"""A chunk's shot detector first sees this much of the video before the chunk, so that a cut
on the chunk's first frame is found (and its adaptive threshold has a history)."""


@dataclass
class IndexSettings:
    """What ``duomo index`` extracts and how; the CLI's flags map onto these."""

    segment_sec: float = 5.0
    """Shots are cut into windows of this many seconds."""
    shot_threshold: float | None = None
    """Shot detector sensitivity (None: its default); see ``duomo shots --help``."""
    analysis_width: int = 96
    """Width of the small frames the shot detector reads."""
    sample_every_sec: float = 0.5
    """Frames kept per segment for its thumbnail and visual vector, one every this many seconds."""
    thumb_width: int = 320
    """Thumbnail width in pixels (JPEG)."""
    use_speech: bool = True
    """Recognise speech (faster-whisper, bundled tiny.en, voice-activity filter on)."""
    use_ocr: bool = True
    """Read on-screen text on frames every ``ocr_every_sec`` (rapidocr)."""
    ocr_every_sec: float = 2.0
    """Seconds between frames read for on-screen text (text on screen this long is caught)."""
    ocr_short_side: int = 360
    """Frames are read for text at this short side (720p -> 640x360)."""
    chunk_sec: float = 120.0
    """Long videos are analysed in time chunks of about this length, in parallel (0: never)."""
    fast_decode: bool = True
    """Skip the codec's deblocking filter while decoding (about 1.6x faster on H.264)."""
    model_frames: int = 0
    """Frames per segment kept at ``model_frame_size`` for a retrieval model (0: none)."""
    model_frame_size: int = 64
    """Side of the frames a retrieval model reads."""


@dataclass
class SegmentResult:
    idx: int
    start_sec: float
    end_sec: float
    shot_idx: int
    thumbnail: str
    """File name under the video's thumbnail folder."""
    descriptor: np.ndarray
    """(D,) float32 default visual descriptor."""
    model_frames: np.ndarray | None = None
    """(T, S, S, 3) uint8 frames for a retrieval model, when asked for."""
    vector: np.ndarray | None = None
    """(D,) the retrieval model's embedding of ``model_frames``, when a model is given."""


@dataclass
class VideoAnalysis:
    """Everything the index stores for one video, before text is embedded."""

    path: str
    info: dict[str, Any]
    shots: list[tuple[float, float]]
    segments: list[SegmentResult]
    transcript: list[dict[str, Any]] = field(default_factory=list)
    """[{start, end, text, words: [[word, start, end]]}] from speech."""
    captions: list[dict[str, Any]] = field(default_factory=list)
    """[{start, end, text}]: a caption run's description of each segment, when one is given."""
    ocr: list[dict[str, Any]] = field(default_factory=list)
    """[{start, end, text}] spans of on-screen text."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per stage: decode (with shots, thumbnails, descriptors), ocr, speech."""
    starts_with_cut: bool = False
    """A chunk whose first frame opens a new shot (``merge_chunks`` keeps that boundary)."""


def content_hash(path: str | Path, chunk: int = 1 << 20) -> str:
    """BLAKE2b (128-bit) of the file's bytes, hex."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def video_id_for(path: str | Path) -> str:
    """A stable id for a file path (the same path keeps its id when its content changes)."""
    return hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:16]


def analyze_visual(path: str | Path, thumb_dir: Path, settings: IndexSettings, *, ocr_reader=None,
                   shot_detector=None, start_sec: float = 0.0, end_sec: float | None = None,
                   chunk_idx: int = 0, info: VideoInfo | None = None) -> VideoAnalysis:
    """The one decoding pass: shots, segments with thumbnails (written to ``thumb_dir``),
    descriptors and optional model frames, and on-screen text when ``ocr_reader`` is given.

    ``start_sec`` / ``end_sec`` analyse one time range only (a chunk of a long video, so that
    several workers share it; ``merge_chunks`` joins the pieces). Thumbnails are named after
    ``chunk_idx`` so the chunks of one video never overwrite each other's. ``info``: the file's
    ``probe``, when the caller has it already (each chunk would otherwise probe it again).
    """
    started = time.perf_counter()
    info = info or probe(path)
    detector = shot_detector
    if detector is None:
        from duomo.video.shots import ShotDetector

        detector = (ShotDetector() if settings.shot_threshold is None
                    else ShotDetector(threshold=settings.shot_threshold))
    thumb_dir.mkdir(parents=True, exist_ok=True)
    analysis_size = _width_size(info.width, info.height, settings.analysis_width)
    thumb_size = _width_size(info.width, info.height, settings.thumb_width)
    builder = _SegmentBuilder(settings, thumb_dir, start_sec=start_sec, prefix=f"{chunk_idx:03d}-")
    ocr = _OcrSpans(settings.ocr_every_sec)
    ocr_sec = 0.0
    next_sample = start_sec
    next_ocr = start_sec
    last_sec = start_sec
    first_sec: float | None = None  # time of the chunk's first frame
    lead_start = max(0.0, start_sec - LEAD_IN_SEC) if start_sec > 0 else 0.0
    for view in iter_frame_views(path, start_sec=lead_start, end_sec=end_sec, skip_loop_filter=settings.fast_decode):
        t = view.pts_sec
        detector.push(view.rgb(size=analysis_size), view.frame_idx, t)
        if t < start_sec - 1e-6:
            continue  # lead-in: for the shot detector only
        if first_sec is None:
            first_sec = t
        last_sec = t
        if t >= next_sample - 1e-6:
            model_frame = (view.rgb(size=(settings.model_frame_size, settings.model_frame_size))
                           if settings.model_frames else None)
            builder.add_sample(t, view.rgb(size=thumb_size), model_frame)
            next_sample += settings.sample_every_sec
            while next_sample <= t:
                next_sample += settings.sample_every_sec
        if ocr_reader is not None and t >= next_ocr - 1e-6:
            tic = time.perf_counter()
            boxes = ocr_reader.read(view.rgb(short_side=min(settings.ocr_short_side, info.width, info.height)))
            ocr.observe(t, [box.text for box in boxes])
            ocr_sec += time.perf_counter() - tic
            next_ocr += settings.ocr_every_sec
            while next_ocr <= t:
                next_ocr += settings.ocr_every_sec
        builder.close_until(t - BOUNDARY_LAG_SEC, _boundary_times(detector))
    frame_sec = 1.0 / info.fps if info.fps else 0.0
    video_end = max(info.duration_sec or 0.0, last_sec + frame_sec)
    end_sec = video_end if end_sec is None else min(end_sec, video_end)
    detected = detector.finish(end_sec)
    shots = [(max(shot.start_sec, start_sec), shot.end_sec) for shot in detected if shot.end_sec > start_sec + 1e-6]
    cuts = [shot[0] for shot in shots[1:]]
    builder.close_until(end_sec, cuts, final=True)
    ocr.close()
    starts_with_cut = start_sec > 0 and first_sec is not None and any(
        abs(shot.start_sec - first_sec) < 1e-6 for shot in detected[1:])
    total = time.perf_counter() - started
    return VideoAnalysis(
        path=str(path), info=info.to_dict(),
        shots=[(round(a, 3), round(b, 3)) for a, b in shots],
        segments=builder.segments, ocr=ocr.spans,
        timings={"decode": total - ocr_sec, "ocr": ocr_sec}, starts_with_cut=starts_with_cut,
    )


def chunk_ranges(duration_sec: float, chunk_sec: float, multiple_of: int = 1) -> list[tuple[float, float | None]]:
    """[start, end) ranges of about ``chunk_sec`` covering a video (the last one open-ended),
    as many as a multiple of ``multiple_of`` (the workers, so that none idles at the end); one
    range for videos shorter than 1.5 chunks."""
    if chunk_sec <= 0 or duration_sec < 1.5 * chunk_sec:
        return [(0.0, None)]
    count = int(round(duration_sec / chunk_sec))
    count = -(-count // multiple_of) * multiple_of
    bounds = [round(duration_sec * k / count, 3) for k in range(count)]
    return [(start, end) for start, end in zip(bounds, bounds[1:] + [None])]


def merge_chunks(chunks: list[VideoAnalysis]) -> VideoAnalysis:
    """One VideoAnalysis from those of consecutive time ranges: a chunk boundary is not a cut
    (the shots on either side join), segments are renumbered, and on-screen text spans that
    run across a boundary join."""
    first = chunks[0]
    shots: list[tuple[float, float]] = []
    segments: list[SegmentResult] = []
    ocr: list[dict[str, Any]] = []
    captions: list[dict[str, Any]] = []
    timings: dict[str, float] = {}
    for n, chunk in enumerate(chunks):
        chunk_shots = list(chunk.shots)
        if shots and chunk_shots and not chunk.starts_with_cut:
            shots[-1] = (shots[-1][0], chunk_shots[0][1])
            chunk_shots = chunk_shots[1:]
        shots.extend(chunk_shots)
        segments.extend(chunk.segments)
        captions.extend(chunk.captions)
        for span in chunk.ocr:
            # the same text still on screen where the previous chunk stopped reading: one span
            joined = next((o for o in reversed(ocr) if o["text"].lower() == span["text"].lower()
                           and o["end"] >= span["start"] - 1e-6), None) if n else None
            if joined is not None:
                joined["end"] = max(joined["end"], span["end"])
            else:
                ocr.append(dict(span))
        for key, value in chunk.timings.items():
            timings[key] = timings.get(key, 0.0) + value
    starts = [shot[0] for shot in shots]
    for idx, seg in enumerate(segments):
        seg.idx = idx
        seg.shot_idx = max(0, int(np.searchsorted(starts, seg.start_sec + 1e-6, side="right")) - 1)
    ocr.sort(key=lambda span: (span["start"], span["text"]))
    return VideoAnalysis(path=first.path, info=first.info, shots=shots, segments=segments, ocr=ocr,
                         captions=captions, timings=timings)


def analyze_speech(path: str | Path, recognizer, on_audio=None) -> tuple[list[dict[str, Any]], float]:
    """Transcript entries [{start, end, text, words}] of the video's speech, and seconds spent.
    ``on_audio(start_sec, waveform)`` sees the soundtrack as it is decoded (``transcribe``)."""
    started = time.perf_counter()
    try:
        segments = recognizer.transcribe(path, on_audio=on_audio)
    except MediaError as err:
        if "no audio" in str(err).lower():
            return [], time.perf_counter() - started
        raise
    transcript = [{
        "start": round(seg.start_sec, 3), "end": round(seg.end_sec, 3), "text": seg.text.strip(),
        "words": [[w.text.strip(), round(w.start_sec, 3), round(w.end_sec, 3)] for w in seg.words],
    } for seg in segments if seg.text.strip()]
    return transcript, time.perf_counter() - started


def _width_size(width: int, height: int, out_width: int) -> tuple[int, int]:
    """(w, h) at ``out_width`` keeping the aspect ratio (even sizes, never upscaled)."""
    out_width = min(out_width, width)
    out_height = max(2, int(round(height * out_width / width / 2)) * 2)
    return max(2, out_width // 2 * 2), out_height


def _boundary_times(detector) -> list[float]:
    return [boundary.time_sec for boundary in getattr(detector, "boundaries", [])]


class _SegmentBuilder:
    """Collects sampled frames and closes segments once their extent is final."""

    def __init__(self, settings: IndexSettings, thumb_dir: Path, *, start_sec: float = 0.0, prefix: str = ""):
        self.settings = settings
        self.thumb_dir = thumb_dir
        self.prefix = prefix
        self.samples: list[tuple[float, np.ndarray, np.ndarray | None]] = []
        self.segments: list[SegmentResult] = []
        self.start = start_sec
        self.shot_idx = 0
        self.shot_start = start_sec

    def add_sample(self, t: float, frame: np.ndarray, model_frame: np.ndarray | None) -> None:
        self.samples.append((t, frame, model_frame))

    def close_until(self, safe_sec: float, cuts: list[float], final: bool = False) -> None:
        """Close every segment that ends by ``safe_sec`` (``final``: up to and including it)."""
        while True:
            next_cut = min((c for c in cuts if c > self.start + 1e-6), default=None)
            window_end = self.shot_start + self.settings.segment_sec * (
                int((self.start - self.shot_start + 1e-6) // self.settings.segment_sec) + 1)
            end = window_end if next_cut is None else min(window_end, next_cut)
            if end > safe_sec + 1e-6:
                if not final or self.start >= safe_sec - 1e-3:
                    return
                end = safe_sec
            self._close(end)
            if next_cut is not None and abs(end - next_cut) < 1e-6:
                self.shot_idx += 1
                self.shot_start = next_cut
            self.start = end

    def _close(self, end: float) -> None:
        inside = [s for s in self.samples if self.start - 1e-6 <= s[0] < end - 1e-6]
        if not inside:  # a segment shorter than the sampling step: use the latest frame before it
            before = [s for s in self.samples if s[0] < end]
            inside = before[-1:] or self.samples[:1]
        if not inside:
            return
        idx = len(self.segments)
        middle = inside[len(inside) // 2][1]
        name = f"{self.prefix}{idx:05d}.jpg"
        _write_jpeg(self.thumb_dir / name, middle)
        model_frames = None
        if self.settings.model_frames:
            picks = np.linspace(0, len(inside) - 1, self.settings.model_frames).round().astype(int)
            model_frames = np.stack([inside[i][2] for i in picks])
        self.segments.append(SegmentResult(
            idx=idx, start_sec=round(self.start, 3), end_sec=round(end, 3), shot_idx=self.shot_idx,
            thumbnail=name, descriptor=describe_frames([_shrink(s[1]) for s in inside]),
            model_frames=model_frames))
        # keep the frame on screen at ``end`` too: a next segment shorter than the sampling step has none of its own
        on_screen = [s for s in self.samples if s[0] < end - 1e-6][-1:]
        later = [s for s in self.samples if s[0] >= end - 1e-6]
        self.samples = later if later and later[0][0] <= end + 1e-6 else on_screen + later


def _shrink(frame: np.ndarray, width: int = 64) -> np.ndarray:
    """Nearest-neighbour downsample for the descriptor (statistics, not looks)."""
    step = max(1, frame.shape[1] // width)
    return frame[::step, ::step]


def _write_jpeg(path: Path, rgb: np.ndarray, quality: int = 80) -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(path)


class _OcrSpans:
    """Turns text read at successive times into spans: a line seen at consecutive reads is one
    span from its first read to one interval after its last."""

    def __init__(self, every_sec: float):
        self.every_sec = every_sec
        self.open: dict[str, dict[str, Any]] = {}
        self.spans: list[dict[str, Any]] = []

    def observe(self, t: float, lines: list[str]) -> None:
        seen = {}
        for line in lines:
            text = " ".join(line.split())
            if text:
                seen[text.lower()] = text
        for key in list(self.open):
            if key not in seen:
                self._finish(key)
        for key, text in seen.items():
            if key in self.open:
                self.open[key]["end"] = round(t + self.every_sec, 3)
            else:
                self.open[key] = {"start": round(t, 3), "end": round(t + self.every_sec, 3), "text": text}

    def close(self) -> None:
        for key in list(self.open):
            self._finish(key)
        self.spans.sort(key=lambda span: (span["start"], span["text"]))

    def _finish(self, key: str) -> None:
        self.spans.append(self.open.pop(key))
