"""Duomo's errors survive pickling, so worker processes can report them to the parent."""

import pickle

from duomo.errors import ManifestError, MediaError
from duomo.subtitles.formats import SubtitleError


def test_errors_round_trip_through_pickle():
    media = pickle.loads(pickle.dumps(MediaError("a.mp4", "empty file (0 bytes)")))
    assert isinstance(media, MediaError) and str(media) == "a.mp4: empty file (0 bytes)" and media.reason == "empty file (0 bytes)"
    manifest = pickle.loads(pickle.dumps(ManifestError("m.jsonl", [(3, "video", "missing")])))
    assert manifest.problems == [(3, "video", "missing")] and str(manifest) == str(ManifestError("m.jsonl", [(3, "video", "missing")]))
    subtitle = pickle.loads(pickle.dumps(SubtitleError("s.srt", "cue 2 (line 5): overlaps cue 1")))
    assert type(subtitle) is SubtitleError and str(subtitle) == "s.srt: cue 2 (line 5): overlaps cue 1"
