"""``duomo summarize`` as a user runs it: on a SynthWorld clip and on a talking video, every
output written, the reel within budget with sound, chapters covering the video in order;
one-line errors and nothing left behind for bad input."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from duomo.synth.scene import SynthConfig
from duomo.synth.world import generate_world
from duomo.video.probe import probe
from tests.cli.test_cli import duomo
from tests.cli.test_subtitle_cli import one_line_error
from tests.helpers.talking import make_talking_video

FILES = ["chapters.json", "contact_sheet.png", "highlights.mp4", "summary.json", "summary.txt"]


def check_outputs(out, video, budget_sec: float) -> dict:
    assert sorted(p.name for p in out.iterdir()) == FILES
    summary = json.loads((out / "summary.json").read_text())
    duration = probe(video).duration_sec
    assert summary["duration_sec"] == pytest.approx(duration, abs=1e-3)
    assert summary["budget_sec"] == pytest.approx(budget_sec, abs=1e-3)
    reel = probe(out / "highlights.mp4")
    frame = 1 / reel.fps
    assert 0 < reel.duration_sec <= budget_sec + frame + 1e-6
    assert reel.duration_sec == pytest.approx(summary["reel"]["duration_sec"], abs=frame + 1e-6)
    assert reel.audio, "the reel keeps the sound"
    chosen = [s for s in summary["segments"] if s["selected"]]
    assert chosen and sum(s["end"] - s["start"] for s in chosen) <= budget_sec + 1e-6
    with Image.open(out / "contact_sheet.png") as sheet:
        assert list(sheet.size) == summary["contact_sheet"]["size"]
        columns = min(4, len(chosen))
        assert sheet.size[0] == 320 * columns
    chapters = json.loads((out / "chapters.json").read_text())
    assert chapters[0]["start"] == 0 and chapters[-1]["end"] == pytest.approx(duration, abs=1e-3)
    assert all(a["end"] == b["start"] for a, b in zip(chapters, chapters[1:]))
    assert all(c["end"] > c["start"] and c["title"] for c in chapters)
    return summary


@pytest.mark.slow
def test_summarize_a_synthworld_clip(tmp_path):
    world = generate_world(tmp_path / "world", SynthConfig(num_videos=1, size=64, min_duration_sec=5.0,
                                                           max_duration_sec=6.0, cut_prob=1.0, sound_prob=1.0,
                                                           val_fraction=0.0, test_fraction=0.0))
    video = tmp_path / "world" / "videos" / "v0000.mp4"
    out = tmp_path / "summary"
    result = duomo("summarize", str(video), "--out", str(out), "--json", "--no-speech", "--no-ocr")
    assert result.returncode == 0, result.stderr
    summary = check_outputs(out, video, 0.15 * probe(video).duration_sec)
    assert json.loads(result.stdout) == summary
    assert summary["scorer"] == "unsupervised" and world.num_videos == 1
    assert len(summary["chapters"]) == 2  # one per shot: SynthWorld's cut is at least 1 s from either end

    again = duomo("summarize", str(video), "--out", str(out), "--budget", "2", "--no-speech", "--no-ocr")
    assert again.returncode == 0, again.stderr
    check_outputs(out, video, 2.0)  # the same folder, every file replaced


@pytest.mark.slow
def test_summarize_a_talking_video(tmp_path):
    talk = make_talking_video(tmp_path / "talk.mp4", duration_sec=12.0, speech=[
        (0.5, "The kitchen is where we cook dinner every night."),
        (4.5, "Our garden grows tomatoes and roses in summer."),
        (8.5, "The kitchen garden feeds the family all year."),
    ])
    out = tmp_path / "summary"
    result = duomo("summarize", str(talk.path), "--out", str(out), "--budget", "20%", "--no-ocr")
    assert result.returncode == 0, result.stderr
    summary = check_outputs(out, talk.path, 0.2 * probe(talk.path).duration_sec)
    lines = (out / "summary.txt").read_text().splitlines()
    assert lines and lines == [s["text"] for s in summary["summary"]]
    assert any(word in " ".join(lines).lower() for word in ("kitchen", "garden"))
    assert "written to" in result.stdout


def test_bad_input_is_one_line_and_leaves_nothing(tmp_path):
    one_line_error(duomo("summarize", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "out")),
                   "nope.mp4: no such file")
    one_line_error(duomo("summarize", str(tmp_path / "nope.mp4"), "--budget", "lots"), "--budget lots")
    assert list(tmp_path.iterdir()) == []
