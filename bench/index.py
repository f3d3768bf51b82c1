"""Index benchmark: how much faster than real time ``duomo index`` reads a long 720p video with
speech and on-screen text, what each stage costs, and whether memory stays flat in length.

    .venv/bin/python bench/index.py                 # 10 min 1280x720 30 fps clip (generated once, a few minutes)
    .venv/bin/python bench/index.py --minutes 2     # a shorter clip (smoke test)

The clip (bench/out/index-<minutes>min.mp4) has scenes that cut every 15-40 s (gradients with a
grainy texture the camera pans across, a moving shape), a caption line drawn on screen that changes every 6 s, and a sentence
spoken (Piper voice "joe") every 8 s. A quarter-length clip made the same way is the memory
baseline. Each configuration runs ``index_paths`` in a fresh process into a fresh library,
round-robin over rounds, and reports wall time, speed (video seconds per second), the summed
worker time per stage, and the peak resident memory of the run's processes:

- ``full``: shots, thumbnails, visual descriptors, on-screen text, speech, MiniLM, the store;
- ``no speech/ocr``: the same without speech and on-screen text;
- ``full, quarter length``: the memory baseline (flat memory: peak within 1.25x of it).

Targets: full >= 5x real time, no speech/ocr >= 25x. Results go to bench/out/index.json and, as
one JSON line, to the end of stdout.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

OUT_DIR = Path(__file__).resolve().parent / "out"
FPS = 30
SIZE = (1280, 720)
SAMPLE_RATE = 16000
TARGET_FULL = 5.0
TARGET_LIGHT = 25.0
TARGET_MEMORY_RATIO = 1.25
SENTENCES = [
    "Welcome back to the channel, today we cook a simple tomato soup.",
    "The market opened higher this morning after the news on interest rates.",
    "Remember to check the weather before you leave for the mountains.",
    "Our next guest has spent ten years studying river dolphins.",
    "Press the red button twice to start the machine.",
    "The final score was three goals to one for the home team.",
    "Mix the flour and the butter until the dough feels smooth.",
    "Traffic on the northern bridge is moving slowly because of the rain.",
    "This museum holds the largest collection of old maps in the country.",
    "Thanks for watching, and see you next week for another lesson.",
]
CAPTIONS = ["BREAKING NEWS", "MARKET UPDATE", "TOMATO SOUP", "RIVER DOLPHINS", "SPORTS TONIGHT", "WEATHER ALERT",
            "CITY TRAFFIC", "OLD MAPS", "LESSON FOUR", "SEE YOU SOON"]


def make_clip(path: Path, seconds: float, seed: int = 0) -> Path:
    """The benchmark clip (see the module docs); written once."""
    import cv2

    from duomo.speech.tts import synthesize_many
    from duomo.video.encode import write_video

    rng = np.random.default_rng(seed)
    num_frames = int(seconds * FPS)
    cuts = [0]
    while cuts[-1] < num_frames:
        cuts.append(cuts[-1] + int(rng.uniform(15, 40) * FPS))
    scenes = []
    pan = 8 * FPS  # the camera pans 1 px a frame (wrapping every 8 s of width), so the codec really works
    for n in range(len(cuts) - 1):
        top, bottom = rng.integers(20, 200, 3), rng.integers(20, 200, 3)
        ramp = np.linspace(0, 1, SIZE[1], dtype=np.float32)[:, None, None]
        base = (top * (1 - ramp) + bottom * ramp).astype(np.float32)  # (H, 1, 3)
        texture = rng.normal(0, 14, (SIZE[1] // 4, (SIZE[0] + pan) // 4, 1)).astype(np.float32)
        texture = np.kron(texture, np.ones((4, 4, 1), np.float32))  # (H, W + pan, 1), 4 px grain
        scenes.append(np.clip(base + texture, 0, 255).astype(np.uint8))

    def frames():
        scene = 0
        for i in range(num_frames):
            while i >= cuts[scene + 1]:
                scene += 1
            offset = (i - cuts[scene]) % pan
            frame = np.ascontiguousarray(scenes[scene][:, offset:offset + SIZE[0]])
            t = i / FPS
            x = int((SIZE[0] - 200) * (0.5 + 0.5 * np.sin(t * 0.7 + scene)))
            y = int((SIZE[1] - 300) * (0.5 + 0.5 * np.cos(t * 0.5 + scene)))
            frame[y:y + 120, x:x + 160] = (230, 230, 60)
            caption = CAPTIONS[int(t // 6) % len(CAPTIONS)]
            cv2.rectangle(frame, (60, 600), (1220, 690), (15, 15, 15), -1)
            cv2.putText(frame, caption, (90, 665), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (255, 255, 255), 4, cv2.LINE_AA)
            yield frame

    lines = synthesize_many(SENTENCES, voice="joe", sample_rate=SAMPLE_RATE, use_variation=False)
    audio = np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)
    for k, start in enumerate(np.arange(1.0, seconds - 6.0, 8.0)):
        spoken = lines[k % len(lines)][0][: int(6.5 * SAMPLE_RATE)]
        at = int(start * SAMPLE_RATE)
        audio[at:at + len(spoken)] += spoken[: len(audio) - at]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.mp4")
    write_video(tmp, frames(), FPS, codec="libx264", crf=23, gop=250, audio=audio, sample_rate=SAMPLE_RATE,
                options={"preset": "veryfast"})
    tmp.replace(path)
    return path


RUNNER = r"""
import json, resource, sys, time
from duomo.library.analyze import IndexSettings
from duomo.library.index import index_paths
video, db, speech, ocr = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4] == "1"
report = index_paths([video], db, settings=IndexSettings(use_speech=speech, use_ocr=ocr))
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"report": report.to_dict(), "peak_rss_mb": max(own, children) / 1024,
                  "parent_rss_mb": own / 1024, "worker_rss_mb": children / 1024}))
"""


def run_once(video: Path, speech: bool, ocr: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", RUNNER, str(video), str(Path(tmp) / "db"),
                              "1" if speech else "0", "1" if ocr else "0"], capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"index run failed:\n{out.stderr[-3000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
    report = result["report"]
    if report["failed"]:
        raise SystemExit(f"index run failed: {report['failed']}")
    result["speed_x"] = report["video_seconds"] / report["seconds"]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    seconds = args.minutes * 60
    clip = OUT_DIR / f"index-{args.minutes:g}min.mp4"
    quarter = OUT_DIR / f"index-{args.minutes / 4:g}min.mp4"
    for path, length in ((clip, seconds), (quarter, seconds / 4)):
        if not path.exists():
            print(f"generating {path.name} ({length:.0f} s of 720p with speech and captions) ...", flush=True)
            make_clip(path, length)
    configs = {"full": (clip, True, True), "no speech/ocr": (clip, False, False),
               "full, quarter length": (quarter, True, True)}
    runs: dict[str, list[dict]] = {name: [] for name in configs}
    for round_idx in range(args.rounds):
        for name, (video, speech, ocr) in configs.items():
            result = run_once(video, speech, ocr)
            runs[name].append(result)
            print(f"round {round_idx + 1} {name}: {result['report']['seconds']:.1f} s, "
                  f"{result['speed_x']:.1f}x real time, peak {result['peak_rss_mb']:.0f} MB", flush=True)

    summary = {}
    for name, results in runs.items():
        stages: dict[str, float] = {}
        for key in results[0]["report"]["stage_seconds"]:
            stages[key] = statistics.median(r["report"]["stage_seconds"].get(key, 0.0) for r in results)
        total = sum(stages.values()) or 1.0
        summary[name] = {
            "video_sec": results[0]["report"]["video_seconds"],
            "wall_sec": statistics.median(r["report"]["seconds"] for r in results),
            "speed_x": statistics.median(r["speed_x"] for r in results),
            "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in results),
            "stage_sec": stages, "stage_share": {k: v / total for k, v in stages.items()},
        }
    memory_ratio = summary["full"]["peak_rss_mb"] / summary["full, quarter length"]["peak_rss_mb"]
    result = {"minutes": args.minutes, "rounds": args.rounds, "configs": summary, "memory_ratio_4x_length": memory_ratio,
              "pass": {"full_5x": summary["full"]["speed_x"] >= TARGET_FULL,
                       "light_25x": summary["no speech/ocr"]["speed_x"] >= TARGET_LIGHT,
                       "flat_memory": memory_ratio <= TARGET_MEMORY_RATIO}}
    print()
    print("| configuration | video | wall | speed | peak memory | target |")
    print("|---|---|---|---|---|---|")
    targets = {"full": f">= {TARGET_FULL:g}x", "no speech/ocr": f">= {TARGET_LIGHT:g}x",
               "full, quarter length": "memory baseline"}
    for name, s in summary.items():
        print(f"| {name} | {s['video_sec']:.0f} s | {s['wall_sec']:.1f} s | {s['speed_x']:.1f}x | "
              f"{s['peak_rss_mb']:.0f} MB | {targets[name]} |")
    print(f"\npeak memory at 4x the length: {memory_ratio:.2f}x (flat: <= {TARGET_MEMORY_RATIO})")
    print("\nshare of worker time per stage (full):")
    for key, share in sorted(summary["full"]["stage_share"].items(), key=lambda kv: -kv[1]):
        print(f"  {key:>12}: {100 * share:5.1f}%  ({summary['full']['stage_sec'][key]:.1f} s)")
    (OUT_DIR / "index.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
