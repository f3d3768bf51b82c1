"""Dubbing: speak each cue with a text-to-speech voice, fit it to the cue's slot, lay the
clips on a track at the original audio's rate and channels, duck or replace the original
under speech, and mux a new file with the video stream copied packet for packet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
import logging
from pathlib import Path

import av
import av.filter
import numpy as np

from duomo.errors import MediaError
from duomo.speech.tts import VoiceError, list_voices, synthesize_many
from duomo.subtitles.cues import Cue, make_cues
from duomo.subtitles.formats import SubtitleError, format_time
from duomo.subtitles.partial import partial_file
from duomo.video.probe import ffmpeg_reason, open_container

logger = logging.getLogger(__name__)

MIXES = ("duck", "replace")
RAMP_SEC = 0.08
"""The original's gain moves between full and ducked over this long, starting before the
voice so its first syllable is not masked, ending after it."""
SILENCE_LEVEL = 0.01
"""Samples below this share of a clip's peak at its ends count as the voice's padding."""


@dataclass(frozen=True)
class DubbedCue:
    """Where a cue's speech went: ``start_sec`` to ``end_sec`` of the new track, spoken
    ``speedup`` times faster than the voice's natural pace (1.0 = unchanged)."""

    cue: Cue
    start_sec: float
    end_sec: float
    speedup: float


def dub_video(
    video: str | Path,
    cues: Sequence[Cue] | None,
    out: str | Path,
    *,
    voice: str = "joe",
    mix: str = "duck",
    max_speedup: float = 1.5,
    duck_db: float = -15.0,
    use_variation: bool = True,
    cues_name: str = "cues",
) -> list[DubbedCue]:
    """Write ``out``: ``video``'s video stream copied, and its first audio stream replaced by
    the cues spoken by ``voice`` over the original sound (further audio, subtitle and data
    streams are not carried over).

    ``cues=None`` dubs the video's own speech: it is recognized (Whisper, bundled model) and
    cut into cues with ``make_cues``. Each cue's speech (leading and trailing silence trimmed)
    starts at the cue's start; when it is longer than the cue it is sped up (FFmpeg's
    ``atempo``, pitch kept) to end with the cue, at most ``max_speedup`` times; shorter speech
    is followed by the original sound. ``mix="duck"`` lowers the original by ``duck_db`` dB
    under each cue (its whole slot, where the original's own line is, with short ramps),
    ``"replace"`` silences it there. The new audio keeps the original's sample rate and channel
    count and is encoded as AAC (Opus in .webm); the whole soundtrack is held in memory as
    float32 (about 1.4 GB an hour at 48 kHz stereo). ``out`` is written to a temporary file beside
    it and renamed at the end, so it is complete or absent. ``use_variation=False`` makes Piper
    voices repeatable; ``cues_name`` is what errors about cues call them (the subtitle file).

    Raises SubtitleError for cues out of order, overlapping, or too long to fit even at
    ``max_speedup`` (naming the cue); VoiceError for a voice that is not installed; MediaError
    for a video without an audio stream, or one that cannot be read or remuxed.
    """
    video, out = Path(video), Path(out)
    if mix not in MIXES:
        raise ValueError(f"mix must be one of {MIXES}, got {mix!r}")
    if max_speedup < 1.0:
        raise ValueError(f"max_speedup must be >= 1, got {max_speedup}")
    _format_name(out)  # an output type we cannot write fails before any work
    if out.resolve() == video.resolve():
        raise MediaError(out, "the output would overwrite the input video; choose another --out")
    if cues is not None:
        _check_cues(cues, cues_name)
    voices = list_voices()
    if voice not in voices:
        shown = ", ".join(voices[:8]) + (f" and {len(voices) - 8} more, see `espeak-ng --voices`"
                                         if len(voices) > 8 else "")
        raise VoiceError(f"voice {voice!r} is not installed (installed: {shown or 'none'})")
    original, rate, layout = _decode_original(video)  # (C, S) float32
    if cues is None:
        from duomo.speech.asr import SpeechRecognizer

        cues = make_cues(SpeechRecognizer().transcribe(video))
        if not cues:
            raise MediaError(video, "no speech found to dub; give the script as a subtitle file")
        cues_name = f"{video} (recognized speech)"
    spoken = [(number, cue) for number, cue in enumerate(cues, 1) if _speech(cue)]
    clips = synthesize_many([_speech(cue) for _, cue in spoken], voice=voice, sample_rate=rate,
                            use_variation=use_variation)
    track = np.zeros(original.shape[1], np.float32)
    under_speech = np.zeros(original.shape[1], bool)
    placed = []
    for (number, cue), (clip, _) in zip(spoken, clips):
        clip = _trim_silence(clip)
        slot = cue.end_sec - cue.start_sec
        speedup = max(1.0, len(clip) / rate / slot)
        if speedup > max_speedup:
            raise SubtitleError(cues_name,
                                f"cue {number} ({format_time(cue.start_sec)} --> "
                                f"{format_time(cue.end_sec)}, {_short(cue.spoken_text)!r}) is too long to fit: "
                                f"{voice} speaks it in {len(clip) / rate:.2f} s, the slot is {slot:.2f} s, and "
                                f"{max_speedup:g}x faster would still take {len(clip) / rate / max_speedup:.2f} s")
        if speedup > 1.0:
            clip = change_tempo(clip, rate, speedup)[: round(slot * rate)]
        first = round(cue.start_sec * rate)
        if first >= len(track):
            raise SubtitleError(cues_name, f"cue {number} starts at {format_time(cue.start_sec)}, "
                                            f"after the audio ends ({format_time(len(track) / rate)})")
        clip = clip[: len(track) - first]
        track[first : first + len(clip)] += clip
        # the whole slot, not only the new speech: the original's own line fills the cue's time
        under_speech[first : max(first + len(clip), round(cue.end_sec * rate))] = True
        placed.append(DubbedCue(cue, first / rate, (first + len(clip)) / rate, round(speedup, 3)))
        logger.debug("cue %d: %.2f s of speech at %.2f s, %.2fx", number, len(clip) / rate, cue.start_sec, speedup)
    floor = 0.0 if mix == "replace" else 10 ** (duck_db / 20)
    gain = gain_envelope(under_speech, rate, floor)
    original *= gain[None, :]  # in place: a long soundtrack is held once, not three times
    original += track[None, :]
    np.clip(original, -1.0, 1.0, out=original)
    _remux(video, out, original, rate, layout)
    return placed


def gain_envelope(under_speech: np.ndarray, rate: int, floor: float) -> np.ndarray:
    """(S,) float32 gain: 1 away from speech, ``floor`` under it (``under_speech`` (S,) bool),
    moving linearly over ``RAMP_SEC`` before each stretch starts and after it ends: a sample k
    samples from the nearest speech sample gets floor + (1 - floor) * min(k, ramp) / ramp."""
    ramp = max(1, round(RAMP_SEC * rate))
    gain = np.ones(len(under_speech), np.float32)
    edges = np.flatnonzero(np.diff(under_speech.astype(np.int8), prepend=0, append=0))
    steps = floor + (1.0 - floor) * np.arange(1, ramp + 1, dtype=np.float32) / ramp  # k = 1 .. ramp
    for start, end in zip(edges[::2], edges[1::2]):  # speech runs [start, end), one loop per cue
        gain[start:end] = floor
        before = gain[max(0, start - ramp) : start]
        before[:] = np.minimum(before, steps[: len(before)][::-1])
        after = gain[end : end + ramp]
        after[:] = np.minimum(after, steps[: len(after)])
    return gain


def change_tempo(audio: np.ndarray, rate: int, factor: float) -> np.ndarray:
    """``audio`` (S,) float32 mono played ``factor`` times faster at the same pitch (FFmpeg's
    ``atempo`` filter, WSOLA): about (S / factor,) float32."""
    graph = av.filter.Graph()
    source = graph.add_abuffer(format="flt", sample_rate=rate, layout="mono", time_base=Fraction(1, rate))
    # one atempo instance handles 0.5..2.0 in older FFmpeg builds: chain them for more
    stages = []
    remaining = factor
    while remaining > 2.0:
        stages.append(2.0)
        remaining /= 2.0
    stages.append(remaining)
    node = source
    for stage in stages:
        tempo = graph.add("atempo", f"{stage:.6f}")
        node.link_to(tempo)
        node = tempo
    sink = graph.add("abuffersink")
    node.link_to(sink)
    graph.configure()
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio, np.float32)[None, :], format="flt", layout="mono")
    frame.sample_rate = rate
    frame.pts = 0
    graph.push(frame)
    graph.push(None)
    chunks = []
    while True:
        try:
            chunks.append(graph.pull().to_ndarray().reshape(-1))
        except (av.error.BlockingIOError, av.error.EOFError):
            break
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


def _check_cues(cues: Sequence[Cue], name: str) -> None:
    for i, cue in enumerate(cues, 1):
        if cue.end_sec <= cue.start_sec:
            raise SubtitleError(name, f"cue {i} ends at {format_time(cue.end_sec)}, not after its start")
        if i > 1 and cue.start_sec < cues[i - 2].end_sec:
            kind = "out of order" if cue.start_sec < cues[i - 2].start_sec else "overlapping"
            raise SubtitleError(name, f"cue {i} starts at {format_time(cue.start_sec)}, before cue {i - 1} "
                                        f"ends at {format_time(cues[i - 2].end_sec)} ({kind})")
    if not any(_speech(cue) for cue in cues):
        raise SubtitleError(name, "nothing to speak (no cue has text)")


def _speech(cue: Cue) -> str:
    """What the voice reads: the cue's lines, a description "[a red circle moves left]" without
    its brackets."""
    return cue.spoken_text.strip("[] ")


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _trim_silence(clip: np.ndarray) -> np.ndarray:
    """The clip without the quiet padding a voice puts before and after the words."""
    if not len(clip):
        return clip
    loud = np.flatnonzero(np.abs(clip) > SILENCE_LEVEL * np.abs(clip).max())
    return clip[loud[0] : loud[-1] + 1] if len(loud) else clip[:0]


def _decode_original(video: Path) -> tuple[np.ndarray, int, str]:
    """The first audio stream, all of it: ((C, S) float32, sample rate, channel layout name).
    Raises MediaError when there is none."""
    container = open_container(video)
    try:
        if not container.streams.video:
            raise MediaError(video, "no video stream to dub")
        if not container.streams.audio:
            raise MediaError(video, "no audio track: dubbing replaces a video's soundtrack, and this one has none")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        layout = stream.codec_context.layout.name
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        chunks = []
        try:
            for frame in container.decode(stream):
                chunks += [f.to_ndarray() for f in resampler.resample(frame)]
            chunks += [f.to_ndarray() for f in resampler.resample(None)]
        except av.error.FFmpegError as err:
            raise MediaError(video, f"cannot decode its audio: {ffmpeg_reason(err)}") from None
    finally:
        container.close()
    audio = np.concatenate(chunks, axis=1) if chunks else np.zeros((0, 0), np.float32)
    if audio.size == 0:
        raise MediaError(video, "its audio track is empty")
    return audio.astype(np.float32, copy=False), rate, layout


def _remux(video: Path, out: Path, audio: np.ndarray, rate: int, layout: str) -> None:
    """Copy ``video``'s video stream into ``out`` with ``audio`` (C, S) as its only audio
    stream, via a temporary file renamed at the end."""
    format_name = _format_name(out)
    with partial_file(out) as tmp:
        source = open_container(video)
        try:
            try:
                target = av.open(str(tmp), "w", format=format_name)
            except (av.error.FFmpegError, ValueError) as err:
                raise MediaError(out, f"cannot write this kind of file: {err}") from None
            try:
                _write_streams(source, target, audio, rate, layout, video, out)
            finally:
                target.close()
        finally:
            source.close()


def _format_name(out: Path) -> str:
    names = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
    if out.suffix.lower() not in names:
        raise MediaError(out, f"unsupported output type {out.suffix or '(none)'} (use {', '.join(names)})")
    return names[out.suffix.lower()]


def _write_streams(source, target, audio: np.ndarray, rate: int, layout: str, video: Path, out: Path) -> None:
    in_video = source.streams.video[0]
    try:
        out_video = target.add_stream_from_template(in_video)
    except (av.error.FFmpegError, ValueError) as err:
        raise MediaError(out, f"cannot copy the {in_video.codec_context.name} video stream: {err}") from None
    codec = "libopus" if out.suffix.lower() == ".webm" else "aac"
    out_audio = target.add_stream(codec, rate=rate, layout=layout)
    # encode the new audio first (compressed it is small) so it can be interleaved by time
    audio_packets = []
    chunk = out_audio.codec_context.frame_size or 1024
    fmt = out_audio.codec_context.format.name
    for start in range(0, audio.shape[1], chunk):
        block = audio[:, start : start + chunk]
        if block.shape[1] < chunk:
            block = np.pad(block, ((0, 0), (0, chunk - block.shape[1])))
        if not fmt.endswith("p"):
            block = block.T.reshape(1, -1)  # packed formats interleave the channels
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block, np.float32), format=fmt, layout=layout)
        frame.sample_rate = rate
        frame.pts = start
        audio_packets += out_audio.encode(frame)
    audio_packets += out_audio.encode(None)
    pending = iter(audio_packets)
    next_audio = next(pending, None)
    try:
        for packet in source.demux(in_video):
            if packet.dts is None:
                continue  # the demuxer's empty flush packet
            packet_sec = float(packet.dts * packet.time_base)
            while next_audio is not None and float(next_audio.dts * next_audio.time_base) <= packet_sec:
                target.mux(next_audio)
                next_audio = next(pending, None)
            packet.stream = out_video
            target.mux(packet)
        while next_audio is not None:
            target.mux(next_audio)
            next_audio = next(pending, None)
    except av.error.FFmpegError as err:
        raise MediaError(video, f"cannot remux into {out}: {ffmpeg_reason(err)}") from None
