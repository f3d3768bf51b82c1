"""Subtitles and dubbing on a generated talking video: speed and how well each round trip holds.

    .venv/bin/python bench/subtitles.py            # 12 sentences, ~70 s of video at 640x360
    .venv/bin/python bench/subtitles.py --quick    # 3 sentences (smoke test)

1. ``subtitle``: recognize the speech (Whisper tiny.en, one thread) and cut cues; word error
   rate of the cues against the script, cue counts and limits.
2. ``burn``: draw the cues into the video (H.264 re-encode, audio copied); x real time.
3. ``dub``: speak a different script (joe voice) into the same slots, replacing the original
   under speech; then recognize the dubbed file: word error rate against the new script, and how
   far each cue's first recognized word starts from its slot; x real time.

One round (each step is seconds long and deterministic apart from timing). Results go to
bench/out/subtitles.json (quick: subtitles_quick.json) and, as one JSON line, to stdout's end.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import sys
import time


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.helpers, bench.speech_ocr
from duomo.eval.metrics import word_error_rate  # noqa: E402
from duomo.speech import SpeechRecognizer  # noqa: E402
from duomo.subtitles import Cue, make_cues, write_srt  # noqa: E402
from duomo.subtitles.burn import burn_subtitles  # noqa: E402
from duomo.subtitles.dub import dub_video  # noqa: E402
from bench.speech_ocr import SENTENCES  # noqa: E402
from tests.helpers.talking import make_talking_video  # noqa: E402

OUT_DIR = Path(__file__).resolve().parent / "out"
ORIGINAL = SENTENCES[:12]  # the speech bench's sentences: the same test speech for both benches
TRANSLATED = [  # what a translation might say in the same slots (about as long)
    "Good morning, the sun is out and we will walk along the water.",
    "Open the kitchen window before you begin to cook the evening meal.",
    "Every night after work my brother practises his guitar.",
    "The city train departs at nine thirty from platform two.",
    "Last summer she gave the old fence a coat of bright green paint.",
    "Buy milk, bread and twelve eggs at the shop, please.",
    "On the beach the children made a big sand castle.",
    "Go left at the church; the library is then on the right.",
    "He left his umbrella on the bus and came home wet through.",
    "The meeting is now on Thursday afternoon in the big room.",
    "Most of the day the cat sleeps on the warm window ledge.",
    "The wind pushed the leaves over the empty school yard.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 3 if args.quick else len(ORIGINAL)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    work = OUT_DIR / "subtitles"
    work.mkdir(exist_ok=True)
    speech = [(0.5 + 6.0 * i, ORIGINAL[i]) for i in range(n)]
    duration = 6.0 * n + 1.0
    talking = make_talking_video(work / "talk.mp4", speech=speech, duration_sec=duration)
    recognizer = SpeechRecognizer()
    result: dict = {"sentences": n, "duration_sec": duration}

    start = time.perf_counter()
    cues = make_cues(recognizer.transcribe(talking.path))
    result["subtitle_sec"] = time.perf_counter() - start
    result["subtitle_wer"] = word_error_rate(talking.transcript(), " ".join(c.spoken_text for c in cues))
    result["num_cues"] = len(cues)
    result["longest_line"] = max(len(line) for c in cues for line in c.lines)
    result["cue_sec_min_max"] = [min(c.duration_sec for c in cues), max(c.duration_sec for c in cues)]
    write_srt(cues, work / "talk.srt")

    start = time.perf_counter()
    burn_subtitles(talking.path, cues, work / "burned.mp4")
    result["burn_sec"] = time.perf_counter() - start

    script = [Cue(line.start_sec, line.end_sec + 0.3, TRANSLATED[i]) for i, line in enumerate(talking.speech)]
    start = time.perf_counter()
    placed = dub_video(talking.path, script, work / "dubbed.mp4", mix="replace", use_variation=False)
    result["dub_sec"] = time.perf_counter() - start
    result["speedups"] = [p.speedup for p in placed]
    segments = recognizer.transcribe(work / "dubbed.mp4")
    result["dub_wer"] = word_error_rate(" ".join(TRANSLATED[:n]), " ".join(s.text for s in segments))
    words = [w for s in segments for w in s.words]
    offsets = []
    for cue in script:
        heard = [w.start_sec for w in words if cue.start_sec - 0.5 <= w.start_sec < cue.end_sec]
        offsets.append(round(min(heard) - cue.start_sec, 3) if heard else None)
    result["dub_first_word_offsets_sec"] = offsets
    result["load_average"] = os.getloadavg()[0]

    print(f"{n} sentences, {duration:.0f} s of 640x360 video; load average {result['load_average']:.2f}")
    print(f"subtitle (ASR + cues): {result['subtitle_sec']:.1f} s ({duration / result['subtitle_sec']:.1f}x real "
          f"time), WER {result['subtitle_wer']:.3f}, {len(cues)} cues, longest line {result['longest_line']} chars, "
          f"cues {result['cue_sec_min_max'][0]:.2f}-{result['cue_sec_min_max'][1]:.2f} s")
    print(f"burn: {result['burn_sec']:.1f} s ({duration / result['burn_sec']:.1f}x real time)")
    print(f"dub: {result['dub_sec']:.1f} s ({duration / result['dub_sec']:.1f}x real time), "
          f"{sum(s > 1 for s in result['speedups'])} of {n} sped up (max {max(result['speedups']):.2f}x); "
          f"ASR of the dub: WER {result['dub_wer']:.3f}, first-word offsets "
          f"{offsets}, max |offset| {max(abs(o) for o in offsets if o is not None):.2f} s")
    name = "subtitles_quick.json" if args.quick else "subtitles.json"
    (OUT_DIR / name).write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
