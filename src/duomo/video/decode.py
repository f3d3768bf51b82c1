"""Decode video frames to uint8 RGB arrays with their exact timestamps, on PyAV.

``sample_*`` and ``decode_clip`` return a ``Clip``: they read the frame table (``probe.py``),
pick frames with the pure rules in ``sampling.py``, then seek to the keyframe before each pick
and decode only up to it. ``iter_frames`` streams a whole video with flat memory.

Conventions shared by every function here:

- Times are seconds from the container start (``pts * time_base - start_time``); for files
  written normally the first frame is at 0.0.
- ``frame_idx`` is the frame's position in presentation (timestamp) order among all frames of
  the video stream, counting from 0. It is exact when the file was scanned (up to
  ``probe.SCAN_MAX_BYTES``); for bigger files it is ``round((pts - first pts) * fps)``.
- Frames come back rotated as the file's display matrix says, so their size matches
  ``probe``'s width and height; ``size=(w, h)`` and ``short_side`` apply after rotation.
  Only frames that are returned are colour-converted and resized (one ``sws_scale`` each).
- Requests past the end: a window or time range is clipped to the video's duration; one that
  starts at or after the end raises MediaError naming the duration. A frame index past the
  last frame raises MediaError naming the frame count.
- ``fast=True`` (keyframe snapping): instead of each exact pick, the keyframe nearest to it
  (it may lie outside a requested window), with that keyframe's true timestamp and index;
  only keyframe packets are decoded.
- Damaged files: what is readable is decoded; a request for a frame that cannot be decoded
  raises MediaError saying where decoding stopped and why. ``iter_frames`` yields the frames
  before the break, then raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
from av.container import InputContainer
from av.packet import Packet
from av.video.frame import VideoFrame
from av.video.reformatter import Interpolation, VideoReformatter
from av.video.stream import VideoStream
import numpy as np

from duomo.errors import MediaError
from duomo.video.probe import (
    MAX_PACKETS_WITHOUT_FRAME,
    FrameTable,
    container_origin,
    declared_duration,
    ffmpeg_reason,
    find_video_stream,
    open_container,
    read_frame_table,
    ticks_to_sec,
)
from duomo.video.sampling import (
    TIME_EPS_SEC,
    every_times,
    frames_at_times,
    nearest_indices,
    resized_shape,
    uniform_indices,
    window_indices,
)

# With no keyframe table (file too big to scan), seek only when the next target is this far
# ahead: closer targets are cheaper to reach by decoding on than by a seek to an unknown keyframe.
SEEK_AHEAD_SEC = 2.0

# swscale's area filter averages what it shrinks (no aliasing) and is faster than its
# bilinear; full input chroma keeps RGB-coded sources (ffv1 bgr0, PNG) exact at 2x, 4x, ...
# One thread per conversion: at 224x224 the frame is too small to split profitably.
RESIZE_FILTER = Interpolation.AREA | Interpolation.FULL_CHR_H_INP

# Keyframe packets held at once in fast mode (each can be ~0.5 MB for 720p).
KEYFRAME_BATCH = 16


@dataclass
class Clip:
    """Frames decoded from one video, in the order they were asked for.

    ``frames`` (T, H, W, 3) uint8 RGB; ``pts_sec`` (T,) float64 presentation time of each frame;
    ``frame_idx`` (T,) int64 position of each frame in presentation order (see module docs).
    """

    frames: np.ndarray
    pts_sec: np.ndarray
    frame_idx: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)


@dataclass
class Frame:
    """One frame from ``iter_frames``: ``image`` (H, W, 3) uint8 RGB, its time and index."""

    image: np.ndarray
    pts_sec: float
    frame_idx: int


class FrameView:
    """One decoded frame from ``iter_frame_views``, not yet converted to RGB.

    ``rgb(size=..., short_side=...)`` converts it at that output size on demand, so a single
    decoding pass can feed several consumers (tiny frames for shot detection, thumbnails, OCR)
    and pays for colour conversion only for the frames and sizes it keeps. Valid until the
    iterator moves on.
    """

    def __init__(self, frame: VideoFrame, converters: dict[tuple, "_RgbConverter"]):
        self._frame = frame
        self._converters = converters
        self.pts_sec = 0.0
        self.frame_idx = 0

    @property
    def width(self) -> int:
        """Display width (after rotation), before any resize."""
        rotated = int(round(self._frame.rotation)) % 360 in (90, 270)
        return self._frame.height if rotated else self._frame.width

    @property
    def height(self) -> int:
        rotated = int(round(self._frame.rotation)) % 360 in (90, 270)
        return self._frame.width if rotated else self._frame.height

    def rgb(self, *, size: tuple[int, int] | None = None, short_side: int | None = None) -> np.ndarray:
        """(H, W, 3) uint8 RGB at ``size=(w, h)``, or scaled to ``short_side``, or as decoded."""
        key = (size, short_side)
        convert = self._converters.get(key)
        if convert is None:
            convert = self._converters[key] = _RgbConverter(size, short_side)
        return convert(self._frame)


def decode_clip(
    path: str | Path,
    *,
    num_frames: int = 8,
    start_sec: float | None = None,
    end_sec: float | None = None,
    size: tuple[int, int] | None = None,
    short_side: int | None = None,
    fast: bool = False,
) -> Clip:
    """``num_frames`` frames spread uniformly over ``[start_sec, end_sec)`` (default: all of it).

    The entry point for a manifest row. See ``sample_window`` and ``sample_uniform``.
    """
    if start_sec is None and end_sec is None:
        return sample_uniform(path, num_frames, size=size, short_side=short_side, fast=fast)
    return sample_window(
        path, start_sec or 0.0, end_sec, num_frames, size=size, short_side=short_side, fast=fast
    )


def sample_uniform(
    path: str | Path,
    num_frames: int,
    *,
    size: tuple[int, int] | None = None,
    short_side: int | None = None,
    fast: bool = False,
) -> Clip:
    """``num_frames`` frames at the centres of equal segments of the whole video.

    Frame k is ``floor((k + 0.5) * N / num_frames)`` of the video's N frames; more frames than
    N repeat frames. ``fast=True`` returns the keyframe nearest each pick instead (true pts).
    """
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    def pick(pts_sec: np.ndarray, video_end_sec: float) -> np.ndarray:
        return uniform_indices(len(pts_sec), num_frames)

    return _sample(path, pick, size, short_side, fast)


def sample_every(
    path: str | Path,
    seconds: float | None = None,
    fps: float | None = None,
    *,
    start_sec: float = 0.0,
    end_sec: float | None = None,
    size: tuple[int, int] | None = None,
    short_side: int | None = None,
    fast: bool = False,
) -> Clip:
    """The frame on screen at ``start, start + step, ...`` before ``end_sec`` (default: the end).

    Give the step as ``seconds`` or as a rate ``fps`` (step = 1 / fps). The frame on screen at t
    is the last one with pts <= t, so a step shorter than a frame repeats frames.
    """
    if (seconds is None) == (fps is None):
        raise ValueError("give exactly one of seconds or fps")
    if (seconds if seconds is not None else fps) <= 0:
        raise ValueError(f"the step must be positive, got seconds={seconds}, fps={fps}")
    step_sec = seconds if seconds is not None else 1.0 / fps

    _check_range(start_sec, end_sec)

    def pick(pts_sec: np.ndarray, video_end_sec: float) -> np.ndarray:
        start, end = _clip_range(path, start_sec, end_sec, video_end_sec)
        return frames_at_times(pts_sec, every_times(start, end, step_sec))

    return _sample(path, pick, size, short_side, fast)


def sample_window(
    path: str | Path,
    start_sec: float,
    end_sec: float | None,
    num_frames: int,
    *,
    size: tuple[int, int] | None = None,
    short_side: int | None = None,
    fast: bool = False,
) -> Clip:
    """``num_frames`` frames spread uniformly over those with ``start_sec <= pts < end_sec``.

    The window is clipped to the video (``end_sec=None`` means the end); a window shorter than a
    frame repeats the frame on screen at ``start_sec``.
    """
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")

    _check_range(start_sec, end_sec)

    def pick(pts_sec: np.ndarray, video_end_sec: float) -> np.ndarray:
        start, end = _clip_range(path, start_sec, end_sec, video_end_sec)
        return window_indices(pts_sec, start, end, num_frames)

    return _sample(path, pick, size, short_side, fast)


def sample_keyframes(
    path: str | Path,
    *,
    max_frames: int | None = None,
    size: tuple[int, int] | None = None,
    short_side: int | None = None,
) -> Clip:
    """Every keyframe (or ``max_frames`` of them, spread uniformly), decoding nothing else.

    For files too big to scan the keyframes are not listed; then the keyframes nearest
    ``max_frames`` uniform times come back (``max_frames`` is required there).
    """
    container = open_container(path)
    try:
        stream = find_video_stream(container, path)
        table = read_frame_table(container, stream, path)
        if not table.is_exact:
            if max_frames is None:
                raise MediaError(path, "too big to list every keyframe; pass max_frames")
            times = table.pts[uniform_indices(len(table.pts), max_frames)]
            return _decode_keyframes(container, stream, table, times, _RgbConverter(size, short_side), path)
        keys = table.key_pts
        if max_frames is not None and max_frames < len(keys):
            keys = keys[uniform_indices(len(keys), max_frames)]
        return _decode_keyframes(container, stream, table, keys, _RgbConverter(size, short_side), path)
    finally:
        container.close()


def decode_frames(
    path: str | Path,
    frame_idx: Sequence[int] | np.ndarray,
    *,
    size: tuple[int, int] | None = None,
    short_side: int | None = None,
) -> Clip:
    """Exactly the frames at these presentation-order indices (repeats allowed, any order)."""
    wanted = np.asarray(frame_idx, dtype=np.int64)
    if wanted.ndim != 1 or len(wanted) == 0:
        raise ValueError("frame_idx must be a non-empty 1-D sequence")
    if wanted.min() < 0:
        raise ValueError(f"frame indices must be >= 0, got {int(wanted.min())}")
    return _sample(path, lambda pts_sec, video_end_sec: wanted, size, short_side, fast=False)


def iter_frames(
    path: str | Path,
    *,
    every_sec: float | None = None,
    start_sec: float = 0.0,
    end_sec: float | None = None,
    size: tuple[int, int] | None = None,
    short_side: int | None = None,
) -> Iterator[Frame]:
    """Stream frames in time order, holding one decoded frame at a time (flat memory).

    Every frame with ``start_sec <= pts < end_sec``; with ``every_sec``, the frame on screen at
    ``start, start + every_sec, ...`` instead (the same frames ``sample_every`` picks). Reads
    from the keyframe before ``start_sec``. On damaged data, yields the frames before the
    break and then raises MediaError.
    """
    _check_range(start_sec, end_sec)
    if every_sec is not None and every_sec <= 0:
        raise ValueError(f"every_sec must be positive, got {every_sec}")
    container = open_container(path)
    try:
        stream = find_video_stream(container, path)
        convert = _RgbConverter(size, short_side)
        yield from _stream_frames(container, stream, path, every_sec, start_sec, end_sec, convert)
    finally:
        container.close()


def iter_frame_views(
    path: str | Path, *, start_sec: float = 0.0, end_sec: float | None = None, skip_loop_filter: bool = False
) -> Iterator[FrameView]:
    """Every frame with ``start_sec <= pts < end_sec``, in time order, as an unconverted
    ``FrameView`` (one decoded frame held at a time). Errors as ``iter_frames``.

    ``skip_loop_filter`` skips the codec's deblocking filter (H.264/HEVC): about 1.6x faster
    decoding of 720p H.264, at the price of slight blockiness, which analysis (shots, OCR,
    thumbnails) does not mind. Frames are then no longer bit-exact.
    """
    _check_range(start_sec, end_sec)
    container = open_container(path)
    converters: dict[tuple, _RgbConverter] = {}
    try:
        stream = find_video_stream(container, path)
        if skip_loop_filter:
            stream.codec_context.options = {**stream.codec_context.options, "skip_loop_filter": "all"}
        for frame in _stream_frames(container, stream, path, None, start_sec, end_sec,
                                    lambda raw: FrameView(raw, converters)):
            view = frame.image
            view.pts_sec, view.frame_idx = frame.pts_sec, frame.frame_idx
            yield view
    finally:
        container.close()


# --- frame selection -------------------------------------------------------------------------


def _sample(
    path: str | Path,
    pick: Callable[[np.ndarray, float], np.ndarray],
    size: tuple[int, int] | None,
    short_side: int | None,
    fast: bool,
) -> Clip:
    """Open ``path``, pick frame indices from its timestamps, decode them into a Clip.

    ``pick(pts_sec, end_sec)`` gets every frame's time (N,) and the time the video ends, and
    returns the wanted indices (T,). For a damaged file the times run on past the readable
    frames (at the usual rate, up to the declared duration) so a pick there is reported.
    """
    convert = _RgbConverter(size, short_side)  # checks the size arguments before any I/O
    container = open_container(path)
    try:
        stream = find_video_stream(container, path)
        table = read_frame_table(container, stream, path)
        pts_sec = _expected_pts_sec(table)
        idx = pick(pts_sec, float(pts_sec[0]) + table.duration_sec)
        if len(idx) == 0:
            raise MediaError(path, "no frames in the requested range")
        if idx.max() >= len(pts_sec):
            raise MediaError(
                path, f"frame {int(idx.max())} requested but the video has {len(pts_sec)} frames "
                f"({table.duration_sec:.2f} s)"
            )
        if idx.max() >= len(table.pts):
            missing = float(pts_sec[idx.max()])
            raise MediaError(path, f"decoding stopped at {table.readable_end_sec:.2f} s: {table.damage}; "
                             f"the frame at {missing:.2f} s is beyond it")
        if fast:
            return _decode_nearest_keyframes(container, stream, table, table.pts[idx], convert, path)
        return _decode_exact(container, stream, table, table.pts[idx], convert, path)
    finally:
        container.close()


def _expected_pts_sec(table: FrameTable) -> np.ndarray:
    """(N',) times of every frame the video should have: the readable ones, then for a damaged
    file a continuation at the usual frame rate up to the declared duration."""
    pts_sec = table.pts_sec
    if table.damage is None:
        return pts_sec
    step = table.frame_ticks * float(table.time_base)
    end = float(pts_sec[0]) + table.duration_sec
    tail = np.arange(float(pts_sec[-1]) + step, end - TIME_EPS_SEC, step)
    return np.concatenate([pts_sec, tail])


def _check_range(start_sec: float, end_sec: float | None) -> None:
    if start_sec < 0:
        raise ValueError(f"start_sec must be >= 0, got {start_sec}")
    if end_sec is not None and end_sec <= start_sec:
        raise ValueError(f"end_sec ({end_sec}) must be after start_sec ({start_sec})")


def _clip_range(
    path: str | Path, start_sec: float, end_sec: float | None, video_end_sec: float
) -> tuple[float, float]:
    """``[start, end)`` clipped to the video; MediaError when it starts at or after the end."""
    if start_sec >= video_end_sec - TIME_EPS_SEC:
        raise MediaError(path, _past_end(start_sec, video_end_sec))
    return start_sec, min(end_sec if end_sec is not None else video_end_sec, video_end_sec)


# --- decoding --------------------------------------------------------------------------------


def _decode_exact(
    container: InputContainer, stream: VideoStream, table: FrameTable, wanted_pts: np.ndarray,
    convert: _RgbConverter, path: str | Path,
) -> Clip:
    """Decode the frames with these timestamps (T,), in the order given, repeats allowed.

    Visits targets in time order; seeks to a target's keyframe only when that keyframe lies
    ahead of what is already decoded, otherwise decodes on (one pass for dense targets).
    """
    targets = np.unique(wanted_pts)
    # with a guessed table, a target is "the first frame from half a frame before it on"
    tolerance = 0 if table.is_exact else table.frame_ticks // 2
    images: dict[int, tuple[np.ndarray, int]] = {}
    state = _DecodeState(frame_ticks=table.frame_ticks)
    stream.codec_context.skip_frame = "DEFAULT"
    position: int | None = None  # pts of the last frame decoded since the last seek
    step_back = 0  # keyframes to step back when a seek lands after its target
    i = 0
    while i < len(targets):
        target = int(targets[i])
        seek_pts = _seek_point(table, target, step_back)
        if _should_seek(table, target, position):
            _seek(container, stream, seek_pts, path)
            position = None
        for frame in _decoded_frames(container, stream, state):
            landed_late = position is None and frame.pts > target + tolerance
            if landed_late and table.is_exact and seek_pts > table.pts[0]:
                step_back += 1  # the seek landed past the target (imprecise index): go back further
                break
            while i < len(targets) and frame.pts >= int(targets[i]) - tolerance:
                if table.is_exact and frame.pts > int(targets[i]):
                    where = _sec(table, position if position is not None else seek_pts)
                    reason = state.error or "the decoder dropped a frame"
                    raise MediaError(path, f"decoding stopped at {where}: {reason}; "
                                     f"the frame at {_sec(table, int(targets[i]))} cannot be decoded")
                images[int(targets[i])] = (convert(frame), frame.pts)
                i += 1
            position = frame.pts
            if i == len(targets) or _should_seek(table, int(targets[i]), position):
                break  # done, or the next target is cheaper to reach by seeking
        else:
            where = _sec(table, position if position is not None else seek_pts)
            raise MediaError(path, f"decoding stopped at {where}: {state.error or 'the data ends'} "
                             f"before the frame at {_sec(table, target)}")
        if i < len(targets) and step_back > 3:
            raise MediaError(path, f"cannot decode the frame at {_sec(table, target)}: decoding from the "
                             f"keyframes before it starts after it ({state.error or 'imprecise seek index'})")
        if position is not None:
            step_back = 0
    return _assemble(table, wanted_pts, images)


def _decode_nearest_keyframes(
    container: InputContainer, stream: VideoStream, table: FrameTable, wanted_pts: np.ndarray,
    convert: _RgbConverter, path: str | Path,
) -> Clip:
    """Fast mode: for each wanted timestamp (T,), the keyframe nearest to it, with its true pts."""
    if not table.is_exact:
        return _decode_keyframes(container, stream, table, wanted_pts, convert, path)
    nearest = table.key_pts[nearest_indices(table.key_pts, wanted_pts)]
    return _decode_keyframes(container, stream, table, nearest, convert, path)


def _decode_keyframes(
    container: InputContainer, stream: VideoStream, table: FrameTable, key_pts: np.ndarray,
    convert: _RgbConverter, path: str | Path,
) -> Clip:
    """Decode only keyframes: one seek and one packet per distinct entry of ``key_pts``.

    With an exact table ``key_pts`` are keyframe timestamps; with a guessed one they are times,
    and each gives the keyframe at or before it. Returns them in the given order.

    The keyframe packets are gathered first and then decoded back to back: keyframes depend on
    nothing, so the decoder's frame threads work on several at once (8 keyframes of the 720p
    bench clip: 0.13 s on two free cores against 0.25 s one at a time).
    """
    ctx = stream.codec_context
    images: dict[int, tuple[np.ndarray, int]] = {}
    wanted = [int(k) for k in np.unique(key_pts)]
    for batch_start in range(0, len(wanted), KEYFRAME_BATCH):
        batch = wanted[batch_start : batch_start + KEYFRAME_BATCH]
        packets = {key: _find_keyframe_packet(container, stream, key, table, path) for key in batch}
        by_pts = {packet.pts: key for key, packet in packets.items()}
        ctx.skip_frame = "NONKEY"
        try:
            frames = [f for packet in packets.values() for f in ctx.decode(packet)] + ctx.decode(None)
        except av.error.FFmpegError:
            frames = []  # decode them one by one below, to say which one is broken
        finally:
            ctx.flush_buffers()  # leave the decoder reusable after the drain
        for frame in frames:
            if frame.pts in by_pts:
                images[by_pts[frame.pts]] = (convert(frame), frame.pts)
        for key in batch:
            if key not in images:  # not produced in the batch: one more try on its own
                frame = _decode_single(stream, packets[key], table, path)
                images[key] = (convert(frame), frame.pts)
    ctx.skip_frame = "DEFAULT"
    return _assemble(table, key_pts, images)


def _find_keyframe_packet(
    container: InputContainer, stream: VideoStream, key: int, table: FrameTable, path: str | Path
) -> Packet:
    """Seek and return the packet of the keyframe at ``key`` (guessed table: the first one
    reached from the keyframe at or before ``key``)."""
    _seek(container, stream, key, path)
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                break
            if not packet.is_keyframe or packet.pts is None:
                continue
            if not table.is_exact or packet.pts == key:
                return packet
            if packet.pts > key:
                break  # went past it: the keyframe is not where the table says
    except av.error.FFmpegError as err:
        raise MediaError(path, f"reading stopped at {_sec(table, key)}: {ffmpeg_reason(err)}") from None
    raise MediaError(path, f"decoding stopped at {_sec(table, key)}: no keyframe there")


def _decode_single(stream: VideoStream, packet: Packet, table: FrameTable, path: str | Path) -> VideoFrame:
    """Decode one keyframe packet on its own (drained out of the reorder buffer)."""
    ctx = stream.codec_context
    try:
        frames = ctx.decode(packet) + ctx.decode(None)
    except av.error.FFmpegError as err:
        raise MediaError(path, f"decoding stopped at {_sec(table, packet.pts)}: {ffmpeg_reason(err)}") from None
    finally:
        ctx.flush_buffers()
    if not frames:
        where = _sec(table, packet.pts)
        raise MediaError(path, f"decoding stopped at {where}: the keyframe decodes to nothing")
    if frames[0].pts is None:
        frames[0].pts = packet.pts
    return frames[0]


def _stream_frames(
    container: InputContainer, stream: VideoStream, path: str | Path, every_sec: float | None,
    start_sec: float, end_sec: float | None, convert: Callable[[VideoFrame], object],
) -> Iterator[Frame]:
    """The body of ``iter_frames``: one forward pass, one decoded frame held at a time."""
    time_base = float(stream.time_base)
    origin = container_origin(container)
    origin_sec = float(origin)
    declared_sec = declared_duration(container, stream)  # an upper bound on the end, own clock
    stop_sec = end_sec if end_sec is not None else np.inf
    state = _DecodeState(frame_ticks=_nominal_ticks(stream))
    if start_sec > 0:
        _seek(container, stream, int(np.floor((start_sec + origin_sec) / time_base)), path)
    next_idx: int | None = 0 if start_sec == 0 else None  # after a seek: counted once, then on
    k = 0  # every_sec: index of the next sampling time start_sec + k * every_sec
    held = None  # every_sec: (av frame, pts_sec, frame_idx) decoded last, on screen until the next
    num_yielded = 0
    last_sec = gap_sec = None

    for frame in _decoded_frames(container, stream, state, stop_on_error=True):
        t = ticks_to_sec(frame.pts, stream.time_base, origin)
        gap_sec, last_sec = (t - last_sec if last_sec is not None else None), t
        if next_idx is None:
            next_idx = _count_frames_before(path, frame.pts)
        current, next_idx = (frame, t, next_idx), next_idx + 1
        if every_sec is None:
            if t >= stop_sec - TIME_EPS_SEC:
                return
            if t >= start_sec - TIME_EPS_SEC:
                num_yielded += 1
                yield Frame(convert(frame), t, current[2])
            continue
        # the held frame is the one on screen at every sampling time before this frame's pts
        while (when := start_sec + k * every_sec) < stop_sec - TIME_EPS_SEC and t > when + TIME_EPS_SEC:
            source = held if held is not None else current  # times before the first frame get it
            num_yielded += 1
            yield Frame(convert(source[0]), source[1], source[2])
            k += 1
        if when >= stop_sec - TIME_EPS_SEC:
            return
        held = current

    if state.error is not None:
        where = f"{last_sec:.2f} s" if last_sec is not None else f"{start_sec:.2f} s"
        raise MediaError(path, f"decoding stopped at {where}: {state.error}")
    if last_sec is None:
        raise MediaError(path, f"no video frames decoded from {start_sec:.2f} s on")
    video_end_sec = last_sec + (gap_sec or state.frame_ticks * time_base)
    # the last frame stays on screen until the video ends: it serves the remaining times
    times_end_sec = min(stop_sec, video_end_sec) - TIME_EPS_SEC
    while held is not None and start_sec + k * every_sec < times_end_sec:
        num_yielded += 1
        yield Frame(convert(held[0]), held[1], held[2])
        k += 1
    slack_sec = 2 * (gap_sec or 0) + 0.05
    declared_end = None if declared_sec is None else min(declared_sec, stop_sec + origin_sec)
    if declared_end is not None and video_end_sec + origin_sec < declared_end - slack_sec:
        raise MediaError(path, f"decoding stopped at {video_end_sec:.2f} s: the data ends before the "
                         f"declared duration {declared_sec:.2f} s (file truncated or corrupt)")
    if num_yielded == 0 and start_sec >= video_end_sec - TIME_EPS_SEC:
        raise MediaError(path, _past_end(start_sec, video_end_sec))


@dataclass
class _DecodeState:
    """What a pass of ``_decoded_frames`` learned: why it stopped early, if it did."""

    frame_ticks: int
    error: str | None = None
    last_pts: int | None = None


def _decoded_frames(
    container: InputContainer, stream: VideoStream, state: _DecodeState, stop_on_error: bool = False
) -> Iterator[VideoFrame]:
    """Decoded frames from the current position to the end of the stream, in pts order.

    Never raises for bad data; the reason is kept in ``state.error``. A packet that fails to
    decode is skipped, or with ``stop_on_error`` ends the pass after draining the frames that
    precede it from the decoder. A demuxer error, or ``MAX_PACKETS_WITHOUT_FRAME`` packets in a
    row without a frame, ends the pass. Frames without a pts get the previous one's plus a frame.
    """
    packets_without_frame = 0
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.error.FFmpegError as err:
            state.error = f"cannot read further: {ffmpeg_reason(err)}"
            return
        try:
            frames = stream.decode(packet)  # the empty packets at the end drain the decoder
        except av.error.FFmpegError as err:
            bad_pts = packet.pts
            where = f" (packet at {float(bad_pts * packet.time_base):.2f} s)" if bad_pts is not None else ""
            state.error = state.error or f"{ffmpeg_reason(err)}{where}"  # the first error is the cause
            if not stop_on_error:
                frames = []
            else:
                # frames decoded before the bad packet may still sit in the reorder/thread queue
                try:
                    frames = stream.decode(None)
                except av.error.FFmpegError:
                    frames = []
                for frame in frames:
                    if frame.pts is not None and (bad_pts is None or frame.pts < bad_pts):
                        state.last_pts = frame.pts
                        yield frame
                return
        if not frames:
            packets_without_frame += 1
            if packets_without_frame > MAX_PACKETS_WITHOUT_FRAME:
                state.error = f"no frame decoded from {MAX_PACKETS_WITHOUT_FRAME} packets in a row"
                return
            continue
        packets_without_frame = 0
        for frame in frames:
            if frame.pts is None:
                frame.pts = state.last_pts + state.frame_ticks if state.last_pts is not None else 0
            state.last_pts = frame.pts
            yield frame


def _seek_point(table: FrameTable, target: int, step_back: int) -> int:
    """Timestamp to seek to for ``target``: the keyframe at or before it (``step_back`` more
    keyframes earlier); with no keyframe list, the target itself (the seek goes back to one)."""
    if len(table.key_pts) == 0:
        return target
    k = int(np.searchsorted(table.key_pts, target, side="right")) - 1 - step_back
    return int(table.key_pts[max(k, 0)])


def _should_seek(table: FrameTable, target: int, position: int | None) -> bool:
    """Seek (rather than decode on from ``position``) when that skips frames: the target's
    keyframe lies ahead of the position, or with no keyframe list, the target is far ahead."""
    if position is None:
        return True
    if len(table.key_pts) == 0:
        return (target - position) * float(table.time_base) > SEEK_AHEAD_SEC
    return _seek_point(table, target, 0) > position


def _seek(container: InputContainer, stream: VideoStream, pts: int, path: str | Path) -> None:
    """Seek to the keyframe at or before ``pts`` (stream ticks); flushes the decoder."""
    try:
        container.seek(pts, stream=stream, backward=True)
    except av.error.FFmpegError as err:
        raise MediaError(path, f"cannot seek to pts {pts}: {ffmpeg_reason(err)}") from None


def _assemble(table: FrameTable, wanted_pts: np.ndarray, images: dict[int, tuple[np.ndarray, int]]) -> Clip:
    """Stack decoded images into a Clip in the order of ``wanted_pts`` (T,)."""
    picked = [images[int(p)] for p in wanted_pts]
    true_pts = np.array([p for _, p in picked], dtype=np.int64)
    if table.is_exact:
        frame_idx = np.searchsorted(table.pts, true_pts)
    else:
        frame_idx = np.round((true_pts - table.pts[0]) / table.frame_ticks)
    return Clip(
        frames=np.stack([image for image, _ in picked]),
        pts_sec=ticks_to_sec(true_pts, table.time_base, table.origin),
        frame_idx=frame_idx.astype(np.int64),
    )


def _count_frames_before(path: str | Path, pts: int) -> int:
    """How many frames precede ``pts``: counts packets from the start (no decoding, O(1) memory)."""
    container = open_container(path)
    try:
        stream = find_video_stream(container, path)
        count = 0
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard or packet.pts is None:
                continue
            if packet.dts is not None and packet.dts >= pts:
                break  # later packets have pts >= dts >= pts: none of them precede it
            count += packet.pts < pts
        return count
    finally:
        container.close()


def _past_end(start_sec: float, video_end_sec: float) -> str:
    return f"requested start {start_sec:.2f} s is past the end of the video ({video_end_sec:.2f} s)"


def _nominal_ticks(stream: VideoStream) -> int:
    """One frame at the header's rate, in stream ticks."""
    rate = stream.average_rate or stream.base_rate or 25
    return max(1, round(1 / (float(rate) * float(stream.time_base))))


def _sec(table: FrameTable, pts: int) -> str:
    return f"{ticks_to_sec(pts, table.time_base, table.origin):.2f} s"



class _RgbConverter:
    """Turns decoded frames into (H, W, 3) uint8 RGB at the output size, rotated for display.

    One reformatter (and so one cached SwsContext) serves every frame; the output size is
    fixed by the first frame, so a mid-stream resolution change still gives same-sized frames.
    """

    def __init__(self, size: tuple[int, int] | None, short_side: int | None):
        resized_shape(1, 1, size, short_side)  # validate early
        self.size, self.short_side = size, short_side
        self.reformatter = VideoReformatter()
        self.out_wh: tuple[int, int] | None = None
        self.rotation = 0

    def __call__(self, frame: VideoFrame) -> np.ndarray:
        if self.out_wh is None:
            self.rotation = int(round(frame.rotation)) % 360
            if self.rotation not in (90, 180, 270):
                self.rotation = 0
            width, height = frame.width, frame.height
            if self.rotation in (90, 270):
                width, height = height, width
            self.out_wh = resized_shape(width, height, self.size, self.short_side)
        out_w, out_h = self.out_wh
        if self.rotation in (90, 270):
            out_w, out_h = out_h, out_w  # scale in the stored orientation, then turn
        rgb = self.reformatter.reformat(
            frame, width=out_w, height=out_h, format="rgb24", interpolation=RESIZE_FILTER, threads=1
        ).to_ndarray()
        if self.rotation:
            rgb = np.ascontiguousarray(np.rot90(rgb, self.rotation // 90))
        return rgb
