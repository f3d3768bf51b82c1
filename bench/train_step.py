"""Training-step benchmark: one epoch of a preset's training on cached frame features, with and
without the step's speed-ups (faster dropout, channels-last sound convolutions, a frozen sound
encoder), in the same run.

    .venv/bin/python bench/train_step.py                         # the qa preset, 200 SynthWorld videos, 3 rounds
    .venv/bin/python bench/train_step.py --task dialog           # another preset
    .venv/bin/python bench/train_step.py --videos 10 --rounds 1  # smoke test

Every variant trains its own copy of one model (the preset, its frame encoder frozen at its
random start and its trunk features cached: pre-training changes the weights, not the work) on
the same rows in the same order with AdamW:

- ``torch dropout``: ``nn.Dropout`` and the sound encoder's convolution weights in the plain
  layout, as before these speed-ups;
- ``faster dropout``: ``layers.Dropout`` (what ``build_model`` now puts everywhere);
- ``+ channels-last sound convs``: the sound encoder as built now (the default);
- ``+ sound encoder frozen``: its tokens cached, what every epoch after ``model.freeze_audio_after``
  runs.

Epochs run round-robin (so all share the machine's load); times are medians over rounds, and
each speed-up is the median over rounds of the baseline's time over the variant's. Results go to
<out>/train_step_<task>.json and, as one JSON line, to the end of stdout.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cache import make_world, measure_rounds, train_epoch
from duomo.config import TASKS, load_config
from duomo.data.datasets import VideoDataset, build_vocab, split_records
from duomo.data.manifest import load_manifest
from duomo.models.build import build_model
from duomo.models.layers import Dropout
from duomo.models.model import VideoTextModel
from duomo.train.optim import build_optimizer
from duomo.train.run import frozen_features, frozen_sound, prepare

OUT_DIR = Path(__file__).resolve().parent / "out" / "train_step"


def with_torch_dropout(model: VideoTextModel) -> VideoTextModel:
    """``model`` with every ``layers.Dropout`` put back to ``nn.Dropout`` of the same p."""
    for module in list(model.modules()):
        for name, child in module.named_children():
            if type(child) is Dropout:
                setattr(module, name, nn.Dropout(child.p))
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="qa", choices=[t for t in TASKS if t not in ("retrieval", "summarize")],
                        help="task preset (default qa)")
    parser.add_argument("--videos", type=int, default=200, help="SynthWorld videos (80%% are train; default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of every variant (default 3)")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder for the set, caches and JSON")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="config override on top of the task's preset, as in `duomo train --set` (repeatable)")
    args = parser.parse_args()
    torch.set_num_threads(2)

    manifest = make_world(args.out, args.videos)
    features_root = args.out / f"cache-{args.task}"
    shutil.rmtree(features_root, ignore_errors=True)
    cfg = load_config(args.task, None, [*args.overrides, f"data.manifest={manifest}", "model.freeze_video=true",
                                        "model.freeze_audio=false", "train.pretrain_video_epochs=0",
                                        f"data.cache_dir={features_root}", "train.num_threads=2"])
    records = split_records(load_manifest(cfg.data.manifest), "train")
    vocab = build_vocab(records, cfg)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, vocab=vocab.tokenizer.words, num_outputs=vocab.num_outputs,
                        frame_words=len(vocab.frame_words))
    if model.audio is None:
        parser.error(f"the {args.task} preset has no sound encoder (data.use_audio or model.audio): nothing to compare")
    stamps, _ = prepare(records, cfg)
    features = frozen_features(model, cfg, stamps)
    with_mel = VideoDataset(records, cfg, vocab, stamps, train=True, features=features)
    with_sound = VideoDataset(records, cfg, vocab, stamps, train=True, features=features,
                              sound=frozen_sound(model, cfg, stamps))

    baseline = with_torch_dropout(copy.deepcopy(model))
    baseline.audio.blocks.to(memory_format=torch.contiguous_format)
    faster = copy.deepcopy(model)
    faster.audio.blocks.to(memory_format=torch.contiguous_format)
    variants = {"torch dropout": (baseline, with_mel), "faster dropout": (faster, with_mel),
                "+ channels-last sound convs": (copy.deepcopy(model), with_mel),
                "+ sound encoder frozen": (copy.deepcopy(model), with_sound)}
    order = np.random.default_rng(cfg.train.seed).permutation(len(with_mel)).tolist()
    chunks = [order[i : i + cfg.train.batch_size] for i in range(0, len(order), cfg.train.batch_size)]

    def epoch_of(variant: VideoTextModel, dataset: VideoDataset):
        optimizer = build_optimizer(variant, cfg.train)
        return lambda: train_epoch(variant, optimizer, cfg, vocab.num_outputs, chunks,
                                   lambda chunk: [dataset[i] for i in chunk])

    times = measure_rounds({name: epoch_of(*pair) for name, pair in variants.items()}, args.rounds)
    load = os.getloadavg()
    base = times["torch dropout"]
    medians = {name: statistics.median(t) for name, t in times.items()}
    speedups = {name: statistics.median(b / v for b, v in zip(base, t)) for name, t in times.items()}
    desc = (f"{manifest.parent.name}: {len(with_mel)} train videos, {with_mel.num_rows} rows, task {cfg.task} "
            f"(its preset), {cfg.data.num_frames} frames of {cfg.data.frame_size}px, batch {cfg.train.batch_size}, "
            f"{len(chunks)} steps an epoch")
    print(desc)
    print(f"load average after measuring: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores, "
          f"torch threads {torch.get_num_threads()}; medians of {args.rounds} interleaved rounds")
    print(f"{'variant':<30} {'epoch s':>8} {'per step s':>10}  {'speed-up':>8}")
    for name in times:
        print(f"{name:<30} {medians[name]:>8.3f} {medians[name] / len(chunks):>10.4f}  {speedups[name]:>7.2f}x")
    report = {"dataset": desc, "task": cfg.task, "videos": args.videos, "train_videos": len(with_mel),
              "train_rows": with_mel.num_rows, "steps": len(chunks), "rounds": args.rounds,
              "load_average": [round(x, 2) for x in load], "torch_threads": torch.get_num_threads(),
              "overrides": args.overrides,
              "variants": {name: {"epoch_sec": round(medians[name], 4), "rounds": [round(x, 4) for x in times[name]],
                                  "speedup": round(speedups[name], 3)} for name in times}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"train_step_{cfg.task}.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


if __name__ == "__main__":
    sys.exit(main())
