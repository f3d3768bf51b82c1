"""Records -> vocabularies and rows per task, and the VideoDataset over cached media."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from duomo.config import RunConfig
from duomo.data.datasets import (
    DatasetError,
    Row,
    TaskVocab,
    VideoDataset,
    build_vocab,
    caption_terms,
    data_config_for_eval,
    dialog_text,
    encode_dialog,
    frame_word_targets,
    frame_word_vocab,
    make_rows,
    split_records,
)
from duomo.data.manifest import DialogTurn, QAPair, Segment, VideoRecord, load_manifest
from duomo.data.collate import collate
from duomo.data.media import Media, prepare_media
from duomo.synth.scene import SynthConfig
from duomo.synth.world import generate_world
from duomo.text.tokenize import BOS, EOS, SEP, SPECIALS, UNK, WordTokenizer, split_words

TASKS = ("qa", "dialog", "caption", "classify")


def run_config(task: str, tmp_path: Path | None = None, **data) -> RunConfig:
    cfg = RunConfig(task=task)
    cache = {"cache_dir": str(tmp_path / "cache")} if tmp_path is not None else {}
    return replace(cfg, data=replace(cfg.data, manifest="set/manifest.jsonl", **{**cache, **data}))


def record(video_id: str, split: str = "train", **fields) -> VideoRecord:
    return VideoRecord(video_id, Path(f"/videos/{video_id}.mp4"), split, **fields)


# ---------------------------------------------------------------- a small SynthWorld, once per module


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> list[VideoRecord]:
    root = tmp_path_factory.mktemp("world")
    config = SynthConfig(num_videos=12, seed=0, size=32, fps=5, min_duration_sec=2.0, max_duration_sec=3.0)
    summary = generate_world(root, config)
    return load_manifest(summary.manifest_path)


@pytest.fixture(scope="module")
def world_stamps(world, tmp_path_factory) -> tuple[RunConfig, dict[str, str]]:
    """Every world video decoded into a cache: 2 frames of 16 px and an 8-band log-mel."""
    cache = tmp_path_factory.mktemp("world_cache")
    cfg = run_config("qa", num_frames=2, frame_size=16, num_mels=8, cache_dir=str(cache), num_workers=1)
    prepared = prepare_media([(r.video_id, r.video_path) for r in world], cfg.data)
    assert prepared.failed == {}
    return cfg, {vid: stamp for vid, (_, stamp) in prepared.ready.items()}


def test_world_has_every_split(world):
    assert len(world) == 12
    assert {r.split for r in world} == {"train", "val", "test"}
    assert split_records(world, "train") == [r for r in world if r.split == "train"]


def test_world_vocab_qa_answers_most_frequent_first(world):
    train = split_records(world, "train")
    vocab = build_vocab(train, run_config("qa"))
    counts = Counter(qa.answer for r in train for qa in r.qa)
    assert sorted(vocab.answers) == sorted(counts)
    assert [counts[a] for a in vocab.answers] == sorted(counts.values(), reverse=True)
    for a, b in zip(vocab.answers, vocab.answers[1:]):
        assert (-counts[a], a) < (-counts[b], b)  # ties in alphabetical order
    assert vocab.labels == [] and vocab.num_outputs == len(counts)


def test_world_vocab_tokenizer_covers_the_train_questions(world):
    train = split_records(world, "train")
    vocab = build_vocab(train, run_config("qa"))
    words = {w for r in train for qa in r.qa for w in split_words(qa.question)}
    assert vocab.tokenizer.words[: len(SPECIALS)] == SPECIALS
    assert set(vocab.tokenizer.words[len(SPECIALS):]) == words  # questions only, not answers or captions
    for r in train:
        for qa in r.qa:
            assert UNK not in vocab.tokenizer.encode(qa.question)


def test_world_vocab_labels_sorted(world):
    train = split_records(world, "train")
    vocab = build_vocab(train, run_config("classify"))
    assert vocab.labels == sorted({label for r in train for label in r.labels})
    assert vocab.answers == [] and vocab.num_outputs == len(vocab.labels)
    assert vocab.tokenizer.words == SPECIALS  # classify reads no text


def test_world_vocab_dialog_and_caption(world):
    train = split_records(world, "train")
    dialog = build_vocab(train, run_config("dialog"))
    counts = Counter(t.answer for r in train for d in r.dialog for t in d)
    assert sorted(dialog.answers) == sorted(counts)
    turn_words = {w for r in train for d in r.dialog for t in d for w in split_words(t.question + " " + t.answer)}
    assert set(dialog.tokenizer.words[len(SPECIALS):]) == turn_words  # answers are history text too
    caption = build_vocab(train, run_config("caption"))
    assert set(caption.tokenizer.words[len(SPECIALS):]) == {w for r in train for c in r.captions for w in split_words(c)}
    assert caption.answers == [] and caption.labels == []


@pytest.mark.parametrize("task", TASKS)
def test_world_rows_per_task(world, task):
    cfg = run_config(task)
    train = split_records(world, "train")
    vocab = build_vocab(train, cfg)
    for r in world:
        rows_eval = make_rows(r, cfg, vocab, train=False)
        rows_train = make_rows(r, cfg, vocab, train=True)
        if task == "qa":
            assert len(rows_eval) == len(r.qa)
            assert [row.answer for row in rows_eval] == [qa.answer for qa in r.qa]
            assert len(rows_train) == sum(qa.answer in vocab.answers for qa in r.qa)
        elif task == "dialog":
            assert len(rows_eval) == sum(len(d) for d in r.dialog)
            assert [row.turn_idx for row in rows_eval] == [i for d in r.dialog for i in range(len(d))]
        elif task == "caption":
            assert len(rows_eval) == 1 and rows_eval[0].references == list(r.captions)
            assert len(rows_train) == len(r.captions)
        else:
            assert len(rows_eval) == 1 and rows_eval[0].answer == r.labels[0]
        if r.split == "train" and task != "caption":
            assert len(rows_train) == len(rows_eval)  # the vocabulary covers its own split
        for row in rows_eval:
            assert len(row.text_ids) <= cfg.data.max_text_len
            assert len(row.target_ids) <= cfg.data.max_target_len


def test_world_dataset_skips_videos_without_a_stamp(world, world_stamps):
    cfg, stamps = world_stamps
    train = split_records(world, "train")
    vocab = build_vocab(train, cfg)
    dropped = train[0].video_id
    some = {vid: stamp for vid, stamp in stamps.items() if vid != dropped}
    dataset = VideoDataset(train, cfg, vocab, some, train=True)
    assert len(dataset) == len(train) - 1
    assert [r.video_id for r, _ in dataset.items] == [r.video_id for r in train[1:]]
    assert dataset.num_rows == sum(len(r.qa) for r in train[1:])
    item = dataset[0]
    assert item.video_id == train[1].video_id
    assert item.media.frames.shape == (2, 16, 16, 3) and item.media.frames.dtype == np.uint8
    assert item.media.mel.shape[1] == 8 and item.media.mel.dtype == np.float16
    assert item.features is None
    assert item.rows == make_rows(train[1], cfg, vocab, train=True)
    assert dataset[0].media is item.media  # preloaded: read from the cache once


def test_world_dataset_without_preload_rereads(world, world_stamps):
    cfg, stamps = world_stamps
    vocab = build_vocab(split_records(world, "train"), cfg)
    dataset = VideoDataset(world, cfg, vocab, stamps, train=False, preload=False)
    assert len(dataset) == 12
    first, again = dataset[0], dataset[0]
    assert first.media is not again.media
    np.testing.assert_array_equal(first.media.frames, again.media.frames)


def test_world_dataset_with_features_keeps_only_the_sound(world, world_stamps):
    cfg, stamps = world_stamps
    train = split_records(world, "train")
    vocab = build_vocab(train, cfg)
    features = {vid: np.full((2, 5), i, dtype=np.float32) for i, vid in enumerate(stamps)}
    dataset = VideoDataset(train, cfg, vocab, stamps, train=True, features=features)
    item = dataset[1]
    assert item.media.frames is None
    assert item.media.mel is not None
    np.testing.assert_array_equal(item.features, features[train[1].video_id])


def test_dataset_drops_records_without_rows():
    cfg = run_config("caption")
    records = [record("a", captions=("a red square",)), record("b")]
    vocab = build_vocab(records, cfg)
    dataset = VideoDataset(records, cfg, vocab, {"a": "s1", "b": "s2"}, train=False)
    assert [r.video_id for r, _ in dataset.items] == ["a"]


# ---------------------------------------------------------------- exact rows from hand-made records


QA_TRAIN = [
    record("a", qa=(QAPair("What color is it?", "red", "color"),
                    QAPair("What shape?", "circle", "shape", ("blue", "circle", "green")))),
    record("b", qa=(QAPair("What color is it?", "red", "color"), QAPair("What color now?", "blue", "color"))),
]


def test_qa_vocab_exact():
    vocab = build_vocab(QA_TRAIN, run_config("qa"))
    assert vocab.answers == ["red", "blue", "circle"]  # red x2, then blue and circle alphabetically
    # ? and what x4, color x3, is and it x2, now and shape x1
    assert vocab.tokenizer.words == SPECIALS + ["?", "what", "color", "is", "it", "now", "shape"]


def test_qa_rows_exact():
    cfg = run_config("qa")
    vocab = build_vocab(QA_TRAIN, cfg)
    rows = make_rows(QA_TRAIN[0], cfg, vocab, train=True)
    assert rows == [
        Row(text_ids=[6, 7, 8, 9, 5], label=0, qa_type="color", answer="red", question="What color is it?"),
        # green is not an answer of the train split: the choice is dropped
        Row(text_ids=[6, 11, 5], label=2, choices=[1, 2], qa_type="shape", answer="circle", question="What shape?"),
    ]


def test_qa_grounding_rows_only_in_training_and_their_words_in_the_vocabulary():
    """The qa head's ``ground_weight``: training adds one row per segment with a caption (its text,
    span and the video's duration, no answer); evaluation does not; the captions' words join the
    tokenizer."""
    segments = (Segment(0.5, 1.5, "the disc sinks"), Segment(2.0, 2.0, "empty span"), Segment(1.0, 3.0))
    records = [replace(QA_TRAIN[0], segments=segments, extra={"duration": 4.0}), QA_TRAIN[1]]
    cfg = run_config("qa")
    cfg = replace(cfg, model=replace(cfg.model, head=replace(cfg.model.head, args={"ground_weight": 1.0})))
    vocab = build_vocab(records, cfg)
    assert {"disc", "sinks"} <= set(vocab.tokenizer.words) and "empty" not in vocab.tokenizer.words
    rows = make_rows(records[0], cfg, vocab, train=True)
    assert len(rows) == 3 and rows[:2] == make_rows(records[0], run_config("qa"), vocab, train=True)
    assert rows[2] == Row(text_ids=vocab.tokenizer.encode("the disc sinks"), qa_type="ground",
                          question="the disc sinks", span=(0.5, 1.5), duration_sec=4.0)
    assert rows[2].label == -100
    assert [r.qa_type for r in make_rows(records[0], cfg, vocab, train=False)] == ["color", "shape"]
    assert build_vocab(records, run_config("qa")).tokenizer.words == SPECIALS + ["?", "what", "color", "is", "it", "now", "shape"]


def test_qa_pair_grounding_rows_name_two_events_in_a_seeded_order():
    """``pair_ground``: training adds one row a video whose text joins the captions of two
    neighbouring grounded segments by the given words, the pair and its order drawn by a generator
    seeded by train.seed and the video, with the two spans in the order the text names them; a
    pair of one caption twice is never drawn; the joining words join the vocabulary; evaluation
    has none of these rows."""
    segments = (Segment(0.5, 1.5, "the disc sinks"), Segment(1.0, 3.0, "the bar spins"),
                Segment(2.0, 2.5, "the bar spins"), Segment(3.0, 3.0, "empty span"))
    records = [replace(QA_TRAIN[0], segments=segments, extra={"duration": 4.0}), QA_TRAIN[1]]
    args = {"ground_weight": 1.0, "slots": 2, "slot_ground": True, "pair_ground": "together with"}
    cfg = run_config("qa")
    cfg = replace(cfg, model=replace(cfg.model, head=replace(cfg.model.head, args=args)))
    vocab = build_vocab(records, cfg)
    assert {"together", "with", "disc", "bar"} <= set(vocab.tokenizer.words)
    rows = make_rows(records[0], cfg, vocab, train=True)
    assert [r.qa_type for r in rows] == ["color", "shape", "ground", "ground", "ground", "ground_pair"]
    pair = rows[-1]
    assert pair.label == -100 and pair.span is None and pair.duration_sec == 4.0
    disc, bar = ((0.5, 1.5), "the disc sinks"), ((1.0, 3.0), "the bar spins")
    (first_span, first), (second_span, second) = (disc, bar) if pair.slot_spans[0] == (0.5, 1.5) else (bar, disc)
    assert pair.slot_spans == (first_span, second_span)
    assert pair.question == f"{first} together with {second}"
    assert pair.text_ids == vocab.tokenizer.encode(pair.question)
    # the coin: the same for the same seed, and both orders happen across videos
    again = make_rows(records[0], cfg, vocab, train=True)[-1]
    assert again == pair
    firsts = {make_rows(replace(records[0], video_id=f"v{i}"), cfg, vocab, train=True)[-1].slot_spans[0]
              for i in range(16)}
    assert firsts == {(0.5, 1.5), (1.0, 3.0)}
    assert [r.qa_type for r in make_rows(records[0], cfg, vocab, train=False)] == ["color", "shape"]
    # three distinct events: still one row, two neighbours in either order, every pair drawn somewhere
    three = replace(records[0], segments=segments[:2] + (Segment(2.0, 2.5, "the disc rises"),))
    pairs = [make_rows(replace(three, video_id=f"v{i}"), cfg, vocab, train=True)[5:] for i in range(32)]
    assert all(len(rows) == 1 for rows in pairs)
    drawn = {frozenset(rows[0].slot_spans) for rows in pairs}
    assert drawn == {frozenset({(0.5, 1.5), (1.0, 3.0)}), frozenset({(1.0, 3.0), (2.0, 2.5)})}
    plain = replace(cfg, model=replace(cfg.model, head=replace(cfg.model.head, args={"ground_weight": 1.0})))
    assert "ground_pair" not in [r.qa_type for r in make_rows(records[0], plain, build_vocab(records, plain), train=True)]


def test_grounding_rows_probe_a_video_without_a_manifest_duration_once(monkeypatch):
    """A record with no ``duration``: its grounding rows and pair grounding row share one probe of
    the file, and carry the probed duration."""
    import duomo.data.datasets as datasets
    probed = []

    def fake_probe(path):
        probed.append(path)
        return type("Probed", (), {"duration_sec": 5.0})()

    monkeypatch.setattr(datasets, "probe", fake_probe)
    segments = (Segment(0.5, 1.5, "the disc sinks"), Segment(1.0, 3.0, "the bar spins"))
    rec = replace(QA_TRAIN[0], segments=segments)
    args = {"ground_weight": 1.0, "slots": 2, "slot_ground": True, "pair_ground": "and"}
    cfg = run_config("qa")
    cfg = replace(cfg, model=replace(cfg.model, head=replace(cfg.model.head, args=args)))
    rows = make_rows(rec, cfg, build_vocab([rec], cfg), train=True)
    assert [r.qa_type for r in rows][2:] == ["ground", "ground", "ground_pair"]
    assert probed == [rec.video_path] and {r.duration_sec for r in rows[2:]} == {5.0}


def test_qa_unknown_answer_kept_at_eval_dropped_at_train():
    cfg = run_config("qa")
    vocab = build_vocab(QA_TRAIN, cfg)
    val = record("v", "val", qa=(QAPair("What color is it?", "green", "color"), QAPair("What now?", "blue")))
    rows = make_rows(val, cfg, vocab, train=False)
    assert [(row.label, row.answer) for row in rows] == [(-100, "green"), (1, "blue")]
    assert rows[1].text_ids == [6, 10, 5]
    assert [row.label for row in make_rows(val, cfg, vocab, train=True)] == [1]


def test_qa_choices_all_unknown_becomes_open():
    cfg = run_config("qa")
    vocab = build_vocab(QA_TRAIN, cfg)
    val = record("v", "val", qa=(QAPair("What shape?", "star", "shape", ("star", "square")),))
    assert make_rows(val, cfg, vocab, train=False)[0].choices is None


def test_qa_question_cut_to_max_text_len():
    cfg = run_config("qa", max_text_len=3)
    vocab = build_vocab(QA_TRAIN, cfg)
    assert make_rows(QA_TRAIN[0], cfg, vocab, train=True)[0].text_ids == [6, 7, 8]


DIALOG = record("d", dialog=((DialogTurn("What moves?", "red circle"), DialogTurn("And then?", "it stops"),
                              DialogTurn("Why?", "red circle")),))


def test_dialog_text_joins_history_with_sep():
    assert dialog_text([("q1", "a1"), ("q2", "a2")], "q3") == "q1 <sep> a1 <sep> q2 <sep> a2 <sep> q3"
    assert dialog_text([], "q1") == "q1"


def test_dialog_rows_exact():
    cfg = run_config("dialog")
    vocab = build_vocab([DIALOG], cfg)
    assert vocab.answers == ["red circle", "it stops"]
    tok = vocab.tokenizer
    ids = {w: tok.encode(w)[0] for w in ("what", "moves", "?", "red", "circle", "and", "then", "it", "stops", "why")}
    rows = make_rows(DIALOG, cfg, vocab, train=True)
    assert [(row.turn_idx, row.qa_type, row.label, row.answer) for row in rows] == [
        (0, "turn1", 0, "red circle"), (1, "turn2", 1, "it stops"), (2, "turn3", 0, "red circle")]
    assert rows[0].text_ids == [ids["what"], ids["moves"], ids["?"]]
    assert rows[1].text_ids == [ids["what"], ids["moves"], ids["?"], SEP, ids["red"], ids["circle"], SEP,
                                ids["and"], ids["then"], ids["?"]]
    assert rows[1].question == "What moves? <sep> red circle <sep> And then?"
    assert rows[2].text_ids[-6:] == [SEP, ids["it"], ids["stops"], SEP, ids["why"], ids["?"]]


def test_dialog_long_history_is_cut_from_the_front():
    cfg = run_config("dialog", max_text_len=4)
    vocab = build_vocab([DIALOG], cfg)
    tok = vocab.tokenizer
    rows = make_rows(DIALOG, cfg, vocab, train=True)
    assert rows[2].text_ids == [tok.encode("stops")[0], SEP, tok.encode("why")[0], tok.encode("?")[0]]
    assert all(len(row.text_ids) <= 4 for row in rows)


def test_encode_dialog_zero_length_keeps_nothing():
    tok = WordTokenizer(SPECIALS + ["a", "b"])
    assert encode_dialog(tok, "a <sep> b", 3) == [5, SEP, 6]
    assert encode_dialog(tok, "a <sep> b", 2) == [SEP, 6]
    assert encode_dialog(tok, "a <sep> b", 0) == []


def test_dialog_unknown_answer_kept_at_eval_and_still_in_the_history():
    cfg = run_config("dialog")
    vocab = build_vocab([DIALOG], cfg)
    val = record("v", "val", dialog=((DialogTurn("What moves?", "blue star"), DialogTurn("Why?", "it stops")),))
    eval_rows = make_rows(val, cfg, vocab, train=False)
    assert [row.label for row in eval_rows] == [-100, 1]
    train_rows = make_rows(val, cfg, vocab, train=True)
    assert [row.turn_idx for row in train_rows] == [1]
    assert train_rows[0].question == "What moves? <sep> blue star <sep> Why?"
    assert UNK in train_rows[0].text_ids  # "blue" and "star" are not in the vocabulary


CAPTIONED = record("c", captions=("A red square.", "The square moves left"))


def test_caption_rows_train_one_per_caption():
    cfg = run_config("caption")
    vocab = build_vocab([CAPTIONED], cfg)
    tok = vocab.tokenizer
    rows = make_rows(CAPTIONED, cfg, vocab, train=True)
    assert [row.target_ids for row in rows] == [
        [BOS] + tok.encode("a red square.") + [EOS], [BOS] + tok.encode("the square moves left") + [EOS]]
    assert rows[0].target_ids == [BOS, tok.words.index("a"), tok.words.index("red"), tok.words.index("square"),
                                  tok.words.index("."), EOS]
    assert all(row.references == list(CAPTIONED.captions) and row.text_ids == [] for row in rows)


def test_caption_rows_eval_one_row_with_every_reference():
    cfg = run_config("caption")
    vocab = build_vocab([CAPTIONED], cfg)
    assert make_rows(CAPTIONED, cfg, vocab, train=False) == [Row(references=["A red square.", "The square moves left"])]
    assert make_rows(record("x", "val"), cfg, vocab, train=False) == []


def test_caption_target_cut_keeps_eos():
    cfg = run_config("caption", max_target_len=3)
    vocab = build_vocab([CAPTIONED], cfg)
    rows = make_rows(CAPTIONED, cfg, vocab, train=True)
    assert rows[1].target_ids == [BOS, vocab.tokenizer.words.index("the"), EOS]


LABELLED = [record("a", labels=("move_left", "bounce")), record("b", labels=("grow",))]


def test_classify_rows_primary_label_and_multi_hot():
    cfg = run_config("classify")
    vocab = build_vocab(LABELLED, cfg)
    assert vocab.labels == ["bounce", "grow", "move_left"]
    assert make_rows(LABELLED[0], cfg, vocab, train=True) == [Row(label=2, multi_hot=[2, 0], answer="move_left")]
    assert make_rows(LABELLED[1], cfg, vocab, train=True) == [Row(label=1, multi_hot=[1], answer="grow")]


def test_classify_unknown_label_kept_at_eval_only():
    cfg = run_config("classify")
    vocab = build_vocab(LABELLED, cfg)
    val = record("v", "val", labels=("rotate",))
    assert make_rows(val, cfg, vocab, train=False) == [Row(label=-100, multi_hot=[], answer="rotate")]
    assert make_rows(val, cfg, vocab, train=True) == []
    assert make_rows(record("n", "val"), cfg, vocab, train=False) == []


@pytest.mark.parametrize(
    "task, records, message",
    [
        ("qa", [], "set/manifest.jsonl: the train split is empty"),
        ("qa", [record("a", captions=("x",))],
         "set/manifest.jsonl: no question has an answer in the train split (task qa needs 'qa')"),
        ("dialog", [record("a", qa=(QAPair("q", "a"),))],
         "set/manifest.jsonl: no dialog in the train split (task dialog needs 'dialog')"),
        ("caption", [record("a", labels=("x",))],
         "set/manifest.jsonl: no captions in the train split (task caption needs 'captions')"),
        ("classify", [record("a", captions=("x",))],
         "set/manifest.jsonl: no labels in the train split (task classify needs 'labels')"),
    ],
)
def test_build_vocab_errors(task, records, message):
    with pytest.raises(DatasetError) as err:
        build_vocab(records, run_config(task))
    assert str(err.value) == message


def test_task_vocab_save_load(tmp_path):
    vocab = build_vocab(QA_TRAIN, run_config("qa"))
    vocab.save(tmp_path / "vocab.json")
    again = TaskVocab.load(tmp_path / "vocab.json")
    assert again.tokenizer.words == vocab.tokenizer.words
    assert (again.answers, again.labels, again.num_outputs) == (["red", "blue", "circle"], [], 3)


def test_data_config_for_eval_changes_only_the_manifest():
    cfg = run_config("qa", num_frames=3).data
    other = data_config_for_eval(cfg, "other/manifest.jsonl")
    assert other.manifest == "other/manifest.jsonl"
    assert replace(other, manifest=cfg.manifest) == cfg


# ---------------------------------------------------------------- frame words (model.frame_words)


def test_frame_word_vocab_keeps_terms_some_but_not_most_segments_use():
    """Words and side-by-side pairs of the segment captions, by share of segments (1-90%), most
    frequent first; "the" is in every caption, so it and its pairs with it are too common unless rare."""
    segments = [Segment(0.0, 1.0, "the red disc sinks"), Segment(1.0, 2.0, "the red disc rises"),
                Segment(0.5, 0.5, "the blue star sinks")]  # no span: not a segment to learn from
    records = [record("a", segments=tuple(segments)), record("b", segments=(Segment(0.0, 2.0, "the blue star spins"),))]
    # 3 captioned segments: the x3 (100%) out; red, disc, red disc, the red x2; the rest x1
    assert frame_word_vocab(records) == ["disc", "red", "red disc", "the red", "blue", "blue star", "disc rises",
                                         "disc sinks", "rises", "sinks", "spins", "star", "star spins", "the blue"]
    assert caption_terms("The red disc, sinks.") == {"the", "red", "disc", "sinks", "the red", "red disc", "disc sinks"}


def test_frame_word_targets_mark_the_frames_inside_each_span():
    # 4 frames over 4 s sit at 0.5, 1.5, 2.5, 3.5 s
    targets = frame_word_targets([(0.0, 1.5, [0, 2]), (2.0, 4.0, [1]), (1.5, 2.5, [2])], 4.0, 4, 3)
    assert targets.tolist() == [[1, 0, 1], [1, 0, 1], [0, 1, 1], [0, 1, 0]]
    assert frame_word_targets([], 4.0, 2, 3).tolist() == [[0, 0, 0], [0, 0, 0]]


def test_frame_words_in_training_items_only_by_view_and_nan_without_segments():
    """Training items carry (T, W) targets at their frames' times (a view's frames, their times);
    a video without captioned segments has nan; evaluation items carry none; the vocab saves them."""
    cfg = run_config("classify")
    cfg = replace(cfg, model=replace(cfg.model, frame_words=1.0))
    records = [record("a", labels=("x",), segments=(Segment(0.0, 1.0, "red disc"), Segment(2.0, 4.0, "blue star")),
                      extra={"duration": 4.0}),
               record("b", labels=("y",))]
    vocab = build_vocab(records, cfg)
    assert vocab.frame_words == ["blue", "blue star", "disc", "red", "red disc", "star"]
    frames = np.zeros((4, 8, 8, 3), dtype=np.uint8)
    features = {"a": np.zeros((4, 5), np.float32), "b": np.zeros((4, 5), np.float32)}
    train = VideoDataset(records, cfg, vocab, {"a": "s", "b": "s"}, train=True, features=features)
    train._cache = {"a": Media(frames=frames, mel=None), "b": Media(frames=frames, mel=None)}
    red, blue = [0, 0, 1, 1, 1, 0], [1, 1, 0, 0, 0, 1]
    none = [0] * 6
    assert train[0].frame_words.tolist() == [red, none, blue, blue]  # frames at 0.5, 1.5, 2.5, 3.5 s
    assert np.isnan(train[1].frame_words).all() and train[1].frame_words.shape == (4, 6)
    views = VideoDataset(records, cfg, vocab, {"a": "s", "b": "s"}, train=True, features=features, views=2, seed=3)
    views._cache = train._cache
    seen = set()
    for epoch in range(8):  # a view's frames are 0 and 2 (at 0.5 and 2.5 s) or 1 and 3 (1.5 and 3.5 s)
        views.start_epoch(epoch)
        seen.add(str(views[0].frame_words.astype(int).tolist()))
    assert seen == {str([red, blue]), str([none, blue])}
    evaluation = VideoDataset(records, cfg, vocab, {"a": "s", "b": "s"}, train=False, features=features)
    evaluation._cache = train._cache
    assert evaluation[0].frame_words is None
    batch = collate([train[0], train[1]], task="classify", num_outputs=2)
    assert batch.frame_words.shape == (2, 4, 6) and batch.frame_words[0, 0].tolist() == red
    assert collate([evaluation[0]], task="classify", num_outputs=2).frame_words is None


def test_frame_words_without_captioned_segments_is_one_clear_error():
    cfg = run_config("classify")
    cfg = replace(cfg, model=replace(cfg.model, frame_words=1.0))
    with pytest.raises(DatasetError, match=r"^set/manifest\.jsonl: model\.frame_words needs segments with captions "
                                           r"in the train split .*set model\.frame_words=0$"):
        build_vocab([record("a", labels=("x",))], cfg)
