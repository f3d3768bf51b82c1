"""make_cues and split_lines on hand-made word lists: exact cues."""

from __future__ import annotations

from duomo.speech.asr import SpeechSegment, Word
from duomo.subtitles.cues import Cue, make_cues, split_lines


def words(*items: tuple[str, float, float]) -> list[Word]:
    return [Word(text, start, end, 1.0) for text, start, end in items]


def evenly(text: str, start: float, word_sec: float = 0.3, gap_sec: float = 0.1) -> list[Word]:
    """One word every word_sec + gap_sec seconds from start."""
    out = []
    for i, token in enumerate(text.split()):
        t = start + i * (word_sec + gap_sec)
        out.append(Word(token, round(t, 3), round(t + word_sec, 3), 1.0))
    return out


def test_split_lines_keeps_one_line_when_it_fits():
    assert split_lines("Hello world.", 42, 2) == ["Hello world."]
    assert split_lines("x" * 42, 42, 2) == ["x" * 42]


def test_split_lines_balances_two_lines():
    text = "This is a longer sentence with many words in it"  # 48 characters
    assert split_lines(text, 42, 2) == ["This is a longer sentence", "with many words in it"]
    # the greedy fill at 42 would leave "in it" alone on the second line
    assert split_lines("aaaa bbbb cccc dddd eeee", 14, 2) == ["aaaa bbbb cccc", "dddd eeee"]


def test_split_lines_refuses_what_does_not_fit():
    assert split_lines("aaaa bbbb cccc", 9, 1) is None
    assert split_lines("x" * 43, 42, 2) is None
    assert split_lines(" ".join(["word"] * 20), 42, 2) is None  # 99 characters


def test_sentence_ends_and_pauses_start_new_cues():
    cues = make_cues(words(("Hello", 0.0, 0.4), ("there.", 0.5, 1.2), ("How", 1.3, 1.6), ("are", 1.7, 2.0),
                           ("you", 2.0, 2.5), ("today", 3.5, 4.6)))
    assert cues == [Cue(0.0, 1.2, "Hello there."), Cue(1.3, 2.5, "How are you"), Cue(3.5, 4.6, "today")]


def test_short_cues_grow_to_a_second_without_overlapping():
    cues = make_cues(words(("Yes.", 1.0, 1.2), ("No.", 1.6, 1.9), ("Maybe.", 5.0, 5.3)))
    # "Yes." can only grow later to the next cue's start (1.6), so it also starts earlier:
    # 1.6 - 1.0 = 0.6; "No." grows later to 2.6; "Maybe." to 6.0
    assert cues == [Cue(0.6, 1.6, "Yes."), Cue(1.6, 2.6, "No."), Cue(5.0, 6.0, "Maybe.")]


def test_a_short_cue_before_a_close_one_grows_backwards():
    cues = make_cues(words(("Long", 0.0, 0.5), ("one.", 0.5, 1.5), ("Hi.", 3.0, 3.2), ("Next", 3.4, 3.9),
                           ("sentence", 4.0, 4.5)), pause_sec=0.6)
    # "Hi." cannot pass 3.4 (the next cue), so it starts earlier: 3.4 - 1.0 = 2.4 (after 1.5)
    assert cues == [Cue(0.0, 1.5, "Long one."), Cue(2.4, 3.4, "Hi."), Cue(3.4, 4.5, "Next sentence")]


def test_long_speech_is_cut_at_two_lines_of_42():
    text = ("the quick brown fox jumps over the lazy dog and then it runs far away into the woods "
            "where nobody can see it anymore")
    cues = make_cues(evenly(text, 0.0, word_sec=0.1, gap_sec=0.05))
    assert [cue.lines for cue in cues] == [
        ["the quick brown fox jumps over the lazy", "dog and then it runs far away into the"],
        ["woods where nobody can see it anymore"],
    ]
    assert all(len(line) <= 42 for cue in cues for line in cue.lines)
    # a word every 0.15 s: the second cue starts with word 17; it ends with the last word (23)
    assert (cues[0].start_sec, cues[0].end_sec) == (0.0, 2.5)
    assert (cues[1].start_sec, cues[1].end_sec) == (2.55, 3.55)


def test_cues_last_at_most_seven_seconds():
    # one word a second, never a pause or a sentence end: 7 words fit in 7 s (0.0 to 6.9)
    cues = make_cues(evenly("a b c d e f g h i j", 0.0, word_sec=0.9, gap_sec=0.1))
    assert [cue.text for cue in cues] == ["a b c d e f g", "h i j"]
    assert cues[0] == Cue(0.0, 6.9, "a b c d e f g") and cues[1] == Cue(7.0, 9.9, "h i j")


def test_segments_are_read_for_their_words():
    first = words(("One", 0.0, 0.5), ("two", 0.6, 1.2))
    second = words(("three.", 1.3, 2.4))
    segments = [SpeechSegment(0.0, 1.2, "One two", tuple(first)), SpeechSegment(1.3, 2.4, "three.", tuple(second))]
    assert make_cues(segments) == [Cue(0.0, 2.4, "One two three.")]
    assert make_cues([]) == []


def test_a_word_longer_than_a_line_gets_a_cue_of_its_own():
    long_word = "x" * 50
    cues = make_cues(words(("short", 0.0, 0.5), (long_word, 0.6, 1.8), ("after", 1.9, 2.9)))
    assert [cue.text for cue in cues] == ["short", long_word, "after"]


def test_cue_times_are_rounded_to_the_millisecond():
    cue = Cue(1.23449, 2.0000001, "x")
    assert (cue.start_sec, cue.end_sec) == (1.234, 2.0)
    assert Cue(0, 1, "[a red circle]").is_description and not Cue(0, 1, "a [red] circle").is_description
    assert Cue(0, 1, "two\nlines").spoken_text == "two lines"
