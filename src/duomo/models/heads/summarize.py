"""Summarization head: how important is each moment of a video?

Each frame token (the frames are sampled uniformly over the whole video) gets one importance
score; training regresses the true importance at the frame's time and ranks the frames of a
video against each other, since the summary only depends on their order (a knapsack over
segment means).

The manifest gives importance per second, so by default the head scores at that granularity:
the logits of the frames that fall in one second (``batch.frame_times``) are averaged, and every
frame of the second carries that mean. A second's importance is how much of it is eventful,
which a frame-by-frame score can only guess; the mean over its frames measures it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from duomo.batch import Fused, HeadOutput, VideoBatch
from duomo.config import ConfigError
from duomo.models.layers import frame_change


class SummarizeHead(nn.Module):
    """fused.tokens (B, N, D) whose first T are the frame tokens (T = batch.frame_mask's length;
    the temporal encoder must keep one token per frame), fused.mask (B, N), fused.pooled (B, D)
    -> tokens with the pooled video vector added (and, with ``motion_delta``, a projection of each
frame token minus the one before), a small transformer over them -> logits (B, T):
    one importance logit per frame, -inf at padding frames. ``batch.importance`` (B, T) in [0, 1]
    holds the targets.

    Args:
        label_sec: length in seconds of the windows the importance labels cover (the manifest's
            are per second); frame logits are averaged within each window of
            ``batch.frame_times``. 0 scores every frame on its own.
    """

    def __init__(self, *, dim: int, num_layers: int = 1, num_heads: int = 4, ff_mult: int = 2,
                 dropout: float = 0.1, rank_weight: float = 1.0, rank_margin: float = 0.05,
                 motion_delta: bool = False, label_sec: float = 1.0):
        super().__init__()
        if label_sec < 0:
            raise ConfigError(f"model.head.args.label_sec: must be >= 0 seconds, got {label_sec}")
        self.label_sec = label_sec
        self.context = nn.Linear(dim, dim)
        # each frame token also sees how it differs from the frame before (importance follows change)
        self.delta = nn.Linear(dim, dim) if motion_delta else None
        layer = nn.TransformerEncoderLayer(dim, num_heads, dim * ff_mult, dropout, batch_first=True, norm_first=True)
        self.frames = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False) if num_layers else None
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, 1)
        self.rank_weight = rank_weight
        self.rank_margin = rank_margin

    def forward(self, fused: Fused, batch: VideoBatch) -> HeadOutput:
        num_frames = batch.frame_mask.shape[1]
        x = fused.tokens + self.context(fused.pooled).unsqueeze(1)  # (B, N, D)
        every = fused.mask.bool()
        if self.delta is not None:
            change = self.delta(frame_change(fused.tokens[:, :num_frames], every[:, :num_frames]))
            x = torch.cat([x[:, :num_frames] + change, x[:, num_frames:]], dim=1)
        if self.frames is not None:  # frames attend to each other and to the sound tokens after them
            padding = ~every & every.any(dim=1, keepdim=True)  # a row with no valid token attends to all
            x = self.frames(x, src_key_padding_mask=padding)
        mask = every[:, :num_frames]
        logits = self.out(self.norm(x[:, :num_frames])).squeeze(-1)  # (B, T)
        if self.label_sec > 0 and batch.frame_times is not None:
            logits = window_mean(logits, mask, torch.floor(batch.frame_times / self.label_sec))
        return HeadOutput(logits=logits.masked_fill(~mask, float("-inf")), fused=fused)

    def loss(self, out: HeadOutput, batch: VideoBatch) -> Tensor:
        """Binary cross-entropy of each frame's score against its importance in [0, 1], plus
        ``rank_weight`` x a pairwise hinge: within a video, a frame whose importance is higher by
        more than ``rank_margin`` must score higher by ``rank_margin`` (in probability)."""
        mask = torch.isfinite(out.logits)  # (B, T)
        target = batch.importance.to(out.logits.dtype)
        logits = out.logits.masked_fill(~mask, 0.0)
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        loss = (bce * mask).sum() / mask.sum().clamp(min=1)
        if self.rank_weight > 0:
            prob = torch.sigmoid(logits)
            diff_true = target.unsqueeze(2) - target.unsqueeze(1)  # (B, T, T): i more important than j
            diff_pred = prob.unsqueeze(2) - prob.unsqueeze(1)
            pairs = (diff_true > self.rank_margin) & mask.unsqueeze(2) & mask.unsqueeze(1)
            hinge = F.relu(self.rank_margin - diff_pred)
            loss = loss + self.rank_weight * (hinge * pairs).sum() / pairs.sum().clamp(min=1)
        return loss

    def predict(self, out: HeadOutput) -> list[list[float]]:
        """Per row, the importance in [0, 1] of each of its valid frames, in time order."""
        mask = torch.isfinite(out.logits)
        probs = torch.sigmoid(out.logits.masked_fill(~mask, 0.0))
        return [row[m].tolist() for row, m in zip(probs, mask)]


def window_mean(values: Tensor, mask: Tensor, window: Tensor) -> Tensor:
    """values (B, T), mask (B, T) bool, window (B, T) window index of each entry -> (B, T): each
    valid entry replaced by the mean of the valid entries of its row in the same window."""
    same = (window.unsqueeze(2) == window.unsqueeze(1)) & mask.unsqueeze(1) & mask.unsqueeze(2)  # (B, T, T)
    weights = same.to(values.dtype)
    total = torch.einsum("btu,bu->bt", weights, values.masked_fill(~mask, 0.0))
    return torch.where(mask, total / weights.sum(dim=2).clamp(min=1.0), values)
