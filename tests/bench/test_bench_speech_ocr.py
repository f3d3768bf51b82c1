"""bench/speech_ocr.py --quick runs and reports every figure (speeds are not asserted)."""

from __future__ import annotations

import json
from pathlib import Path
import shutil
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="the benchmark times an espeak-ng voice")
def test_speech_ocr_bench_quick_reports_its_figures():
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "speech_ocr.py"), "--quick"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["quick"] is True and report["rounds"] == 1
    assert report["asr"]["audio_sec"] >= 15 and report["asr"]["x_real_time"] > 0
    assert report["asr"]["wer"] <= 0.2  # the bundled voice is clear speech
    assert report["ocr"]["ms_per_frame_720p"] > 0 and report["ocr"]["ms_per_frame_360p"] > 0
    assert "BREAKING NEWS: STORM HITS THE COAST" in report["ocr"]["read_720p"]
    for field in ("piper_x_real_time", "piper_script_x_real_time", "espeak_x_real_time"):
        assert report["tts"][field] > 0
    assert (ROOT / "bench" / "out" / "speech_ocr_quick.json").exists()
