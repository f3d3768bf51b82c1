"""SRT and WebVTT: what we write parses back to the same cues; files from elsewhere load
(BOM, CRLF, no final blank line, VTT headers, notes, styles, settings); bad files say why."""

from __future__ import annotations

from pathlib import Path

import pytest

from duomo.subtitles.cues import Cue
from duomo.subtitles.formats import SubtitleError, format_time, parse_subtitles, write_srt, write_vtt

CUES = [
    Cue(0.0, 1.5, "Hello there."),
    Cue(1.5, 4.25, "This cue has\ntwo lines"),
    Cue(62.001, 65.999, "Fish & chips <3 > all"),
    Cue(3725.4, 3727.0, "Past an hour."),
]


def test_format_time():
    assert format_time(3725.4) == "01:02:05,400"
    assert format_time(1.2346) == "00:00:01,235"  # rounded to the millisecond
    assert format_time(59.9999, ".") == "00:01:00.000"


def test_srt_text_is_exact():
    assert write_srt(CUES[:2]) == (
        "1\n00:00:00,000 --> 00:00:01,500\nHello there.\n\n"
        "2\n00:00:01,500 --> 00:00:04,250\nThis cue has\ntwo lines\n"
    )


def test_blank_lines_inside_a_cue_are_not_written():
    assert write_srt([Cue(0, 1, "one\n\ntwo")]) == "1\n00:00:00,000 --> 00:00:01,000\none\ntwo\n"


def test_vtt_text_is_exact_and_escaped():
    assert write_vtt(CUES[2:3]) == "WEBVTT\n\n00:01:02.001 --> 00:01:05.999\nFish &amp; chips &lt;3 &gt; all\n"


@pytest.mark.parametrize("write", [write_srt, write_vtt])
def test_round_trip_through_a_file(write, tmp_path):
    path = tmp_path / ("subs.srt" if write is write_srt else "subs.vtt")
    write(CUES, path)
    assert parse_subtitles(path) == CUES
    assert parse_subtitles(path.read_text()) == CUES  # the text itself parses too


def test_srt_from_elsewhere_with_bom_crlf_and_no_final_blank_line(tmp_path):
    text = ("\ufeff1\r\n00:00:01,000 --> 00:00:02,500\r\n<i>Hello</i> there\r\n\r\n"
            "2\r\n00:00:03,000 --> 00:00:04,000\r\n{\\an8}Top line\r\nsecond line")
    path = tmp_path / "windows.srt"
    path.write_bytes(text.encode("utf-8"))
    assert parse_subtitles(path) == [Cue(1.0, 2.5, "Hello there"), Cue(3.0, 4.0, "Top line\nsecond line")]


def test_srt_in_windows_1252_and_dot_millis(tmp_path):
    path = tmp_path / "old.srt"
    path.write_bytes("1\n00:00:01.5 --> 00:00:02.250\nCaf\xe9\n\n\n\n".encode("cp1252"))
    assert parse_subtitles(path) == [Cue(1.5, 2.25, "Café")]


def test_vtt_from_elsewhere():
    text = """\ufeffWEBVTT - a title
Kind: captions
Language: en

STYLE
::cue { color: yellow }

NOTE this is a comment
that spans lines

REGION
id:fred width:40%

intro
00:01.000 --> 00:02.000 align:start position:10% line:0
<v Roger>Hi, <b>Bob</b> &amp; Ann</v>

00:00:02.000 --> 00:00:03.500
<c.yellow>Second</c> <00:00:02.500>cue"""
    assert parse_subtitles(text) == [Cue(1.0, 2.0, "Hi, Bob & Ann"), Cue(2.0, 3.5, "Second cue")]


@pytest.mark.parametrize("text, message", [
    ("1\n00:00:02,000 --> 00:00:03,000\na\n\n2\n00:00:01,000 --> 00:00:01,500\nb\n",
     "subs.srt: cue 2 (line 5): out of order, starts at 00:00:01,000 before cue 1 (00:00:02,000)"),
    ("1\n00:00:01,000 --> 00:00:03,000\na\n\n2\n00:00:02,000 --> 00:00:04,000\nb\n",
     "subs.srt: cue 2 (line 5): overlaps cue 1, starts at 00:00:02,000 before it ends at 00:00:03,000"),
    ("1\n00:00:03,000 --> 00:00:02,000\na\n",
     "subs.srt: cue 1 (line 1): ends at 00:00:02,000, not after its start 00:00:03,000"),
    ("1\n00:00:01,000 --> 00:00:02,000\na\n\n2\nno timing here\n",
     "subs.srt: cue 2 (line 5): no 'start --> end' timing line"),
    ("1\n00:00:01,000 --> 00:00:xx,000\na\n", "subs.srt: cue 1 (line 1): bad timing line '00:00:01,000 --> 00:00:xx,000'"),
    ("just some text\nthat is not subtitles\n", "subs.srt: not an SRT or WebVTT file (line 1: 'just some text')"),
    ("", "subs.srt: no cues"),
    ("WEBVTT\n\nNOTE nothing else\n", "subs.srt: no cues"),
])
def test_bad_files_name_the_file_and_cue(tmp_path, text, message):
    path = tmp_path / "subs.srt"
    path.write_text(text)
    with pytest.raises(SubtitleError) as err:
        parse_subtitles(path)
    assert str(err.value) == f"{tmp_path}/{message}"


def test_text_without_cues_is_not_taken_for_a_path():
    with pytest.raises(SubtitleError, match="^<subtitles>: no cues$"):
        parse_subtitles("WEBVTT\n\nNOTE only a note\n")


def test_a_missing_file(tmp_path):
    with pytest.raises(SubtitleError, match="nope.srt: no such file"):
        parse_subtitles(tmp_path / "nope.srt")
    with pytest.raises(SubtitleError, match="nope.vtt: no such file"):
        parse_subtitles(str(tmp_path / "nope.vtt"))


def test_binary_garbage_is_not_subtitles(tmp_path):
    path = tmp_path / "video.mp4"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(SubtitleError, match="video.mp4: not an SRT or WebVTT file"):
        parse_subtitles(Path(path))
