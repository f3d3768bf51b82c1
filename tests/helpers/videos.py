"""Generated test media: clips whose frames say which frame they are, plus broken copies.

``make_video`` writes losslessly by default (ffv1 in .mkv, bgr0: bit-exact RGB), so decoding
tests compare frames, counts and timestamps exactly; with a lossy codec ``read_index`` still
recovers which frame came back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from duomo.video.encode import write_audio, write_video

INDEX_BITS = 12
"""The "index" pattern stores the frame index in this many bars (frames 0..4095)."""


def index_frame(i: int, size: tuple[int, int]) -> np.ndarray:
    """Frame ``i`` of the "index" pattern: (H, W, 3) uint8 for ``size=(w, h)``.

    Green and blue carry the index in binary as ``INDEX_BITS`` vertical bars (bar b is white
    when bit b is set, else black), readable after lossy coding; red is flat ``16 * i % 256``.
    """
    width, height = size
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    frame[..., 0] = (16 * i) % 256
    for bit in range(INDEX_BITS):
        if (i >> bit) & 1:
            frame[:, bit * width // INDEX_BITS : (bit + 1) * width // INDEX_BITS, 1:] = 255
    return frame


def read_index(frame: np.ndarray) -> int:
    """The frame index an "index" frame (H, W, 3) shows, read from the middle of each bar."""
    height, width = frame.shape[:2]
    rows = frame[height // 4 : 3 * height // 4, :, 1].astype(np.float32)
    index = 0
    for bit in range(INDEX_BITS):
        lo, hi = bit * width // INDEX_BITS, (bit + 1) * width // INDEX_BITS
        centre = rows[:, lo + (hi - lo) // 4 : hi - (hi - lo) // 4]
        if centre.mean() > 128:
            index |= 1 << bit
    return index


def square_frame(i: int, size: tuple[int, int]) -> np.ndarray:
    """Frame ``i`` of the "square" pattern: a white square on black, moving right 2 px a frame
    and wrapping; its top-left start makes orientation visible."""
    width, height = size
    side = max(2, min(width, height) // 4)
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    x = (2 * i) % max(1, width - side)
    frame[:side, x : x + side] = 255
    return frame


PATTERNS = {"index": index_frame, "square": square_frame}


def expected_frames(num_frames: int, size: tuple[int, int], pattern: str = "index") -> np.ndarray:
    """The frames ``make_video`` writes: (T, H, W, 3) uint8."""
    return np.stack([PATTERNS[pattern](i, size) for i in range(num_frames)])


def make_video(
    path: str | Path,
    num_frames: int,
    fps: float,
    size: tuple[int, int] = (64, 48),
    pattern: str = "index",
    codec: str = "ffv1",
    **kw,
) -> Path:
    """Write ``num_frames`` frames of ``pattern`` at ``fps`` to ``path``; returns the path.

    ``kw`` goes to ``write_video`` (``gop``, ``pts_sec`` for variable frame rate, ``rotation``,
    ``audio``, ``crf``, ``pix_fmt``, ...). Frames are generated lazily, so long clips are cheap.
    """
    draw = PATTERNS[pattern]
    return write_video(path, (draw(i, size) for i in range(num_frames)), fps, codec=codec, **kw)


def tone(freq_hz: float, seconds: float, sample_rate: int, amplitude: float = 0.5) -> np.ndarray:
    """A sine wave: (round(seconds * sample_rate),) float32."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def make_audio(path: str | Path, freq_hz: float = 440.0, seconds: float = 1.0, sample_rate: int = 16000) -> Path:
    """An audio-only file holding a sine tone (codec chosen by the extension)."""
    return write_audio(path, tone(freq_hz, seconds, sample_rate), sample_rate)


def truncated_copy(src: str | Path, dst: str | Path, fraction: float = 0.5) -> Path:
    """Copy of ``src`` cut to ``fraction`` of its bytes."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * fraction)])
    return Path(dst)


def garbled_copy(src: str | Path, dst: str | Path, start: float = 0.5, num_bytes: int = 2048, seed: int = 0) -> Path:
    """Copy of ``src`` with ``num_bytes`` random bytes written over it from ``start`` (a fraction)."""
    data = bytearray(Path(src).read_bytes())
    at = int(len(data) * start)
    data[at : at + num_bytes] = np.random.default_rng(seed).integers(0, 256, num_bytes, dtype=np.uint8).tobytes()
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def garbled_mp4_payload(src: str | Path, dst: str | Path, seed: int = 0) -> Path:
    """Copy of an mp4 whose ``mdat`` payload (every frame's data) is random bytes; the index
    (``moov``) stays intact, so the file opens but no frame decodes."""
    data = bytearray(Path(src).read_bytes())
    at = data.index(b"mdat")
    size = int.from_bytes(data[at - 4 : at], "big")
    start, end = at + 4, at - 4 + size
    data[start:end] = np.random.default_rng(seed).integers(0, 256, end - start, dtype=np.uint8).tobytes()
    Path(dst).write_bytes(bytes(data))
    return Path(dst)
