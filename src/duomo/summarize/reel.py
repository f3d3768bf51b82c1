"""The highlight reel: chosen spans of a video joined in order, with their sound (PyAV only).

When every span starts on a keyframe, the packets are copied (no re-encoding: exact quality,
fast); otherwise, or if copying fails, the whole reel is re-encoded (H.264 + AAC), frame-exact.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from duomo.errors import MediaError
from duomo.video.probe import container_origin, open_container, probe, ticks_to_sec

log = logging.getLogger(__name__)

KEYFRAME_TOLERANCE_SEC = 1e-3


@dataclass
class Reel:
    path: Path
    duration_sec: float
    """Sum of the spans' lengths."""
    copied: bool
    """True when the packets were copied, False when the reel was re-encoded."""


def keyframe_times(path: str | Path) -> np.ndarray:
    """(K,) sorted times in seconds of the video stream's keyframes (from the packets; nothing
    is decoded)."""
    container = open_container(path)
    try:
        stream = container.streams.video[0]
        origin = container_origin(container)
        times = [float(ticks_to_sec(p.pts, stream.time_base, origin)) for p in container.demux(stream)
                 if p.pts is not None and p.is_keyframe]
    finally:
        container.close()
    return np.array(sorted(times))


def write_reel(video: str | Path, spans: list[tuple[float, float]], out: str | Path) -> Reel:
    """Write the [start, end) ``spans`` (seconds, increasing, not overlapping) of ``video`` one
    after the other into ``out`` (MP4). Copies the packets when every span starts on a
    keyframe, else re-encodes the whole reel. ``out`` is written directly (callers write into a
    temporary folder)."""
    if not spans:
        raise MediaError(video, "no span to put in the highlight reel")
    out = Path(out)
    keys = keyframe_times(video)
    on_keys = all(len(keys) and np.abs(keys - start).min() <= KEYFRAME_TOLERANCE_SEC for start, _ in spans)
    duration = float(sum(end - start for start, end in spans))
    if on_keys:
        try:
            _copy_spans(video, spans, out)
            return Reel(out, duration, True)
        except (av.error.FFmpegError, ValueError) as err:
            log.warning("%s: copying the spans failed (%s); re-encoding the reel", video, err)
            out.unlink(missing_ok=True)
    _encode_spans(video, spans, out)
    return Reel(out, duration, False)


def _span_of(t: float, spans: list[tuple[float, float]]) -> int:
    for i, (start, end) in enumerate(spans):
        if start - KEYFRAME_TOLERANCE_SEC <= t < end - KEYFRAME_TOLERANCE_SEC:
            return i
    return -1


def _copy_spans(video: str | Path, spans: list[tuple[float, float]], out: Path) -> None:
    """Packets whose time falls in a span, shifted so the spans follow each other."""
    starts_out = np.concatenate([[0.0], np.cumsum([e - s for s, e in spans])])
    source = open_container(video)
    try:
        origin = container_origin(source)
        streams = [source.streams.video[0], *source.streams.audio[:1]]
        target = av.open(str(out), "w", format="mp4")
        try:
            outs = {s.index: target.add_stream_from_template(s) for s in streams}
            last_dts: dict[int, int] = {}
            for packet in source.demux(streams):
                if packet.dts is None or packet.pts is None:
                    continue
                stream = packet.stream
                t = float(ticks_to_sec(packet.pts, stream.time_base, origin))
                span = _span_of(t, spans)
                if span < 0:
                    continue
                shift = int(round((Fraction(starts_out[span]) - Fraction(spans[span][0]) + origin)
                                  / stream.time_base))
                packet.pts += shift
                packet.dts += shift
                if packet.dts <= last_dts.get(stream.index, -(1 << 62)):
                    raise ValueError("timestamps do not increase across a join")
                last_dts[stream.index] = packet.dts
                packet.stream = outs[stream.index]
                target.mux(packet)
        finally:
            target.close()
    finally:
        source.close()


def _encode_spans(video: str | Path, spans: list[tuple[float, float]], out: Path) -> None:
    """Decode the spans' frames and sound and encode them as one H.264 + AAC file."""
    from duomo.video.audio import decode_audio
    from duomo.video.decode import iter_frames
    from duomo.video.encode import write_video

    info = probe(video)
    fps = info.fps or 25.0
    rate = info.audio[0].sample_rate if info.audio else 0

    def frames():
        for start, end in spans:
            for frame in iter_frames(video, start_sec=start, end_sec=end):
                image = frame.image
                yield image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2]

    audio = None
    if rate:
        pieces = []
        for start, end in spans:
            piece = decode_audio(video, rate, start, end)
            want = int(round((end - start) * rate))
            pieces.append(np.pad(piece, (0, max(0, want - len(piece))))[:want])
        audio = np.concatenate(pieces).astype(np.float32)
    write_video(out, frames(), fps, codec="libx264", crf=20, audio=audio, sample_rate=rate or 16000)
