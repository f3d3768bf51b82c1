"""A list of VideoItems -> one VideoBatch (padded, with masks; rows mapped to their videos)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from duomo.batch import VideoBatch
from duomo.data.datasets import VideoItem, frame_times
from duomo.text.tokenize import PAD


def _pad(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L) long ids, 0-padded, and (B, L) bool mask."""
    length = max(1, max(len(s) for s in seqs))
    ids = torch.full((len(seqs), length), PAD, dtype=torch.long)
    for i, seq in enumerate(seqs):
        ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return ids, ids != PAD


def collate(items: list[VideoItem], *, task: str, num_outputs: int = 0, multi_label: bool = False) -> VideoBatch:
    """Frames (V, T, C, H, W) in [0, 1] (or cached features (V, T, D)), log-mel (V, A, M) (or
    cached sound tokens (V, A', D)) padded with a mask, and one row per question / turn / caption
    / query / video with its targets (moment spans as fractions of the video's duration, clipped
    to [0, 1])."""
    video_ids = [item.video_id for item in items]
    frames = features = audio = audio_mask = sound = sound_mask = None
    if items[0].features is not None:
        features = torch.from_numpy(np.stack([item.features for item in items])).float()
        frame_mask = torch.ones(features.shape[:2], dtype=torch.bool)
    else:
        stacked = np.stack([item.media.frames for item in items])  # (V, T, H, W, C) uint8
        frames = torch.from_numpy(stacked).permute(0, 1, 4, 2, 3).float().div_(255.0)
        frame_mask = torch.ones(frames.shape[:2], dtype=torch.bool)
    if items[0].sound is not None:
        sound, sound_mask = pad_sequences([item.sound for item in items])
    if items[0].media.mel is not None:
        audio, audio_mask = pad_sequences([item.media.mel for item in items])

    if items[0].frame_words is not None:  # model.frame_words, training
        batch_words = torch.from_numpy(np.stack([item.frame_words for item in items]))
    else:
        batch_words = None
    row_video = [v for v, item in enumerate(items) for _ in item.rows]
    rows = [row for item in items for row in item.rows]
    batch = VideoBatch(video_ids=video_ids, frame_mask=frame_mask, frames=frames, features=features,
                       audio=audio, audio_mask=audio_mask, sound=sound, sound_mask=sound_mask,
                       rows=torch.tensor(row_video, dtype=torch.long), frame_words=batch_words)
    if task in ("qa", "dialog"):
        batch.text_ids, batch.text_mask = _pad([row.text_ids for row in rows])
        batch.labels = torch.tensor([row.label for row in rows], dtype=torch.long)
        choice_mask = torch.ones(len(rows), num_outputs, dtype=torch.bool)
        for i, row in enumerate(rows):
            if row.choices:
                choice_mask[i] = False
                choice_mask[i, row.choices] = True
        batch.choice_mask = choice_mask
        batch.qa_types = [row.qa_type for row in rows]
        batch.turn_idx = [row.turn_idx for row in rows]
        if any(row.span is not None or row.slot_spans for row in rows):  # grounding rows (ground_weight); nan elsewhere
            batch.spans = torch.tensor([_fractions(row.span, row.duration_sec) if row.span is not None
                                        else (float("nan"),) * 2 for row in rows], dtype=torch.float32)
        if slots := max((len(row.slot_spans) for row in rows), default=0):  # pair grounding rows (pair_ground)
            nan = ((float("nan"),) * 2,) * slots
            batch.slot_spans = torch.tensor([[_fractions(span, row.duration_sec) for span in row.slot_spans]
                                             if row.slot_spans else nan for row in rows], dtype=torch.float32)
    elif task == "caption":
        if rows and rows[0].target_ids:
            batch.target_ids, batch.target_mask = _pad([row.target_ids for row in rows])
        batch.references = [row.references for row in rows]
    elif task == "retrieval":
        batch.text_ids, batch.text_mask = _pad([row.text_ids for row in rows])
        if rows and rows[0].span is not None:
            batch.spans = torch.tensor([_fractions(row.span, row.duration_sec) for row in rows], dtype=torch.float32)
    elif task == "summarize":
        num_frames = frame_mask.shape[1]
        batch.importance = torch.tensor(np.stack([importance_at_frames(row.importance, row.duration_sec, num_frames)
                                                  for row in rows]) if rows else np.zeros((0, num_frames)),
                                        dtype=torch.float32)
        batch.frame_times = torch.tensor(np.stack([frame_times(row.duration_sec, num_frames) for row in rows])
                                         if rows else np.zeros((0, num_frames)), dtype=torch.float32)
    elif task == "classify":
        hot = torch.zeros(len(rows), num_outputs)
        for i, row in enumerate(rows):
            hot[i, row.multi_hot] = 1.0
        if multi_label:
            batch.labels = hot
        else:
            batch.labels = torch.tensor([row.label for row in rows], dtype=torch.long)
            batch.label_sets = hot
    return batch


def _fractions(span: tuple[float, float], duration_sec: float) -> tuple[float, float]:
    """A span in seconds as fractions of the video's duration, clipped to [0, 1]."""
    return tuple(min(max(t / max(duration_sec, 1e-6), 0.0), 1.0) for t in span)


def importance_at_frames(per_second: list[float], duration_sec: float, num_frames: int) -> np.ndarray:
    """(T,) the per-second importance at the times of ``num_frames`` frames sampled uniformly over
    a video of ``duration_sec`` (see ``frame_times``); zeros when there are none (prediction)."""
    if not per_second:
        return np.zeros(num_frames)
    times = frame_times(duration_sec, num_frames)
    index = np.clip(np.floor(times).astype(int), 0, len(per_second) - 1)
    return np.asarray(per_second, dtype=np.float64)[index]


def pad_sequences(arrays: list[np.ndarray]) -> tuple[Tensor, Tensor]:
    """(n_i, ...) arrays (log-mel frames, sound tokens, each frame's places) -> (len, max n_i, ...)
    float32 zero-padded, and the (len, max n_i) bool mask."""
    length = max(1, max(len(a) for a in arrays))
    out = torch.zeros(len(arrays), length, *arrays[0].shape[1:])
    mask = torch.zeros(len(arrays), length, dtype=torch.bool)
    for i, array in enumerate(arrays):
        out[i, : len(array)] = torch.from_numpy(np.asarray(array, dtype=np.float32))
        mask[i, : len(array)] = True
    return out, mask
