"""Decode benchmark: duomo.video against `ffmpeg -threads 2 -f null` and its own floors.

    .venv/bin/python bench/decode.py            # 60 s 1280x720 30 fps H.264, GOP 250
    .venv/bin/python bench/decode.py --quick    # 10 s 640x360 clip, fewer repeats (smoke test)

The clip is generated once and cached under bench/out/. Every figure is the median of a few
runs, measured in the same process run as its baseline; results go to bench/out/decode.json
and, as one JSON line, to the end of stdout.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import shutil
import statistics
import subprocess
import sys
import time

import av
import numpy as np

from duomo.video import iter_frames, sample_every, sample_uniform
from duomo.video.encode import write_video
from duomo.video.probe import find_video_stream, open_container, read_frame_table
from duomo.video.sampling import nearest_indices, uniform_indices

OUT_DIR = Path(__file__).resolve().parent / "out"
SIZE = (224, 224)


def make_clip(path: Path, seconds: int, width: int, height: int, fps: int = 30, gop: int = 250) -> Path:
    """H.264 clip with real texture and motion: a drifting noise texture, moving gradients and
    an inverted square sweeping across, so the encoder (and decoder) do real work."""
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    pad = 256
    coarse = rng.integers(0, 256, ((height + pad) // 4 + 1, (width + pad) // 4 + 1), dtype=np.uint8)
    texture = np.repeat(np.repeat(coarse, 4, 0), 4, 1)[: height + pad, : width + pad] // 2
    texture = texture + rng.integers(0, 128, texture.shape, dtype=np.uint8)
    ramp = (np.arange(width + 2 * 512) % 512 // 2).astype(np.uint8)  # horizontal sawtooth
    diag = ((np.arange(height)[:, None] // 2 + np.arange(width)[None, :] // 4) % 256).astype(np.uint8)

    def frames():
        for i in range(seconds * fps):
            t = i / fps
            ox, oy = int(pad / 2 + pad / 2.5 * np.sin(0.7 * t)), int(pad / 2 + pad / 2.5 * np.cos(0.5 * t))
            red = texture[oy : oy + height, ox : ox + width]
            green = np.broadcast_to(ramp[(4 * i) % 512 : (4 * i) % 512 + width], (height, width))
            blue = (diag + np.uint8((3 * i) % 256)) // 2 + red // 2
            frame = np.stack([red, green, blue], axis=-1)
            x, y = (7 * i) % (width - width // 6), int(height / 3 + height / 5 * np.sin(t))
            frame[y : y + height // 6, x : x + width // 6] = 255 - frame[y : y + height // 6, x : x + width // 6]
            yield frame

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.mp4")
    write_video(partial, frames(), fps, codec="libx264", crf=23, gop=gop, options={"preset": "medium"})
    partial.rename(path)
    return path


def median_time(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs (after one untimed warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ffmpeg_null(path: Path) -> None:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-threads", "2", "-i", str(path), "-f", "null", "-"], check=True
    )


def full_decode_rgb(path: Path) -> int:
    return sum(1 for _ in iter_frames(path, size=SIZE))


def decode_only(path: Path) -> int:
    """Every frame decoded, none converted: the floor of any full pass (same threading)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def keyframe_floor(path: Path, num_frames: int) -> int:
    """The floor of exact sampling: for each target, seek to its preceding keyframe and decode
    up to it without colour conversion (one pass per keyframe visited; targets sharing a GOP
    are decoded in one go). The frame table needed to plan it is not timed."""
    container = open_container(path)
    try:
        stream = find_video_stream(container, path)
        table = read_frame_table(container, stream, path)
        targets = table.pts[uniform_indices(len(table.pts), num_frames)]
        keys = table.key_pts[np.searchsorted(table.key_pts, targets, side="right") - 1]
        decoded = 0
        for key in np.unique(keys):
            last = int(targets[keys == key].max())
            container.seek(int(key), stream=stream)
            for frame in container.decode(stream):
                decoded += 1
                if frame.pts >= last:
                    break
        return decoded
    finally:
        container.close()


def keyframe_packets_floor(path: Path, num_frames: int) -> int:
    """The floor of fast mode: decode just the keyframe packets it needs (found beforehand,
    not timed), back to back. Bounded by the keyframes' share of the bitstream."""
    container = open_container(path)
    try:
        stream = find_video_stream(container, path)
        table = read_frame_table(container, stream, path)
        targets = table.pts_sec[uniform_indices(len(table.pts), num_frames)]
        keys = np.unique(table.key_pts[nearest_indices(table.key_pts_sec, targets)])
        packets = []
        for key in keys:
            container.seek(int(key), stream=stream)
            packets.append(next(p for p in container.demux(stream) if p.is_keyframe))
        ctx = stream.codec_context
        ctx.skip_frame = "NONKEY"
        start = time.perf_counter()
        frames = [f for p in packets for f in ctx.decode(p)] + ctx.decode(None)
        elapsed = time.perf_counter() - start
        key_bytes = sum(p.size for p in packets)
        return elapsed, len(frames), key_bytes
    finally:
        container.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short 640x360 clip, fewer repeats")
    parser.add_argument("--repeats", type=int, default=None, help="runs per figure (median taken)")
    args = parser.parse_args()
    if args.quick:
        clip = make_clip(OUT_DIR / "bench_quick_10s_360p.mp4", seconds=10, width=640, height=360, gop=60)
        repeats_long, repeats_short = args.repeats or 1, args.repeats or 3
    else:
        clip = make_clip(OUT_DIR / "bench_60s_720p.mp4", seconds=60, width=1280, height=720)
        repeats_long, repeats_short = args.repeats or 3, args.repeats or 5
    if shutil.which("ffmpeg") is None:
        sys.exit("bench/decode.py needs the ffmpeg CLI for its baseline")

    t_ffmpeg = median_time(lambda: ffmpeg_null(clip), repeats_long)
    t_decode = median_time(lambda: decode_only(clip), repeats_long)
    t_full = median_time(lambda: full_decode_rgb(clip), repeats_long)
    t_every = median_time(lambda: sample_every(clip, seconds=1.0, size=SIZE), repeats_long)
    t_floor8 = median_time(lambda: keyframe_floor(clip, 8), repeats_short)
    t_exact8 = median_time(lambda: sample_uniform(clip, 8, size=SIZE), repeats_short)
    t_floor32 = median_time(lambda: keyframe_floor(clip, 32), repeats_short)
    t_exact32 = median_time(lambda: sample_uniform(clip, 32, size=SIZE), repeats_short)
    t_fast8 = median_time(lambda: sample_uniform(clip, 8, size=SIZE, fast=True), repeats_short)
    key_runs = [keyframe_packets_floor(clip, 8) for _ in range(repeats_short)]
    t_keyfloor8 = statistics.median(run[0] for run in key_runs)
    key_share = key_runs[0][2] / clip.stat().st_size

    # (figure, seconds, baseline name, baseline seconds, target ratio or None)
    rows = [
        ("ffmpeg -threads 2 -f null", t_ffmpeg, "", None, None),
        ("decode only, no conversion", t_decode, "ffmpeg", t_ffmpeg, None),
        ("full decode -> RGB 224x224", t_full, "ffmpeg", t_ffmpeg, 1.5),
        ("1 frame/s (sample_every)", t_every, "full decode", t_full, 1.1),
        ("", t_every, "decode only", t_decode, 1.1),
        ("exact 8 frames floor", t_floor8, "", None, None),
        ("exact 8 frames", t_exact8, "its floor", t_floor8, 1.2),
        ("exact 32 frames floor", t_floor32, "", None, None),
        ("exact 32 frames", t_exact32, "its floor", t_floor32, None),
        ("fast keyframes, 8 frames", t_fast8, "full decode", t_full, 1 / 20),
        ("", t_fast8, "decode only", t_decode, 1 / 20),
        ("fast floor: 8 keyframe pkts", t_keyfloor8, "decode only", t_decode, None),
    ]
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        clip_desc = (f"{clip.name}: {stream.width}x{stream.height}, {stream.frames} frames, "
                     f"{float(stream.duration * stream.time_base):.0f} s, the 8 sampled keyframes hold "
                     f"{100 * key_share:.1f}% of the file's bytes")
    print(clip_desc)
    print(f"{'figure':<30} {'seconds':>8}  {'vs':<12} {'ratio':>7}  {'target':>7}  result")
    results = []
    for name, seconds, base_name, base, target in rows:
        ratio = seconds / base if base else None
        verdict = "" if target is None else ("PASS" if ratio <= target else "FAIL")
        target_text = "" if target is None else (f"<={target:.2f}" if target >= 1 else f"<=1/{1 / target:.0f}")
        ratio_text = "" if ratio is None else f"{ratio:.3f}"
        print(f"{name:<30} {seconds:>8.3f}  {base_name:<12} {ratio_text:>7}  {target_text:>7}  {verdict}")
        results.append({"figure": name or results[-1]["figure"], "seconds": round(seconds, 4),
                        "baseline": base_name or None, "ratio": None if ratio is None else round(ratio, 4),
                        "target": target, "pass": None if target is None else bool(ratio <= target)})
    report = {"clip": clip_desc, "quick": args.quick, "repeats": [repeats_long, repeats_short], "results": results}
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / ("decode_quick.json" if args.quick else "decode.json")).write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
