"""Speech: recognition with word timestamps (faster-whisper) and synthesis (Piper, espeak-ng).

Model libraries are imported when a recognizer is built, not when this package is imported.
"""

from duomo.speech.asr import SpeechRecognizer, SpeechSegment, Word
from duomo.speech.tts import VoiceError, list_voices, synthesize, synthesize_many

__all__ = ["SpeechRecognizer", "SpeechSegment", "VoiceError", "Word", "list_voices", "synthesize", "synthesize_many"]
