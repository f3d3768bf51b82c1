"""Burn subtitles into a video: draw each cue's lines onto the frames it covers, re-encode the
video (H.264), and copy the audio streams packet for packet."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import logging
from pathlib import Path

import av
import numpy as np

from duomo.errors import DuomoError, MediaError
from duomo.subtitles.cues import Cue
from duomo.subtitles.partial import partial_file
from duomo.video.probe import container_origin, ffmpeg_reason, open_container, read_rotation

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Overlay:
    """A cue's text rendered once: placed at (x, y) of the frame, ``alpha`` (h, w) float32 in
    [0, 1], ``color`` (h, w, 3) float32."""

    x: int
    y: int
    alpha: np.ndarray
    color: np.ndarray


def render_cue(text: str, size: tuple[int, int], *, font_size: int | None = None) -> Overlay:
    """``text`` (lines split at ``"\\n"``) as white letters with a black outline on a
    translucent dark box, centred near the bottom of a (W, H) frame. The font is Pillow's
    bundled scalable one, ``font_size`` pixels (default: a sixteenth of the height), smaller
    when the longest line would be wider than 90 % of the frame."""
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        raise DuomoError("burning subtitles needs Pillow: pip install duomo[subtitles]") from None
    width, height = size
    font_size = font_size or max(12, height // 16)
    font = ImageFont.load_default(size=font_size)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    stroke = max(1, font_size // 12)
    left, top, right, bottom = probe.multiline_textbbox((0, 0), text, font=font, align="center", stroke_width=stroke)
    if right - left > 0.9 * width:
        font_size = max(8, int(font_size * 0.9 * width / (right - left)))
        font = ImageFont.load_default(size=font_size)
        stroke = max(1, font_size // 12)
        left, top, right, bottom = probe.multiline_textbbox((0, 0), text, font=font, align="center",
                                                            stroke_width=stroke)
    pad = font_size // 3
    box_w = min(width, int(np.ceil(right - left)) + 2 * pad)
    box_h = min(height, int(np.ceil(bottom - top)) + 2 * pad)
    image = Image.new("RGBA", (box_w, box_h), (0, 0, 0, 150))
    ImageDraw.Draw(image).multiline_text((pad - left, pad - top), text, font=font, fill=(255, 255, 255, 255),
                                         align="center", stroke_width=stroke, stroke_fill=(0, 0, 0, 255))
    pixels = np.asarray(image, np.float32)
    x = (width - box_w) // 2
    y = max(0, height - box_h - height // 14)
    return Overlay(x, y, pixels[..., 3] / 255.0, pixels[..., :3])


def draw_overlay(frame: np.ndarray, overlay: Overlay) -> np.ndarray:
    """``frame`` (H, W, 3) uint8 with ``overlay`` alpha-blended in, as a new array."""
    out = frame.copy()
    h, w = overlay.alpha.shape
    region = out[overlay.y : overlay.y + h, overlay.x : overlay.x + w].astype(np.float32)
    alpha = overlay.alpha[..., None]
    out[overlay.y : overlay.y + h, overlay.x : overlay.x + w] = np.round(
        region * (1 - alpha) + overlay.color * alpha).astype(np.uint8)
    return out


def burn_subtitles(video: str | Path, cues: Sequence[Cue], out: str | Path, *, crf: int = 18,
                   font_size: int | None = None) -> Path:
    """Write ``out``: ``video`` with each cue drawn on the frames whose time t (seconds from the
    container start) has start <= t < end, re-encoded as H.264 (``crf``; yuv420p); its audio
    streams are copied unchanged. Written to a temporary file and renamed, so ``out`` is
    complete or absent. A rotated video (phone portrait) is turned upright first, so the text
    reads upright, and written without a rotation flag. Raises MediaError for a file without
    video or that cannot be read or written.
    """
    video, out = Path(video), Path(out)
    if out.resolve() == video.resolve():
        raise MediaError(out, "the output would overwrite the input video; choose another file")
    cues = sorted(cues, key=lambda cue: cue.start_sec)
    overlays: dict[str, Overlay] = {}
    with partial_file(out) as tmp:
        source = open_container(video)
        try:
            if not source.streams.video:
                raise MediaError(video, "no video stream to draw subtitles on")
            in_video = source.streams.video[0]
            origin = float(container_origin(source))
            rotation = read_rotation(source, in_video, video)  # degrees counter-clockwise
            size = (in_video.codec_context.width, in_video.codec_context.height)
            if rotation in (90, 270):
                size = size[::-1]
            try:
                target = av.open(str(tmp), "w")
            except (av.error.FFmpegError, ValueError) as err:
                raise MediaError(out, f"cannot write this kind of file: {err}") from None
            try:
                out_video = target.add_stream("libx264", rate=in_video.average_rate or 25,
                                              options={"crf": str(crf)})
                out_video.width, out_video.height = size
                out_video.pix_fmt = "yuv420p"
                out_video.codec_context.time_base = in_video.time_base
                audio_pairs = {s.index: target.add_stream_from_template(s) for s in source.streams.audio}
                num_frames = 0
                for packet in source.demux(in_video, *source.streams.audio):
                    if packet.stream.type == "audio":
                        if packet.dts is not None:
                            packet.stream = audio_pairs[packet.stream.index]
                            target.mux(packet)
                        continue
                    for frame in packet.decode():
                        t = float(frame.pts * frame.time_base) - origin if frame.pts is not None else 0.0
                        image = frame.to_ndarray(format="rgb24")
                        if rotation:
                            image = np.ascontiguousarray(np.rot90(image, rotation // 90))
                        for cue in cues:
                            if cue.start_sec <= t < cue.end_sec and cue.text.strip():
                                if cue.text not in overlays:
                                    overlays[cue.text] = render_cue(cue.text, size, font_size=font_size)
                                image = draw_overlay(image, overlays[cue.text])
                        new = av.VideoFrame.from_ndarray(image, format="rgb24")
                        new.pts, new.time_base = frame.pts, frame.time_base
                        target.mux(out_video.encode(new))
                        num_frames += 1
                target.mux(out_video.encode(None))
            except av.error.FFmpegError as err:
                raise MediaError(video, f"burning subtitles failed: {ffmpeg_reason(err)}") from None
            finally:
                target.close()
        finally:
            source.close()
    logger.debug("burned %d cues into %d frames of %s", len(cues), num_frames, out)
    return out
