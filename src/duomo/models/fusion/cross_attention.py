"""CrossAttentionFusion: text attends over video and video over text, in every layer.

Co-attention in the style of ViLBERT (Lu et al., 2019, https://arxiv.org/abs/1908.02265).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
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

    def forward(self, x: Tensor, context: Tensor, context_mask: Tensor, rows: Tensor | None = None) -> Tensor:
        """``rows`` (B,) long, when given: query row i reads context row ``rows[i]`` (context and
        its mask then hold one row per video, projected to keys and values once per video)."""
        if context.shape[1] > 0:
            attended = self.attend(self.norm_query(x), self.norm_context(context), context_mask, rows)
            has_context = context_mask.any(dim=1)
            has_context = (has_context if rows is None else has_context[rows]).to(x.dtype)[:, None, None]  # (B, 1, 1)
            x = x + self.drop(attended) * has_context
        return x + self.drop(self.ff(self.norm_ff(x)))

    def attend(self, query: Tensor, context: Tensor, mask: Tensor, rows: Tensor | None) -> Tensor:
        """``self.attn``'s multi-head attention (its weights, its dropout). With ``rows``, the query
        rows of each video are laid end to end and attend together over that video's context, so
        its keys and values are computed once, not once per row: when ten questions share a video
        of 200 tokens that is most of the fusion's work. (Queries attend independently, so this
        is exact.)"""
        attn = self.attn
        dim, heads = query.shape[-1], attn.num_heads
        weight, bias = attn.in_proj_weight, attn.in_proj_bias
        q = F.linear(query, weight[:dim], bias[:dim])
        k = F.linear(context, weight[dim:2 * dim], bias[dim:2 * dim])
        v = F.linear(context, weight[2 * dim:], bias[2 * dim:])
        key_mask = ~padding_safe(mask)
        if rows is not None:
            slots, per_video = _slots(rows, context.shape[0])
            grouped = q.new_zeros(context.shape[0] * per_video, *q.shape[1:])
            grouped[slots] = q
            q = grouped.view(context.shape[0], -1, dim)  # (V, rows per video * L, D)

        def split(t: Tensor) -> Tensor:  # (B, N, D) -> (B, heads, N, D / heads)
            return t.unflatten(-1, (heads, dim // heads)).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=key_mask[:, None, None, :],
                                             dropout_p=attn.dropout if self.training else 0.0)
        out = attn.out_proj(out.transpose(1, 2).flatten(2))
        if rows is not None:
            out = out.view(-1, *query.shape[1:])[slots]
        return out


class SelfAttentionBlock(nn.Module):
    """Pre-norm self-attention over x (B, L, D) with mask (B, L) -> (B, L, D), residual; padded
    positions are never attended to (a row with none valid changes by what its padding reads,
    which its mask zeroes later)."""

    def __init__(self, *, dim: int, num_heads: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        if x.shape[1] == 0:
            return x
        h = self.norm(x)
        attended, _ = self.attn(h, h, h, key_padding_mask=padding_safe(mask), need_weights=False)
        return x + self.drop(attended)


def _slots(rows: Tensor, num_videos: int) -> tuple[Tensor, int]:
    """rows (B,) long, each row's video -> each row's slot in a (num_videos * per_video) layout
    that gives every video ``per_video`` consecutive slots, and per_video (its most rows)."""
    counts = torch.bincount(rows, minlength=num_videos)
    order = torch.argsort(rows, stable=True)
    rank = torch.empty_like(rows)
    rank[order] = torch.arange(len(rows), device=rows.device) - (torch.cumsum(counts, 0) - counts)[rows[order]]
    return rows * int(counts.max()) + rank, int(counts.max())


class CrossAttentionFusion(nn.Module):
    """Per layer, text tokens attend over video tokens and video tokens over text tokens (both
    read the previous layer's states), each followed by an FFN.

    video (B, N, D), video_mask (B, N) + text (B, L, D), text_mask (B, L); L may be 0 (the video
    side then skips attention and is encoded on its own). With ``video_attends=False`` only the
    text side attends (the video tokens are passed through, normalised). With
    ``text_self_attends=True`` each layer's text side first attends over the text itself (a
    transformer decoder layer: self-attention, cross-attention, FFN), so a word can read what
    the other words found in the video ("before" what the first clause found, after what the second did).
    -> tokens (B, N + L, D) = concat(video', text') with padding zeroed, mask (B, N + L),
       pooled (B, D) = LayerNorm(Linear(concat(masked_mean(text'), masked_mean(video')))).
    """

    takes_rows = True
    """``forward`` takes one video row per video and ``rows`` (see ``VideoTextModel.fuse``)."""

    def __init__(self, *, dim: int, num_layers: int = 2, num_heads: int = 4, ff_mult: int = 4,
                 dropout: float = 0.1, video_attends: bool = True, text_self_attends: bool = False):
        super().__init__()
        if dim % num_heads:
            raise ConfigError(f"model.fusion.args.num_heads: {num_heads} does not divide model.dim {dim}")
        self.text_from_video = nn.ModuleList(
            CrossAttentionBlock(dim=dim, num_heads=num_heads, ff_mult=ff_mult, dropout=dropout)
            for _ in range(num_layers))
        self.text_self = nn.ModuleList(SelfAttentionBlock(dim=dim, num_heads=num_heads, dropout=dropout)
                                       for _ in range(num_layers if text_self_attends else 0))
        # video_attends=False keeps only the text side: video tokens pass through unchanged, which
        # costs a fraction when many rows (questions) share one video.
        self.video_from_text = nn.ModuleList(
            CrossAttentionBlock(dim=dim, num_heads=num_heads, ff_mult=ff_mult, dropout=dropout)
            for _ in range(num_layers if video_attends else 0))
        self.norm_video = nn.LayerNorm(dim)
        self.norm_text = nn.LayerNorm(dim)
        self.pool = nn.Linear(2 * dim, dim)
        self.norm_pooled = nn.LayerNorm(dim)

    def forward(self, video: Tensor, video_mask: Tensor, text: Tensor, text_mask: Tensor,
                rows: Tensor | None = None) -> Fused:
        """``rows`` (B,) long, when given: video and video_mask hold one row per video and text row
        i is about video ``rows[i]`` (many questions about one video)."""
        video_mask, text_mask = video_mask.bool(), text_mask.bool()
        if rows is not None and len(self.video_from_text):  # the video side differs per row
            video, video_mask, rows = video[rows], video_mask[rows], None
        for i, text_block in enumerate(self.text_from_video):
            if i < len(self.text_self):
                text = self.text_self[i](text, text_mask)
            if i < len(self.video_from_text):
                text, video = text_block(text, video, video_mask), self.video_from_text[i](video, text, text_mask)
            else:
                text = text_block(text, video, video_mask, rows)
        video = self.norm_video(video) * video_mask.unsqueeze(-1).to(video.dtype)
        if rows is not None:
            video, video_mask = video[rows], video_mask[rows]
        text = self.norm_text(text) * text_mask.unsqueeze(-1).to(text.dtype)
        # masked_mean gives zeros for L == 0 and for rows without text
        pooled = self.norm_pooled(self.pool(torch.cat([masked_mean(text, text_mask),
                                                       masked_mean(video, video_mask)], dim=-1)))
        tokens = torch.cat([video, text], dim=1)
        mask = torch.cat([video_mask, text_mask], dim=1)
        return Fused(tokens=tokens, mask=mask, pooled=pooled, text_tokens=text.shape[1])
