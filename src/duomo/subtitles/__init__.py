"""Subtitles from speech (cues, SRT / WebVTT files, burned-in text, audio description) and
dubbing (a new soundtrack spoken from cues, muxed with the video stream copied)."""

from duomo.subtitles.cues import Cue, make_cues, split_lines
from duomo.subtitles.formats import SubtitleError, parse_subtitles, write_srt, write_vtt

__all__ = ["Cue", "SubtitleError", "make_cues", "parse_subtitles", "split_lines", "write_srt", "write_vtt"]
