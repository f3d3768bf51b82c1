"""decode_audio: mono float32 at the asked rate, right length, right pitch, exact cuts."""

from __future__ import annotations

import numpy as np
import pytest

from duomo.errors import MediaError
from duomo.video import decode_audio, write_audio
from tests.helpers.videos import make_audio, tone


def peak_hz(audio: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / sample_rate)[np.argmax(spectrum)])


def test_wav_exact_length_and_pitch(audio_only):
    audio = decode_audio(audio_only)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == 16000
    assert peak_hz(audio, 16000) == pytest.approx(440, abs=1)
    np.testing.assert_allclose(audio, tone(440, 1.0, 16000), atol=1e-4)  # 16-bit PCM round trip


def test_resampled_from_44k(tmp_path):
    path = make_audio(tmp_path / "tone44.wav", 1000.0, 1.0, 44100)
    audio = decode_audio(path, sample_rate=16000)
    assert abs(len(audio) - 16000) <= 1
    assert peak_hz(audio, 16000) == pytest.approx(1000, abs=2)
    assert decode_audio(path, sample_rate=8000).size == pytest.approx(8000, abs=1)


@pytest.mark.parametrize("name", ["tone.m4a", "tone.ogg", "tone.mkv"])
def test_lossy_audio_files(tmp_path, name):
    path = make_audio(tmp_path / name, 440.0, 1.0, 48000)
    audio = decode_audio(path)
    assert len(audio) == pytest.approx(16000, rel=0.05)  # codecs pad to whole frames
    assert peak_hz(audio, 16000) == pytest.approx(440, abs=2)


def test_stereo_is_mixed_down(tmp_path):
    import av

    path = tmp_path / "stereo.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=16000, layout="stereo")
        left, right = tone(440, 0.5, 16000), tone(440, 0.5, 16000)
        data = (np.stack([left, right], axis=1).reshape(1, -1) * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(data, format="s16", layout="stereo")
        frame.sample_rate = 16000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    audio = decode_audio(path)
    assert len(audio) == 8000
    assert peak_hz(audio, 16000) == pytest.approx(440, abs=2)


def test_cut_is_exact_to_the_sample(tmp_path):
    # silence for 0.5 s, then a constant level: the step must land where the cut says
    signal = np.concatenate([np.zeros(8000), np.full(8000, 0.5)]).astype(np.float32)
    path = write_audio(tmp_path / "step.wav", signal, 16000)
    part = decode_audio(path, start_sec=0.25, end_sec=0.75)
    assert len(part) == 8000
    assert int(np.argmax(part > 0.25)) == 4000
    assert len(decode_audio(path, start_sec=0.75)) == 4000
    assert len(decode_audio(path, end_sec=5.0)) == 16000  # an end past the audio is clipped


def test_audio_from_a_video(av_clip):
    audio = decode_audio(av_clip)
    assert len(audio) == pytest.approx(32000, rel=0.05)
    assert peak_hz(audio, 16000) == pytest.approx(440, abs=2)
    middle = decode_audio(av_clip, start_sec=0.5, end_sec=1.5)
    assert len(middle) == 16000
    assert peak_hz(middle, 16000) == pytest.approx(440, abs=2)


def test_audio_start_past_the_end(audio_only):
    with pytest.raises(MediaError, match="past the end of the audio") as err:
        decode_audio(audio_only, start_sec=3.0)
    assert str(audio_only) in str(err.value)


def test_bad_audio_arguments(audio_only):
    with pytest.raises(ValueError):
        decode_audio(audio_only, sample_rate=0)
    with pytest.raises(ValueError):
        decode_audio(audio_only, start_sec=1.0, end_sec=0.5)


def test_any_audio_stream_can_be_chosen(tmp_path):
    import av

    path = tmp_path / "two_tracks.mkv"  # e.g. original and dubbed soundtracks
    with av.open(str(path), "w") as container:
        streams = [container.add_stream("pcm_s16le", rate=16000, layout="mono") for _ in range(2)]
        for stream, hz in zip(streams, (440, 1000)):
            frame = av.AudioFrame.from_ndarray((tone(hz, 0.5, 16000)[None, :] * 32767).astype(np.int16),
                                               format="s16", layout="mono")
            frame.sample_rate, frame.pts = 16000, 0
            container.mux(stream.encode(frame))
        for stream in streams:
            container.mux(stream.encode(None))
    assert peak_hz(decode_audio(path), 16000) == pytest.approx(440, abs=2)
    assert peak_hz(decode_audio(path, stream_index=1), 16000) == pytest.approx(1000, abs=2)
    with pytest.raises(MediaError, match="no audio stream 2 \\(it has 2\\)"):
        decode_audio(path, stream_index=2)
