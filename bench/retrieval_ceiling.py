"""How high text-to-video R@1 can go on a SynthWorld split: many videos fit the same caption.

    .venv/bin/python bench/retrieval_ceiling.py                          # data/quality/world, test split, 160 samples
    .venv/bin/python bench/retrieval_ceiling.py --samples 40 --split val # quicker, another split

A caption names a few things about its video ("on a gray background, a red star spins"); another
video of the split with a gray background whose first deed is a red star spinning fits it as
well, and no model can tell which of the two the caption was written for. This script estimates
the R@1 of the best possible model, one that knows every video's content exactly: it re-draws
each video's captions ``--samples`` times with SynthWorld's own caption writer
(``duomo.synth.language``), its wording fixed (every choice among strings takes the first:
"disc" is "circle", "sinks" is "moves down", ", and after that" is ", then") and its content
left to chance (which events, which objects, whether a size is named). That gives P_j(c), how
often video j is described by canonical caption c. The best model ranks first the video with
the highest P_j(c) (ties shared), so its R@1 is the mean over videos i and their captions c ~ P_i
of [i is that video] / ties. Fixing the wording only merges captions that say the same thing;
with few samples rare captions look more telling than they are (160 samples: within 0.01 of 40).

Prints one JSON line: {"split", "videos", "samples", "ceiling_t2v_r1", "seconds"}; also written
to bench/out/retrieval_ceiling.json.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter, defaultdict
from pathlib import Path

import yaml

from duomo.synth import language
from duomo.synth.scene import SynthConfig, sample_scene


class FixedWording(random.Random):
    """A generator whose choices among strings (templates, synonyms, connectives) always take the
    first; every other draw (objects, events, numbers) stays random."""

    def choice(self, seq):
        options = list(seq)
        if options and all(isinstance(x, str) or (isinstance(x, tuple) and all(isinstance(y, str) for y in x))
                           for x in options):
            return options[0]
        return super().choice(options)


def caption_odds(scene, samples: int, key: str) -> dict[str, float]:
    """P(c) for each canonical caption c of ``scene``, from ``samples`` draws of its captions."""
    counts: Counter[str] = Counter()
    for k in range(samples):
        counts.update(language._captions(scene, FixedWording(f"{key}:{k}")))
    total = sum(counts.values())
    return {caption: n / total for caption, n in counts.items()}


def ceiling(odds: list[dict[str, float]]) -> float:
    """Expected R@1 of the ideal ranking: for each video's canonical captions (weighted by their
    odds), 1 / ties when the video is among the most likely sources of the caption, else 0."""
    sources: dict[str, dict[int, float]] = defaultdict(dict)
    for j, per_video in enumerate(odds):
        for caption, p in per_video.items():
            sources[caption][j] = p
    total = 0.0
    for i, per_video in enumerate(odds):
        for caption, p in per_video.items():
            best = max(sources[caption].values())
            top = [j for j, q in sources[caption].items() if q >= best - 1e-12]
            total += p * (1.0 / len(top) if i in top else 0.0)
    return total / len(odds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default="data/quality/world", help="a SynthWorld folder (its synth.yaml)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--samples", type=int, default=160, help="caption draws per video")
    parser.add_argument("--out", default="bench/out")
    args = parser.parse_args()
    started = time.monotonic()
    config = SynthConfig(**yaml.safe_load((Path(args.world) / "synth.yaml").read_text()))
    scenes = [s for s in (sample_scene(config, i) for i in range(config.num_videos)) if s.split == args.split]
    odds = [caption_odds(s, args.samples, s.video_id) for s in scenes]
    result = {"split": args.split, "videos": len(scenes), "samples": args.samples,
              "ceiling_t2v_r1": round(ceiling(odds), 4), "seconds": round(time.monotonic() - started, 1)}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "retrieval_ceiling.json").write_text(json.dumps(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
