"""Late concatenation, the classic fusion: mean video vector and mean text vector, concatenated
and projected back to ``dim``. No interaction before the head."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from duomo.batch import Fused
from duomo.models.layers import masked_mean


class LateConcatFusion(nn.Module):
    """video (B, N, D), text (B, L, D) -> pooled (B, D) = Linear([mean(video); mean(text)]);
    tokens = concat(video, text). L = 0 gives a zero text half."""

    def __init__(self, *, dim: int):
        super().__init__()
        self.project = nn.Linear(2 * dim, dim)

    def forward(self, video: Tensor, video_mask: Tensor, text: Tensor, text_mask: Tensor) -> Fused:
        pooled = self.project(torch.cat([masked_mean(video, video_mask), masked_mean(text, text_mask)], dim=-1))
        return Fused(tokens=torch.cat([video, text], dim=1), mask=torch.cat([video_mask, text_mask], dim=1),
                     pooled=pooled, text_tokens=text.shape[1])
