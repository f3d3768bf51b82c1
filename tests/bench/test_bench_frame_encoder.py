"""bench/frame_encoder.py: its per-frame labels say what the frame shows, and at tiny sizes it
trains, probes a run's frozen encoder and writes its JSON (no accuracy asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from duomo.synth.scene import COLORS, SHAPES, SynthConfig
from duomo.synth.world import generate_world
from duomo.train.run import fit
from tests.helpers.learning import make_tiny_world, tiny_config
from tests.helpers.bench import load_bench

BENCH = Path(__file__).resolve().parents[2] / "bench" / "frame_encoder.py"


def test_frame_labels_name_the_colours_drawn_in_the_frame(tmp_path):
    bench = load_bench("frame_encoder")
    config = SynthConfig(num_videos=6, seed=3, size=64, cut_prob=0.5, val_fraction=0.0, test_fraction=0.0)
    generate_world(tmp_path, config)
    frames, labels, train = bench.frames_and_labels(config, tmp_path)
    assert 0 < len(frames) <= 6 * bench.FRAMES_PER_VIDEO and frames.shape[1:] == (3, 64, 64)
    assert labels.shape == (len(frames), len(SHAPES) + len(COLORS) + len(SHAPES) * len(COLORS)) and bool(train.all())
    palette = np.array(list(COLORS.values()), dtype=np.float32)
    for frame, label in zip(frames.permute(0, 2, 3, 1).numpy().astype(np.float32), labels.numpy()):
        # pixels within reach of a palette colour, by the nearest one: every labelled colour is
        # drawn (an object covers far more than 10 pixels), and no other is
        pixels = frame.reshape(-1, 3)
        dist = ((pixels[:, None, :] - palette[None]) ** 2).sum(-1)
        near = np.bincount(dist.argmin(1)[dist.min(1) < 40**2], minlength=len(COLORS))
        shown = label[len(SHAPES) : len(SHAPES) + len(COLORS)] > 0
        assert (near[shown] >= 10).all() and (near[~shown] < 10).all(), (near, shown)
        assert 0 < label[: len(SHAPES)].sum() <= 3 or not shown.any()
        # each colour-shape pair named is one whose colour and shape are both named, and every
        # named colour and shape is in some named pair
        pairs = [bench.PAIRS[i].split(" ") for i in np.flatnonzero(label[len(SHAPES) + len(COLORS):])]
        named = {bench.LABELS[i] for i in np.flatnonzero(label[: len(SHAPES) + len(COLORS)])}
        assert {word for pair in pairs for word in pair} == named
    assert labels[:, : len(SHAPES)].sum() > 0 and labels[:, len(SHAPES):].sum() > 0


@pytest.mark.slow
def test_bench_trains_a_variant_and_probes_a_run(tmp_path):
    bench = load_bench("frame_encoder")
    done = subprocess.run([sys.executable, str(BENCH), "--videos", "12", "--epochs", "1", "--variants", "conv",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["variant"] == "conv" and line["epoch"] == 1 and 0 <= line["shapes_all_right"] <= 1
    saved = json.loads((tmp_path / "frame_encoder.json").read_text())
    assert saved["videos"] == 12 and set(saved["results"][0]["history"][0]["per_class"]) == set(bench.LABELS)

    world = make_tiny_world(tmp_path / "world").manifest_path
    run = tmp_path / "run"
    fit(tiny_config("qa", world, "train.epochs=1", "train.batch_size=2", "model.video.args.global_max=true"), run)
    done = subprocess.run([sys.executable, str(BENCH), "--videos", "12", "--probe", str(run), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    probes = json.loads((tmp_path / "probe.json").read_text())["probes"]
    # with global_max, the per-cell MLP probe too
    parts = ("output", "colour stack", "cells")
    assert set(probes) == {f"{start} {part}" for start in ("random", "trained") for part in parts}
    assert all(0 <= probes[name]["pairs_all_right"] <= 1 for name in probes)

    done = subprocess.run([sys.executable, str(BENCH), "--videos", "12", "--pretrain", str(world), "--pretrain-epochs",
                           "1", "--set", "train.pretrain_video_batch=4", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    saved = json.loads((tmp_path / "pretrain_probe.json").read_text())
    assert saved["set"] == ["train.pretrain_video_batch=4"] and saved["probes"]["pretrain"]["epochs"] == 1
    assert {"pretrained output", "pretrained luma stack", "pretrained cells"} <= set(saved["probes"])


def test_bench_refuses_a_bad_pretrain_setting(tmp_path):
    done = subprocess.run([sys.executable, str(BENCH), "--pretrain", str(tmp_path / "m.jsonl"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no such manifest" in done.stderr.splitlines()[-1]
    (tmp_path / "m.jsonl").write_text("")
    done = subprocess.run([sys.executable, str(BENCH), "--pretrain", str(tmp_path / "m.jsonl"), "--set",
                           "train.pretrain_video_bach=16", "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "train.pretrain_video_batch" in done.stderr.splitlines()[-1]
