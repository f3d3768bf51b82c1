"""``duomo subtitle`` and ``duomo dub`` as a user runs them: files written, one-line errors,
nothing left behind on failure."""

from __future__ import annotations

import av
import pytest

from duomo.eval.metrics import word_error_rate
from duomo.subtitles.formats import parse_subtitles
from tests.cli.test_cli import duomo
from tests.helpers.videos import make_video


def one_line_error(result, *parts: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for part in parts:
        assert part in lines[0], lines[0]


def test_help_lists_subtitle_and_dub():
    result = duomo("--help")
    assert result.returncode == 0 and "subtitle" in result.stdout and "dub" in result.stdout


def test_dub_bad_input_is_one_line_and_writes_nothing(tmp_path):
    silent = make_video(tmp_path / "silent.mkv", num_frames=10, fps=10)
    script = tmp_path / "script.srt"
    script.write_text("1\n00:00:00,000 --> 00:00:01,000\nHello.\n")
    one_line_error(duomo("dub", str(silent), "--subtitles", str(script), "--out", str(tmp_path / "out.mkv")),
                   "silent.mkv: no audio track")
    one_line_error(duomo("dub", str(silent), "--subtitles", str(script), "--voice", "klingon"),
                   "voice 'klingon' is not installed")
    one_line_error(duomo("dub", str(tmp_path / "nope.mp4"), "--subtitles", str(script)), "nope.mp4: no such file")
    script.write_text("1\n00:00:00,000 --> 00:00:02,000\nHello.\n\n2\n00:00:01,000 --> 00:00:03,000\nAgain.\n")
    one_line_error(duomo("dub", str(silent), "--subtitles", str(script)), "script.srt: cue 2 (line 5): overlaps cue 1")
    one_line_error(duomo("dub", str(silent), "--subtitles", str(tmp_path / "missing.srt")), "missing.srt: no such file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["script.srt", "silent.mkv"]


@pytest.mark.slow  # two fresh interpreters that import torch: about 3 s
def test_subtitle_of_a_missing_video_is_one_line(tmp_path):
    one_line_error(duomo("subtitle", str(tmp_path / "nope.mp4")), "nope.mp4")
    one_line_error(duomo("subtitle", str(tmp_path / "nope.mp4"), "--describe", str(tmp_path)),
                   "not a finished run folder")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_subtitle_a_talking_video_then_dub_its_own_speech(tmp_path):
    from tests.helpers.talking import make_talking_video

    talking = make_talking_video(tmp_path / "talk.mp4", duration_sec=14.0, speech=[
        (0.5, "The quick brown fox jumps over the lazy dog near the river bank."),
        (5.0, "Good night."),
        (7.0, "Birds fly south in the winter because the weather gets cold.")])
    result = duomo("subtitle", str(talking.path), "--out", str(tmp_path / "talk.vtt"), "--burn",
                   str(tmp_path / "burned.mp4"))
    assert result.returncode == 0, result.stderr
    vtt = tmp_path / "talk.vtt"
    assert vtt.read_text().startswith("WEBVTT\n")
    cues = parse_subtitles(vtt)
    assert word_error_rate(talking.transcript(), " ".join(c.spoken_text for c in cues)) <= 0.15
    for cue in cues:
        assert 1.0 <= cue.duration_sec <= 7.0 and len(cue.lines) <= 2 and all(len(x) <= 42 for x in cue.lines)
    # no cue runs across the sentence ends, and "Good night." stands alone, grown to a second
    for line in talking.speech:
        inside = [c for c in cues if line.voice_start_sec - 0.5 <= c.start_sec < line.voice_end_sec]
        assert inside and all(c.end_sec <= line.voice_end_sec + 1.0 for c in inside)
    assert [c.text for c in cues if abs(c.start_sec - 5.0) < 0.7] == ["Good night."]
    with av.open(str(tmp_path / "burned.mp4")) as container:
        assert container.streams.video[0].frames == 140 and len(container.streams.audio) == 1

    result = duomo("dub", str(talking.path), "--mix", "replace")
    assert result.returncode == 0, result.stderr
    assert "cues spoken by joe" in result.stdout
    out = tmp_path / "talk.dub.mp4"
    with av.open(str(out)) as dubbed, av.open(str(talking.path)) as original:
        assert dubbed.streams.video[0].frames == original.streams.video[0].frames
        assert dubbed.streams.audio[0].codec_context.sample_rate == 16000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["burned.mp4", "talk.dub.mp4", "talk.mp4", "talk.vtt"]
