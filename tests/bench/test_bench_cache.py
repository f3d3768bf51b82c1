"""bench/cache.py at tiny sizes: it runs, its cache keys check out, its JSON has every field (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "cache.py"


@pytest.mark.slow
def test_cache_bench_reports_its_figures(tmp_path):
    cmd = [sys.executable, str(BENCH), "--videos", "10", "--rounds", "1", "--batch-size", "4", "--out", str(tmp_path),
           "--set", "data.num_frames=4", "--set", "data.frame_size=32"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    report = json.loads(lines[-1])
    assert "keys: ok" in done.stdout
    assert any(line.startswith("cached epoch >= 10x faster: ") for line in lines)
    for field in ("decode_epoch_sec", "cached_epoch_sec", "decoding_sec", "speedup", "prepare_sec", "extract_sec",
                  "reload_sec", "break_even_epochs", "load_average", "train_videos", "train_rows"):
        assert field in report, field
    assert report["task"] == "classify" and report["rounds"] == 1 and report["target"] == 10.0
    assert report["sound_encoder"] == "frozen"
    assert len(report["decode_epoch_rounds"]) == len(report["cached_epoch_rounds"]) == 1
    assert report["decode_epoch_sec"] > 0 and report["cached_epoch_sec"] > 0 and isinstance(report["pass"], bool)
    assert report["keys"]["ok"] and len({report["keys"][k] for k in ("same", "num_frames", "weights")}) == 3
    assert json.loads((tmp_path / "cache_classify.json").read_text()) == report
