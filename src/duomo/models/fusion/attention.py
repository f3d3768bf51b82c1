"""AttentionFusion: one learned score per token, softmax over a row's valid tokens, weighted sum.

Additive attention pooling (Bahdanau et al., 2015, https://arxiv.org/abs/1409.0473).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from duomo.batch import Fused
from duomo.config import ConfigError


class AttentionFusion(nn.Module):
    """Pools video and text tokens with learned attention weights; leaves the tokens unchanged.

    Each valid token x_i gets a score e_i = w^T tanh(W x_i + b); alpha_i = softmax over the row's
    valid tokens; pooled = LayerNorm(sum_i alpha_i x_i).

    video (B, N, D), video_mask (B, N) + text (B, L, D), text_mask (B, L); L may be 0
    -> tokens (B, N + L, D) = concat(video, text), mask (B, N + L), pooled (B, D).
    A row with no valid token pools to zeros before the LayerNorm.
    """

    def __init__(self, *, dim: int, hidden_dim: int = 0):
        super().__init__()
        if hidden_dim < 0:
            raise ConfigError(f"model.fusion.args.hidden_dim: must be 0 (= dim) or positive, got {hidden_dim}")
        hidden_dim = hidden_dim or dim
        self.proj = nn.Linear(dim, hidden_dim)  # W, b
        self.score = nn.Linear(hidden_dim, 1, bias=False)  # w
        self.norm = nn.LayerNorm(dim)

    def weights(self, video: Tensor, video_mask: Tensor, text: Tensor, text_mask: Tensor) -> Tensor:
        """(B, N + L) attention weights: sum to 1 over each row's valid tokens, 0 on padding
        (all 0 in a row with no valid token)."""
        tokens = torch.cat([video, text], dim=1)
        mask = torch.cat([video_mask.bool(), text_mask.bool()], dim=1)
        return self._weights(tokens, mask)

    def _weights(self, tokens: Tensor, mask: Tensor) -> Tensor:
        scores = self.score(torch.tanh(self.proj(tokens))).squeeze(-1)  # (B, N + L)
        # the dtype's lowest value rather than -inf: an all-padding row then gives no NaN, and the
        # final mask multiplication zeroes it; exp(lowest - max) is exactly 0 beside a valid token
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        return torch.softmax(scores, dim=1) * mask.to(scores.dtype)

    def forward(self, video: Tensor, video_mask: Tensor, text: Tensor, text_mask: Tensor) -> Fused:
        tokens = torch.cat([video, text], dim=1)  # (B, N + L, D)
        mask = torch.cat([video_mask.bool(), text_mask.bool()], dim=1)
        alpha = self._weights(tokens, mask)
        pooled = self.norm(torch.einsum("bn,bnd->bd", alpha, tokens))
        return Fused(tokens=tokens, mask=mask, pooled=pooled, text_tokens=text.shape[1])
