"""Manifest records -> per-video training items for each task, and the vocabularies they need.

One item is one video with all of its rows: its questions (qa), its dialog turns with their
history (dialog), its captions (caption), or itself (classify). The collate function turns a
list of items into one VideoBatch, so each video is encoded once per step.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from duomo.config import DataConfig, RunConfig
from duomo.data.manifest import Segment, VideoRecord
from duomo.data.media import Media, read_cached
from duomo.errors import DuomoError
from duomo.text.tokenize import SEP, WordTokenizer, split_words
from duomo.video.probe import probe


class DatasetError(DuomoError):
    """A dataset that cannot train or evaluate the task (empty split, no answers, ...)."""


@dataclass
class TaskVocab:
    """Everything learned from the training split that the model's sizes depend on."""

    tokenizer: WordTokenizer
    answers: list[str] = field(default_factory=list)
    """Answer vocabulary (qa, dialog), most frequent first."""
    labels: list[str] = field(default_factory=list)
    """Class names (classify), sorted."""
    frame_words: list[str] = field(default_factory=list)
    """The words and word pairs the frame tokens name (``model.frame_words``), most frequent first."""

    @property
    def num_outputs(self) -> int:
        return len(self.labels) if self.labels else len(self.answers)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"words": self.tokenizer.words, "answers": self.answers,
                                          "labels": self.labels, "frame_words": self.frame_words}))

    @classmethod
    def load(cls, path: str | Path) -> "TaskVocab":
        raw = json.loads(Path(path).read_text())
        return cls(WordTokenizer(raw["words"]), raw.get("answers", []), raw.get("labels", []),
                   raw.get("frame_words", []))


def task_texts(record: VideoRecord, task: str) -> list[str]:
    """The text of a record the tokenizer learns from for ``task``."""
    if task == "qa":
        return [qa.question for qa in record.qa]
    if task == "dialog":
        return [t.question + " " + t.answer for dialog in record.dialog for t in dialog]
    if task == "caption":
        return list(record.captions)
    if task == "retrieval":  # whole-video queries and moment queries share one vocabulary
        return list(record.captions) + [s.caption for s in record.segments if s.caption]
    return []


def build_vocab(records: list[VideoRecord], cfg: RunConfig) -> TaskVocab:
    """Tokenizer, answers and labels from the ``train`` records; raises DatasetError when the
    split has nothing to learn for the task."""
    task = cfg.task
    if not records:
        raise DatasetError(f"{cfg.data.manifest}: the train split is empty")
    texts = [text for record in records for text in task_texts(record, task)]
    if task in ("qa", "dialog") and cfg.model.head.args.get("ground_weight", 0) > 0:  # the grounding rows' words
        grounded = [grounded_segments(record) for record in records]
        texts += [s.caption for segments in grounded for s in segments]
        if joiner := cfg.model.head.args.get("pair_ground", ""):  # the words joining a pair grounding row's captions
            texts += [joiner for segments in grounded if len(segments) > 1]
    tokenizer = WordTokenizer.build(texts, min_count=cfg.data.min_word_count)
    vocab = TaskVocab(tokenizer)
    if task == "qa":
        counts = Counter(qa.answer for r in records for qa in r.qa)
        if not counts:
            raise DatasetError(f"{cfg.data.manifest}: no question has an answer in the train split (task qa needs 'qa')")
        vocab.answers = sorted(counts, key=lambda a: (-counts[a], a))
    elif task == "dialog":
        counts = Counter(t.answer for r in records for d in r.dialog for t in d)
        if not counts:
            raise DatasetError(f"{cfg.data.manifest}: no dialog in the train split (task dialog needs 'dialog')")
        vocab.answers = sorted(counts, key=lambda a: (-counts[a], a))
    elif task == "caption":
        if not texts:
            raise DatasetError(f"{cfg.data.manifest}: no captions in the train split (task caption needs 'captions')")
    elif task == "retrieval":
        if cfg.model.head.name == "moment":
            if not any(s.caption for r in records for s in r.segments):
                raise DatasetError(f"{cfg.data.manifest}: no segment with a caption in the train split "
                                   "(moment retrieval needs 'segments' with captions)")
        elif not any(r.captions for r in records):
            raise DatasetError(f"{cfg.data.manifest}: no captions in the train split (task retrieval needs 'captions')")
    elif task == "classify":
        labels = sorted({label for r in records for label in r.labels})
        if not labels:
            raise DatasetError(f"{cfg.data.manifest}: no labels in the train split (task classify needs 'labels')")
        vocab.labels = labels
    elif task == "summarize":
        if not any(importance_of(r) for r in records):
            raise DatasetError(f"{cfg.data.manifest}: no video has 'importance' in the train split "
                               "(task summarize needs one importance score per second)")
    if cfg.model.frame_words > 0:
        vocab.frame_words = frame_word_vocab(records)
        if not vocab.frame_words:
            raise DatasetError(f"{cfg.data.manifest}: model.frame_words needs segments with captions in the train "
                               "split (words that some but not most of them use); set model.frame_words=0")
    return vocab


FRAME_WORD_MIN_SHARE = 0.01
"""A frame word is used by at least this share of the train segments' captions ..."""
FRAME_WORD_MAX_SHARE = 0.9
"""... and by at most this share ("the" names nothing)."""
FRAME_WORD_MAX = 512


def caption_terms(caption: str) -> set[str]:
    """The words of a caption (no punctuation) and the pairs of words side by side in it ("red circle")."""
    words = [w for w in split_words(caption) if any(c.isalnum() for c in w)]
    return {*words, *(f"{a} {b}" for a, b in zip(words, words[1:]))}


def frame_word_vocab(records: list[VideoRecord]) -> list[str]:
    """The terms (``caption_terms``) used by FRAME_WORD_MIN_SHARE..FRAME_WORD_MAX_SHARE of the
    records' captioned segments, the most frequent FRAME_WORD_MAX of them, most frequent first."""
    per_segment = [caption_terms(s.caption) for r in records for s in grounded_segments(r)]
    counts = Counter(term for terms in per_segment for term in terms)
    low, high = FRAME_WORD_MIN_SHARE * len(per_segment), FRAME_WORD_MAX_SHARE * len(per_segment)
    kept = sorted((t for t, n in counts.items() if low <= n <= high), key=lambda t: (-counts[t], t))
    return kept[:FRAME_WORD_MAX]


def frame_times(duration_sec: float, num_frames: int) -> np.ndarray:
    """(T,) the times in seconds of ``num_frames`` frames sampled uniformly over a video of
    ``duration_sec``: frame k sits at (k + 0.5) / T of it."""
    return (np.arange(num_frames) + 0.5) / max(1, num_frames) * duration_sec


def frame_word_targets(spans: list[tuple[float, float, list[int]]], duration_sec: float, num_frames: int,
                       num_words: int) -> np.ndarray:
    """(T, W) float32: 1 where a segment whose [start, end] holds frame k's time (``frame_times``)
    uses word w; ``spans`` are (start_sec, end_sec, word indices)."""
    times = frame_times(duration_sec, num_frames)
    targets = np.zeros((num_frames, num_words), dtype=np.float32)
    for start, end, words in spans:
        inside = (times >= start) & (times <= end)
        targets[np.ix_(inside, words)] = 1.0
    return targets


def importance_of(record: VideoRecord) -> list[float]:
    """The record's per-second importance scores (the manifest's ``importance``), or [] when it
    has none or they are not numbers."""
    values = record.extra.get("importance")
    if not isinstance(values, list) or not values:
        return []
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return []
    return [float(v) for v in values]


@dataclass
class Row:
    """One example of a video: text in, and the target."""

    text_ids: list[int] = field(default_factory=list)
    label: int = -100
    multi_hot: list[int] = field(default_factory=list)
    choices: list[int] | None = None
    target_ids: list[int] = field(default_factory=list)
    qa_type: str = ""
    turn_idx: int = 0
    references: list[str] = field(default_factory=list)
    answer: str = ""
    """The answer or label as text, kept for evaluation (also when outside the vocabulary)."""
    question: str = ""
    """The question, dialog history, or retrieval query as text."""
    span: tuple[float, float] | None = None
    """Moment retrieval target [start_sec, end_sec] (and a qa grounding row's)."""
    slot_spans: tuple[tuple[float, float], ...] = ()
    """A qa pair grounding row's spans, one per slot, in the order its text names them."""
    duration_sec: float = 0.0
    """Duration of the row's video (moment retrieval: the frames span 0 .. duration_sec uniformly)."""
    importance: list[float] = field(default_factory=list)
    """One importance score per second of the video (summarization)."""
    shots: tuple[float, ...] = ()
    """Shot start times of the video in seconds (summarization's segments)."""


def dialog_text(history: list[tuple[str, str]], question: str) -> str:
    """Previous turns then the current question, joined by <sep>: 'q1 <sep> a1 <sep> q2'."""
    parts = [text for turn in history for text in turn] + [question]
    return " <sep> ".join(parts)


def encode_dialog(tokenizer: WordTokenizer, text: str, max_len: int) -> list[int]:
    """Token ids of dialog_text, keeping the END (the current question) when too long."""
    ids: list[int] = []
    for i, part in enumerate(text.split(" <sep> ")):
        if i:
            ids.append(SEP)
        ids.extend(tokenizer.encode(part))
    return ids[max(0, len(ids) - max_len):]  # not ids[-max_len:], which keeps everything for 0


def grounded_segments(record: VideoRecord) -> list[Segment]:
    """The segments a grounding row is made of: with a caption and a span of some length."""
    return [s for s in record.segments if s.caption and s.end_sec > s.start_sec]


def grounding_rows(record: VideoRecord, cfg: RunConfig, vocab: TaskVocab) -> list[Row]:
    """The qa head's grounding rows (``ground_weight``): one per ``grounded_segments``, its text
    and span, no answer (label -100), type "ground"; then, with ``pair_ground``, the video's pair
    grounding row (``pair_grounding_rows``)."""
    segments = grounded_segments(record)
    if not segments:
        return []
    duration = manifest_duration(record)  # probes the file when the manifest gives none: once a video
    return [*(Row(text_ids=vocab.tokenizer.encode(s.caption, cfg.data.max_text_len) or [SEP], question=s.caption,
                  span=(s.start_sec, s.end_sec), duration_sec=duration, qa_type="ground") for s in segments),
            *pair_grounding_rows(record, segments, duration, cfg, vocab)]


def pair_grounding_rows(record: VideoRecord, segments: list[Segment], duration: float, cfg: RunConfig,
                        vocab: TaskVocab) -> list[Row]:
    """The qa head's pair grounding row (``pair_ground``), one per video: two neighbouring
    ``segments`` (the video's ``grounded_segments``; ``duration`` its length) of other captions, their captions joined by the ``pair_ground`` words,
    the pair and its order drawn by a generator seeded by ``train.seed`` and the video, and their two
    spans in the order the text names them: slot 1 must find the event named first, slot 2 the one
    named second. Type "ground_pair", no answer. One row a video, not one per pair: a row per pair
    made the qa preset's epochs about 1.7 times as long (README)."""
    joiner = cfg.model.head.args.get("pair_ground", "")
    pairs = [(a, b) for a, b in zip(segments, segments[1:]) if a.caption != b.caption]
    if not joiner or not pairs:
        return []
    rng = random.Random(f"{cfg.train.seed}:{record.video_id}")
    first, second = rng.choice(pairs)
    if rng.random() < 0.5:
        first, second = second, first
    text = f"{first.caption} {joiner} {second.caption}"
    return [Row(text_ids=vocab.tokenizer.encode(text, cfg.data.max_text_len) or [SEP], question=text,
                slot_spans=((first.start_sec, first.end_sec), (second.start_sec, second.end_sec)),
                duration_sec=duration, qa_type="ground_pair")]


def manifest_duration(record: VideoRecord) -> float:
    """The video's duration in seconds: the manifest's ``duration`` when it gives a positive one,
    else probed from the file."""
    duration = record.extra.get("duration")
    if not isinstance(duration, (int, float)) or duration <= 0:
        duration = probe(record.video_path).duration_sec
    return float(duration)


def make_rows(record: VideoRecord, cfg: RunConfig, vocab: TaskVocab, *, train: bool) -> list[Row]:
    """The rows of one record for the task. Evaluation keeps every row (unknown answers count as
    wrong); training drops rows whose answer is outside the vocabulary."""
    task, data, tok = cfg.task, cfg.data, vocab.tokenizer
    answer_idx = {a: i for i, a in enumerate(vocab.answers)}
    rows: list[Row] = []
    if task == "qa":
        for qa in record.qa:
            label = answer_idx.get(qa.answer, -100)
            if train and label < 0:
                continue
            choices = None
            if qa.choices:
                choices = [answer_idx[c] for c in qa.choices if c in answer_idx] or None
            rows.append(Row(text_ids=tok.encode(qa.question, data.max_text_len) or [SEP], label=label, choices=choices,
                            qa_type=qa.type, answer=qa.answer, question=qa.question))
    elif task == "dialog":
        for dialog in record.dialog:
            history: list[tuple[str, str]] = []
            for turn_idx, turn in enumerate(dialog):
                label = answer_idx.get(turn.answer, -100)
                text = dialog_text(history, turn.question)
                if not (train and label < 0):
                    rows.append(Row(text_ids=encode_dialog(tok, text, data.max_text_len) or [SEP], label=label,
                                    turn_idx=turn_idx, qa_type=f"turn{turn_idx + 1}", answer=turn.answer,
                                    question=text))
                history.append((turn.question, turn.answer))
    if task in ("qa", "dialog") and train and cfg.model.head.args.get("ground_weight", 0) > 0:
        rows.extend(grounding_rows(record, cfg, vocab))
    if task == "caption":
        if train:
            for caption in record.captions:
                rows.append(Row(target_ids=tok.encode(caption, data.max_target_len, bos=True, eos=True),
                                references=list(record.captions)))
        elif record.captions:
            rows.append(Row(references=list(record.captions)))
    elif task == "retrieval" and cfg.model.head.name == "moment":
        segments = [s for s in record.segments if s.caption and s.end_sec > s.start_sec]
        duration = probe(record.video_path).duration_sec if segments else 0.0
        for segment in segments:
            rows.append(Row(text_ids=tok.encode(segment.caption, data.max_text_len) or [SEP], question=segment.caption,
                            span=(segment.start_sec, segment.end_sec), duration_sec=duration))
    elif task == "retrieval":
        # every caption is a row: a batch holds each video once, so a video's other captions are
        # never counted as negatives for it
        queries = list(record.captions)
        if train and cfg.model.head.args.get("segment_queries", False):  # each event's caption names the video too
            queries += [s.caption for s in grounded_segments(record)]
        for caption in queries:
            rows.append(Row(text_ids=tok.encode(caption, data.max_text_len) or [SEP], question=caption))
    elif task == "summarize":
        importance = importance_of(record)
        if importance:
            rows.append(Row(importance=importance, shots=record.shots, duration_sec=manifest_duration(record)))
    elif task == "classify":
        label_idx = {label: i for i, label in enumerate(vocab.labels)}
        known = [label_idx[label] for label in record.labels if label in label_idx]
        if record.labels and (known or not train):
            primary = label_idx.get(record.labels[0], -100)
            rows.append(Row(label=primary, multi_hot=known, answer=record.labels[0]))
    return rows


@dataclass
class VideoItem:
    video_id: str
    media: Media
    """Decoded frames (None when ``features`` are used instead) and spectrogram."""
    features: np.ndarray | None
    """(T, D) cached frozen-encoder features."""
    rows: list[Row]
    sound: np.ndarray | None = None
    """(A', D) cached tokens of a frozen sound encoder (the spectrogram is then not kept)."""
    frame_words: np.ndarray | None = None
    """(T, W) the words each frame names (``model.frame_words``, training only; nan: none known)."""


class VideoDataset:
    """Items for the records whose media is in the cache (``stamps``: video id -> file stamp).

    Media is read from the cache on access (memory stays small); ``preload=True`` keeps every
    video's arrays in memory after the first read (fast epochs for sets that fit).

    ``views`` > 1 (``data.train_views``): the cache holds ``cfg.data.num_frames`` frames (or
    features) per video, and each item is one of ``views`` interleaved views of them (frames v,
    v + views, ...), drawn per video and epoch (``start_epoch``) from ``seed``.
    """

    def __init__(self, records: list[VideoRecord], cfg: RunConfig, vocab: TaskVocab, stamps: dict[str, str], *,
                 train: bool, features: dict[str, np.ndarray] | None = None,
                 sound: dict[str, np.ndarray] | None = None, preload: bool = True, views: int = 1, seed: int = 0):
        self.cfg = cfg
        self.views = views
        self.seed = seed
        self.epoch = 0
        self.stamps = stamps
        self.features = features
        self.sound = sound
        self.preload = preload
        self._cache: dict[str, Media] = {}
        self.items: list[tuple[VideoRecord, list[Row]]] = []
        for record in records:
            if record.video_id not in stamps:
                continue
            rows = make_rows(record, cfg, vocab, train=train)
            if rows:
                self.items.append((record, rows))
        self.num_frame_words = len(vocab.frame_words) if train and cfg.model.frame_words > 0 else 0
        self.word_spans: dict[str, tuple[float, list[tuple[float, float, list[int]]]]] = {}
        """Per video: its duration and each captioned segment's span with its frame words' indices."""
        if self.num_frame_words:
            index = {t: i for i, t in enumerate(vocab.frame_words)}
            for record, _ in self.items:
                segments = grounded_segments(record)
                if segments:
                    self.word_spans[record.video_id] = (manifest_duration(record), [
                        (s.start_sec, s.end_sec, [index[t] for t in caption_terms(s.caption) if t in index])
                        for s in segments])

    def __len__(self) -> int:
        return len(self.items)

    @property
    def num_rows(self) -> int:
        return sum(len(rows) for _, rows in self.items)

    def use_sound(self, sound: dict[str, np.ndarray]) -> None:
        """Items from now on carry these cached sound tokens (video id -> (A', D)) instead of
        the log-mel (``model.freeze_audio_after``)."""
        self.sound = sound
        self._cache = {vid: Media(frames=media.frames, mel=None) for vid, media in self._cache.items()}

    def start_epoch(self, epoch: int) -> None:
        """Items from now on show the views drawn for ``epoch`` (the same for a resumed run)."""
        self.epoch = epoch

    def __getitem__(self, index: int) -> VideoItem:
        record, rows = self.items[index]
        vid = record.video_id
        media = self._cache.get(vid)
        if media is None:
            media = read_cached(self.cfg.data, vid, self.stamps[vid])
            if self.features is not None or self.sound is not None:  # keep only what is still needed
                media = Media(frames=None if self.features is not None else media.frames,
                              mel=None if self.sound is not None else media.mel)
            if self.preload:
                self._cache[vid] = media
        features = self.features[vid] if self.features is not None else None
        sound = self.sound[vid] if self.sound is not None else None
        words = None
        if self.num_frame_words:  # at the times of every frame the cache holds, before a view picks some
            num_frames = len(features) if features is not None else len(media.frames)
            if vid in self.word_spans:
                duration, spans = self.word_spans[vid]
                words = frame_word_targets(spans, duration, num_frames, self.num_frame_words)
            else:
                words = np.full((num_frames, self.num_frame_words), np.nan, dtype=np.float32)
        if self.views > 1:
            view = int(np.random.default_rng((self.seed, self.epoch, index)).integers(self.views))
            features = features[view :: self.views] if features is not None else None
            words = words[view :: self.views] if words is not None else None
            if media.frames is not None:
                media = Media(frames=media.frames[view :: self.views], mel=media.mel)
        return VideoItem(vid, media, features, rows, sound, words)


def split_records(records: list[VideoRecord], split: str) -> list[VideoRecord]:
    return [r for r in records if r.split == split]


def data_config_for_eval(cfg: DataConfig, manifest: str) -> DataConfig:
    """The run's data settings pointed at another manifest (sampling must stay the same)."""
    from dataclasses import replace

    return replace(cfg, manifest=manifest)
