"""The pure pieces of the library: segment building, on-screen text spans, the visual
descriptor, reciprocal rank fusion, grouping and where a spoken phrase starts."""

from __future__ import annotations

import numpy as np
import pytest

from duomo.library.analyze import IndexSettings, _OcrSpans, _SegmentBuilder, _width_size
from duomo.library.search import _fuse, _group, _phrase_start
from duomo.library.visual import DIM, describe_frames


def solid(rgb, size=(8, 6)):
    return np.full((size[1], size[0], 3), rgb, dtype=np.uint8)


def test_segments_follow_windows_and_cuts(tmp_path):
    builder = _SegmentBuilder(IndexSettings(segment_sec=2.0, sample_every_sec=0.5), tmp_path)
    for i in range(20):  # samples at 0, 0.5, ..., 9.5 s
        builder.add_sample(i * 0.5, solid((10 * i, 0, 0)), None)
    builder.close_until(3.9, cuts=[3.0])  # only what ends by 3.9 s is final
    assert [(s.start_sec, s.end_sec, s.shot_idx) for s in builder.segments] == [(0.0, 2.0, 0), (2.0, 3.0, 0)]
    builder.close_until(10.0, cuts=[3.0, 8.2], final=True)
    assert [(s.start_sec, s.end_sec, s.shot_idx) for s in builder.segments] == [
        (0.0, 2.0, 0), (2.0, 3.0, 0), (3.0, 5.0, 1), (5.0, 7.0, 1), (7.0, 8.2, 1), (8.2, 10.0, 2)]
    # each thumbnail is the middle sample of its segment: (0, 0.5, 1.0, 1.5) -> 1.0 s -> red 20
    assert (tmp_path / "00000.jpg").is_file() and len(list(tmp_path.glob("*.jpg"))) == 6
    assert len(builder.samples) <= 1  # only the frame on screen at the end is held


def test_a_short_segment_without_its_own_sample_uses_the_frame_on_screen(tmp_path):
    builder = _SegmentBuilder(IndexSettings(segment_sec=5.0, sample_every_sec=1.0), tmp_path)
    for t in (0.0, 1.0, 2.0):
        builder.add_sample(t, solid((0, 0, 200)), None)
    builder.close_until(2.5, cuts=[2.3, 2.4], final=True)
    assert [(s.start_sec, s.end_sec) for s in builder.segments] == [(0.0, 2.3), (2.3, 2.4), (2.4, 2.5)]


def test_ocr_spans_join_consecutive_reads():
    spans = _OcrSpans(every_sec=1.0)
    spans.observe(0.0, ["BREAKING  NEWS"])
    spans.observe(1.0, ["breaking news", "Live"])
    spans.observe(2.0, ["Live"])
    spans.observe(3.0, [])
    spans.observe(4.0, ["Breaking News"])
    spans.close()
    assert spans.spans == [
        {"start": 0.0, "end": 2.0, "text": "BREAKING NEWS"},
        {"start": 1.0, "end": 3.0, "text": "Live"},
        {"start": 4.0, "end": 5.0, "text": "Breaking News"},
    ]


def test_descriptor_is_unit_length_and_tells_colours_apart():
    red, red2, blue = (describe_frames([solid(c)]) for c in ((200, 30, 30), (190, 40, 35), (30, 40, 200)))
    assert red.shape == (DIM,) and np.linalg.norm(red) == pytest.approx(1.0, abs=1e-5)
    assert red @ red2 > red @ blue + 0.3
    with pytest.raises(ValueError):
        describe_frames([])


def test_width_size_keeps_aspect_even_and_never_upscales():
    assert _width_size(1280, 720, 96) == (96, 54)
    assert _width_size(64, 48, 320) == (64, 48)


def test_reciprocal_rank_fusion():
    a = [{"id": "x", "v": 1}, {"id": "y", "v": 1}]
    b = [{"id": "y", "v": 2}, {"id": "z", "v": 2}]
    fused = _fuse([a, b])
    assert [row["id"] for row in fused] == ["y", "x", "z"]
    assert fused[0]["score"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused[1]["score"] == pytest.approx(1 / 61)


def test_group_by_video_keeps_order_and_limits():
    rows = [{"video_id": v, "path": f"/{v}.mp4", "score": s, "modality": "speech", "start": t, "end": t + 1,
             "text": "", "thumbnail": "", "segment_idx": 0} for v, s, t in
            [("a", 0.9, 1.0), ("b", 0.8, 2.0), ("a", 0.7, 3.0), ("c", 0.6, 4.0)]]
    grouped = _group(rows, "", k=2)
    assert [(g.video_id, [h.start_sec for h in g.hits]) for g in grouped] == [("a", [1.0, 3.0]), ("b", [2.0])]


def test_phrase_start_is_the_first_word_of_the_longest_match():
    words = [["So,", 10.0, 10.3], ["the", 10.3, 10.5], ["red", 10.5, 10.8], ["fox", 10.8, 11.0],
             ["jumped.", 11.0, 11.5], ["The", 12.0, 12.2], ["red", 12.2, 12.5], ["fox", 12.5, 12.8], ["ran", 12.8, 13.0]]
    assert _phrase_start(words, "red fox ran", 0.0) == 12.2
    assert _phrase_start(words, "Jumped!", 0.0) == 11.0
    assert _phrase_start(words, "nothing here", 9.5) == 9.5


def test_chunk_ranges():
    from duomo.library.analyze import chunk_ranges

    assert chunk_ranges(100.0, 120.0) == [(0.0, None)]
    assert chunk_ranges(600.0, 120.0) == [(0.0, 120.0), (120.0, 240.0), (240.0, 360.0), (360.0, 480.0), (480.0, None)]
    assert chunk_ranges(600.0, 0) == [(0.0, None)]
    assert chunk_ranges(600.0, 120.0, multiple_of=2) == [(0.0, 100.0), (100.0, 200.0), (200.0, 300.0),
                                                         (300.0, 400.0), (400.0, 500.0), (500.0, None)]


def test_merge_chunks_joins_shots_and_text_across_boundaries():
    from duomo.library.analyze import SegmentResult, VideoAnalysis, merge_chunks

    def seg(start, end):
        return SegmentResult(idx=0, start_sec=start, end_sec=end, shot_idx=0, thumbnail="t.jpg",
                             descriptor=np.zeros(2, np.float32))

    a = VideoAnalysis("v", {}, [(0.0, 3.0), (3.0, 10.0)], [seg(0, 3), seg(3, 8), seg(8, 10)],
                      ocr=[{"start": 8.0, "end": 10.0, "text": "HELLO"}], timings={"decode": 1.0})
    b = VideoAnalysis("v", {}, [(10.0, 14.0), (14.0, 20.0)], [seg(10, 14), seg(14, 19), seg(19, 20)],
                      ocr=[{"start": 10.0, "end": 12.0, "text": "hello"}, {"start": 15.0, "end": 16.0, "text": "BYE"}],
                      timings={"decode": 2.0, "ocr": 1.0})
    merged = merge_chunks([a, b])
    assert merged.shots == [(0.0, 3.0), (3.0, 14.0), (14.0, 20.0)]
    assert [(s.idx, s.start_sec, s.shot_idx) for s in merged.segments] == [
        (0, 0, 0), (1, 3, 1), (2, 8, 1), (3, 10, 1), (4, 14, 2), (5, 19, 2)]
    assert merged.ocr == [{"start": 8.0, "end": 12.0, "text": "HELLO"}, {"start": 15.0, "end": 16.0, "text": "BYE"}]
    assert merged.timings == {"decode": 3.0, "ocr": 1.0}
    b.starts_with_cut = True  # a real cut on the chunk's first frame stays a cut
    assert merge_chunks([a, b]).shots == [(0.0, 3.0), (3.0, 10.0), (10.0, 14.0), (14.0, 20.0)]


def test_split_sentences_cuts_a_transcript_entry_at_sentence_ends():
    from duomo.library.index import split_sentences

    entry = {"start": 1.0, "end": 6.0, "text": "Hi there. How are you?",
             "words": [[" Hi", 1.0, 1.2], [" there.", 1.2, 1.6], [" How", 3.0, 3.2], [" are", 3.2, 3.4], [" you?", 3.4, 6.0]]}
    assert split_sentences(entry) == [
        {"start": 1.0, "end": 1.6, "text": "Hi there.", "words": entry["words"][:2]},
        {"start": 3.0, "end": 6.0, "text": "How are you?", "words": entry["words"][2:]}]
    assert split_sentences({"start": 0.0, "end": 1.0, "text": "x", "words": []}) == [
        {"start": 0.0, "end": 1.0, "text": "x", "words": []}]
