"""burn_subtitles: the text goes onto exactly the frames of its cue, where OCR reads it back;
other pixels and the audio stream are left as they were."""

from __future__ import annotations

import av
import numpy as np
import pytest

from duomo.errors import MediaError
from duomo.subtitles.burn import burn_subtitles, render_cue
from duomo.subtitles.cues import Cue


def decoded(path) -> list[tuple[float, np.ndarray]]:
    with av.open(str(path)) as container:
        return [(round(float(f.time), 3), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]


def audio_packets(path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]


@pytest.mark.slow
def test_burned_text_is_where_and_when_its_cue_says(tmp_path):
    from duomo.ocr.reader import TextReader
    from tests.helpers.talking import make_talking_video

    talking = make_talking_video(tmp_path / "plain.mp4", duration_sec=4.0, speech=[])
    cues = [Cue(0.5, 1.5, "Good morning to everyone"), Cue(2.0, 3.0, "The weather is sunny\ntoday in Paris")]
    out = burn_subtitles(talking.path, cues, tmp_path / "burned.mp4")
    before, after = decoded(talking.path), decoded(out)
    assert [t for t, _ in after] == [t for t, _ in before] and len(after) == 40
    assert audio_packets(out) == audio_packets(talking.path)  # copied, not re-encoded

    reader = TextReader()
    overlays = {cue.text: render_cue(cue.text, talking.size) for cue in cues}
    for (t, original), (_, burned) in zip(before, after):
        diff = np.abs(original.astype(np.int16) - burned).mean(axis=2)
        cue = next((c for c in cues if c.start_sec <= t < c.end_sec), None)
        if cue is None:
            assert diff.mean() < 2.0, t  # only the re-encoding's noise
            continue
        overlay = overlays[cue.text]
        h, w = overlay.alpha.shape
        inside = np.zeros(diff.shape, bool)
        inside[overlay.y : overlay.y + h, overlay.x : overlay.x + w] = True
        assert diff[inside].mean() > 30 and diff[~inside].mean() < 2.0, t
        if round(t * 10) % 5 == 0:  # OCR a few frames of each cue
            assert [box.text for box in reader.read(burned)] == cue.lines, t


def test_a_file_without_video_is_refused(tmp_path):
    from duomo.video.encode import write_audio

    audio = write_audio(tmp_path / "sound.wav", np.zeros(1600, np.float32))
    with pytest.raises(MediaError, match="sound.wav: no video stream"):
        burn_subtitles(audio, [Cue(0, 1, "x")], tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists() and [p.name for p in tmp_path.iterdir()] == ["sound.wav"]


def test_render_cue_fits_long_lines_into_the_frame():
    overlay = render_cue("W" * 42 + "\n" + "W" * 42, (320, 180))
    h, w = overlay.alpha.shape
    assert w <= 320 and overlay.x >= 0 and overlay.y + h <= 180
    assert (overlay.color > 200).any()  # white letters
    wide, narrow = render_cue("W" * 42, (1280, 720)), render_cue("W" * 42, (320, 720))
    assert narrow.alpha.shape[0] < wide.alpha.shape[0]  # the same text on a narrow frame: a smaller font


def test_a_rotated_video_is_burned_upright(tmp_path):
    from duomo.video import probe, sample_uniform
    from duomo.video.encode import write_video

    frames = [np.tile(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], (48, 1, 3)) for _ in range(10)]
    video = write_video(tmp_path / "portrait.mp4", frames, 10, rotation=90, crf=0)
    out = burn_subtitles(video, [Cue(0.0, 1.0, "upright")], tmp_path / "burned.mp4")
    assert (probe(out).width, probe(out).height, probe(out).rotation) == (48, 64, 0)
    shown, burned = sample_uniform(video, 2).frames, sample_uniform(out, 2).frames
    assert shown.shape == burned.shape == (2, 64, 48, 3)
    # above the text box the upright picture is unchanged (up to the re-encoding)
    assert np.abs(shown[:, :30].astype(np.int16) - burned[:, :30]).mean() < 2.0
