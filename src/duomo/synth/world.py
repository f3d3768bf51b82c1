"""Generate a SynthWorld set: sample each video's scene and language, render, encode, write the manifest.

Video i depends only on (config, i), never on other videos or on how indices are spread over
worker processes, so the same config always gives the same manifest and the same pictures.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from duomo.data.manifest import answer_balance, write_manifest
from duomo.synth.language import Annotation, annotate_scene
from duomo.synth.render import render_audio, render_frames
from duomo.synth.scene import SceneSpec, SynthConfig, sample_scene, scene_sounds
from duomo.video.encode import write_video

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"
CONFIG_NAME = "synth.yaml"


@dataclass(frozen=True)
class WorldSummary:
    """What ``generate_world`` wrote."""

    manifest_path: Path
    num_videos: int
    splits: dict[str, int]
    labels: dict[str, int]
    """Videos per primary label."""
    num_captions: int
    num_questions: int
    total_duration_sec: float
    elapsed_sec: float
    balance: dict[str, dict[str, Any]]
    """Answer balance per QA family, as ``duomo.data.manifest.answer_balance`` gives it."""


def sample_record(config: SynthConfig, index: int) -> tuple[SceneSpec, dict[str, Any]]:
    """Scene and manifest row of video ``index``, without rendering anything (fast)."""
    scene = sample_scene(config, index)
    return scene, build_record(scene, annotate_scene(scene, config), config)


def sample_records(config: SynthConfig, indices: Iterable[int] | None = None) -> list[dict[str, Any]]:
    """Manifest rows of many videos without rendering: for balance checks and previews."""
    indices = range(config.num_videos) if indices is None else indices
    return [sample_record(config, i)[1] for i in indices]


def build_record(scene: SceneSpec, annotation: Annotation, config: SynthConfig) -> dict[str, Any]:
    """The manifest row: the contract fields first, then the full ground truth (objects, events, sounds)."""
    return {
        "id": scene.video_id,
        "video": f"videos/{scene.video_id}.mp4",
        "split": scene.split,
        "captions": annotation.captions,
        "qa": [
            {"question": q.question, "answer": q.answer, "type": q.type, **({"choices": list(q.choices)} if q.choices else {})}
            for q in annotation.qa
        ],
        "labels": annotation.labels,
        "segments": [
            {"start": s.start_sec, "end": s.end_sec, "caption": s.caption, "action": s.action, "object": s.object_idx}
            for s in annotation.segments
        ],
        "shots": [shot.start_sec for shot in scene.shots],
        "dialog": [[{"question": t.question, "answer": t.answer, "type": t.type} for t in d] for d in annotation.dialog],
        "importance": importance_per_second(scene),
        "duration": scene.duration_sec,
        "fps": scene.fps,
        "num_frames": scene.num_frames,
        "width": scene.size,
        "height": scene.size,
        "sample_rate": config.sample_rate,
        "backgrounds": [shot.background for shot in scene.shots],
        "objects": [
            {"shot": o.shot_idx, "shape": o.shape, "color": o.color, "size": o.size, "x": o.x, "y": o.y,
             "angle": round(o.angle, 2), "noisy": o.is_noisy}
            for o in scene.objects
        ],
        "events": [
            {"object": idx, "action": e.action, "start": e.start_sec, "end": e.end_sec, "start_frame": e.start_idx,
             "end_frame": e.end_idx, **({"wall": e.wall} if e.wall else {}),
             **({"new_color": e.new_color} if e.new_color else {}), **({"amount": e.amount} if e.amount else {})}
            for idx, o in enumerate(scene.objects) for e in o.events
        ],
        "sounds": [
            {"time": s.time_sec, "frame": s.frame_idx, "object": s.object_idx, "pitch_hz": s.pitch_hz}
            for s in scene_sounds(scene)
        ],
    }


def importance_per_second(scene: SceneSpec) -> list[float]:
    """One score in [0, 1] per started second of video: higher where events happen.

    0.1 everywhere, + 0.6 x the share of the second covered by some event, + 0.2 x min(1,
    events overlapping it / 2), + 0.1 if a cut or a beep falls in it.
    """
    windows = sorted((e.start_sec, e.end_sec) for o in scene.objects for e in o.events)
    marks = [shot.start_sec for shot in scene.shots[1:]] + [s.time_sec for s in scene_sounds(scene)]
    scores = []
    for second in range(math.ceil(scene.duration_sec)):
        lo, hi = float(second), min(second + 1.0, scene.duration_sec)
        clipped = [(max(a, lo), min(b, hi)) for a, b in windows if a < hi and b > lo]
        covered, reach = 0.0, lo
        for a, b in clipped:  # length of the union of the (sorted) windows
            covered += max(0.0, b - max(a, reach))
            reach = max(reach, b)
        score = 0.1 + 0.6 * covered / (hi - lo) + 0.2 * min(1.0, len(clipped) / 2)
        score += 0.1 * any(lo <= m < hi for m in marks)
        scores.append(round(min(1.0, score), 3))
    return scores


# x264 with mb-tree rate control wrote different bytes (and sometimes pixels) for identical
# input in repeated runs here; without it the output repeats exactly. One encoder thread per
# process because the videos are already spread over processes.
X264_OPTIONS = {"preset": "veryfast", "threads": "1", "x264-params": "mbtree=0"}


def make_video(config: SynthConfig, out_dir: Path, index: int) -> dict[str, Any]:
    """Sample, render and encode video ``index`` into ``out_dir/videos``; returns its manifest row."""
    scene, record = sample_record(config, index)
    write_video(
        Path(out_dir) / record["video"], render_frames(scene), scene.fps, codec="libx264", crf=config.crf,
        audio=render_audio(scene, config.sample_rate), sample_rate=config.sample_rate, options=X264_OPTIONS,
    )
    return record


def _remove_stale_videos(out_dir: Path, kept: set[Path]) -> None:
    """Delete videos an earlier, larger run left in ``out_dir/videos`` (only SynthWorld names)."""
    for path in (out_dir / "videos").glob("v*.mp4"):
        if path not in kept and re.fullmatch(r"v\d{4,}\.mp4", path.name):
            path.unlink()
            logger.info("removed %s, left by an earlier run", path)


def _make_video_task(task: tuple[SynthConfig, Path, int]) -> tuple[int, dict[str, Any]]:
    config, out_dir, index = task
    return index, make_video(config, out_dir, index)


def generate_world(
    out_dir: str | Path,
    config: SynthConfig,
    *,
    workers: int = 1,
    on_progress: Callable[[int], None] | None = None,
) -> WorldSummary:
    """Write ``config.num_videos`` videos to ``out_dir/videos`` and ``out_dir/manifest.jsonl``.

    Args:
        workers: processes to render and encode in; the output does not depend on it. Workers
            are spawned, so a script calling this with workers > 1 needs the usual
            ``if __name__ == "__main__":`` guard.
        on_progress: called with the number of finished videos after each one.
    """
    out_dir = Path(out_dir)
    (out_dir / "videos").mkdir(parents=True, exist_ok=True)
    # an earlier run's manifest would describe videos this run is about to overwrite: a run
    # killed half-way must leave no manifest rather than a wrong one (it is written last)
    (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
    started = time.perf_counter()
    records: dict[int, dict[str, Any]] = {}
    tasks = [(config, out_dir, i) for i in range(config.num_videos)]
    if workers <= 1:
        for task in tasks:
            index, record = _make_video_task(task)
            records[index] = record
            if on_progress:
                on_progress(len(records))
    else:
        # spawn, not fork: the parent may run a progress-bar thread, which fork would copy mid-lock
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for index, record in pool.imap_unordered(_make_video_task, tasks, chunksize=4):
                records[index] = record
                if on_progress:
                    on_progress(len(records))
    rows = [records[i] for i in range(config.num_videos)]
    manifest_path = write_manifest(out_dir / MANIFEST_NAME, rows)
    _remove_stale_videos(out_dir, {out_dir / r["video"] for r in rows})
    (out_dir / CONFIG_NAME).write_text(yaml.safe_dump(asdict(config), sort_keys=False))
    elapsed = time.perf_counter() - started
    logger.info("wrote %d SynthWorld videos to %s in %.1f s", len(rows), out_dir, elapsed)
    return WorldSummary(
        manifest_path=manifest_path,
        num_videos=len(rows),
        splits=dict(Counter(r["split"] for r in rows)),
        labels=dict(Counter(r["labels"][0] for r in rows)),
        num_captions=sum(len(r["captions"]) for r in rows),
        num_questions=sum(len(r["qa"]) for r in rows),
        total_duration_sec=sum(r["duration"] for r in rows),
        elapsed_sec=elapsed,
        balance=answer_balance((qa["type"], qa["answer"]) for r in rows for qa in r["qa"]),
    )
