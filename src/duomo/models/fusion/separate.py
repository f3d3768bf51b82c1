"""No fusion, for dual encoders (retrieval): video and text stay apart so each can be embedded
alone and compared by similarity."""

from __future__ import annotations

from torch import Tensor, nn

from duomo.batch import Fused
from duomo.models.layers import masked_mean


class SeparateFusion(nn.Module):
    """video (B, N, D), video_mask (B, N) + text (B, L, D), text_mask (B, L) ->
    tokens = video (B, N, D) unchanged, mask = video_mask, pooled (B, D) = masked mean of the text
    alone (zeros for L == 0). Nothing of the text reaches the video tokens or the other way round.
    No parameters."""

    def __init__(self, *, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, video: Tensor, video_mask: Tensor, text: Tensor, text_mask: Tensor) -> Fused:
        return Fused(tokens=video, mask=video_mask.bool(), pooled=masked_mean(text, text_mask.bool()))
