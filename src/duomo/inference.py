"""Predictor: load a trained run once, then caption, answer or classify any video file.

    >>> import duomo
    >>> model = duomo.load("runs/qa")
    >>> model.answer("clip.mp4", "what color is the square?")
    Answer(text='red', score=0.97)

Videos go through exactly the preprocessing of training (the run's saved data settings),
whatever their size, length or frame rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from duomo.batch import HeadOutput
from duomo.config import RunConfig, read_config
from duomo.data.collate import collate
from duomo.data.datasets import Row, TaskVocab, VideoItem, dialog_text, encode_dialog
from duomo.data.media import Media, load_media, load_span
from duomo.errors import DuomoError
from duomo.models.build import build_model
from duomo.models.model import VideoTextModel
from duomo.train.checkpoint import CheckpointError, load_checkpoint


@dataclass
class Answer:
    text: str
    score: float
    """Probability of the answer."""


@dataclass
class Labels:
    labels: list[tuple[str, float]]
    """Predicted labels with scores, best first."""
    top: list[tuple[str, float]] = field(default_factory=list)
    """The five best classes with scores."""


class Predictor:
    """A trained model with its config and vocabularies, ready for single videos."""

    def __init__(self, cfg: RunConfig, vocab: TaskVocab, model: VideoTextModel, device: str = "cpu"):
        self.cfg = cfg
        self.vocab = vocab
        self.model = model.to(device).eval()
        self.device = device

    @property
    def task(self) -> str:
        return self.cfg.task

    def _item(self, video: str | Path, rows: list[Row], media: Media | None = None) -> VideoItem:
        return VideoItem(str(video), media or load_media(video, self.cfg.data), None, rows)

    def _batch(self, video: str | Path, rows: list[Row], media: Media | None = None):
        return collate([self._item(video, rows, media)], task=self.task, num_outputs=self.vocab.num_outputs,
                       multi_label=bool(self.cfg.model.head.args.get("multi_label", False))).to(self.device)

    @torch.no_grad()
    def caption(self, video: str | Path, beam_size: int | None = None) -> str:
        """One caption for ``video`` (beam search with the run's beam size unless given)."""
        self._need("caption")
        fused = self.model.fuse(self._batch(video, [Row()]))
        ids = self.model.head.predict(HeadOutput(logits=fused.pooled, fused=fused), beam_size=beam_size)[0]
        return self.vocab.tokenizer.decode(ids)

    @torch.no_grad()
    def caption_span(self, video: str | Path, start_sec: float, end_sec: float,
                     beam_size: int | None = None) -> str:
        """One caption for the stretch ``[start_sec, end_sec)`` of ``video``: its frames and
        sound go through the run's preprocessing as if they were the whole video."""
        self._need("caption")
        media = load_span(video, self.cfg.data, start_sec, end_sec)
        fused = self.model.fuse(self._batch(video, [Row()], media))
        ids = self.model.head.predict(HeadOutput(logits=fused.pooled, fused=fused), beam_size=beam_size)[0]
        return self.vocab.tokenizer.decode(ids)

    @torch.no_grad()
    def answer(self, video: str | Path, question: str, choices: list[str] | None = None,
               history: list[tuple[str, str]] | None = None) -> Answer:
        """The answer to ``question``; with ``choices``, the best of them; for a dialog model,
        ``history`` holds the previous (question, answer) turns."""
        if self.task not in ("qa", "dialog"):
            raise DuomoError(f"this is a {self.task} model; answering needs a qa or dialog run")
        tok, max_len = self.vocab.tokenizer, self.cfg.data.max_text_len
        if self.task == "dialog":
            ids = encode_dialog(tok, dialog_text(list(history or []), question), max_len)
        else:
            ids = tok.encode(question, max_len)
        index = {a: i for i, a in enumerate(self.vocab.answers)}
        picked = [index[c] for c in choices or [] if c in index] or None
        if choices and picked is None:
            raise DuomoError(f"none of the choices {choices} is an answer this model knows")
        out = self.model(self._batch(video, [Row(text_ids=ids or [0], choices=picked)]))
        i, p = self.model.head.predict(out)[0]
        return Answer(self.vocab.answers[i], p)

    @torch.no_grad()
    def classify(self, video: str | Path, top_k: int = 5) -> Labels:
        """Labels of ``video`` with scores, and the ``top_k`` best classes."""
        self._need("classify")
        out = self.model(self._batch(video, [Row()]))
        picked = self.model.head.predict(out)[0]
        scores = self.model.head.scores(out)[0]
        order = torch.argsort(scores, descending=True)[:top_k].tolist()
        return Labels([(self.vocab.labels[i], s) for i, s in picked],
                      [(self.vocab.labels[i], float(scores[i])) for i in order])

    def _need(self, task: str) -> None:
        if self.task != task:
            raise DuomoError(f"this is a {self.task} model; {task} needs a {task} run")


def load(run_dir: str | Path, *, checkpoint: str = "best.pt", device: str = "cpu") -> Predictor:
    """The Predictor of a ``duomo train`` run folder (its best checkpoint by default)."""
    run = Path(run_dir)
    for name in ("config.yaml", "vocab.json", checkpoint):
        if not (run / name).exists():
            raise CheckpointError(f"{run}: not a finished run folder (no {name})")
    cfg = read_config(run / "config.yaml")
    vocab = TaskVocab.load(run / "vocab.json")
    model = build_model(cfg, vocab=vocab.tokenizer.words, num_outputs=vocab.num_outputs)
    state = load_checkpoint(run / checkpoint)
    model.load_state_dict(state["model"])
    return Predictor(cfg, vocab, model, device)
