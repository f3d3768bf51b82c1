"""WordTokenizer: splitting, vocabulary order, unknown words, encode/decode, save/load."""

from __future__ import annotations

import pytest

from duomo.text.tokenize import BOS, EOS, PAD, SEP, SPECIALS, UNK, WordTokenizer, split_words


def test_special_ids():
    assert (PAD, UNK, BOS, EOS, SEP) == (0, 1, 2, 3, 4)
    assert SPECIALS == ["<pad>", "<unk>", "<bos>", "<eos>", "<sep>"]


@pytest.mark.parametrize(
    "text, words",
    [
        ("What color is the Square?", ["what", "color", "is", "the", "square", "?"]),
        ("a red, then 2 blue circles.", ["a", "red", ",", "then", "2", "blue", "circles", "."]),
        ("it's   the circle's turn!", ["it's", "the", "circle's", "turn", "!"]),
        ("move_left", ["move", "_", "left"]),
        ("", []),
    ],
)
def test_split_words(text, words):
    assert split_words(text) == words


def test_build_orders_by_frequency_then_alphabet():
    tok = WordTokenizer.build(["b a c", "a b", "a d"])
    # a x3, b x2, then c and d once each in alphabetical order
    assert tok.words == SPECIALS + ["a", "b", "c", "d"]
    assert len(tok) == 9


def test_build_min_count_maps_rare_words_to_unk():
    tok = WordTokenizer.build(["red square", "red circle", "blue square"], min_count=2)
    assert tok.words == SPECIALS + ["red", "square"]
    assert tok.encode("red circle square") == [5, UNK, 6]


def test_word_list_must_start_with_the_specials():
    with pytest.raises(ValueError, match="special tokens"):
        WordTokenizer(["a", "b"])


@pytest.fixture
def tok() -> WordTokenizer:
    return WordTokenizer(SPECIALS + ["what", "color", "is", "it", "?", "red", ".", ","])  # ids 5..12


def test_encode_plain(tok):
    assert tok.encode("What color is it?") == [5, 6, 7, 8, 9]
    assert tok.encode("what is green?") == [5, 7, UNK, 9]
    assert tok.encode("") == []


def test_encode_with_bos_and_eos(tok):
    assert tok.encode("it is red.", bos=True, eos=True) == [BOS, 8, 7, 10, 11, EOS]


def test_encode_max_len_keeps_eos_last(tok):
    assert tok.encode("it is red.", 4, bos=True, eos=True) == [BOS, 8, 7, EOS]
    assert tok.encode("it is red.", 3) == [8, 7, 10]
    assert tok.encode("it is red.", 3, eos=True) == [8, 7, EOS]
    assert tok.encode("it", 5, bos=True, eos=True) == [BOS, 8, EOS]  # short text: no padding


def test_decode_stops_at_eos_and_skips_pad_and_bos(tok):
    assert tok.decode([BOS, 8, 7, 10, 11, EOS, 6, 6, PAD]) == "it is red."
    assert tok.decode([PAD, 5, PAD, 6]) == "what color"


def test_decode_reattaches_punctuation(tok):
    assert tok.decode([5, 6, 7, 8, 9]) == "what color is it?"
    assert tok.decode(tok.encode("it is red , it is red .")) == "it is red, it is red."


def test_decode_unknown_ids(tok):
    assert tok.decode([UNK, 8]) == "<unk> it"
    assert tok.decode([99, 8]) == "<unk> it"  # out of range ids do not raise


def test_decode_accepts_tensor_like_ints(tok):
    import numpy as np

    assert tok.decode(np.array([8, 7, 10, EOS])) == "it is red"


def test_save_load_round_trip(tmp_path):
    tok = WordTokenizer.build(["the red square moves left.", "the blue circle?"], min_count=1)
    tok.save(tmp_path / "tok.json")
    again = WordTokenizer.load(tmp_path / "tok.json")
    assert again.words == tok.words
    text = "the red circle moves?"
    assert again.encode(text, bos=True, eos=True) == tok.encode(text, bos=True, eos=True)
    assert again.decode(again.encode(text)) == "the red circle moves?"
