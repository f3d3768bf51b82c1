"""The decode benchmark runs end to end (quick clip); its figures are not asserted here."""

from __future__ import annotations

import json
from pathlib import Path
import shutil
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="the benchmark's baseline needs the ffmpeg CLI")
def test_bench_decode_quick_runs():
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "decode.py"), "--quick"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    figures = {row["figure"] for row in report["results"]}
    assert {"full decode -> RGB 224x224", "exact 8 frames", "fast keyframes, 8 frames"} <= figures
    assert all(row["seconds"] > 0 for row in report["results"])
