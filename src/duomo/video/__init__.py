"""Video I/O: probe, decode, sample, stream, extract audio, write; all on PyAV."""

from duomo.video.audio import decode_audio
from duomo.video.decode import (
    Clip,
    Frame,
    FrameView,
    decode_clip,
    decode_frames,
    iter_frame_views,
    iter_frames,
    sample_every,
    sample_keyframes,
    sample_uniform,
    sample_window,
)
from duomo.video.encode import write_audio, write_video
from duomo.video.probe import AudioStreamInfo, VideoInfo, probe

__all__ = [
    "AudioStreamInfo",
    "Clip",
    "Frame",
    "FrameView",
    "VideoInfo",
    "decode_audio",
    "decode_clip",
    "decode_frames",
    "iter_frame_views",
    "iter_frames",
    "probe",
    "sample_every",
    "sample_keyframes",
    "sample_uniform",
    "sample_window",
    "write_audio",
    "write_video",
]
