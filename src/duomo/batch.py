"""The typed batches that flow between data, models and heads.

A batch holds V videos and B rows (questions, captions, dialog turns, or the videos themselves).
Several rows may share one video: ``rows`` maps each row to its video, so a video with ten
questions is encoded once, not ten times.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class VideoBatch:
    video_ids: list[str]
    """(V) one id per video."""
    frame_mask: Tensor
    """(V, T) bool, True = real frame."""
    frames: Tensor | None = None
    """(V, T, C, H, W) float in [0, 1]; None when ``features`` are given instead."""
    features: Tensor | None = None
    """(V, T, F) cached per-frame features of a frozen encoder."""
    audio: Tensor | None = None
    """(V, A, M) log-mel spectrogram frames (time, mel bands)."""
    audio_mask: Tensor | None = None
    """(V, A) bool."""
    sound: Tensor | None = None
    """(V, A', D) cached tokens of a frozen sound encoder, given instead of ``audio``."""
    sound_mask: Tensor | None = None
    """(V, A') bool."""
    rows: Tensor | None = None
    """(B,) long: the video of each row; None means one row per video, in order."""
    text_ids: Tensor | None = None
    """(B, L) question, query or prompt tokens."""
    text_mask: Tensor | None = None
    """(B, L) bool."""
    labels: Tensor | None = None
    """(B,) class or answer index (-100 = unknown), or (B, K) float multi-hot for multi-label."""
    label_sets: Tensor | None = None
    """(B, K) float multi-hot: every label of each row's video, for single-label classify rows whose
    head learns them too (``all_labels_weight``)."""
    choice_mask: Tensor | None = None
    """(B, K) bool: the answers a multiple-choice row may pick; all True for open-ended rows."""
    target_ids: Tensor | None = None
    """(B, S) caption tokens, starting with <bos> and ending with <eos>, 0-padded."""
    target_mask: Tensor | None = None
    """(B, S) bool."""
    spans: Tensor | None = None
    """(B, 2) float: each row's target [start, end] as fractions of its video's duration (moment retrieval)."""
    slot_spans: Tensor | None = None
    """(B, S, 2) float: the span each of a pair grounding row's first S slots must find, as
    fractions (the qa head's ``pair_ground``); nan on other rows. Set only with ``spans``."""
    importance: Tensor | None = None
    """(B, T) float: the true importance at each frame's time (summarization)."""
    frame_times: Tensor | None = None
    """(B, T) float: each row's frame times in seconds (summarization: frame k at (k + 0.5) / T of the video)."""
    frame_words: Tensor | None = None
    """(V, T, W) float 0/1: the words each frame's time is described by (``model.frame_words``,
    training only); a video without targets has nan rows."""
    qa_types: list[str] = field(default_factory=list)
    """(B) question family of each row (QA, dialog)."""
    turn_idx: list[int] = field(default_factory=list)
    """(B) 0-based dialog turn of each row."""
    references: list[list[str]] = field(default_factory=list)
    """(B) every reference caption of a row's video (caption evaluation)."""

    @property
    def row_videos(self) -> Tensor:
        """(B,) long: the video of each row, ``rows`` or, without it, 0 .. V - 1."""
        if self.rows is not None:
            return self.rows
        return torch.arange(len(self.video_ids), device=self.frame_mask.device)

    @property
    def num_rows(self) -> int:
        if self.rows is not None:
            return int(self.rows.shape[0])
        return len(self.video_ids)

    def to(self, device: torch.device | str) -> "VideoBatch":
        """A copy with every tensor field on ``device``."""
        changes = {
            f.name: getattr(self, f.name).to(device)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), Tensor)
        }
        return dataclasses.replace(self, **changes)


@dataclass
class Fused:
    tokens: Tensor
    """(B, N, D) fused tokens."""
    mask: Tensor
    """(B, N) bool."""
    pooled: Tensor
    """(B, D) one vector per row, what classifier heads read."""
    first_frame: int = 0
    """Where the video's tokens, frame tokens first, start in ``tokens`` (after a [CLS] token: 1)."""
    text_tokens: int = 0
    """How many of the last ``tokens`` are the row's text (padded; ``mask`` says which are words);
    0 where the fusion keeps no text tokens (separate) or the rows have no text."""
    places: Tensor | None = None
    """(V, T, P, D) each video's frames read place by place (``model.cell_pool``'s readings, before
    their maximum), one entry per video (rows map through ``VideoBatch.rows``); None without
    ``cell_pool``. The qa head's ``slot_places`` reads them."""


@dataclass
class HeadOutput:
    logits: Tensor
    """Task logits: (B, K) answers/classes, or (B, S, V) caption tokens under teacher forcing."""
    fused: Fused
    """What the head read; captioning decodes from it at predict time."""
    choice_mask: Tensor | None = None
    """(B, K) bool, copied from the batch for multiple-choice prediction."""
    ground: Tensor | None = None
    """(B, T) per-frame logits of "the row's text happens here" (the qa head's ``ground_weight``);
    (B, 1 + K, T) with its ``slot_ground``: the pooled vector's, then each of the K slots'."""
    label_sets: Tensor | None = None
    """(B, K) logits of every label the row's video has (the classify head's ``all_labels_weight``)."""
    frame_words: Tensor | None = None
    """(V, T, W) per-frame logits of the words that describe each frame's time (``model.frame_words``)."""
