"""``summarize_video`` in process: the soundtrack is decoded once, speech recognition and the
loudness signal reading the same windows."""

from __future__ import annotations

import json

import pytest

import duomo.video
import duomo.video.audio
from duomo.summarize.pipeline import summarize_video
from tests.helpers.talking import make_talking_video


@pytest.mark.slow
def test_the_soundtrack_is_decoded_once(tmp_path, monkeypatch):
    talk = make_talking_video(tmp_path / "talk.mp4", duration_sec=8.0, speech=[
        (0.5, "The kitchen is where we cook dinner every night."),
        (4.5, "Our garden grows tomatoes and roses in summer."),
    ])
    decoded = []  # seconds each call decodes
    real = duomo.video.decode_audio

    def counting(*args, **kwargs):
        wave = real(*args, **kwargs)
        decoded.append(len(wave) / args[1])
        return wave

    monkeypatch.setattr(duomo.video, "decode_audio", counting)
    monkeypatch.setattr(duomo.video.audio, "decode_audio", counting)
    result = summarize_video(talk.path, tmp_path / "out", budget="25%", use_ocr=False)
    # one 10-minute window covers the clip, read by Whisper and the loudness alike; the other
    # reads are the highlight reel's picked spans
    assert sum(seconds > result.budget_sec + 0.1 for seconds in decoded) == 1
    assert decoded[0] == pytest.approx(8.0, abs=0.1)
    assert result.scorer == "unsupervised" and any(s.selected for s in result.segments)
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["summary"]
