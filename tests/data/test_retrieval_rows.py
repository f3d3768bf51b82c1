"""Rows and batches of the retrieval task: one row per caption (retrieval head), one per captioned
segment with its span and the video's probed duration (moment head)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from duomo.config import Component, RunConfig
from duomo.data.collate import collate
from duomo.data.datasets import DatasetError, Row, VideoItem, build_vocab, make_rows
from duomo.data.manifest import Segment, VideoRecord
from duomo.data.media import Media
from duomo.text.tokenize import PAD
from tests.helpers.videos import make_video


def retrieval_config(head: str = "retrieval") -> RunConfig:
    cfg = RunConfig(task="retrieval")
    model = replace(cfg.model, head=Component(head), fusion=Component("separate"))
    return replace(cfg, model=model, data=replace(cfg.data, manifest="set/manifest.jsonl", max_text_len=4))


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """20 frames at 10 fps: 2.0 s."""
    return make_video(tmp_path_factory.mktemp("v") / "clip.mkv", num_frames=20, fps=10, size=(32, 32))


def record(video_path: Path, **fields) -> VideoRecord:
    return VideoRecord("v1", video_path, "train", **fields)


def test_one_row_per_caption_with_the_caption_as_query(video):
    rec = record(video, captions=("a red ball", "the ball rolls left quickly away"),
                 segments=(Segment(0.0, 1.0, "a red ball"),))
    cfg = retrieval_config()
    vocab = build_vocab([rec], cfg)
    # the vocabulary holds caption and segment words: both heads' queries
    assert {"red", "ball", "rolls", "quickly"} <= set(vocab.tokenizer.words)
    rows = make_rows(rec, cfg, vocab, train=True)
    assert [r.question for r in rows] == list(rec.captions)
    assert rows[0].text_ids == vocab.tokenizer.encode("a red ball")
    assert len(rows[1].text_ids) == 4  # cut at max_text_len
    assert all(r.span is None for r in rows)
    assert make_rows(rec, cfg, vocab, train=False) == rows


def test_segment_queries_add_a_row_per_captioned_segment_in_training_only(video):
    """The retrieval head's ``segment_queries``: training also queries the whole video with each
    segment caption (segments without a caption or span are not queries); evaluation does not."""
    rec = record(video, captions=("a red ball",), segments=(Segment(0.0, 1.0, "the ball rolls"), Segment(1.0, 1.0, "x"),
                                                            Segment(1.0, 2.0)))
    cfg = retrieval_config()
    cfg = replace(cfg, model=replace(cfg.model, head=Component("retrieval", {"segment_queries": True})))
    vocab = build_vocab([rec], cfg)
    assert [r.question for r in make_rows(rec, cfg, vocab, train=True)] == ["a red ball", "the ball rolls"]
    assert [r.question for r in make_rows(rec, cfg, vocab, train=False)] == ["a red ball"]


def test_moment_rows_carry_span_and_probed_duration(video):
    rec = record(video, captions=("a red ball",), segments=(
        Segment(0.5, 1.5, "the ball rolls"), Segment(1.0, 1.2), Segment(0.2, 0.8, "a red ball")))
    cfg = retrieval_config("moment")
    vocab = build_vocab([rec], cfg)
    rows = make_rows(rec, cfg, vocab, train=True)
    # segments without a caption are no query
    assert [(r.question, r.span) for r in rows] == [("the ball rolls", (0.5, 1.5)), ("a red ball", (0.2, 0.8))]
    assert all(r.duration_sec == pytest.approx(2.0) for r in rows)


def test_a_split_without_what_the_head_needs_is_refused(video):
    with pytest.raises(DatasetError, match="captions"):
        build_vocab([record(video, segments=(Segment(0.0, 1.0, "x"),))], retrieval_config())
    with pytest.raises(DatasetError, match="segments"):
        build_vocab([record(video, captions=("x",))], retrieval_config("moment"))


def _item(video_id: str, rows: list[Row]) -> VideoItem:
    return VideoItem(video_id, Media(frames=np.zeros((2, 8, 8, 3), np.uint8), mel=None), None, rows)


def test_collate_queries_and_spans_as_fractions_of_the_duration():
    items = [_item("a", [Row(text_ids=[5, 6, 7], span=(0.5, 1.5), duration_sec=2.0),
                         Row(text_ids=[8], span=(1.0, 2.5), duration_sec=2.0)]),  # ends after the video
             _item("b", [Row(text_ids=[9, 10], span=(0.0, 1.0), duration_sec=4.0)])]
    batch = collate(items, task="retrieval")
    assert batch.rows.tolist() == [0, 0, 1]
    assert batch.text_ids.tolist() == [[5, 6, 7], [8, PAD, PAD], [9, 10, PAD]]
    assert batch.text_mask.tolist() == [[True] * 3, [True, False, False], [True, True, False]]
    torch.testing.assert_close(batch.spans, torch.tensor([[0.25, 0.75], [0.5, 1.0], [0.0, 0.25]]))
    # caption rows (no span) give no spans
    plain = collate([_item("a", [Row(text_ids=[5])])], task="retrieval")
    assert plain.spans is None and plain.text_ids.tolist() == [[5]]
