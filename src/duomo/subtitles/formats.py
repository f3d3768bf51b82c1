"""SubRip (.srt) and WebVTT (.vtt) files: write cues, and parse either format back.

Parsing tolerates what files from elsewhere usually carry: a byte-order mark, CRLF or CR line
ends, no blank line at the end, VTT headers, NOTE / STYLE / REGION blocks, cue identifiers and
cue settings, comma or dot before the milliseconds, hours left out, and markup (``<i>``,
``<v Name>``, ``{\\an8}``), which is dropped. Cues must be in order and must not overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
import html
from pathlib import Path
import re

from duomo.errors import MediaError
from duomo.subtitles.cues import Cue

TIME = r"(?:(\d+):)?(\d{1,2}):(\d{2})[,.](\d{1,3})"
TIMING = re.compile(rf"^\s*{TIME}\s*-->\s*{TIME}(?:\s+(.*))?$")
# markup: <i>, </b>, <v Name>, <c.class>, VTT timestamps <00:00:02.500>, ASS overrides {\an8};
# not a bare "<3" or "a < b"
TAG = re.compile(r"</?(?:[a-zA-Z][^<>\n]*|\d[\d:.]*)>|\{\\[^}\n]*\}")


class SubtitleError(MediaError):
    """A subtitle file that cannot be used: ``"<file>: cue N (line L): <reason>"``."""


def format_time(seconds: float, separator: str = ",") -> str:
    """``HH:MM:SS,mmm`` (SRT) or, with ``separator="."``, ``HH:MM:SS.mmm`` (WebVTT)."""
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def write_srt(cues: Sequence[Cue], path: str | Path | None = None) -> str:
    """The cues as SubRip text (numbered blocks, each followed by a blank line); also written
    to ``path`` (UTF-8) when given."""
    blocks = [f"{i}\n{format_time(c.start_sec)} --> {format_time(c.end_sec)}\n{_text(c)}\n"
              for i, c in enumerate(cues, 1)]
    text = "\n".join(blocks)
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def write_vtt(cues: Sequence[Cue], path: str | Path | None = None) -> str:
    """The cues as WebVTT text (``&``, ``<`` and ``>`` escaped); also written to ``path``
    (UTF-8) when given."""
    blocks = ["WEBVTT\n"]
    for c in cues:
        text = _text(c).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        blocks.append(f"{format_time(c.start_sec, '.')} --> {format_time(c.end_sec, '.')}\n{text}\n")
    text = "\n".join(blocks)
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def _text(cue: Cue) -> str:
    """The cue's lines without blank ones (a blank line would end the block early)."""
    return "\n".join(line for line in cue.lines if line.strip())


def parse_subtitles(source: str | Path, *, name: str | None = None) -> list[Cue]:
    """Cues of an SRT or WebVTT file (told apart by the ``WEBVTT`` header), in order.

    ``source`` is a path, or the text itself (a ``str`` holding ``-->`` or a line break); ``name`` is what
    errors call the text (default: the path, or ``"<subtitles>"``). Raises SubtitleError naming
    the file, the cue number and its line for a missing file, a block without a timing line,
    a bad time, an end not after its start, cues out of order or overlapping, and for a file
    without cues. Cues whose text is empty after markup is dropped are skipped.
    """
    if isinstance(source, str) and ("-->" in source or "\n" in source):
        text, name = source, name or "<subtitles>"
    else:
        path = Path(source)
        name = name or str(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SubtitleError(name, "no such file") from None
        except OSError as err:
            raise SubtitleError(name, f"cannot read: {err.strerror}") from None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")  # older SRT files are often Windows-1252
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    is_vtt = text.lstrip().startswith("WEBVTT")
    cues: list[Cue] = []
    number = 0
    for line_no, block in _blocks(text):
        first = block[0].strip()
        if is_vtt and (first.startswith("WEBVTT") or first.split(" ")[0] in ("NOTE", "STYLE", "REGION")
                       or first.startswith("NOTE\t")):
            continue
        number += 1
        where = f"cue {number} (line {line_no})"
        timing_at = next((i for i, line in enumerate(block[:2]) if "-->" in line), None)
        if timing_at is None:
            if not cues and not is_vtt and number == 1:
                raise SubtitleError(name, f"not an SRT or WebVTT file (line {line_no}: {first[:40]!r})")
            raise SubtitleError(name, f"{where}: no 'start --> end' timing line")
        match = TIMING.match(block[timing_at])
        if match is None:
            raise SubtitleError(name, f"{where}: bad timing line {block[timing_at].strip()!r}")
        start, end = _seconds(match.groups()[0:4]), _seconds(match.groups()[4:8])
        if end <= start:
            raise SubtitleError(name, f"{where}: ends at {format_time(end)}, not after its start {format_time(start)}")
        if cues and start < cues[-1].start_sec:
            raise SubtitleError(name, f"{where}: out of order, starts at {format_time(start)} before cue "
                                      f"{number - 1} ({format_time(cues[-1].start_sec)})")
        if cues and start < cues[-1].end_sec:
            raise SubtitleError(name, f"{where}: overlaps cue {number - 1}, starts at {format_time(start)} "
                                      f"before it ends at {format_time(cues[-1].end_sec)}")
        lines = [_plain(line, is_vtt) for line in block[timing_at + 1:]]
        lines = [line for line in lines if line]
        if lines:
            cues.append(Cue(start, end, "\n".join(lines)))
    if not cues:
        raise SubtitleError(name, "no cues")
    return cues


def _blocks(text: str) -> list[tuple[int, list[str]]]:
    """(first line number, lines) of each run of non-blank lines."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    for line_no, line in enumerate(text.split("\n"), 1):
        if line.strip():
            if not current:
                blocks.append((line_no, current))
            current.append(line)
        else:
            current = []
    return blocks


def _seconds(parts: tuple[str | None, ...]) -> float:
    hours, minutes, secs, millis = parts
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(secs) + int(millis.ljust(3, "0")) / 1000


def _plain(line: str, is_vtt: bool) -> str:
    line = TAG.sub("", line).strip()
    return html.unescape(line) if is_vtt else line
