"""Manifest loading: valid lines become records, every bad line is reported with its field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from duomo.data.manifest import (
    DialogTurn,
    QAPair,
    Segment,
    answer_balance,
    load_manifest,
    summarize_manifest,
    write_manifest,
)
from duomo.errors import ManifestError

GOOD = {
    "id": "v0001",
    "video": "videos/v0001.mp4",
    "split": "train",
    "captions": ["a red circle moves to the left"],
    "qa": [
        {"question": "what color is the circle?", "answer": "red", "type": "color",
         "choices": ["red", "blue", "green", "yellow"]},
        {"question": "how many objects are there?", "answer": "1", "type": "count"},
    ],
    "labels": ["move_left"],
    "segments": [{"start": 0.5, "end": 2.0, "caption": "the circle moves left"}],
    "shots": [0.0, 3.2],
    "dialog": [[{"question": "what moves?", "answer": "circle"}, {"question": "which way?", "answer": "left"}]],
    "importance": [0.1, 0.9, 0.2],
}


def write_lines(root: Path, lines: list, touch: tuple[str, ...] = ("videos/v0001.mp4",)) -> Path:
    for name in touch:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    path = root / "manifest.jsonl"
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_good_line_loads_every_field(tmp_path):
    records = load_manifest(write_lines(tmp_path, [GOOD]))
    assert len(records) == 1
    r = records[0]
    assert r.video_id == "v0001" and r.split == "train"
    assert r.video_path == (tmp_path / "videos/v0001.mp4").resolve()
    assert r.qa[0] == QAPair("what color is the circle?", "red", "color", ("red", "blue", "green", "yellow"))
    assert r.qa[1].choices is None
    assert r.segments == (Segment(0.5, 2.0, "the circle moves left"),)
    assert r.shots == (0.0, 3.2)
    assert r.dialog == ((DialogTurn("what moves?", "circle"), DialogTurn("which way?", "left")),)
    assert r.extra == {"importance": [0.1, 0.9, 0.2]}


def test_round_trip_through_write(tmp_path):
    records = load_manifest(write_lines(tmp_path, [GOOD]))
    out = write_manifest(tmp_path / "copy.jsonl", records)
    assert json.loads(out.read_text()) == GOOD
    assert load_manifest(out) == records


def test_only_id_video_split_are_required(tmp_path):
    records = load_manifest(write_lines(tmp_path, [{"id": "a", "video": "videos/v0001.mp4", "split": "test"}]))
    assert records[0].captions == () and records[0].qa == () and records[0].labels == ()


def test_blank_lines_and_bom_are_fine(tmp_path):
    path = write_lines(tmp_path, [GOOD, ""])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes() + b"\n\n")
    assert len(load_manifest(path)) == 1


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"id": None}, "id", "missing"),
        ({"video": ""}, "video", "non-empty string"),
        ({"split": "dev"}, "split", "'dev' is not one of"),
        ({"captions": "a caption"}, "captions", "expected a list"),
        ({"captions": ["ok", 3]}, "captions[1]", "non-empty string"),
        ({"qa": [{"question": "q?"}]}, "qa[0].answer", "missing"),
        ({"qa": [{"question": "q?", "answer": "red", "choices": ["blue", "green"]}]}, "qa[0].choices", "not among"),
        ({"segments": [{"start": 2.0, "end": 1.0}]}, "segments[0]", "start < end"),
        ({"segments": [{"start": "0", "end": 1.0}]}, "segments[0]", "numbers of seconds"),
        ({"shots": [0.0, 3.0, 2.0]}, "shots", "must increase"),
        ({"dialog": [[{"question": "q?"}]]}, "dialog[0][0].answer", "missing"),
        ({"video": "videos/nope.mp4"}, "video", "file not found"),
    ],
)
def test_each_bad_field_is_named(tmp_path, change, field, words):
    row = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(ManifestError) as info:
        load_manifest(write_lines(tmp_path, [GOOD | {"id": "ok"}, row]))
    assert (2, field) in [(n, f) for n, f, _ in info.value.problems]
    assert any(words in m for _, _, m in info.value.problems)
    assert str(info.value).startswith(f"{tmp_path / 'manifest.jsonl'}:2: {field}: ")


def test_every_problem_is_reported_not_just_the_first(tmp_path):
    lines = [GOOD, "{not json", {"id": "v2", "video": "videos/v0001.mp4"}, [1, 2], GOOD]
    with pytest.raises(ManifestError) as info:
        load_manifest(write_lines(tmp_path, lines))
    problems = info.value.problems
    assert [(n, f) for n, f, _ in problems] == [(2, "json"), (3, "split"), (4, "line"), (5, "id")]
    assert "duplicate id 'v0001' (first on line 1)" in problems[-1][2]
    assert info.value.report().count("\n") == 3


def test_missing_and_empty_manifest(tmp_path):
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path / "absent.jsonl")
    assert str(info.value) == f"{tmp_path / 'absent.jsonl'}: no such file"
    with pytest.raises(ManifestError, match="no records"):
        load_manifest(write_lines(tmp_path, [""]))


def test_files_are_not_checked_when_told(tmp_path):
    path = write_lines(tmp_path, [GOOD], touch=())
    with pytest.raises(ManifestError, match="file not found"):
        load_manifest(path)
    assert len(load_manifest(path, check_files=False)) == 1


def test_summary_counts_by_hand(tmp_path):
    rows = [
        GOOD,
        {"id": "b", "video": "videos/v0001.mp4", "split": "val", "labels": ["grow"],
         "qa": [{"question": "what color?", "answer": "blue", "type": "color"},
                {"question": "what color?", "answer": "red", "type": "color"}]},
        {"id": "c", "video": "videos/v0001.mp4", "split": "train", "labels": ["move_left", "grow"],
         "qa": [{"question": "what color?", "answer": "red", "type": "color"}]},
    ]
    summary = summarize_manifest(load_manifest(write_lines(tmp_path, rows)))
    assert summary["num_videos"] == 3
    assert summary["splits"] == {"train": 2, "val": 1}
    assert summary["labels"] == {"move_left": 2, "grow": 1}
    assert summary["qa_types"] == {"color": 4, "count": 1}
    assert summary["num_multiple_choice"] == 1
    assert summary["num_with_cuts"] == 1
    color = summary["answer_balance"]["color"]
    assert color == {"num_questions": 4, "num_answers": 2, "majority": "red", "majority_share": 0.75,
                     "uniform_share": 0.5, "is_balanced": True}
    assert summary["answer_balance"]["count"]["is_balanced"] is True  # one answer of one: uniform


def test_answer_balance_flags_a_family_a_guesser_would_win():
    # bar = 1.5 x uniform + 2 standard errors of a uniform share over n questions
    pairs = [("exist", "yes")] * 90 + [("exist", "no")] * 10 + [("color", c) for c in "rgbyrgby"]
    pairs += [("order", "before")] * 8 + [("order", "after")] * 2
    balance = answer_balance(pairs)
    assert balance["exist"]["majority_share"] == 0.9 and balance["exist"]["is_balanced"] is False  # bar 0.85
    assert balance["color"]["majority_share"] == 0.25 and balance["color"]["is_balanced"] is True
    # 8 of 10 is within the noise of 10 questions: bar 0.75 + 2 * sqrt(0.25 / 10) = 1.07
    assert balance["order"]["is_balanced"] is True
