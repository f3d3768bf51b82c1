"""Predictor: load a trained run once, then caption, answer, classify, embed (retrieval), find
a moment or score importance over time (summarize) in any video file.

    >>> import duomo
    >>> model = duomo.load("runs/qa")
    >>> model.answer("clip.mp4", "what color is the square?")
    Answer(text='red', score=0.97)
    >>> duomo.load("runs/retrieval").embed_text(["a red circle grows"]).shape
    (1, 256)
    >>> duomo.load("runs/moment").find_moment("clip.mp4", "the red circle grows")
    (1.2, 2.0, 0.81)

Videos go through exactly the preprocessing of training (the run's saved data settings),
whatever their size, length or frame rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import torch

from duomo.batch import HeadOutput
from duomo.config import RunConfig, read_config
from duomo.data.collate import collate
from duomo.data.datasets import Row, TaskVocab, VideoItem, dialog_text, encode_dialog
from duomo.data.media import SILENCE, Media, load_media, load_span
from duomo.errors import DuomoError
from duomo.models.build import build_model
from duomo.models.model import VideoTextModel
from duomo.text.tokenize import PAD, SEP
from duomo.train.checkpoint import CheckpointError, load_checkpoint
from duomo.video.decode import RESIZE_FILTER
from duomo.video.probe import probe
from duomo.video.sampling import uniform_indices


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

    @torch.no_grad()
    def embed_text(self, texts: list[str]) -> np.ndarray:
        """(N, E) float32 unit vectors of ``texts`` in the retrieval run's shared space."""
        self._need_head("retrieval")
        return self._text_vectors(*self._words(texts, "embed_text")).cpu().numpy().astype(np.float32)

    def _text_vectors(self, words: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(N, E) unit vectors of the text encoder's tokens (N, L, D): the fusion's pooled text
        (with no video), projected by the head."""
        no_video = words.new_zeros(len(words), 0, self.model.dim)
        return self.model.head.embed_text(self.model.fusion(no_video, torch.zeros_like(mask[:, :0]), words, mask).pooled)

    def _words(self, texts: list[str], verb: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The text encoder's tokens (N, L, D) of ``texts`` and their mask (N, L)."""
        if not texts:
            raise DuomoError(f"{verb} needs at least one text")
        tok, max_len = self.vocab.tokenizer, self.cfg.data.max_text_len
        seqs = [tok.encode(text, max_len) or [SEP] for text in texts]
        ids = torch.full((len(seqs), max(1, max((len(q) for q in seqs), default=1))), PAD, dtype=torch.long)
        for i, seq in enumerate(seqs):
            ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        ids = ids.to(self.device)
        mask = ids != PAD
        return self.model.text(ids, mask), mask

    @torch.no_grad()
    def match(self, video: str | Path, texts: list[str]) -> np.ndarray:
        """(N,) float32: how well each text describes ``video`` by the run's matcher (its logit,
        the words read against the video's tokens) plus the dual encoder's scaled cosine
        similarity: the score evaluation re-ranks its best candidates by. Higher is better."""
        self._need_head("retrieval")
        head = self.model.head
        if head.matcher is None:
            raise DuomoError("this retrieval run has no matcher (it was trained with model.head.args.matcher_layers=0); "
                             "compare embed_text and embed_video instead")
        words, mask = self._words(texts, "match")
        batch = collate([VideoItem(str(video), load_media(video, self.cfg.data), None, [Row()])],
                        task=self.task).to(self.device)
        tokens, token_mask, places = self.model.encode_media_places(batch)  # (1, N, D): the video alone
        n = len(texts)
        every = torch.zeros(n, dtype=torch.long, device=tokens.device)  # each text reads the one video
        logits = head.match(words, mask, tokens, token_mask, rows=every, places=places, frame_mask=batch.frame_mask)
        cosine = self._text_vectors(words, mask) @ head.embed_video(tokens, token_mask)[0]
        return (logits + head.scale * cosine).cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def embed_video(self, video: str | Path) -> np.ndarray:
        """(E,) float32 unit vector of a video file (frames and sound, sampled as in training)."""
        self._need_head("retrieval")
        return self._embed_media(load_media(video, self.cfg.data), str(video))

    @torch.no_grad()
    def embed_frames(self, frames: np.ndarray) -> np.ndarray:
        """(E,) float32 unit vector of frames uint8 (T, H, W, 3) RGB, e.g. one segment of a longer
        video: resampled uniformly to the run's frame count and resized to its frame size; the
        sound is taken as silence."""
        self._need_head("retrieval")
        return self._embed_media(self._frames_media(frames), "frames")

    @torch.no_grad()
    def caption_frames(self, frames: np.ndarray, beam_size: int | None = None) -> str:
        """One caption for frames uint8 (T, H, W, 3) RGB (e.g. one segment of a longer video),
        preprocessed as ``embed_frames`` does; the sound is taken as silence."""
        self._need("caption")
        media = self._frames_media(frames)
        fused = self.model.fuse(self._batch("frames", [Row()], media))
        ids = self.model.head.predict(HeadOutput(logits=fused.pooled, fused=fused), beam_size=beam_size)[0]
        return self.vocab.tokenizer.decode(ids)

    def _frames_media(self, frames: np.ndarray) -> Media:
        """Frames of any count and size resampled uniformly to the run's frame count and resized
        to its frame size with the decoder's filter, and a silent spectrogram."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
            raise DuomoError(f"expected uint8 frames (T, H, W, 3) with T >= 1, got {frames.dtype} "
                             f"{frames.shape}")
        data = self.cfg.data
        picked = frames[uniform_indices(len(frames), data.num_frames)]
        size = data.frame_size
        if picked.shape[1:3] != (size, size):
            picked = np.stack([
                av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24").reformat(
                    width=size, height=size, format="rgb24", interpolation=RESIZE_FILTER).to_ndarray()
                for frame in picked])
        mel = np.full((1, data.num_mels), SILENCE, dtype=np.float16) if data.use_audio else None
        return Media(frames=picked, mel=mel)

    def _embed_media(self, media: Media, name: str) -> np.ndarray:
        batch = collate([VideoItem(name, media, None, [Row()])], task=self.task).to(self.device)
        tokens, mask = self.model.encode_media(batch)  # (1, N, D): the video alone, no text
        return self.model.head.embed_video(tokens, mask)[0].cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def find_moment(self, video: str | Path, query: str) -> tuple[float, float, float]:
        """(start_sec, end_sec, probability) of the moment of ``video`` that ``query`` describes."""
        self._need_head("moment")
        duration = probe(video).duration_sec
        ids = self.vocab.tokenizer.encode(query, self.cfg.data.max_text_len) or [SEP]
        out = self.model(self._batch(video, [Row(text_ids=ids, question=query, duration_sec=duration)]))
        start, end, p = self.model.head.predict(out)[0]
        return start * duration, end * duration, p

    @torch.no_grad()
    def importance(self, video: str | Path) -> tuple[np.ndarray, np.ndarray]:
        """(times (K,), scores (K,)): the importance in [0, 1] the summarize model gives each of
        the run's K frames, sampled uniformly over ``video`` (frame k at (k + 0.5) / K of it)."""
        self._need("summarize")
        duration = probe(video).duration_sec
        out = self.model(self._batch(video, [Row(duration_sec=duration)]))
        scores = np.asarray(self.model.head.predict(out)[0], dtype=np.float64)
        times = (np.arange(len(scores)) + 0.5) / max(1, len(scores)) * duration
        return times, scores

    def _need_head(self, head: str) -> None:
        if self.task != "retrieval" or self.cfg.model.head.name != head:
            kind = "retrieval" if head == "retrieval" else "moment retrieval"
            raise DuomoError(f"this is a {self.task} model ({self.cfg.model.head.name} head); {kind} needs a "
                             f"retrieval run with the {head} head")

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
    model = build_model(cfg, vocab=vocab.tokenizer.words, num_outputs=vocab.num_outputs,
                        frame_words=len(vocab.frame_words))
    state = load_checkpoint(run / checkpoint)
    model.load_state_dict(state["model"])
    return Predictor(cfg, vocab, model, device)


def load_for(run_dir: str | Path, task: str, head: str, flag: str) -> Predictor:
    """``load`` a run that must be a ``task`` run with the ``head`` head; any other run is refused
    with one line naming the option (``flag``) it was given to."""
    predictor = load(run_dir)
    if predictor.task != task or predictor.cfg.model.head.name != head:
        raise DuomoError(f"{run_dir}: {flag} needs a {task} run with the {head} head; "
                         f"this is a {predictor.task} run with the {predictor.cfg.model.head.name} head")
    return predictor
