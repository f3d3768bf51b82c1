"""Feature-cache benchmark: one training epoch on cached frozen-encoder features against one that decodes.

    .venv/bin/python bench/cache.py                        # 200 SynthWorld videos, task classify, 3 rounds
    .venv/bin/python bench/cache.py --task qa              # a QA head instead
    .venv/bin/python bench/cache.py --videos 10 --rounds 1 # smoke test
    .venv/bin/python bench/cache.py --set "model.video={name: resnet18}"   # any `duomo train --set`
    .venv/bin/python bench/cache.py --train-audio          # the sound encoder trains (only the CNN is cached)

The set is generated once under bench/out/cache/ (--out). Both epochs train the same model
(frozen CNN and sound encoder, ``model.freeze_video=true``, ``model.freeze_audio=true``) on the
same rows in the same order with AdamW; one decodes every batch's videos with ``load_media`` and
runs the frozen encoders, the other reads ``frozen_features`` and ``frozen_sound`` and skips
them. With ``--train-audio`` the sound encoder trains, and the cached epoch reads the media
cache's log-mel and runs it. Epochs run round-robin
(so both share the machine's load); times and ratios are medians over rounds. Results go to
<out>/cache_<task>.json and, as one JSON line, to the end of stdout.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from duomo.config import TASKS, RunConfig, load_config
from duomo.data.collate import collate
from duomo.data.datasets import VideoDataset, VideoItem, build_vocab, split_records
from duomo.data.manifest import VideoRecord, load_manifest
from duomo.data.media import cache_root, load_media
from duomo.models.build import build_model
from duomo.models.model import VideoTextModel
from duomo.synth.scene import SynthConfig
from duomo.synth.world import MANIFEST_NAME, generate_world
from duomo.train.optim import build_optimizer
from duomo.train.run import frozen_features, frozen_sound, prepare

OUT_DIR = Path(__file__).resolve().parent / "out" / "cache"
TARGET = 10.0
"""The cached epoch must be at least this many times faster than the decoding one."""


def make_world(out: Path, num_videos: int, size: int = 64) -> Path:
    """A SynthWorld set of ``num_videos`` videos of ``size`` px under ``out/world-<n>[-<size>px]``,
    generated once. Frames are resized to the preset's frame_size whatever ``size`` is."""
    folder = out / (f"world-{num_videos}" if size == 64 else f"world-{num_videos}-{size}px")
    manifest = folder / MANIFEST_NAME
    if not manifest.exists():
        print(f"generating {num_videos} SynthWorld videos of {size} px into {folder} ...", flush=True)
        generate_world(folder, SynthConfig(num_videos=num_videos, size=size), workers=2)
    return manifest


def feature_dirs(cfg: RunConfig) -> set[str]:
    """Digests of the FeatureStore folders holding ``cfg``'s frame encoder's features."""
    found = set()
    for key_file in cache_root(cfg.data).glob("*/key.json"):
        if json.loads(key_file.read_text())["encoder"] == cfg.model.video.name:
            found.add(key_file.parent.name)
    return found


def check_keys(model: VideoTextModel, cfg: RunConfig, records: list[VideoRecord],
               stamps: dict[str, str]) -> dict[str, str]:
    """Runs ``frozen_features`` again with the same settings (must hit the cache), with another
    ``data.num_frames`` and with perturbed encoder weights (each must land under a new key), on a
    few videos. Returns the three key digests; raises AssertionError when a check fails."""
    few = records[:4]
    few_stamps = {r.video_id: stamps[r.video_id] for r in few}

    def new_dirs(run_cfg: RunConfig, run: Callable[[], object]) -> set[str]:
        before = feature_dirs(run_cfg)
        run()
        return feature_dirs(run_cfg) - before

    (same,) = feature_dirs(cfg)
    if new_dirs(cfg, lambda: frozen_features(model, cfg, few_stamps)):
        raise AssertionError("keys: the same encoder and sampling made a new feature key")

    fewer = copy.deepcopy(cfg)
    fewer.data.num_frames = max(1, cfg.data.num_frames // 2)
    fewer_stamps, _ = prepare(few, fewer)
    frames_dirs = new_dirs(fewer, lambda: frozen_features(model, fewer, fewer_stamps))
    if len(frames_dirs) != 1:
        raise AssertionError(f"keys: data.num_frames={fewer.data.num_frames} made {len(frames_dirs)} new "
                             "feature keys, expected 1")

    other = copy.deepcopy(model)
    with torch.no_grad():
        next(other.video.parameters()).add_(1e-3)
    weights_dirs = new_dirs(cfg, lambda: frozen_features(other, cfg, few_stamps))
    if len(weights_dirs) != 1:
        raise AssertionError(f"keys: changed encoder weights made {len(weights_dirs)} new feature keys, expected 1")
    digests = {"same": same, "num_frames": frames_dirs.pop(), "weights": weights_dirs.pop()}
    if len(set(digests.values())) != 3:
        raise AssertionError(f"keys: digests collide: {digests}")
    return digests


def train_epoch(model: VideoTextModel, optimizer: torch.optim.Optimizer, cfg: RunConfig, num_outputs: int,
                chunks: list[list[int]], load_items: Callable[[list[int]], list[VideoItem]]) -> None:
    """One pass of the loop's step (forward, head.loss, backward, clip, AdamW step) over ``chunks``."""
    model.train()
    model.video.eval()  # frozen: batch norm keeps the statistics the cached features were made with
    if cfg.model.freeze_audio and model.audio is not None:
        model.audio.eval()
    multi_label = bool(cfg.model.head.args.get("multi_label", False))
    for chunk in chunks:
        batch = collate(load_items(chunk), task=cfg.task, num_outputs=num_outputs, multi_label=multi_label)
        loss = model.head.loss(model(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        optimizer.step()
        loss.item()


def measure_rounds(figures: dict[str, Callable[[], None]], rounds: int) -> dict[str, list[float]]:
    """Wall times of every figure, run round-robin ``rounds`` times after one untimed warm-up
    (which also fills the dataset's in-memory copy of the log-mel, as a real first epoch does)."""
    times: dict[str, list[float]] = {name: [] for name in figures}
    for round_idx in range(rounds + 1):
        for name, fn in figures.items():
            start = time.perf_counter()
            fn()
            if round_idx > 0:
                times[name].append(time.perf_counter() - start)
    return times


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="classify", choices=TASKS, help="task preset and head (default classify)")
    parser.add_argument("--videos", type=int, default=200, help="SynthWorld videos (80%% are train; default 200)")
    parser.add_argument("--size", type=int, default=64,
                        help="side of the generated videos in pixels (default 64; real footage is larger, "
                             "which makes decoding dearer)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of every epoch (default 3)")
    parser.add_argument("--batch-size", type=int, default=32, help="videos per step (default 32)")
    parser.add_argument("--train-audio", action="store_true",
                        help="train the sound encoder instead of freezing and caching it")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder for the set, caches and JSON")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="config override on top of the task's preset, as in `duomo train --set` (repeatable)")
    args = parser.parse_args()
    torch.set_num_threads(2)

    manifest = make_world(args.out, args.videos, args.size)
    features_root = args.out / f"cache-{args.task}"
    shutil.rmtree(features_root, ignore_errors=True)  # cold: the one-time costs are measured from scratch
    # the bench's own settings come last: --set may not point it at a warm cache or another set
    cfg = load_config(args.task, None, [*args.overrides, f"data.manifest={manifest}", "model.freeze_video=true",
                                        f"model.freeze_audio={str(not args.train_audio).lower()}",
                                        f"data.cache_dir={features_root}", f"train.batch_size={args.batch_size}",
                                        "train.num_threads=2"])
    records = split_records(load_manifest(cfg.data.manifest), "train")
    vocab = build_vocab(records, cfg)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, vocab=vocab.tokenizer.words, num_outputs=vocab.num_outputs)

    (stamps, _), prepare_sec = timed(lambda: prepare(records, cfg))
    frozen_audio = cfg.model.freeze_audio and model.audio is not None

    def extract() -> tuple[dict, dict | None]:
        return frozen_features(model, cfg, stamps), frozen_sound(model, cfg, stamps) if frozen_audio else None

    (features, sound), extract_sec = timed(extract)
    _, reload_sec = timed(extract)
    train_set = VideoDataset(records, cfg, vocab, stamps, train=True, features=features, sound=sound)
    order = np.random.default_rng(cfg.train.seed).permutation(len(train_set)).tolist()
    chunks = [order[i : i + cfg.train.batch_size] for i in range(0, len(order), cfg.train.batch_size)]

    decoding: list[float] = []  # seconds in load_media, one entry per decoding epoch

    def decoded(chunk: list[int]) -> list[VideoItem]:
        start = time.perf_counter()
        out = []
        for i in chunk:
            record, rows = train_set.items[i]
            out.append(VideoItem(record.video_id, load_media(record.video_path, cfg.data), None, rows))
        decoding[-1] += time.perf_counter() - start
        return out

    def decode_epoch() -> None:
        decoding.append(0.0)
        train_epoch(model, optimizer, cfg, vocab.num_outputs, chunks, decoded)

    optimizer = build_optimizer(model, cfg.train)
    figures = {
        "decode": decode_epoch,
        "cached": lambda: train_epoch(model, optimizer, cfg, vocab.num_outputs, chunks,
                                      lambda chunk: [train_set[i] for i in chunk]),
    }
    times = measure_rounds(figures, args.rounds)
    digests = check_keys(model, cfg, records, stamps)
    load = os.getloadavg()

    decode_sec, cached_sec = statistics.median(times["decode"]), statistics.median(times["cached"])
    decoding_sec = statistics.median(decoding[-args.rounds :])  # the timed rounds, not the warm-up
    # the median of per-round ratios: both epochs of a round ran under the same load
    ratio = statistics.median(d / c for d, c in zip(times["decode"], times["cached"]))
    saved = decode_sec - cached_sec
    one_time = prepare_sec + extract_sec
    break_even = one_time / saved if saved > 0 else None
    passed = ratio >= TARGET
    desc = (f"{manifest.parent.name}: {len(train_set)} train videos, {train_set.num_rows} rows, task {cfg.task}, "
            f"{cfg.data.num_frames} frames of {cfg.data.frame_size}px, audio "
            f"{('on, sound encoder ' + ('frozen' if frozen_audio else 'trained')) if cfg.data.use_audio else 'off'}, "
            f"batch {cfg.train.batch_size}, {math.ceil(len(train_set) / cfg.train.batch_size)} steps an epoch")
    print(desc)
    print(f"load average after measuring: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores, "
          f"torch threads {torch.get_num_threads()}; medians of {args.rounds} interleaved rounds")
    print(f"{'figure':<40} {'seconds':>8}  {'speed-up':>8}  {'target':>7}  result")
    print(f"{'epoch, decoding (load_media + encoders)':<40} {decode_sec:>8.3f}")
    print(f"{'  of which load_media (decoding)':<40} {decoding_sec:>8.3f}")
    print(f"{'  of which encoders + training':<40} {decode_sec - decoding_sec:>8.3f}")
    print(f"{'epoch, cached features':<40} {cached_sec:>8.3f}  {ratio:>7.1f}x  "
          f"{f'>={TARGET:.0f}x':>7}  {'PASS' if passed else 'FAIL'}")
    print(f"{'one-time: prepare (decode into cache)':<40} {prepare_sec:>8.3f}")
    print(f"{'one-time: feature extraction':<40} {extract_sec:>8.3f}")
    print(f"{'reading the cached features back':<40} {reload_sec:>8.3f}")
    if break_even is None:
        print("the cache never pays for itself: a cached epoch is not faster")
    else:
        print(f"the cache pays for itself after {break_even:.2f} epochs "
              f"(one-time {one_time:.2f} s / {saved:.2f} s saved an epoch), i.e. from epoch {math.ceil(break_even)}")
    print(f"keys: ok (same settings {digests['same']}, num_frames changed {digests['num_frames']}, "
          f"weights changed {digests['weights']})")
    print(f"cached epoch >= {TARGET:.0f}x faster: {'PASS' if passed else 'FAIL'}")
    report = {
        "dataset": desc, "task": cfg.task, "videos": args.videos, "train_videos": len(train_set),
        "train_rows": train_set.num_rows, "batch_size": cfg.train.batch_size, "rounds": args.rounds,
        "sound_encoder": ("frozen" if frozen_audio else "trained") if cfg.data.use_audio else "none",
        "load_average": [round(x, 2) for x in load], "torch_threads": torch.get_num_threads(),
        "overrides": args.overrides, "decode_epoch_sec": round(decode_sec, 4),
        "decoding_sec": round(decoding_sec, 4), "cached_epoch_sec": round(cached_sec, 4),
        "decode_epoch_rounds": [round(t, 4) for t in times["decode"]],
        "cached_epoch_rounds": [round(t, 4) for t in times["cached"]],
        "speedup": round(ratio, 3), "target": TARGET, "pass": passed,
        "prepare_sec": round(prepare_sec, 4), "extract_sec": round(extract_sec, 4), "reload_sec": round(reload_sec, 4),
        "break_even_epochs": None if break_even is None else round(break_even, 3),
        "keys": {**digests, "ok": True},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"cache_{cfg.task}.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


if __name__ == "__main__":
    sys.exit(main())
