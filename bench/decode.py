"""Decode benchmark: duomo.video against `ffmpeg -threads 2 -f null` and its own floors.

    .venv/bin/python bench/decode.py            # 60 s 1280x720 30 fps H.264, GOP 250
    .venv/bin/python bench/decode.py --quick    # 10 s 640x360 clip, one round (smoke test)

The clip is generated once and cached under bench/out/. All figures run round-robin in the same
process run (so each one and its baseline share the machine's load); times and ratios are
medians over rounds. Results go to bench/out/decode.json and, as one JSON line, to the end
of stdout.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
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


def measure_rounds(figures: dict[str, Callable[[], float | None]], rounds: int) -> dict[str, list[float]]:
    """Wall times of every figure, run round-robin ``rounds`` times after one untimed warm-up.

    Interleaving puts each figure and its baseline under the same load in every round (the
    machine is shared), so per-round ratios cancel most of the drift. A function that
    returns a number reports its own time (for floors that exclude their setup).
    """
    times: dict[str, list[float]] = {name: [] for name in figures}
    for round_idx in range(rounds + 1):
        for name, fn in figures.items():
            start = time.perf_counter()
            own = fn()
            elapsed = own if isinstance(own, float) else time.perf_counter() - start
            if round_idx > 0:
                times[name].append(elapsed)
    return times


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


def plan_keyframe_floor(path: Path, num_frames: int) -> list[tuple[int, int]]:
    """(keyframe pts, last target pts in its GOP) for the exact picks of ``sample_uniform``."""
    container = open_container(path)
    try:
        stream = find_video_stream(container, path)
        table = read_frame_table(container, stream, path)
    finally:
        container.close()
    targets = table.pts[uniform_indices(len(table.pts), num_frames)]
    keys = table.key_pts[np.searchsorted(table.key_pts, targets, side="right") - 1]
    return [(int(key), int(targets[keys == key].max())) for key in np.unique(keys)]


def keyframe_floor(path: Path, plan: list[tuple[int, int]]) -> int:
    """The floor of exact sampling: open the file, then for each keyframe in the plan seek to it
    and decode up to the last target it serves, without colour conversion. The frame table
    that plans it is read beforehand, untimed (sampling itself pays for it)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_type = "AUTO"
        decoded = 0
        for key, last in plan:
            container.seek(key, stream=stream)
            for frame in container.decode(stream):
                decoded += 1
                if frame.pts >= last:
                    break
        return decoded


def keyframe_packets_floor(path: Path, num_frames: int) -> tuple[float, int]:
    """The floor of fast mode: decode just the keyframe packets it needs (found beforehand,
    untimed), back to back. Returns (decode seconds, bytes of those packets): fast mode's cost
    is bounded by the keyframes' share of the bitstream."""
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
        assert len(frames) == len(packets)
        return time.perf_counter() - start, sum(p.size for p in packets)
    finally:
        container.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short 640x360 clip, one round (smoke test)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds of every figure (default 5, quick 1)")
    args = parser.parse_args()
    if args.quick:
        clip = make_clip(OUT_DIR / "bench_quick_10s_360p.mp4", seconds=10, width=640, height=360, gop=60)
        rounds = args.rounds or 1
    else:
        clip = make_clip(OUT_DIR / "bench_60s_720p.mp4", seconds=60, width=1280, height=720)
        rounds = args.rounds or 5
    if shutil.which("ffmpeg") is None:
        sys.exit("bench/decode.py needs the ffmpeg CLI for its baseline")

    plan8, plan32 = plan_keyframe_floor(clip, 8), plan_keyframe_floor(clip, 32)
    figures = {
        "ffmpeg": lambda: ffmpeg_null(clip),
        "decode": lambda: decode_only(clip),
        "full": lambda: full_decode_rgb(clip),
        "every": lambda: sample_every(clip, seconds=1.0, size=SIZE),
        "floor8": lambda: keyframe_floor(clip, plan8),
        "exact8": lambda: sample_uniform(clip, 8, size=SIZE),
        "floor32": lambda: keyframe_floor(clip, plan32),
        "exact32": lambda: sample_uniform(clip, 32, size=SIZE),
        "fast8": lambda: sample_uniform(clip, 8, size=SIZE, fast=True),
        "keyfloor8": lambda: keyframe_packets_floor(clip, 8)[0],
    }
    times = measure_rounds(figures, rounds)
    key_share = keyframe_packets_floor(clip, 8)[1] / clip.stat().st_size

    # (label, figure, baseline figure, target ratio or None)
    rows = [
        ("ffmpeg -threads 2 -f null", "ffmpeg", None, None),
        ("decode only, no conversion", "decode", "ffmpeg", None),
        ("full decode -> RGB 224x224", "full", "ffmpeg", 1.5),
        ("1 frame/s (sample_every)", "every", "full", 1.1),
        ("", "every", "decode", 1.1),
        ("exact 8 frames floor", "floor8", None, None),
        ("exact 8 frames", "exact8", "floor8", 1.2),
        ("exact 32 frames floor", "floor32", None, None),
        ("exact 32 frames", "exact32", "floor32", None),
        ("fast keyframes, 8 frames", "fast8", "full", 1 / 20),
        ("", "fast8", "decode", 1 / 20),
        ("fast floor: 8 keyframe pkts", "keyfloor8", "decode", None),
    ]
    base_names = {"ffmpeg": "ffmpeg", "decode": "decode only", "full": "full decode", "floor8": "its floor",
                  "floor32": "its floor"}
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        clip_desc = (f"{clip.name}: {stream.width}x{stream.height}, {stream.frames} frames, "
                     f"{float(stream.duration * stream.time_base):.0f} s, the 8 sampled keyframes hold "
                     f"{100 * key_share:.1f}% of the file's bytes")
    load = os.getloadavg()[0]
    print(clip_desc)
    print(f"load average after measuring: {load:.2f} on {os.cpu_count()} cores; medians of {rounds} interleaved rounds")
    print(f"{'figure':<30} {'seconds':>8}  {'vs':<12} {'ratio':>7}  {'target':>7}  result")
    results = []
    for label, figure, base, target in rows:
        seconds = statistics.median(times[figure])
        # the median of per-round ratios: figure and baseline ran under the same load
        ratio = statistics.median(t / b for t, b in zip(times[figure], times[base])) if base else None
        verdict = "" if target is None else ("PASS" if ratio <= target else "FAIL")
        target_text = "" if target is None else (f"<={target:.2f}" if target >= 1 else f"<=1/{1 / target:.0f}")
        ratio_text = "" if ratio is None else f"{ratio:.3f}"
        base_text = base_names.get(base, "") if base else ""
        print(f"{label:<30} {seconds:>8.3f}  {base_text:<12} {ratio_text:>7}  {target_text:>7}  {verdict}")
        results.append({"figure": label or results[-1]["figure"], "seconds": round(seconds, 4),
                        "baseline": base_text or None, "ratio": None if ratio is None else round(ratio, 4),
                        "target": target, "pass": None if target is None else bool(ratio <= target)})
    report = {"clip": clip_desc, "load_average": round(load, 2), "quick": args.quick, "rounds": rounds,
              "results": results}
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / ("decode_quick.json" if args.quick else "decode.json")).write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
