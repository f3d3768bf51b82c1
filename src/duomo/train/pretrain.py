"""Text-supervised pre-training of the frame encoder, before a task trains.

Trained only through a task head, a from-scratch CNN learns colour, the easiest cue in pixels,
within an epoch or two, while shape stays at chance for many epochs behind it. Here the frame
encoder first learns to name the words the manifest's own text uses for each train video
(answers, labels and dialog answers; captions where a video has none of those) from a few of
its frames: a dense, direct signal, in the spirit of tag prediction (VirTex, Desai and Johnson,
2021, https://arxiv.org/abs/2006.06666). Nothing here knows a dataset's vocabulary: the words
come from the manifest, and only words that occur in some but not most videos are targets, with
the pairs of them that stand side by side in a text ("red star"), so colour is bound to shape.

Even so, a net that sees colour learns the colour words first and shape far later. An encoder
with a colour-blind stack (``cnn_small``'s ``luma_branch``, ``luma_dim``) therefore gets a second
head that must name the same words from that stack's features alone: with colour out of reach,
shape is what lowers its loss. Which texts give the targets matters as much: with the captions'
words (and pairs) as targets, the qa preset's encoder after 12 epochs names the shapes in a frame
no better than at its random start (linear probe, ``bench/frame_encoder.py --probe``: all shapes
right in 10% of frames, colours 54%); with the answers' it names them in 58% (colours 98%).

Three settings teach the encoder more (``bench/README.md``, probes of the pre-trained
encoder; the retrieval and caption presets use all three). With ``train.pretrain_said_labels``
the answers still choose the targets, but a video's captions also say whether it shows one: an
answer names one object ("red star"), a caption most of them. ``train.pretrain_unsaid_weight`` < 1 weighs a
target no text says less in the loss, since unsaid is not absent. And the encoder learns with
steps more than with frames: 24 epochs of 2 frames from each of 16 videos a step
(``train.pretrain_video_frames``, ``train.pretrain_video_batch``) teach it far more than 12 of 4
frames from 32, in 1.3 times the seconds.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from duomo.config import RunConfig
from duomo.data.manifest import VideoRecord
from duomo.data.media import read_cached
from duomo.models.model import VideoTextModel
from duomo.text.tokenize import split_words

log = logging.getLogger(__name__)

MIN_SHARE = 0.01
"""A target word occurs in at least this share of the train videos ..."""
MAX_SHARE = 0.9
"""... and in at most this share (words in nearly every video, "a", "the", tell them apart no better
than chance)."""
MAX_WORDS = 1024
LR = 1e-3
SHIFT = 8
"""Random translation of up to 1/SHIFT of the frame side (edges replicated): where an object
sits says nothing about what it is."""


def video_words(record: VideoRecord) -> set[str]:
    """Every word (no punctuation) of the record's short texts that say what is in the video: its
    answers, labels and dialog answers; captions and segment captions only for a video that has
    none of those. Questions and choices are left out: they name things that are not there ("is
    there a green star?" "no"). Captions are long and full of words no frame shows ("and",
    "then", "clip"); as targets beside the short ones they drown them (``bench/README.md``)."""
    return _words(_texts_words(record))


def video_pairs(record: VideoRecord) -> set[str]:
    """Every pair of words side by side in one of the texts ``video_words`` reads ("green star",
    "move left"): a pair names a conjunction that no single word does."""
    return _pairs(_texts_words(record))


def _words(texts: list[list[str]]) -> set[str]:
    return {word for words in texts for word in words}


def _pairs(texts: list[list[str]]) -> set[str]:
    return {f"{a} {b}" for words in texts for a, b in zip(words, words[1:])}


def _texts_words(record: VideoRecord) -> list[list[str]]:
    texts = [*record.labels, *(qa.answer for qa in record.qa), *(t.answer for d in record.dialog for t in d)]
    return _split(texts or _captions(record))


def _captions(record: VideoRecord) -> list[str]:
    return [*record.captions, *(s.caption for s in record.segments if s.caption)]


def _split(texts: list[str]) -> list[list[str]]:
    return [[w for w in split_words(text.replace("_", " ")) if any(c.isalnum() for c in w)] for text in texts]


def said_words(record: VideoRecord) -> set[str]:
    """Every word and word pair of any of the record's texts but its questions and choices:
    captions and segment captions too. Which words are targets comes from the short texts
    (``video_words``); whether a video shows one comes from all it says. An answer names one
    object of the video, a caption most of them ("a red star spins beside a blue square")."""
    texts = [*_texts_words(record), *_split(_captions(record))]
    return _words(texts) | _pairs(texts)


def word_targets(records: list[VideoRecord], said: bool = False) -> tuple[list[str], np.ndarray]:
    """The targets and a (videos, targets) 0/1 matrix of which video's text uses which. Targets
    are the words in MIN_SHARE..MAX_SHARE of the videos, and the word pairs (``video_pairs``) in
    that share both of whose words are targets, the most frequent MAX_WORDS of them all. With
    ``said``, any text of the video marks a target (``said_words``), captions included.

    A frame encoder that only names single words may learn "red" and "star" from two different
    objects; naming "red star" as well, it must see which colour goes with which shape."""
    texts = [_texts_words(r) for r in records]
    per_video = [_words(t) for t in texts]
    counts = Counter(word for words in per_video for word in words)
    low, high = MIN_SHARE * len(records), MAX_SHARE * len(records)
    words = {w for w, n in counts.items() if low <= n <= high}
    pairs = [{p for p in _pairs(t) if all(w in words for w in p.split(" "))} for t in texts]
    pair_counts = Counter(p for found in pairs for p in found)
    counts.update(pair_counts)
    candidates = words | {p for p, n in pair_counts.items() if low <= n <= high}
    vocab = sorted(candidates, key=lambda w: (-counts[w], w))[:MAX_WORDS]
    index = {w: i for i, w in enumerate(vocab)}
    targets = np.zeros((len(records), len(vocab)), dtype=np.float32)
    for row, record in enumerate(records):
        found = said_words(record) if said else per_video[row] | pairs[row]
        for word in found & index.keys():
            targets[row, index[word]] = 1.0
    return vocab, targets


def pretrain_frame_encoder(model: VideoTextModel, cfg: RunConfig, records: list[VideoRecord],
                           stamps: dict[str, str], epochs: int,
                           on_progress: Callable[[int, int], None] | None = None) -> dict:
    """Train ``model.video`` (in place) for ``epochs`` passes over ``records`` to predict each
    video's target words from ``train.pretrain_video_frames`` random frames of it (their tokens
    as the task sees them, ``model.frame_tokens``, max-pooled over the frames, a linear layer,
    binary cross-entropy, ``weighted_bce``), ``train.pretrain_video_batch`` videos a step;
    ``model.cell_pool``, when there is one, trains with it. Returns {"words",
    "epochs", "seconds", "loss"}."""
    started = time.monotonic()
    records = [r for r in records if r.video_id in stamps]
    tc = cfg.train
    vocab, targets = word_targets(records, said=tc.pretrain_said_labels)
    if not vocab or not records:
        log.info("pre-training skipped: no words that tell the train videos apart")
        return {"words": 0, "epochs": 0, "seconds": 0.0, "loss": float("nan")}
    frames = [read_cached(cfg.data, r.video_id, stamps[r.video_id]).frames for r in records]
    head = nn.Linear(model.dim, len(vocab))
    luma_dim = getattr(model.video, "luma_dim", 0)
    luma_head = nn.Linear(luma_dim, len(vocab)) if luma_dim else None
    params = list(model.video.parameters())
    if model.cell_pool is not None:  # trained with the encoder, so the task starts from a reading that binds
        params += [*model.cell_pool.parameters(), *model.cell_pool_norm.parameters()]
    trainable = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(True)
    heads = list(head.parameters()) + (list(luma_head.parameters()) if luma_head else [])
    optimizer = torch.optim.AdamW(params + heads, lr=LR)
    rng = np.random.default_rng(cfg.train.seed)
    model.video.train()
    steps_per_epoch = -(-len(records) // tc.pretrain_video_batch)
    loss = torch.tensor(float("nan"))
    for epoch in range(epochs):
        order = rng.permutation(len(records))
        for step, start in enumerate(range(0, len(records), tc.pretrain_video_batch)):
            chunk = order[start : start + tc.pretrain_video_batch]
            # in time order, as the task sees them (``model.cell_motion`` reads the change from the one before)
            picks = np.stack([frames[i][np.sort(rng.integers(0, len(frames[i]), tc.pretrain_video_frames))]
                              for i in chunk])
            x = torch.from_numpy(picks).permute(0, 1, 4, 2, 3).float().div_(255.0)  # (B, k, 3, H, W)
            x = _shift(x, rng)
            y = torch.from_numpy(targets[chunk])
            trunk = model.video.trunk_images(x.flatten(0, 1))  # (B * k, trunk_dim)
            per_frame = model.frame_tokens(trunk.view(*x.shape[:2], -1))  # (B, k, D), as the task sees them
            loss = weighted_bce(head(per_frame.amax(dim=1)), y, tc.pretrain_unsaid_weight)
            if luma_head is not None:
                luma = model.video.luma_features(trunk).view(*x.shape[:2], -1)  # (B, k, luma_dim)
                loss = loss + weighted_bce(luma_head(luma.amax(dim=1)), y, tc.pretrain_unsaid_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if on_progress:
                on_progress(epoch * steps_per_epoch + step + 1, epochs * steps_per_epoch)
    for p, flag in zip(params, trainable):
        p.requires_grad_(flag)
    seconds = time.monotonic() - started
    log.info("pre-trained the frame encoder on %d words for %d epochs in %.1f s (loss %.3f)",
             len(vocab), epochs, seconds, loss.item())
    return {"words": len(vocab), "epochs": epochs, "seconds": round(seconds, 1), "loss": loss.item()}


def weighted_bce(logits: torch.Tensor, y: torch.Tensor, unsaid_weight: float) -> torch.Tensor:
    """Binary cross-entropy, each unsaid target (0) weighted ``unsaid_weight`` against 1 for a
    said one, a weighted mean (a random start still scores about ln 2)."""
    weight = y + unsaid_weight * (1 - y)
    return F.binary_cross_entropy_with_logits(logits, y, weight=weight, reduction="sum") / weight.sum()


def _shift(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """(B, k, 3, H, W) moved by one random offset of up to H / SHIFT pixels (edges replicated)."""
    b, k, c, h, w = x.shape
    pad = max(1, h // SHIFT)
    padded = F.pad(x.reshape(b * k, c, h, w), (pad, pad, pad, pad), mode="replicate")
    dy, dx = rng.integers(0, 2 * pad + 1, 2)
    return padded[:, :, dy : dy + h, dx : dx + w].reshape(b, k, c, h, w)
