"""Temporal encoders over per-frame features: masked mean, GRU/LSTM, transformer.

Each maps x (B, T, D), mask (B, T) -> tokens (B, T', D), mask (B, T'); padding positions of
the output are zeros and never influence valid ones.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from duomo.config import ConfigError
from duomo.models.layers import frame_change, masked_mean, padding_safe, sinusoid_table


class MeanTemporalEncoder(nn.Module):
    """Order-free baseline: the masked mean of the frame features.

    x (B, T, D), mask (B, T) -> tokens (B, 1, D), mask (B, 1): True iff the row has any
    valid frame; rows with none give zeros. No parameters.
    """

    def __init__(self, *, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        return masked_mean(x, mask).unsqueeze(1), mask.any(dim=1, keepdim=True)


class RecurrentTemporalEncoder(nn.Module):
    """A (bi)directional GRU or LSTM over the valid frames, projected back to dim.

    x (B, T, D), mask (B, T) -> tokens (B, T, D), the same mask. Sequences are packed, so
    padding never reaches a valid step in either direction. Valid frames need not be a
    prefix: they are gathered to the front (in order), run, and put back.
    """

    def __init__(self, *, dim: int, cell: str = "gru", num_layers: int = 1, bidirectional: bool = True,
                 dropout: float = 0.0):
        super().__init__()
        cells = {"gru": nn.GRU, "lstm": nn.LSTM}
        if cell not in cells:
            raise ConfigError(f"model.temporal.args.cell: unknown {cell!r}; choose one of {', '.join(cells)}")
        # nn.GRU/LSTM apply dropout only between layers and warn when asked for it with one layer
        self.rnn = cells[cell](dim, dim, num_layers=num_layers, batch_first=True, bidirectional=bidirectional,
                               dropout=dropout if num_layers > 1 else 0.0)
        self.proj = nn.Linear(dim * (2 if bidirectional else 1), dim)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        num_frames = x.shape[1]
        # a stable sort puts each row's valid frames first, in their original order
        order = torch.sort((~mask).to(torch.uint8), dim=1, stable=True).indices  # (B, T)
        packed_x = torch.gather(x, 1, order.unsqueeze(-1).expand_as(x))
        # a row with no valid frame runs one (padding) step; its output is zeroed below
        lengths = mask.sum(dim=1).clamp(min=1).cpu()
        packed = pack_padded_sequence(packed_x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=num_frames)  # (B, T, dirs * D)
        out = self.proj(out)
        restored = torch.empty_like(out).scatter_(1, order.unsqueeze(-1).expand_as(out), out)
        return restored * mask.unsqueeze(-1).to(out.dtype), mask


class TransformerTemporalEncoder(nn.Module):
    """A pre-norm transformer encoder over frames with sinusoidal frame-index positions.

    x (B, T, D), mask (B, T) -> tokens (B, T, D), the same mask; padding is excluded from
    attention and zeroed in the output. T may be at most ``max_len``.

    With ``motion_delta``, each frame token first gets a learned projection of how it differs
    from the frame before (``layers.frame_change``): actions, their order and cuts are changes,
    which attention would otherwise have to find by comparing tokens pairwise.
    """

    def __init__(self, *, dim: int, num_layers: int = 2, num_heads: int = 4, ff_mult: int = 4,
                 dropout: float = 0.1, max_len: int = 1024, motion_delta: bool = False):
        super().__init__()
        if dim % num_heads:
            raise ConfigError(f"model.temporal.args.num_heads: {num_heads} does not divide model.dim {dim}")
        self.max_len = max_len
        self.delta = nn.Linear(dim, dim) if motion_delta else None
        self.register_buffer("positions", sinusoid_table(max_len, dim), persistent=False)
        layer = nn.TransformerEncoderLayer(dim, num_heads, dim_feedforward=dim * ff_mult, dropout=dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        # nested tensors only speed up post-norm layers; asking for them with norm_first only warns
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        num_frames = x.shape[1]
        if num_frames > self.max_len:
            raise ConfigError(f"model.temporal.args.max_len: {num_frames} frames exceed max_len {self.max_len}")
        if self.delta is not None:
            x = x + self.delta(frame_change(x, mask))
        x = x + self.positions[:num_frames].to(x.dtype)
        out = self.norm(self.encoder(x, src_key_padding_mask=padding_safe(mask)))
        return out * mask.unsqueeze(-1).to(out.dtype), mask
