"""Decoded media -> model inputs, in numpy: frames to float CHW, waveforms to log-mel spectrograms.

No torch here: this is the data side; the models normalize their inputs themselves.
"""

from __future__ import annotations

import numpy as np

LOG_EPS = 1e-6
"""Added to mel energies before the log: digital silence comes out as log(1e-6) = -13.8."""
CHUNK_FRAMES = 4096
"""Spectrogram frames transformed at once (~8 MB of FFT output at n_fft 512), so memory
stays flat however long the waveform is."""


def frames_to_float(frames: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W, 3) frames -> float32 (T, 3, H, W) in [0, 1]."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    out = frames.transpose(0, 3, 1, 2).astype(np.float32, order="C")
    out *= np.float32(1.0 / 255.0)
    return out


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: 2595 * log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of ``hz_to_mel``."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_band_edges(num_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(num_mels + 2,) Hz: band m rises from edge m, peaks at edge m + 1, falls to edge m + 2;
    the edges are equally spaced on the HTK mel scale."""
    return mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), num_mels + 2))


def mel_filterbank(sample_rate: int, n_fft: int, num_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(num_mels, n_fft // 2 + 1) float32 triangular filters on the HTK mel scale.

    Each triangle peaks at 1 (no Slaney area normalisation), so a pure tone's energy lands in
    the bands whose triangles cover it, at the same scale in every band.
    """
    edges = mel_band_edges(num_mels, fmin, fmax)
    bin_hz = np.arange(n_fft // 2 + 1) * sample_rate / n_fft  # (F,)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (M, 1) each
    rising = (bin_hz - lower) / (centre - lower)
    falling = (upper - bin_hz) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


def num_spectrogram_frames(num_samples: int, hop_samples: int) -> int:
    """Frames ``log_mel_spectrogram`` gives: 1 + (N - 1) // hop, and 1 for an empty waveform."""
    return 1 + max(num_samples - 1, 0) // hop_samples


def log_mel_spectrogram(
    waveform: np.ndarray,
    sample_rate: int,
    *,
    num_mels: int = 64,
    hop_sec: float = 0.02,
    win_sec: float = 0.025,
    fmin: float = 50.0,
    fmax: float | None = None,
) -> np.ndarray:
    """Log mel energies of a mono waveform: (N,) float -> (A, num_mels) float32.

    Frame a covers samples ``[a * hop, a * hop + win)`` (hop = round(hop_sec * rate),
    win = round(win_sec * rate)); the waveform is zero-padded at the end so the last frame
    starts at or before the last sample: A = 1 + (N - 1) // hop, at least 1 (an empty or
    shorter-than-a-window waveform gives one frame). Each frame is Hann-windowed (periodic),
    zero-padded to n_fft = the next power of two >= win, and its |FFT|^2 (unnormalised) is
    summed by ``mel_filterbank`` (HTK mel scale, peak-1 triangles, ``fmin`` to ``fmax``,
    default Nyquist); the result is log(mel + 1e-6). Frames are transformed in chunks of
    ``CHUNK_FRAMES``, so memory does not grow with the waveform's length.
    """
    waveform = np.asarray(waveform, dtype=np.float32).reshape(-1)
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    fmax = sample_rate / 2 if fmax is None else fmax
    if not 0 <= fmin < fmax <= sample_rate / 2:
        raise ValueError(f"need 0 <= fmin < fmax <= sample_rate / 2, got fmin={fmin} fmax={fmax}")
    hop = max(1, round(hop_sec * sample_rate))
    win = max(2, round(win_sec * sample_rate))
    n_fft = 1 << (win - 1).bit_length()
    num_frames = num_spectrogram_frames(len(waveform), hop)
    padded = np.zeros((num_frames - 1) * hop + win, dtype=np.float32)
    used = min(len(waveform), len(padded))
    padded[:used] = waveform[:used]
    # periodic Hann, as in torch.stft / librosa
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)).astype(np.float32)
    filters = mel_filterbank(sample_rate, n_fft, num_mels, fmin, fmax).T  # (F, M)
    frames = np.lib.stride_tricks.sliding_window_view(padded, win)[::hop]  # (A, win), a view
    out = np.empty((num_frames, num_mels), dtype=np.float32)
    for start in range(0, num_frames, CHUNK_FRAMES):
        spectrum = np.fft.rfft(frames[start:start + CHUNK_FRAMES] * window, n=n_fft, axis=1)  # (a, F)
        power = (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)
        out[start:start + CHUNK_FRAMES] = np.log(power @ filters + np.float32(LOG_EPS))
    return out
