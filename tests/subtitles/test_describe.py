"""Audio description: which gaps get described (exact spans), and cues from a real tiny
caption run for them."""

from __future__ import annotations

from pathlib import Path

import pytest

from duomo.subtitles.cues import Cue
from duomo.subtitles.describe import describe_gaps, find_gaps
from duomo.subtitles.formats import parse_subtitles
from tests.cli.test_cli import duomo as run_duomo
from tests.helpers.talking import make_talking_video


def test_find_gaps_keeps_long_silences_cut_into_pieces():
    cues = [Cue(1.0, 2.0, "a"), Cue(10.0, 12.0, "b"), Cue(13.0, 14.0, "c")]
    # 0-1 is too short; 2-10 (8 s) becomes two halves; 12-13 too short; 14-30 (16 s) three pieces
    assert find_gaps(cues, 30.0) == [(2.0, 6.0), (6.0, 10.0), (14.0, 19.333), (19.333, 24.667), (24.667, 30.0)]
    assert find_gaps([], 5.0) == [(0.0, 5.0)]
    assert find_gaps([], 2.9) == []
    assert find_gaps(cues, 30.0, min_gap_sec=0.5, max_sec=100.0) == [(0.0, 1.0), (2.0, 10.0), (12.0, 13.0),
                                                                      (14.0, 30.0)]


@pytest.mark.slow
def test_gaps_are_described_by_a_caption_run(tmp_path_factory):
    import duomo
    from duomo.video import probe
    from tests.helpers.learning import make_tiny_world, tiny_config, train_once_each

    world = make_tiny_world(tmp_path_factory.mktemp("world"))
    run = train_once_each(tmp_path_factory, lambda task: tiny_config(task, world.manifest_path,
                                                                     "train.epochs=1", "train.batch_size=4"))("caption")
    predictor = duomo.load(run)
    video = next(Path(world.manifest_path).parent.rglob("*.mp4"))
    duration = probe(video).duration_sec
    cues = [Cue(0.0, 0.4, "hello")]
    described = describe_gaps(video, cues, predictor, duration, min_gap_sec=0.5, max_sec=0.5)
    spans = find_gaps(cues, duration, min_gap_sec=0.5, max_sec=0.5)
    assert [(c.start_sec, c.end_sec) for c in described] == spans and spans
    words = set(predictor.vocab.tokenizer.words) | {"…"}
    for cue, (start, end) in zip(described, spans):
        caption = predictor.caption_span(video, start, end)
        assert cue.is_description and cue.spoken_text.strip("[]…").split() == caption.split()[: len(
            cue.spoken_text.strip("[]…").split())]
        assert set(cue.spoken_text.strip("[]").replace("…", " ").split()) <= words
        assert all(len(line) <= 42 for line in cue.lines) and len(cue.lines) <= 2
    # the command line: a silent talking video is described wherever nobody speaks
    quiet = make_talking_video(tmp_path_factory.mktemp("quiet") / "quiet.mp4", duration_sec=4.0)
    out = quiet.path.with_suffix(".srt")
    result = run_duomo("subtitle", str(quiet.path), "--describe", str(run), "--min-gap", "1.0")
    assert result.returncode == 0, result.stderr
    assert "0 speech cues" in result.stdout
    cues = parse_subtitles(out)
    assert [(c.start_sec, c.end_sec) for c in cues] == [(0.0, 4.0)] and cues[0].is_description
    assert cues[0].spoken_text == f"[{predictor.caption_span(quiet.path, 0.0, 4.0)}]"
