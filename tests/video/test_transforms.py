"""Frame conversion and the log-mel spectrogram: layout, frame counts, where tones land, silence."""

from __future__ import annotations

import numpy as np
import pytest

from duomo.video.transforms import (
    frames_to_float,
    log_mel_spectrogram,
    mel_band_edges,
    mel_filterbank,
    num_spectrogram_frames,
)

RATE = 16000
HOP = 320  # 0.02 s at 16 kHz
WIN = 400  # 0.025 s at 16 kHz


def tone(freq_hz: float, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def test_frames_to_float_layout_and_range():
    frames = np.zeros((2, 3, 4, 3), dtype=np.uint8)
    frames[1, 2, 3] = (255, 0, 51)
    out = frames_to_float(frames)
    assert out.dtype == np.float32 and out.shape == (2, 3, 3, 4)
    assert out.flags.c_contiguous
    np.testing.assert_allclose(out[1, :, 2, 3], [1.0, 0.0, 0.2], rtol=1e-6)
    assert out.sum() == pytest.approx(1.2)


def test_frames_to_float_rejects_wrong_input():
    with pytest.raises(ValueError, match="uint8"):
        frames_to_float(np.zeros((2, 3, 4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="uint8"):
        frames_to_float(np.zeros((3, 4, 3), dtype=np.uint8))


@pytest.mark.parametrize("num_samples", [0, 1, 100, WIN, HOP, HOP + 1, 2 * HOP, 16000, 16001])
def test_frame_count(num_samples):
    mel = log_mel_spectrogram(np.zeros(num_samples, dtype=np.float32), RATE)
    expected = 1 + (num_samples - 1) // HOP if num_samples else 1
    assert mel.shape == (expected, 64) and mel.dtype == np.float32
    assert num_spectrogram_frames(num_samples, HOP) == expected


def test_frame_a_starts_at_a_times_hop():
    # a click at sample 5 * HOP + 10 is inside frames 4 (window [4 hop, 4 hop + 400)) and 5 only
    wave = np.zeros(RATE, dtype=np.float32)
    wave[5 * HOP + 10] = 1.0
    energy = log_mel_spectrogram(wave, RATE).max(axis=1)
    assert set(np.flatnonzero(energy > -10)) == {4, 5}


def test_silence_is_constant_and_low():
    mel = log_mel_spectrogram(np.zeros(RATE, dtype=np.float32), RATE)
    assert np.all(mel == mel[0, 0])
    assert mel[0, 0] == pytest.approx(np.log(1e-6))


def test_1000_hz_tone_peaks_in_the_band_holding_1000_hz():
    mel = log_mel_spectrogram(tone(1000.0), RATE)
    band = int(mel.mean(axis=0).argmax())
    edges = mel_band_edges(64, 50.0, RATE / 2)
    assert edges[band] < 1000.0 < edges[band + 2]  # band m spans edges m..m+2, peak at m+1
    # and its peak is the nearest band centre to 1000 Hz
    assert band == int(np.abs(edges[1:-1] - 1000.0).argmin())


def test_tones_land_in_distinct_bands():
    bands = [int(log_mel_spectrogram(tone(f), RATE).mean(axis=0).argmax()) for f in (400, 600, 900, 1350)]
    assert bands == sorted(bands) and len(set(bands)) == 4


def test_filterbank_has_no_empty_band_at_defaults():
    filters = mel_filterbank(RATE, 512, 64, 50.0, RATE / 2)
    assert filters.shape == (64, 257)
    assert np.all(filters.max(axis=1) > 0.25)  # every band catches at least one FFT bin
    assert filters.max() <= 1.0


def test_long_waveform_matches_frame_by_frame():
    # chunked processing: frames on both sides of a chunk boundary equal a direct computation
    gen = np.random.default_rng(0)
    wave = gen.standard_normal(HOP * 4200).astype(np.float32) * 0.1
    mel = log_mel_spectrogram(wave, RATE)
    for a in (0, 4095, 4096, 4199):
        window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)
        frame = np.zeros(WIN)
        piece = wave[a * HOP:a * HOP + WIN]
        frame[:len(piece)] = piece
        power = np.abs(np.fft.rfft(frame * window, n=512)) ** 2
        expected = np.log(mel_filterbank(RATE, 512, 64, 50.0, RATE / 2) @ power + 1e-6)
        np.testing.assert_allclose(mel[a], expected, rtol=1e-4, atol=1e-4)


def test_rejects_bad_frequency_range():
    with pytest.raises(ValueError, match="fmax"):
        log_mel_spectrogram(np.zeros(100, dtype=np.float32), RATE, fmax=9000.0)
