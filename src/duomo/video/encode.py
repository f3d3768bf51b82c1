"""Write frames (and an optional mono soundtrack) to a video file with PyAV.

Used by SynthWorld, the tests' clip factory and the benchmarks; no ffmpeg binary needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
import itertools
from fractions import Fraction
import os
from pathlib import Path

import av
import numpy as np

from duomo.errors import MediaError

# Codec -> the pixel format it is written in unless the caller says otherwise.
# ffv1 in bgr0 keeps RGB bit-exact (tests assert exact pixels on it).
DEFAULT_PIX_FMT = {
    "libx264": "yuv420p",
    "libx265": "yuv420p",
    "libvpx-vp9": "yuv420p",
    "libsvtav1": "yuv420p",
    "mpeg4": "yuv420p",
    "mjpeg": "yuvj420p",
    "ffv1": "bgr0",
}

# Container extension -> the audio codec written into it.
AUDIO_CODEC = {
    ".mp4": "aac", ".m4a": "aac", ".mov": "aac", ".mkv": "aac",
    ".webm": "libopus", ".ogg": "libopus", ".avi": "pcm_s16le", ".wav": "pcm_s16le",
}


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float,
    *,
    codec: str = "libx264",
    pix_fmt: str | None = None,
    crf: int | None = None,
    gop: int | None = None,
    pts_sec: Sequence[float] | None = None,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    options: dict[str, str] | None = None,
    rotation: int = 0,
) -> Path:
    """Encode RGB frames, each uint8 (H, W, 3), into ``path``; returns the path.

    Args:
        fps: nominal frame rate; frame i gets timestamp i / fps unless ``pts_sec`` is given.
        crf: constant-rate quality for x264/x265/vp9/av1 (0 = lossless where the codec has it).
        gop: keyframe interval in frames (and scene-cut keyframes off, so it is exact).
        pts_sec: explicit timestamps in seconds, one per frame (variable frame rate).
        audio: mono float32 waveform in [-1, 1] at ``sample_rate``, muxed as a second stream.
        rotation: display rotation in degrees counter-clockwise (what ``probe`` reads back as
            ``rotation``), stored as the stream's display matrix; the pixels are not turned.
    """
    path = Path(path)
    codec_pix_fmt = pix_fmt or DEFAULT_PIX_FMT.get(codec, "yuv420p")
    rate = Fraction(fps).limit_denominator(1001 * 1000)
    opts = dict(options or {})
    if crf is not None:
        opts["crf"] = str(crf)
    gop_params = f"keyint={gop}:min-keyint={gop}:scenecut=0" if gop is not None else ""
    if codec == "libx264":
        _prepend_params(opts, "x264-params", gop_params)
    if codec == "libx265":
        _prepend_params(opts, "x265-params", ":".join(p for p in (gop_params, "log-level=error") if p))

    if codec == "libsvtav1":
        # SVT-AV1 logs its configuration to stderr at info level unless told otherwise
        os.environ.setdefault("SVT_LOG", "1")
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise MediaError(path, "no frames to write")
    container = av.open(str(path), "w")
    try:
        height, width = first.shape[:2]
        time_base = Fraction(1, 1000) if pts_sec is not None else 1 / rate
        stream = container.add_stream(codec, rate=rate, options=opts)
        stream.width, stream.height, stream.pix_fmt = width, height, codec_pix_fmt
        stream.codec_context.time_base = time_base
        if gop is not None:
            stream.codec_context.gop_size = gop
        if rotation % 360:
            stream.set_display_rotation(rotation % 360)
        # every stream must exist before the first packet is muxed (the header is written then)
        audio_stream = _add_audio_stream(container, path, sample_rate) if audio is not None else None
        for i, frame in enumerate(itertools.chain([first], frames)):
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame, dtype=np.uint8), format="rgb24")
            seconds = pts_sec[i] if pts_sec is not None else i / rate
            video_frame.pts = round(Fraction(seconds).limit_denominator(10**6) / time_base)
            video_frame.time_base = time_base
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))
        if audio_stream is not None:
            _encode_audio(container, audio_stream, np.asarray(audio, dtype=np.float32), sample_rate)
    finally:
        container.close()
    return path


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int = 16000) -> Path:
    """Write a mono float32 waveform to an audio-only file (codec chosen by extension)."""
    path = Path(path)
    container = av.open(str(path), "w")
    try:
        stream = _add_audio_stream(container, path, sample_rate)
        _encode_audio(container, stream, np.asarray(audio, dtype=np.float32), sample_rate)
    finally:
        container.close()
    return path


def _prepend_params(opts: dict[str, str], key: str, params: str) -> None:
    """Put ``params`` before the caller's own ``opts[key]`` (``a=1:b=2`` lists), so both apply
    and the caller's win where they name the same parameter."""
    opts[key] = ":".join(p for p in (params, opts.get(key, "")) if p)
    if not opts[key]:
        del opts[key]


def _add_audio_stream(container, path: Path, sample_rate: int):
    """Add a mono audio stream whose codec suits the container of ``path``."""
    codec = AUDIO_CODEC.get(path.suffix.lower(), "aac")
    if codec == "libopus" and sample_rate not in (8000, 12000, 16000, 24000, 48000):
        raise MediaError(path, f"opus cannot store {sample_rate} Hz audio")
    return container.add_stream(codec, rate=sample_rate, layout="mono")


def _encode_audio(container, stream, audio: np.ndarray, sample_rate: int) -> None:
    """Encode a mono waveform in [-1, 1] into ``stream`` in codec-sized chunks."""
    chunk = stream.codec_context.frame_size or 1024
    fmt = stream.codec_context.format.name  # fltp for aac, flt for opus, s16 for pcm
    audio = np.clip(audio, -1.0, 1.0)
    for start in range(0, len(audio), chunk):
        block = audio[start : start + chunk]
        if len(block) < chunk and stream.codec_context.frame_size:
            block = np.pad(block, (0, chunk - len(block)))  # fixed-size codecs need full frames
        data = (block * 32767).astype(np.int16) if fmt.startswith("s16") else block
        frame = av.AudioFrame.from_ndarray(data[None, :], format=fmt, layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
