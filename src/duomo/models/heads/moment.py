"""Moment retrieval head: given a query and one video, where does it happen?

Each frame token, already fused with the query, gets a start, an end and an inside score; the
answer is the best (start, end) pair with start <= end, as fractions of the video's duration
(the frames are sampled uniformly over the whole video, so frame k covers [k / T, (k + 1) / T)).
Start/end classification over positions, as in span extraction for reading comprehension.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from duomo.batch import Fused, HeadOutput, VideoBatch
from duomo.models.layers import frame_change


class MomentHead(nn.Module):
    """fused.tokens (B, N, D) whose first T are the row's frame tokens (T = batch.frame_mask's
    length; the temporal encoder must keep one token per frame), fused.mask (B, N),
    fused.pooled (B, D) the query (``separate`` fusion) or the fused query-video vector
    -> frames modulated by the pooled vector, a small transformer over them -> logits (B, T, 3): per frame, start, end and inside scores; the start
    and end scores of padding frames are -inf. ``batch.spans`` (B, 2) holds the targets as
    fractions of the video's duration. With ``motion_delta``, each frame token also gets a
    projection of how it differs from the frame before (moments are events, events are changes)."""

    def __init__(self, *, dim: int, num_layers: int = 1, num_heads: int = 4, ff_mult: int = 2,
                 dropout: float = 0.1, boundary_sigma: float = 1.0, inside_weight: float = 1.0,
                 motion_delta: bool = False):
        super().__init__()
        self.delta = nn.Linear(dim, dim) if motion_delta else None
        # FiLM (Perez et al., 2018, https://arxiv.org/abs/1709.07871): the pooled query scales and
        # shifts every frame token, so even a fusion that leaves frames apart (separate) conditions them
        self.scale = nn.Linear(dim, dim)
        self.shift = nn.Linear(dim, dim)
        layer = nn.TransformerEncoderLayer(dim, num_heads, dim * ff_mult, dropout, batch_first=True, norm_first=True)
        self.frames = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False) if num_layers else None
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, 3)
        self.boundary_sigma = boundary_sigma
        self.inside_weight = inside_weight

    def forward(self, fused: Fused, batch: VideoBatch) -> HeadOutput:
        start, num_frames = fused.first_frame, batch.frame_mask.shape[1]
        frames = fused.tokens[:, start : start + num_frames]  # (B, T, D), after concat's [CLS] token
        mask = fused.mask[:, start : start + num_frames].bool()
        if self.delta is not None:
            frames = frames + self.delta(frame_change(frames, mask))
        x = frames * (1 + self.scale(fused.pooled).unsqueeze(1)) + self.shift(fused.pooled).unsqueeze(1)
        if self.frames is not None:
            # the transformer wants True at padding; a row with no valid frame attends to all
            padding = ~mask & mask.any(dim=1, keepdim=True)
            x = self.frames(x, src_key_padding_mask=padding)
        logits = self.out(self.norm(x))  # (B, T, 3)
        boundary = logits[..., :2].masked_fill(~mask.unsqueeze(-1), float("-inf"))
        return HeadOutput(logits=torch.cat([boundary, logits[..., 2:]], dim=-1), fused=fused)

    def loss(self, out: HeadOutput, batch: VideoBatch) -> Tensor:
        """Cross-entropy of the start and end frame (soft targets: a Gaussian of ``boundary_sigma``
        frames around the true one), plus binary cross-entropy of each frame being inside."""
        mask = torch.isfinite(out.logits[..., 0])  # (B, T)
        start_bin, end_bin = span_bins(batch.spans, mask)
        loss = _soft_cross_entropy(out.logits[..., 0], start_bin, mask, self.boundary_sigma)
        loss = loss + _soft_cross_entropy(out.logits[..., 1], end_bin, mask, self.boundary_sigma)
        return loss + self.inside_weight * inside_loss(out.logits[..., 2], start_bin, end_bin, mask)

    def predict(self, out: HeadOutput) -> list[tuple[float, float, float]]:
        """Per row, (start, end, probability): the most likely frames s <= e, as fractions of the
        video's duration, s / T and (e + 1) / T over its T valid frames."""
        mask = torch.isfinite(out.logits[..., 0])
        log_start = torch.log_softmax(out.logits[..., 0], dim=-1)
        log_end = torch.log_softmax(out.logits[..., 1], dim=-1)
        pair = log_start.unsqueeze(2) + log_end.unsqueeze(1)  # (B, T, T): [start, end]
        num_frames = mask.shape[1]
        ordered = torch.ones(num_frames, num_frames, dtype=torch.bool, device=mask.device).triu()
        pair = pair.masked_fill(~ordered, float("-inf")).nan_to_num(float("-inf"))
        best = pair.flatten(1).argmax(dim=1)
        results = []
        for row, index in enumerate(best.tolist()):
            start, end = divmod(index, num_frames)
            count = max(1, int(mask[row].sum()))
            results.append((start / count, (end + 1) / count, float(pair[row].flatten()[index].exp())))
        return results


def span_bins(spans: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Spans (B, 2) as fractions and frame mask (B, T) -> (start frame (B,), end frame (B,)) long:
    the frames the span's start and end fall in, over each row's valid frames, end >= start."""
    count = mask.sum(dim=1).clamp(min=1)
    last = count - 1
    start = torch.minimum(torch.floor(spans[:, 0] * count).long(), last).clamp(min=0)
    end = torch.minimum(torch.ceil(spans[:, 1] * count).long() - 1, last)
    return start, torch.maximum(end, start)


def inside_loss(logits: Tensor, start: Tensor, end: Tensor, mask: Tensor) -> Tensor:
    """Binary cross-entropy of per-frame logits (B, T) against "frame inside [start, end]" (B,)
    long, averaged over the valid frames of ``mask`` (B, T)."""
    positions = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)
    inside = ((positions >= start.unsqueeze(1)) & (positions <= end.unsqueeze(1))).float()
    bce = F.binary_cross_entropy_with_logits(logits, inside, reduction="none")
    return (bce * mask).sum() / mask.sum().clamp(min=1)


def _soft_cross_entropy(logits: Tensor, target: Tensor, mask: Tensor, sigma: float) -> Tensor:
    """Mean over rows of cross-entropy against a Gaussian around ``target`` (B,) over the valid
    positions of ``mask`` (B, T); sigma 0 gives the one-hot target."""
    positions = torch.arange(logits.shape[1], device=logits.device).unsqueeze(0).float()
    if sigma > 0:
        weights = torch.exp(-0.5 * ((positions - target.unsqueeze(1).float()) / sigma) ** 2)
    else:
        weights = (positions == target.unsqueeze(1).float()).float()
    weights = weights * mask
    weights = weights / weights.sum(dim=1, keepdim=True).clamp(min=1e-12)
    log_probs = torch.log_softmax(logits, dim=-1).masked_fill(~mask, 0.0)
    return -(weights * log_probs).sum(dim=1).mean()
