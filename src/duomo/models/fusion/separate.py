"""No fusion, for dual encoders (retrieval): video and text stay apart so each can be embedded
alone and compared by similarity."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from duomo.batch import Fused
from duomo.models.layers import masked_mean


class SeparateFusion(nn.Module):
    """video (B, N, D), video_mask (B, N) + text (B, L, D), text_mask (B, L) ->
    tokens = video (B, N, D) unchanged, mask = video_mask, pooled (B, D) = masked mean of the text
    alone (zeros for L == 0). Nothing of the text reaches the video tokens or the other way round.
    No parameters.

    ``keep_text=True`` also puts the text's tokens after the video's, unchanged (tokens
    (B, N + L, D), ``text_tokens`` = L), for a head that reads the words themselves (the
    retrieval head's matcher); the pooled text is the same.
    """

    def __init__(self, *, dim: int, keep_text: bool = False):
        super().__init__()
        self.dim = dim
        self.keep_text = keep_text

    def forward(self, video: Tensor, video_mask: Tensor, text: Tensor, text_mask: Tensor) -> Fused:
        pooled = masked_mean(text, text_mask.bool())
        if not self.keep_text or text.shape[1] == 0:
            return Fused(tokens=video, mask=video_mask.bool(), pooled=pooled)
        return Fused(tokens=torch.cat([video, text], dim=1), mask=torch.cat([video_mask.bool(), text_mask.bool()], dim=1),
                     pooled=pooled, text_tokens=text.shape[1])
