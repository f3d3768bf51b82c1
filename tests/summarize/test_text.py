"""Key phrases, sentence centrality, budgets and knapsack selection of segments."""

from __future__ import annotations

import numpy as np
import pytest

from duomo.summarize.pipeline import SummarizeError, _chapters, _joined, parse_budget, select_segments
from duomo.summarize.text import central_sentences, key_phrases, split_sentences


def test_key_phrases_prefer_words_of_their_own_document():
    docs = ["the cat sat on the cat mat", "the dog ran to the dog park", ""]
    assert key_phrases(docs, top_k=2) == [["cat", "mat"], ["dog", "park"], []]


def test_split_sentences():
    assert split_sentences("Hello there. How are you? Fine!  ") == ["Hello there.", "How are you?", "Fine!"]


def test_central_sentences_pick_the_rows_most_like_the_others_in_order():
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [1.0, 0.05]])
    assert central_sentences(vectors, 2) == [1, 3]  # row 0 comes third, row 2 is the outlier
    assert central_sentences(vectors, 0) == [] and central_sentences(np.zeros((0, 2)), 3) == []


def test_parse_budget():
    assert parse_budget("15%") == (0.15, False)
    assert parse_budget("20") == (20.0, True) and parse_budget("7.5s") == (7.5, True)
    for bad in ("abc", "0", "150%", "-3"):
        with pytest.raises(SummarizeError, match="--budget"):
            parse_budget(bad)


def test_select_segments_is_a_knapsack_over_lengths():
    spans = [(0.0, 1.0), (1.0, 3.0), (3.0, 4.0), (4.0, 5.0)]
    # 2 s: (1, 3) alone scores 0.9; (0, 1) + (3, 4) score 0.5 + 0.6 = 1.1 after the shift, more
    assert select_segments(np.array([0.5, 0.9, 0.6, 0.1]), spans, 2.0) == [0, 2]
    assert select_segments(np.array([0.5, 0.9, 0.6, 0.1]), spans, 0.5) == []
    assert _joined([(3.0, 4.0), (0.0, 1.0), (1.0, 2.0)]) == [(0.0, 2.0), (3.0, 4.0)]


def test_chapters_cover_the_video_in_order_with_key_phrase_titles(tmp_path):
    shots = [(0.0, 4.0), (4.0, 4.5), (4.5, 10.0), (10.0, 12.0)]
    transcript = [{"start": 0.5, "end": 3.0, "text": "welcome to the kitchen, the kitchen is warm"},
                  {"start": 5.0, "end": 9.0, "text": "now the garden with roses and roses"}]
    chapters = _chapters(tmp_path / "v.mp4", 12.0, shots, transcript, [], None)
    # at least 1 s a chapter: the 0.5 s shot opens one that the next shot joins
    assert [(c.start, c.end) for c in chapters] == [(0.0, 4.0), (4.0, 10.0), (10.0, 12.0)]
    assert chapters[0].title.startswith("Kitchen") and chapters[1].title.startswith("Roses")
    assert chapters[2].title == "Chapter 3"
