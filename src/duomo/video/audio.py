"""Decode a file's audio to a mono float32 waveform at a chosen sample rate, on PyAV.

Works on any audio stream of a video and on audio-only files alike; times are seconds from
the container start, the same timeline as the video frames in ``decode.py``.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from duomo.errors import MediaError
from duomo.video.probe import (
    MAX_PACKETS_WITHOUT_FRAME,
    container_origin,
    declared_duration,
    ffmpeg_reason,
    open_container,
)


def decode_audio(
    path: str | Path,
    sample_rate: int = 16000,
    start_sec: float | None = None,
    end_sec: float | None = None,
    *,
    stream_index: int = 0,
) -> np.ndarray:
    """Audio stream ``stream_index`` (counting audio streams only; default the first) of
    ``path`` as a mono waveform: (S,) float32, about [-1, 1].

    Channels are mixed down and the sound resampled to ``sample_rate`` (libswresample).
    ``start_sec`` / ``end_sec`` cut ``[start, end)`` to the sample: sample i is at time
    ``start + i / sample_rate`` and S = round((end - start) * sample_rate) when the audio covers
    the range. An end past the audio is clipped to it; a start at or past it raises MediaError
    naming the duration. Raises MediaError when there is no audio stream or the data cannot be
    decoded (saying where decoding stopped).
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    start = float(start_sec or 0.0)
    if start < 0:
        raise ValueError(f"start_sec must be >= 0, got {start_sec}")
    if end_sec is not None and end_sec <= start:
        raise ValueError(f"end_sec ({end_sec}) must be after start_sec ({start})")
    container = open_container(path)
    try:
        if not container.streams.audio:
            kinds = ", ".join(s.type for s in container.streams)
            raise MediaError(path, f"no audio stream (has: {kinds})")
        if not 0 <= stream_index < len(container.streams.audio):
            raise MediaError(path, f"no audio stream {stream_index} (it has {len(container.streams.audio)})")
        stream = container.streams.audio[stream_index]
        if stream.codec_context is None:
            raise MediaError(path, "no decoder for its audio codec")
        origin_sec = float(container_origin(container))
        time_base = float(stream.time_base)
        if start > 0:
            try:
                container.seek(int(np.floor((start + origin_sec) / time_base)), stream=stream)
            except av.error.FFmpegError as err:
                raise MediaError(path, f"cannot seek to {start:.2f} s: {ffmpeg_reason(err)}") from None

        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks: list[np.ndarray] = []
        num_samples = 0
        first_sec: float | None = None  # time of the first decoded sample
        stop_samples = None  # once the first frame is in: samples needed to reach end_sec
        packets_without_frame = 0
        for packet in container.demux(stream):
            try:
                frames = stream.decode(packet)
            except av.error.FFmpegError as err:
                where = first_sec + num_samples / sample_rate if first_sec is not None else start
                raise MediaError(path, f"audio decoding stopped at {where:.2f} s: {ffmpeg_reason(err)}") from None
            packets_without_frame = 0 if frames else packets_without_frame + 1
            if packets_without_frame > MAX_PACKETS_WITHOUT_FRAME:
                raise MediaError(path, f"no audio decoded from {MAX_PACKETS_WITHOUT_FRAME} packets in a row")
            for frame in frames:
                if first_sec is None:
                    first_sec = frame.pts * time_base - origin_sec if frame.pts is not None else start
                    if end_sec is not None:
                        stop_samples = int(np.ceil((end_sec - first_sec) * sample_rate))
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    num_samples += chunks[-1].size
            if stop_samples is not None and num_samples >= stop_samples + sample_rate // 10:
                break  # past end_sec, with room for the resampler's delay
        for out in resampler.resample(None):  # flush what the resampler holds back
            chunks.append(out.to_ndarray().reshape(-1))
        if first_sec is None and start == 0:
            raise MediaError(path, "the audio stream has no decodable samples")
        audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
        first_sec = start if first_sec is None else first_sec  # nothing after a seek past the end

        # sample i is at time start + i / sample_rate: cut what precedes start (a seek lands
        # before it), pad with silence where the stream itself starts later
        offset = round((start - first_sec) * sample_rate)
        audio = audio[offset:] if offset >= 0 else np.concatenate([np.zeros(-offset, np.float32), audio])
        if audio.size == 0:
            duration = declared_duration(container, stream)
            total = f" ({duration:.2f} s)" if duration is not None else ""
            raise MediaError(path, f"requested start {start:.2f} s is past the end of the audio{total}")
        if end_sec is not None:
            audio = audio[: round((end_sec - start) * sample_rate)]
        return np.ascontiguousarray(audio, dtype=np.float32)
    finally:
        container.close()
