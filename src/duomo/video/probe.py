"""Open a media file safely and describe its video: ``probe(path) -> VideoInfo``.

Also holds the frame table (every frame's timestamp, read from packets without decoding) that
the decoders in ``decode.py`` use to pick and seek to exact frames.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction
import os
from pathlib import Path
from typing import Any

import av
from av.container import InputContainer
from av.stream import Stream
from av.video.stream import VideoStream
import numpy as np

from duomo.errors import MediaError

MAX_SIDE = 16384
"""Largest width or height accepted; beyond it the file is treated as broken or hostile."""

SCAN_MAX_BYTES = 256 * 1024 * 1024
"""Files up to this size get an exact frame table (one pass over packets, no decoding)."""

SCAN_MAX_PACKETS = 500_000
"""Packet cap for that pass (about 4.6 h at 30 fps), keeping its memory and time bounded."""

MAX_PACKETS_WITHOUT_FRAME = 300
"""Packets a decoder may swallow without producing a frame before the file is given up on.

Codec delay (B-frames, frame threads) is tens of packets at most; a stream past this is broken.
"""


@dataclass(frozen=True)
class AudioStreamInfo:
    """One audio stream of a media file."""

    codec: str
    sample_rate: int
    channels: int
    duration_sec: float | None


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe`` found out about a video file. Times are seconds from the container start."""

    path: str
    container_format: str
    """FFmpeg's demuxer name, e.g. ``"mov,mp4,m4a,3gp,3g2,mj2"`` or ``"matroska,webm"``."""
    codec: str
    """Video codec, e.g. ``"h264"``, ``"hevc"``, ``"vp9"``, ``"av1"``, ``"ffv1"``."""
    width: int
    """Displayed width, after the rotation below (what the decoders return)."""
    height: int
    rotation: int
    """Degrees counter-clockwise (0, 90, 180, 270) the stored picture is turned for display,
    as ffprobe reports it; a phone's portrait clip usually reads 270."""
    duration_sec: float
    """Video stream duration: first frame's timestamp to the end of the last frame."""
    fps: float
    """Average frame rate: frames per second over the stream."""
    is_variable_fps: bool
    num_frames: int
    is_num_frames_exact: bool
    """True when counted from packets or taken from the container's sample count."""
    keyframe_interval_sec: float | None
    """Median gap between keyframes; None when unknown (not scanned, or one keyframe)."""
    audio: tuple[AudioStreamInfo, ...]
    damage: str | None = None
    """None for a healthy file; else why the readable frames stop early (truncated, corrupt)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (audio streams as a list of dicts), ready for JSON."""
        out = dataclasses.asdict(self)
        out["audio"] = [dataclasses.asdict(a) for a in self.audio]
        return out


@dataclass(frozen=True)
class FrameTable:
    """Presentation timestamps of every frame of a video stream, sorted.

    ``is_exact``: read from the packets. Otherwise (file too big to scan) a constant-rate grid
    guessed from duration and frame rate, and ``key_pts`` is empty (keyframes unknown).
    """

    pts: np.ndarray
    """(N,) int64 frame timestamps in ``time_base`` units; the frame index is the position here."""
    key_pts: np.ndarray
    """(K,) int64 timestamps of the keyframes (seek points)."""
    time_base: Fraction
    origin: Fraction
    """Container start time in seconds; reported times are ``pts * time_base - origin``."""
    frame_ticks: int
    """Typical frame duration in ``time_base`` units (median gap, or the nominal rate)."""
    duration_sec: float
    """Declared video duration: taken from the header when the data ends early."""
    is_exact: bool
    damage: str | None
    """Why the readable frames stop before ``duration_sec``; None when they don't."""

    @property
    def pts_sec(self) -> np.ndarray:
        """(N,) float64 frame times in seconds."""
        return ticks_to_sec(self.pts, self.time_base, self.origin)

    @property
    def key_pts_sec(self) -> np.ndarray:
        """(K,) float64 keyframe times in seconds."""
        return ticks_to_sec(self.key_pts, self.time_base, self.origin)

    @property
    def readable_end_sec(self) -> float:
        """End of the last readable frame, seconds."""
        return ticks_to_sec(int(self.pts[-1]) + self.frame_ticks, self.time_base, self.origin)


def probe(path: str | Path) -> VideoInfo:
    """Describe the video in ``path``: size after rotation, duration, rate, frames, codecs.

    Reads packets (no decoding) for exact counts when the file is at most ``SCAN_MAX_BYTES``,
    and decodes the first frame for its rotation. Raises MediaError for anything unreadable,
    including a file with no video stream.
    """
    container = open_container(path)
    try:
        stream = find_video_stream(container, path)
        rotation = read_rotation(container, stream, path)
        table = read_frame_table(container, stream, path)
        width, height = stream.codec_context.width, stream.codec_context.height
        if rotation in (90, 270):
            width, height = height, width
        fps = _average_fps(table, stream)
        if table.damage is not None:
            num_frames, is_exact = max(len(table.pts), round(table.duration_sec * fps)), False
        else:
            # a guessed table still has the exact count when the container states it (mp4)
            num_frames, is_exact = len(table.pts), table.is_exact or stream.frames > 0
        return VideoInfo(
            path=str(path),
            container_format=container.format.name,
            codec=stream.codec_context.codec.canonical_name,
            width=width,
            height=height,
            rotation=rotation,
            duration_sec=table.duration_sec,
            fps=fps,
            is_variable_fps=_is_variable_rate(table, stream),
            num_frames=num_frames,
            is_num_frames_exact=is_exact,
            keyframe_interval_sec=_keyframe_interval(table),
            audio=tuple(_audio_info(container, s) for s in container.streams.audio),
            damage=_damage_note(table),
        )
    finally:
        container.close()


def open_container(path: str | Path) -> InputContainer:
    """Open ``path`` for reading, turning every way that fails into a MediaError."""
    if not os.path.exists(path):
        raise MediaError(path, "no such file")
    if not os.path.isfile(path):
        raise MediaError(path, "not a regular file")
    if os.path.getsize(path) == 0:
        raise MediaError(path, "empty file (0 bytes)")
    try:
        container = av.open(str(path), "r", metadata_errors="ignore")
    except av.error.InvalidDataError:
        reason = "not a media file FFmpeg can read (unknown format, or truncated/corrupt)"
        raise MediaError(path, reason) from None
    except (av.error.FFmpegError, OSError) as err:
        raise MediaError(path, f"cannot open: {ffmpeg_reason(err)}") from None
    if not container.streams:
        container.close()
        raise MediaError(path, "no audio or video streams")
    return container


def find_video_stream(container: InputContainer, path: str | Path) -> VideoStream:
    """The first video stream, set up for fast multi-threaded decoding; checks its size."""
    # cover art (mp3, m4a) shows up as a one-picture video stream; it is not a video
    videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not videos:
        kinds = ", ".join(f"{s.type} ({s.codec_context.name if s.codec_context else '?'})"
                          for s in container.streams)
        raise MediaError(path, f"no video stream (has: {kinds})")
    stream = videos[0]
    if stream.codec_context is None:
        raise MediaError(path, "no decoder for its video codec")
    width, height = stream.codec_context.width, stream.codec_context.height
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise MediaError(path, f"video size {width}x{height} is out of range (1..{MAX_SIDE} px per side)")
    # frame threads for throughput, slice threads where the codec only has those
    stream.codec_context.thread_type = "AUTO"
    return stream


def read_rotation(container: InputContainer, stream: VideoStream, path: str | Path) -> int:
    """Display rotation of ``stream`` (0, 90, 180, 270 counter-clockwise), from its first frame.

    PyAV exposes the display matrix only on decoded frames, so this decodes one frame and
    seeks back to the start. Raises MediaError if no frame can be decoded.
    """
    frame = None
    packets_without_frame = 0
    try:
        for packet in container.demux(stream):
            frames = stream.decode(packet)
            if frames:
                frame = frames[0]
                break
            packets_without_frame += 1
            if packets_without_frame > MAX_PACKETS_WITHOUT_FRAME:
                break
    except av.error.FFmpegError as err:
        raise MediaError(path, f"cannot decode the first video frame: {ffmpeg_reason(err)}") from None
    if frame is None:
        raise MediaError(path, "no decodable video frame")
    rotation = int(round(frame.rotation)) % 360
    _rewind(container, stream)
    return rotation if rotation in (0, 90, 180, 270) else 0  # odd angles: shown unrotated


def read_frame_table(container: InputContainer, stream: VideoStream, path: str | Path) -> FrameTable:
    """Timestamps of every frame (exact for files up to ``SCAN_MAX_BYTES``), rewound after.

    The exact table is one pass over the video packets, without decoding. A pass that stops
    early (read error, or data ending before the declared duration) sets ``damage``.
    """
    time_base = stream.time_base or Fraction(1, 1000)
    origin = container_origin(container)
    declared_sec = declared_duration(container, stream)
    if os.path.getsize(path) > SCAN_MAX_BYTES:
        return _guessed_table(stream, time_base, origin, declared_sec, path)

    pts_list: list[int] = []
    key_list: list[int] = []
    durations: list[int] = []
    damage = None
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:
                continue  # flush packets at the end; samples an edit list cuts out
            pts = packet.pts if packet.pts is not None else packet.dts
            if pts is None:
                continue
            pts_list.append(pts)
            if packet.is_keyframe:
                key_list.append(pts)
            if packet.duration:
                durations.append(packet.duration)
            if len(pts_list) > SCAN_MAX_PACKETS:
                _rewind(container, stream)
                return _guessed_table(stream, time_base, origin, declared_sec, path)
    except av.error.FFmpegError as err:
        damage = f"reading stopped: {ffmpeg_reason(err)}"
    if not pts_list:
        raise MediaError(path, damage or "the video stream has no frames")
    pts = np.unique(np.asarray(pts_list, dtype=np.int64))  # decode order -> presentation order
    gaps = np.diff(pts)
    frame_ticks = int(np.median(gaps)) if len(gaps) else (int(np.median(durations)) if durations else 0)
    if frame_ticks <= 0:
        frame_ticks = max(1, round(1 / (_nominal_fps(stream) * time_base)))
    first_sec = float(pts[0] * time_base)  # on the stream's own clock, like the header
    end_sec = float((int(pts[-1]) + frame_ticks) * time_base)
    # The data may end early without a read error (a file cut short): compare with the header.
    # Formats disagree on whether a duration is an end time (Matroska) or a span (MP4); reading
    # it as an end time is the smaller bound, so a late-starting stream is never called cut.
    slack_sec = 2 * frame_ticks * float(time_base) + 0.05
    if damage is None and declared_sec is not None and end_sec < declared_sec - slack_sec:
        damage = "data ends early (file truncated or corrupt)"
    duration_sec = end_sec - first_sec
    if damage is not None and declared_sec is not None:
        duration_sec = max(duration_sec, declared_sec - first_sec)
    _rewind(container, stream)
    return FrameTable(
        pts=pts,
        key_pts=np.unique(np.asarray(key_list or pts_list[:1], dtype=np.int64)),
        time_base=time_base,
        origin=origin,
        frame_ticks=frame_ticks,
        duration_sec=duration_sec,
        is_exact=True,
        damage=damage,
    )


def _guessed_table(
    stream: VideoStream, time_base: Fraction, origin: Fraction, declared_sec: float | None, path: str | Path
) -> FrameTable:
    """A constant-rate grid of frame times for files too big to scan."""
    fps = _nominal_fps(stream)
    if declared_sec is None:
        raise MediaError(path, "duration unknown and the file is too big to scan")
    num_frames = stream.frames if stream.frames > 0 else max(1, round(declared_sec * fps))
    start = stream.start_time if stream.start_time is not None else round(origin / time_base)
    frame_ticks = max(1, round(1 / (fps * time_base)))
    pts = start + np.round(np.arange(num_frames) / (fps * time_base)).astype(np.int64)
    return FrameTable(
        pts=pts,
        key_pts=np.zeros(0, dtype=np.int64),
        time_base=time_base,
        origin=origin,
        frame_ticks=frame_ticks,
        duration_sec=declared_sec,
        is_exact=False,
        damage=None,
    )


def container_origin(container: InputContainer) -> Fraction:
    """The container's start time in seconds (0 when unknown): our timeline's zero."""
    if container.start_time is None:
        return Fraction(0)
    return Fraction(container.start_time, av.time_base)


def ticks_to_sec(pts: int | np.ndarray, time_base: Fraction, origin: Fraction) -> float | np.ndarray:
    """Stream ticks (int or int64 array) -> seconds on our timeline, ``pts * time_base - origin``.

    Computed as one exact ratio and rounded once, so frame 14 at 10 fps is 1.4, not
    1.4000000000000001.
    """
    scale = time_base.numerator * origin.denominator
    offset = origin.numerator * time_base.denominator
    return (pts * scale - offset) / (time_base.denominator * origin.denominator)


def _rewind(container: InputContainer, stream: Stream) -> None:
    """Seek back to the first packet so the next demux starts over (also flushes decoders)."""
    try:
        container.seek(stream.start_time if stream.start_time is not None else 0, stream=stream)
    except av.error.FFmpegError:
        container.seek(0)


def declared_duration(container: InputContainer, stream: Stream) -> float | None:
    """A stream's duration as the file header states it, in seconds, if it does.

    Depending on the format this is a span (MP4) or the end time (Matroska); callers use it as
    an upper bound on where the stream ends.
    """
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION")  # Matroska writes a per-track duration tag
    if tag:
        try:
            hours, minutes, seconds = tag.split(":")
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        except ValueError:
            pass
    # the container's duration covers every stream; it stands for the video only when alone
    if container.duration is not None and len(container.streams) == 1:
        return container.duration / av.time_base
    return None


def _nominal_fps(stream: VideoStream) -> float:
    """Frame rate the header declares (average, else base), falling back to 25."""
    rate = stream.average_rate or stream.base_rate or stream.guessed_rate
    return float(rate) if rate else 25.0


def _average_fps(table: FrameTable, stream: VideoStream) -> float:
    if table.is_exact and len(table.pts) >= 2 and table.damage is None:
        # one exact ratio, rounded once: 25 fps comes out as 25.0, not 24.999999999999996
        span = (int(table.pts[-1]) - int(table.pts[0])) * Fraction(table.time_base)
        return float((len(table.pts) - 1) / span)
    return _nominal_fps(stream)


def _is_variable_rate(table: FrameTable, stream: VideoStream) -> bool:
    if not table.is_exact:
        base, avg = stream.base_rate, stream.average_rate
        return bool(base and avg and abs(float(base) - float(avg)) > 0.01 * float(avg))
    gaps = np.diff(table.pts)
    if len(gaps) < 2:
        return False
    # a millisecond time base stores 30 fps as gaps of 33 and 34 ticks: allow one tick and 1 %
    tolerance = max(1.0, 0.01 * table.frame_ticks)
    return bool(np.any(np.abs(gaps - table.frame_ticks) > tolerance))


def _damage_note(table: FrameTable) -> str | None:
    if table.damage is None:
        return None
    return f"{table.damage}; frames readable up to {table.readable_end_sec:.2f} s"


def _keyframe_interval(table: FrameTable) -> float | None:
    if not table.is_exact or len(table.key_pts) < 2:
        return None
    return float(np.median(np.diff(table.key_pts)) * table.time_base)


def _audio_info(container: InputContainer, stream: Stream) -> AudioStreamInfo:
    ctx = stream.codec_context
    return AudioStreamInfo(
        codec=ctx.codec.canonical_name if ctx is not None else "unknown",
        sample_rate=int(ctx.sample_rate) if ctx is not None else 0,
        channels=int(ctx.layout.nb_channels) if ctx is not None else 0,
        duration_sec=declared_duration(container, stream),
    )


def ffmpeg_reason(err: BaseException) -> str:
    """FFmpeg's own words for an error, without PyAV's errno prefix and file name."""
    return getattr(err, "strerror", None) or str(err)
