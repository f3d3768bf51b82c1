"""bench/train_step.py at tiny sizes: it runs, compares its four variants on the same rows, and
its JSON has every field (no timing asserted); a preset without a sound encoder is refused in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "train_step.py"
VARIANTS = ["torch dropout", "faster dropout", "+ channels-last sound convs", "+ sound encoder frozen"]


@pytest.mark.slow
def test_train_step_bench_reports_its_variants(tmp_path):
    cmd = [sys.executable, str(BENCH), "--videos", "10", "--rounds", "1", "--out", str(tmp_path),
           "--set", "data.num_frames=4", "--set", "data.frame_size=32", "--set", "train.batch_size=4"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["task"] == "qa" and report["rounds"] == 1 and report["steps"] == 2  # 8 train videos, 4 a step
    assert list(report["variants"]) == VARIANTS
    for name in VARIANTS:
        figures = report["variants"][name]
        assert figures["epoch_sec"] > 0 and len(figures["rounds"]) == 1 and figures["speedup"] > 0
        assert any(line.startswith(name) for line in done.stdout.splitlines())
    assert report["variants"]["torch dropout"]["speedup"] == 1.0
    assert json.loads((tmp_path / "train_step_qa.json").read_text()) == report


@pytest.mark.slow
def test_train_step_bench_needs_a_sound_encoder(tmp_path):
    cmd = [sys.executable, str(BENCH), "--videos", "10", "--rounds", "1", "--out", str(tmp_path),
           "--set", "data.use_audio=false", "--set", "data.num_frames=4", "--set", "data.frame_size=32"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert done.returncode == 2
    assert "has no sound encoder" in done.stderr.strip().splitlines()[-1]
