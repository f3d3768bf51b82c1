"""The ``duomo`` command as a user runs it: a real process, its output and exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from duomo.video.encode import write_video

SUBCOMMANDS = ("probe", "shots", "synth", "data")


def duomo(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``duomo ARGS`` in a fresh interpreter, as the console script does."""
    return subprocess.run(
        [sys.executable, "-m", "duomo.cli.main", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_help_lists_every_subcommand():
    result = duomo("--help")
    assert result.returncode == 0
    for name in SUBCOMMANDS:
        assert name in result.stdout


def test_unknown_subcommand_fails_with_usage():
    result = duomo("frobnicate")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_probe_prints_json(tmp_path):
    frames = [np.full((48, 64, 3), 10 * i, np.uint8) for i in range(20)]
    path = write_video(tmp_path / "clip.mp4", frames, fps=10)
    result = duomo("probe", str(path), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert (info["width"], info["height"]) == (64, 48)
    assert info["num_frames"] == 20
    assert info["duration_sec"] == pytest.approx(2.0, abs=0.11)


@pytest.mark.parametrize("content", [b"", b"this is not a video\n" * 50])
def test_bad_video_gets_one_line_error(tmp_path, content):
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    result = duomo("probe", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0]
    assert "Traceback" not in result.stderr


def test_probe_reports_each_bad_file_and_still_probes_the_good_ones(tmp_path):
    good = write_video(tmp_path / "good.mp4", [np.zeros((16, 16, 3), np.uint8)] * 3, fps=3)
    result = duomo("probe", str(tmp_path / "missing.mp4"), str(good), "--json")
    assert result.returncode == 2
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows[0]["path"].endswith("missing.mp4") and "error" in rows[0]
    assert rows[1]["num_frames"] == 3


def test_data_check_reports_every_bad_line(tmp_path):
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text('{"id": "a", "video": "a.mp4", "split": "train"}\n{"id": "b"}\n')
    result = duomo("data", "check", str(manifest))
    assert result.returncode == 2
    assert f"{manifest}:1: video: file not found: a.mp4" in result.stderr
    assert f"{manifest}:2: video: missing" in result.stderr
    assert f"{manifest}:2: split: missing" in result.stderr
    assert "Traceback" not in result.stderr


def test_synth_then_data_check(tmp_path):
    out = tmp_path / "world"
    result = duomo("synth", str(out), "--videos", "6", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert len(list((out / "videos").glob("*.mp4"))) == 6
    check = duomo("data", "check", str(out / "manifest.jsonl"), "--json")
    assert check.returncode == 0, check.stderr
    summary = json.loads(check.stdout)
    assert summary["num_videos"] == 6
    assert summary["num_qa"] >= 6 * 6
    table = duomo("data", "check", str(out / "manifest.jsonl"))
    assert "Questions by type and answer balance" in table.stdout


def test_shots_prints_json_and_a_table(tmp_path):
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    frames = [np.full((48, 64, 3), 30, np.uint8)] * 15 + [texture] * 15  # a cut at frame 15 (1.5 s)
    path = write_video(tmp_path / "cut.mp4", frames, fps=10)
    result = duomo("shots", str(path), "--json")
    assert result.returncode == 0, result.stderr
    shots = json.loads(result.stdout)["shots"]
    assert [(s["start_frame"], s["end_frame"], s["start_kind"]) for s in shots] == [(0, 15, "start"), (15, 30, "cut")]
    assert shots[1]["start_sec"] == pytest.approx(1.5) and shots[1]["end_sec"] == pytest.approx(3.0, abs=0.01)
    table = duomo("shots", str(path))
    assert table.returncode == 0 and "2 shots" in table.stdout and "cut" in table.stdout
    # the cut scores just under 1 (a few texture pixels share the flat frame's histogram bin):
    # --threshold 1.0 reaches the detector and leaves one shot
    high = duomo("shots", str(path), "--json", "--threshold", "1.0")
    assert high.returncode == 0 and len(json.loads(high.stdout)["shots"]) == 1


def test_shots_on_a_bad_video_or_bad_threshold_is_one_line(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"nope" * 100)
    for args in ([str(path)], [str(path), "--threshold", "1.5"]):
        result = duomo("shots", *args)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("duomo shots: error:") and "Traceback" not in result.stderr
