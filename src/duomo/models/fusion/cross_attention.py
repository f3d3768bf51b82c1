"""CrossAttentionFusion: text attends over video and video over text, in every layer.

Co-attention in the style of ViLBERT (Lu et al., 2019, https://arxiv.org/abs/1908.02265).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from duomo.batch import Fused
from duomo.config import ConfigError
from duomo.models.layers import MLP, masked_mean, padding_safe


class CrossAttentionBlock(nn.Module):
    """Pre-norm block: queries x (B, Q, D) attend over context (B, K, D) with mask (B, K), then an FFN.

    -> (B, Q, D). With K == 0, or for rows whose context has no valid token, the attention step
    is skipped (adds zero) and only the FFN runs.
    """

    def __init__(self, *, dim: int, num_heads: int, ff_mult: int, dropout: float):
        super().__init__()
        self.norm_query = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = MLP(dim, dim * ff_mult, dim, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, context: Tensor, context_mask: Tensor) -> Tensor:
        if context.shape[1] > 0:
            kv = self.norm_context(context)
            attended, _ = self.attn(self.norm_query(x), kv, kv, key_padding_mask=padding_safe(context_mask),
                                    need_weights=False)
            has_context = context_mask.any(dim=1).to(x.dtype)[:, None, None]  # (B, 1, 1)
            x = x + self.drop(attended) * has_context
        return x + self.drop(self.ff(self.norm_ff(x)))


class CrossAttentionFusion(nn.Module):
    """Per layer, text tokens attend over video tokens and video tokens over text tokens (both
    read the previous layer's states), each followed by an FFN.

    video (B, N, D), video_mask (B, N) + text (B, L, D), text_mask (B, L); L may be 0 (the video
    side then skips attention and is encoded on its own). With ``video_attends=False`` only the
    text side attends (the video tokens are passed through, normalised).
    -> tokens (B, N + L, D) = concat(video', text') with padding zeroed, mask (B, N + L),
       pooled (B, D) = LayerNorm(Linear(concat(masked_mean(text'), masked_mean(video')))).
    """

    def __init__(self, *, dim: int, num_layers: int = 2, num_heads: int = 4, ff_mult: int = 4,
                 dropout: float = 0.1, video_attends: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ConfigError(f"model.fusion.args.num_heads: {num_heads} does not divide model.dim {dim}")
        self.text_from_video = nn.ModuleList(
            CrossAttentionBlock(dim=dim, num_heads=num_heads, ff_mult=ff_mult, dropout=dropout)
            for _ in range(num_layers))
        # video_attends=False keeps only the text side: video tokens pass through unchanged, which
        # costs a fraction when many rows (questions) share one video.
        self.video_from_text = nn.ModuleList(
            CrossAttentionBlock(dim=dim, num_heads=num_heads, ff_mult=ff_mult, dropout=dropout)
            for _ in range(num_layers if video_attends else 0))
        self.norm_video = nn.LayerNorm(dim)
        self.norm_text = nn.LayerNorm(dim)
        self.pool = nn.Linear(2 * dim, dim)
        self.norm_pooled = nn.LayerNorm(dim)

    def forward(self, video: Tensor, video_mask: Tensor, text: Tensor, text_mask: Tensor) -> Fused:
        video_mask, text_mask = video_mask.bool(), text_mask.bool()
        for i, text_block in enumerate(self.text_from_video):
            if i < len(self.video_from_text):
                text, video = text_block(text, video, video_mask), self.video_from_text[i](video, text, text_mask)
            else:
                text = text_block(text, video, video_mask)
        video = self.norm_video(video) * video_mask.unsqueeze(-1).to(video.dtype)
        text = self.norm_text(text) * text_mask.unsqueeze(-1).to(text.dtype)
        # masked_mean gives zeros for L == 0 and for rows without text
        pooled = self.norm_pooled(self.pool(torch.cat([masked_mean(text, text_mask),
                                                       masked_mean(video, video_mask)], dim=-1)))
        tokens = torch.cat([video, text], dim=1)
        mask = torch.cat([video_mask, text_mask], dim=1)
        return Fused(tokens=tokens, mask=mask, pooled=pooled)
