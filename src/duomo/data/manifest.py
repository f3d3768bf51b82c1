"""The manifest: one JSON object per line, one video per object; every task trains from it.

Contract (fields never renamed; others may be added and are kept in ``VideoRecord.extra``)::

    {"id": "v0001", "video": "videos/v0001.mp4", "split": "train" | "val" | "test",
     "captions": ["..."], "qa": [{"question", "answer", "type", "choices"?}],
     "labels": ["move_left"], "segments": [{"start", "end", "caption"?}],
     "shots": [0.0, 3.2], "dialog": [[{"question", "answer"}, ...]]}

Paths are relative to the manifest's folder. Loading checks every line and reports every
problem with its line number and field; a bad line is never dropped silently.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from duomo.errors import ManifestError

SPLITS = ("train", "val", "test")
KNOWN_FIELDS = ("id", "video", "split", "captions", "qa", "labels", "segments", "shots", "dialog")

# A QA family whose most common answer is more than this many times as frequent as a uniform
# answer would be counts as imbalanced: a blind guesser would do well on it. Small samples get
# two standard errors of slack, so that a few videos are not flagged for sampling noise alone.
IMBALANCE_RATIO = 1.5
IMBALANCE_NUM_STDERR = 2.0


@dataclass(frozen=True)
class QAPair:
    question: str
    answer: str
    type: str = "other"
    """Question family, e.g. color, count, order; accuracy is reported per type."""
    choices: tuple[str, ...] | None = None
    """Multiple-choice candidates (the answer is one of them); None for open-ended."""


@dataclass(frozen=True)
class Segment:
    start_sec: float
    end_sec: float
    caption: str | None = None


@dataclass(frozen=True)
class DialogTurn:
    question: str
    answer: str


@dataclass(frozen=True)
class VideoRecord:
    video_id: str
    video_path: Path
    """Absolute path of the video file."""
    split: str
    captions: tuple[str, ...] = ()
    qa: tuple[QAPair, ...] = ()
    labels: tuple[str, ...] = ()
    """Class labels; the first is the primary class."""
    segments: tuple[Segment, ...] = ()
    shots: tuple[float, ...] = ()
    """Shot start times in seconds, increasing."""
    dialog: tuple[tuple[DialogTurn, ...], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    """Fields beyond the contract, as they were in the JSON line."""

    def to_json(self, root: Path) -> dict[str, Any]:
        """This record as a manifest line (a dict), with the video path relative to ``root``."""
        row: dict[str, Any] = {"id": self.video_id, "video": _relative(self.video_path, root), "split": self.split}
        if self.captions:
            row["captions"] = list(self.captions)
        if self.qa:
            row["qa"] = [_qa_json(qa) for qa in self.qa]
        if self.labels:
            row["labels"] = list(self.labels)
        if self.segments:
            row["segments"] = [_segment_json(s) for s in self.segments]
        if self.shots:
            row["shots"] = list(self.shots)
        if self.dialog:
            row["dialog"] = [[{"question": t.question, "answer": t.answer} for t in d] for d in self.dialog]
        row.update(self.extra)
        return row


def load_manifest(path: str | Path, *, check_files: bool = True) -> list[VideoRecord]:
    """Read and validate ``manifest.jsonl``; returns one record per non-blank line.

    Raises ManifestError listing every problem (line number, field, message) when any line is
    bad: invalid JSON, a missing or mistyped field, a duplicate id, an unknown split, a video
    file that does not exist (when ``check_files``).
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(path, [(0, "file", "no such file" if not path.exists() else "not a file")])
    root = path.parent
    records: list[VideoRecord] = []
    problems: list[tuple[int, str, str]] = []
    first_line_of_id: dict[str, int] = {}
    with path.open(encoding="utf-8-sig") as lines:
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                problems.append((line_no, "json", f"not valid JSON ({err.msg} at column {err.colno})"))
                continue
            line_problems: list[tuple[str, str]] = []
            record = _parse_row(row, root, line_problems, check_files)
            if record is not None and record.video_id in first_line_of_id:
                line_problems.append(("id", f"duplicate id {record.video_id!r} (first on line {first_line_of_id[record.video_id]})"))
            problems.extend((line_no, f, m) for f, m in line_problems)
            if record is not None and not line_problems:
                first_line_of_id[record.video_id] = line_no
                records.append(record)
    if problems:
        raise ManifestError(path, problems)
    if not records:
        raise ManifestError(path, [(0, "file", "the manifest has no records")])
    return records


def write_manifest(path: str | Path, rows: Iterable[dict[str, Any] | VideoRecord]) -> Path:
    """Write manifest lines (dicts, or records made relative to the manifest's folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        for row in rows:
            if isinstance(row, VideoRecord):
                row = row.to_json(path.parent)
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)  # a killed run never leaves half a manifest behind
    return path


def summarize_manifest(records: list[VideoRecord]) -> dict[str, Any]:
    """Counts per split, per QA type, per primary label, and answer balance per QA type
    (see ``answer_balance``)."""
    balance = answer_balance((qa.type, qa.answer) for record in records for qa in record.qa)
    return {
        "num_videos": len(records),
        "splits": dict(Counter(r.split for r in records)),
        "num_captions": sum(len(r.captions) for r in records),
        "num_qa": sum(len(r.qa) for r in records),
        "num_multiple_choice": sum(1 for r in records for qa in r.qa if qa.choices),
        "qa_types": {t: b["num_questions"] for t, b in balance.items()},
        "labels": dict(Counter(r.labels[0] for r in records if r.labels).most_common()),
        "num_segments": sum(len(r.segments) for r in records),
        "num_dialogs": sum(len(r.dialog) for r in records),
        "num_with_cuts": sum(1 for r in records if len(r.shots) > 1),
        "answer_balance": balance,
    }


def answer_balance(typed_answers: Iterable[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """How evenly each QA type's answers are spread, from ``(type, answer)`` pairs.

    Per type: ``num_questions``, ``num_answers`` (distinct), ``majority`` (the most common
    answer), ``majority_share`` (its fraction of the type's questions), ``uniform_share``
    (1 / num_answers, a perfectly balanced family) and ``is_balanced``: the majority share is at
    most ``IMBALANCE_RATIO`` times the uniform share, plus ``IMBALANCE_NUM_STDERR`` standard
    errors of a uniform answer's share over this many questions.
    """
    answers: dict[str, Counter] = {}
    for qa_type, answer in typed_answers:
        answers.setdefault(qa_type, Counter())[answer] += 1
    balance = {}
    for qa_type, counts in sorted(answers.items()):
        total = sum(counts.values())
        majority, count = counts.most_common(1)[0]
        uniform = 1 / len(counts)
        bar = IMBALANCE_RATIO * uniform + IMBALANCE_NUM_STDERR * math.sqrt(uniform * (1 - uniform) / total)
        balance[qa_type] = {
            "num_questions": total,
            "num_answers": len(counts),
            "majority": majority,
            "majority_share": count / total,
            "uniform_share": uniform,
            "is_balanced": count / total <= bar,
        }
    return balance


def _parse_row(row: Any, root: Path, problems: list[tuple[str, str]], check_files: bool) -> VideoRecord | None:
    """Build a record from one decoded JSON line, appending (field, message) problems."""
    if not isinstance(row, dict):
        problems.append(("line", f"expected a JSON object, got {type(row).__name__}"))
        return None
    video_id = _string(row, "id", problems, required=True)
    video = _string(row, "video", problems, required=True)
    split = _string(row, "split", problems, required=True)
    if split is not None and split not in SPLITS:
        problems.append(("split", f"{split!r} is not one of {', '.join(SPLITS)}"))
    video_path = (root / video).resolve() if video else root
    if video and check_files and not video_path.is_file():
        problems.append(("video", f"file not found: {video}"))
    captions = _string_list(row, "captions", problems)
    labels = _string_list(row, "labels", problems)
    qa = tuple(_qa(item, f"qa[{i}]", problems) for i, item in enumerate(_list(row, "qa", problems)))
    segments = tuple(_segment(item, f"segments[{i}]", problems) for i, item in enumerate(_list(row, "segments", problems)))
    shots = _shots(row, problems)
    dialog = tuple(
        tuple(_turn(turn, f"dialog[{i}][{j}]", problems) for j, turn in enumerate(_checked_list(d, f"dialog[{i}]", problems)))
        for i, d in enumerate(_list(row, "dialog", problems))
    )
    if problems or video_id is None or split is None:
        return None
    extra = {k: v for k, v in row.items() if k not in KNOWN_FIELDS}
    return VideoRecord(video_id, video_path, split, captions, qa, labels, segments, shots, dialog, extra)  # type: ignore[arg-type]


def _string(row: dict, key: str, problems: list, *, required: bool = False, where: str | None = None) -> str | None:
    name = f"{where}.{key}" if where else key
    if key not in row:
        if required:
            problems.append((name, "missing"))
        return None
    value = row[key]
    if not isinstance(value, str) or not value.strip():
        problems.append((name, f"expected a non-empty string, got {json.dumps(value)}"))
        return None
    return value


def _list(row: dict, key: str, problems: list) -> list:
    return _checked_list(row.get(key, []), key, problems)


def _checked_list(value: Any, name: str, problems: list) -> list:
    if not isinstance(value, list):
        problems.append((name, f"expected a list, got {type(value).__name__}"))
        return []
    return value


def _string_list(row: dict, key: str, problems: list) -> tuple[str, ...]:
    items = _list(row, key, problems)
    bad = [i for i, item in enumerate(items) if not isinstance(item, str) or not item.strip()]
    for i in bad:
        problems.append((f"{key}[{i}]", f"expected a non-empty string, got {json.dumps(items[i])}"))
    return tuple(items) if not bad else ()


def _qa(item: Any, name: str, problems: list) -> QAPair:
    if not isinstance(item, dict):
        problems.append((name, "expected an object with question and answer"))
        return QAPair("", "")
    question = _string(item, "question", problems, required=True, where=name)
    answer = _string(item, "answer", problems, required=True, where=name)
    qa_type = _string(item, "type", problems, where=name) or "other"
    choices = None
    if "choices" in item:
        raw = _checked_list(item["choices"], f"{name}.choices", problems)
        if len(raw) < 2 or not all(isinstance(c, str) and c.strip() for c in raw):
            problems.append((f"{name}.choices", "expected a list of at least two non-empty strings"))
        elif answer is not None and answer not in raw:
            problems.append((f"{name}.choices", f"the answer {answer!r} is not among the choices"))
        elif len(set(raw)) != len(raw):
            problems.append((f"{name}.choices", "choices repeat"))
        else:
            choices = tuple(raw)
    return QAPair(question or "", answer or "", qa_type, choices)


def _segment(item: Any, name: str, problems: list) -> Segment:
    if not isinstance(item, dict):
        problems.append((name, "expected an object with start and end"))
        return Segment(0.0, 0.0)
    start, end = item.get("start"), item.get("end")
    if not _is_number(start) or not _is_number(end):
        problems.append((name, f"start and end must be numbers of seconds, got {json.dumps(start)} and {json.dumps(end)}"))
        return Segment(0.0, 0.0)
    if start < 0 or end <= start:
        problems.append((name, f"needs 0 <= start < end, got start={start}, end={end}"))
    caption = _string(item, "caption", problems, where=name)
    return Segment(float(start), float(end), caption)


def _shots(row: dict, problems: list) -> tuple[float, ...]:
    shots = _list(row, "shots", problems)
    if not all(_is_number(s) and s >= 0 for s in shots):
        problems.append(("shots", "expected non-negative numbers of seconds"))
        return ()
    if any(b <= a for a, b in zip(shots, shots[1:])):
        problems.append(("shots", "shot start times must increase"))
    return tuple(float(s) for s in shots)


def _turn(item: Any, name: str, problems: list) -> DialogTurn:
    if not isinstance(item, dict):
        problems.append((name, "expected an object with question and answer"))
        return DialogTurn("", "")
    question = _string(item, "question", problems, required=True, where=name)
    answer = _string(item, "answer", problems, required=True, where=name)
    return DialogTurn(question or "", answer or "")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _qa_json(qa: QAPair) -> dict[str, Any]:
    row: dict[str, Any] = {"question": qa.question, "answer": qa.answer, "type": qa.type}
    if qa.choices:
        row["choices"] = list(qa.choices)
    return row


def _segment_json(segment: Segment) -> dict[str, Any]:
    row: dict[str, Any] = {"start": segment.start_sec, "end": segment.end_sec}
    if segment.caption is not None:
        row["caption"] = segment.caption
    return row


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
