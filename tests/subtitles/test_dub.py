"""dub_video: tempo change and gain envelope on known signals; a dubbed talking video that
speech recognition reads back (WER, timing); the video stream copied byte for byte; duck vs
replace under speech; bad input gives one clear error and no output file."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from duomo.errors import MediaError
from duomo.eval.metrics import word_error_rate
from duomo.speech.tts import VoiceError
from duomo.subtitles.cues import Cue
from duomo.subtitles.dub import RAMP_SEC, change_tempo, dub_video, gain_envelope
from duomo.subtitles.formats import SubtitleError, parse_subtitles, write_srt
from tests.helpers.videos import make_video


def video_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.video[0]) if p.size]


def decode_all_audio(path: Path) -> tuple[np.ndarray, int]:
    """(C, S) float32 planar audio at the stream's own rate and layout, and the rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = [frame.to_ndarray() for frame in container.decode(stream)]
        rate = stream.codec_context.sample_rate
    return np.concatenate(chunks, axis=1), rate


def tone_level(audio: np.ndarray, rate: int, start_sec: float, end_sec: float, hz: float) -> float:
    """Amplitude of the ``hz`` component of channel 0 between the two times (a Hann-windowed
    DFT at exactly that frequency)."""
    x = audio[0, round(start_sec * rate) : round(end_sec * rate)].astype(np.float64)
    window = np.hanning(len(x))
    t = np.arange(len(x)) / rate
    return float(2 * np.abs(np.sum(x * window * np.exp(-2j * np.pi * hz * t))) / window.sum())


def make_tone_video(path: Path, duration_sec: float, *, rate: int = 44100, hz: float = 3000.0,
                    amplitude: float = 0.3) -> Path:
    """A 10 fps H.264 video with a stereo ``rate`` Hz AAC soundtrack: a steady tone."""
    container = av.open(str(path), "w")
    video = container.add_stream("libx264", rate=10, options={"crf": "30"})
    video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
    audio = container.add_stream("aac", rate=rate, layout="stereo")
    for i in range(round(duration_sec * 10)):
        frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 10 * i % 256, np.uint8), format="rgb24")
        frame.pts, frame.time_base = i, Fraction(1, 10)
        container.mux(video.encode(frame))
    container.mux(video.encode(None))
    chunk = audio.codec_context.frame_size
    num_samples = round(duration_sec * rate)
    for start in range(0, num_samples, chunk):
        t = (start + np.arange(chunk)) / rate
        wave = (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = rate, start
        container.mux(audio.encode(frame))
    container.mux(audio.encode(None))
    container.close()
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name or p.name.startswith("out"))


def test_change_tempo_shortens_and_keeps_the_pitch():
    rate = 22050
    t = np.arange(2 * rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    faster = change_tempo(tone, rate, 1.5)
    assert abs(len(faster) - 2 * rate / 1.5) < 0.02 * rate  # 1.333 s, within 20 ms
    spectrum = np.abs(np.fft.rfft(faster * np.hanning(len(faster))))
    peak_hz = np.argmax(spectrum) * rate / len(faster)
    assert abs(peak_hz - 440) < 2  # a resampling speed-up would be at 660 Hz
    assert abs(len(change_tempo(tone, rate, 3.0)) - 2 * rate / 3) < 0.02 * rate  # two chained stages


def test_gain_envelope_ramps_around_speech():
    rate = 100  # the ramp is RAMP_SEC * 100 = 8 samples
    assert round(RAMP_SEC * rate) == 8
    under = np.zeros(60, bool)
    under[20:30] = True
    gain = gain_envelope(under, rate, 0.2)
    assert np.allclose(gain[20:30], 0.2)
    assert np.allclose(gain[:12], 1.0) and np.allclose(gain[38:], 1.0)
    # 4 samples before the start and 4 after the end: half way
    assert gain[16] == pytest.approx(0.2 + 0.8 * 4 / 8) and gain[33] == pytest.approx(0.2 + 0.8 * 4 / 8)
    assert np.allclose(gain_envelope(np.zeros(10, bool), rate, 0.0), 1.0)


def test_a_video_without_audio_is_refused(tmp_path):
    video = make_video(tmp_path / "silent.mkv", num_frames=10, fps=10)
    with pytest.raises(MediaError, match=r"silent.mkv: no audio track"):
        dub_video(video, [Cue(0.0, 1.0, "hello")], tmp_path / "out.mkv")
    assert leftovers(tmp_path) == []


def test_a_voice_that_is_not_installed_is_refused(tmp_path):
    video = make_tone_video(tmp_path / "tone.mp4", 2.0)
    with pytest.raises(VoiceError, match=r"voice 'klingon' is not installed \(installed: joe"):
        dub_video(video, [Cue(0.0, 1.0, "hello")], tmp_path / "out.mp4", voice="klingon")
    assert leftovers(tmp_path) == []


def test_overlapping_cues_are_refused(tmp_path):
    video = make_tone_video(tmp_path / "tone.mp4", 2.0)
    cues = [Cue(0.0, 1.0, "one"), Cue(0.5, 1.5, "two")]
    with pytest.raises(SubtitleError, match=r"script.srt: cue 2 starts at 00:00:00,500, before cue 1 ends"):
        dub_video(video, cues, tmp_path / "out.mp4", cues_name="script.srt")
    with pytest.raises(MediaError, match=r"unsupported output type \.avi"):
        dub_video(video, [Cue(0.0, 1.0, "one")], tmp_path / "out.avi")
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_a_cue_too_long_for_its_slot_is_named(tmp_path):
    video = make_tone_video(tmp_path / "tone.mp4", 4.0)
    cues = [Cue(0.0, 1.5, "Hello."), Cue(2.0, 2.6, "This sentence is far too long to be spoken in its slot.")]
    with pytest.raises(SubtitleError) as err:
        dub_video(video, cues, tmp_path / "out.mp4", cues_name="script.srt", use_variation=False)
    message = str(err.value)
    assert message.startswith("script.srt: cue 2 (00:00:02,000 --> 00:00:02,600, 'This sentence is far too long")
    assert "is too long to fit" in message and "1.5x faster would still take" in message
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_duck_and_replace_under_speech_at_the_original_rate_and_channels(tmp_path):
    video = make_tone_video(tmp_path / "tone.mp4", 6.0)
    cues = [Cue(1.0, 4.0, "Here is a short line of speech.")]
    levels = {}
    for mix in ("duck", "replace"):
        out = tmp_path / f"{mix}.mp4"
        placed = dub_video(video, cues, out, mix=mix, duck_db=-15.0, use_variation=False)
        audio, rate = decode_all_audio(out)
        assert (rate, audio.shape[0]) == (44100, 2)
        start, end = placed[0].start_sec, placed[0].end_sec
        assert start == pytest.approx(1.0, abs=1e-3) and 1.0 < end <= 4.0
        under = tone_level(audio, rate, start + 0.2, end - 0.2, 3000.0)
        away = tone_level(audio, rate, 4.6, 5.8, 3000.0)
        levels[mix] = 20 * np.log10(under / away)
        # the rest of the slot after the new speech is where the original line went on: also lowered
        assert end < 3.5
        rest = tone_level(audio, rate, end + 0.15, 3.9, 3000.0)
        if mix == "duck":
            assert 20 * np.log10(rest / away) == pytest.approx(-15.0, abs=1.5)
        else:
            assert rest < 0.01 * away  # below -40 dB
        assert away == pytest.approx(0.3, rel=0.05)  # the original, untouched away from speech
        assert video_packets(out) == video_packets(video)
    assert levels["duck"] == pytest.approx(-15.0, abs=1.5)
    assert levels["replace"] < -40.0


@pytest.mark.slow
def test_dubbed_speech_is_recognized_at_its_cues(tmp_path):
    from duomo.speech.asr import SpeechRecognizer
    from tests.helpers.talking import make_talking_video

    talking = make_talking_video(tmp_path / "talk.mp4", duration_sec=12.0, speech=[
        (0.5, "The cat sat on the mat."), (4.5, "Birds fly over the river."), (8.5, "It is cold outside.")])
    slots = [(line.start_sec, line.end_sec + 0.3) for line in talking.speech]
    script = ["Good morning to everyone here.", "The weather is sunny and warm in the city today.",
              "We will meet again tomorrow."]
    srt = tmp_path / "script.srt"
    write_srt([Cue(start, end, text) for (start, end), text in zip(slots, script)], srt)
    cues = parse_subtitles(srt)
    out = tmp_path / "dubbed.mp4"
    placed = dub_video(talking.path, cues, out, mix="replace", use_variation=False)
    assert [p.speedup > 1 for p in placed] == [False, True, False]  # the long line was sped up to fit

    segments = SpeechRecognizer().transcribe(out)
    recognized = " ".join(segment.text for segment in segments)
    assert word_error_rate(" ".join(script), recognized) <= 0.15, recognized
    words = [word for segment in segments for word in segment.words]
    for cue in cues:
        first = min((w for w in words if cue.start_sec - 0.5 <= w.start_sec < cue.end_sec),
                    key=lambda w: w.start_sec)
        assert abs(first.start_sec - cue.start_sec) <= 0.5, (cue, first)
        assert first.text.strip(".,").lower() == cue.text.split()[0].lower()
    assert video_packets(out) == video_packets(talking.path)
    assert out.stat().st_mode & 0o777 == (tmp_path / "talk.mp4").stat().st_mode & 0o777
