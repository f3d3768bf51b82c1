"""Small shared pieces: an MLP, a faster dropout, masked mean pooling, sinusoidal position
tables, and running a per-frame net on the real frames only."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn


class MLP(nn.Module):
    """Two linear layers with GELU and dropout: (..., in_dim) -> (..., out_dim)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden_dim, out_dim)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Dropout(nn.Dropout):
    """``nn.Dropout`` with the same result in distribution, drawn faster on CPU.

    Each element is zeroed with probability ``p`` (to 1/65,536) and the rest scaled by
    1 / (1 - p), as ``nn.Dropout`` does. Torch's dropout draws a float for every element
    (``bernoulli_``), which on CPU took about a fifth of a QA training step; this draws 64 random
    bits per four elements (``random_`` on int64, from the same seeded generator) and keeps an
    element where its 16 bits are at least the threshold. Forward and backward on a large
    tensor take a little over half the time, which makes a whole QA training step 1.19x faster
    (``bench/train_step.py``). Evaluation (``eval()``) and p = 0 pass the input through, and
    ``inplace`` is ignored (the output is a new tensor).
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p >= 1.0:
            return x * 0.0
        return x * keep_scale(x.shape, self.p, x.dtype, x.device)


def keep_scale(shape: torch.Size, p: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """A tensor of ``shape``: 1 / (1 - p) where an element is kept, 0 where it is dropped (with
    probability round(p * 65536) / 65536, at most 65535 / 65536), from four 16-bit lanes of each random int64."""
    count = math.prod(shape)
    words = torch.empty((count + 3) // 4, dtype=torch.int64, device=device).random_(-2**63, 2**63 - 1)
    lanes = words.view(torch.int16)[:count].view(shape)  # uniform over [-32768, 32767]
    dropped = min(round(p * 65536), 65535)  # a p just below 1 keeps one element in 65,536
    keep = lanes >= dropped - 32768
    return torch.where(keep, 1.0 / (1.0 - dropped / 65536), 0.0).to(dtype)


def faster_dropout(module: nn.Module) -> nn.Module:
    """``module`` with every ``nn.Dropout`` inside it (torch's transformer layers' included)
    replaced by ``Dropout`` of the same p; returns ``module``."""
    for name, child in module.named_children():
        if type(child) is nn.Dropout:
            setattr(module, name, Dropout(child.p))
        else:
            faster_dropout(child)
    return module


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean over dim 1 of (B, N, D) counting only mask (B, N) True positions -> (B, D).

    Rows with no valid position give zeros.
    """
    weights = mask.to(x.dtype).unsqueeze(-1)
    return (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def sinusoid_table(num_positions: int, dim: int) -> Tensor:
    """(num_positions, dim) fixed sine/cosine position codes (Vaswani et al., 2017)."""
    position = torch.arange(num_positions, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(num_positions, dim)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div[: dim // 2])
    return table


def padding_safe(mask: Tensor) -> Tensor:
    """A key-padding mask for nn.MultiheadAttention (True = ignore) that never masks a whole row.

    A row with no valid key would give NaN; it attends to its first (padding) position instead,
    and callers zero such rows' outputs through their own masks.
    """
    ignore = ~mask
    empty = ignore.all(dim=1)
    if empty.any():
        ignore = ignore.clone()
        ignore[empty, 0] = False
    return ignore


def encode_valid_frames(net: Callable[[Tensor], Tensor], frames: Tensor, frame_mask: Tensor,
                        out_dim: int) -> Tensor:
    """Run a per-image ``net`` on the real frames only; padded frames come out as zeros.

    frames (B, T, C, H, W), frame_mask (B, T) bool -> (B, T, out_dim). ``net`` maps the
    (N, C, H, W) real frames, in batch-major order, to (N, out_dim). Padding never reaches the
    net (nor its BatchNorm statistics). The output has the net's dtype (bfloat16/float16 under
    autocast), or the frames' dtype when no frame is real.
    """
    batch_size, num_frames = frames.shape[:2]
    flat_mask = frame_mask.reshape(-1)
    if not bool(flat_mask.any()):
        return frames.new_zeros(batch_size, num_frames, out_dim)
    images = frames.reshape(batch_size * num_frames, *frames.shape[2:])[flat_mask]  # (N, C, H, W)
    encoded = net(images)  # (N, out_dim)
    out = encoded.new_zeros(batch_size * num_frames, out_dim)
    out[flat_mask] = encoded
    return out.view(batch_size, num_frames, out_dim)


def valid_fractions(mask: Tensor) -> Tensor:
    """(B, N) position of each valid token as a fraction of its row's valid span: (i + 0.5) / n."""
    count = mask.sum(dim=1, keepdim=True).clamp(min=1)
    index = torch.cumsum(mask.long(), dim=1) - 1
    return (index.float() + 0.5) / count


def look_into_frames(queries: Tensor, places: Tensor) -> tuple[Tensor, Tensor]:
    """Each query looks into each frame, as stacked attention looks into an image's regions (Yang
    et al., 2016, https://arxiv.org/abs/1511.02274): queries (B, Q, D) over places (B, T, P, D) ->
    scores (B, Q, T, P) = <q, place> / sqrt(D), and what each query finds in each frame
    (B, Q, T, D), the frame's places weighed by a softmax of their scores."""
    scores = torch.einsum("bqd,btpd->bqtp", queries, places) / places.shape[-1] ** 0.5
    return scores, torch.einsum("bqtp,btpd->bqtd", torch.softmax(scores, dim=-1), places)


def time_code(times: Tensor, dim: int, scale: float = 64.0) -> Tensor:
    """Sine/cosine codes (..., dim) of continuous positions ``times`` (...) in [0, 1] (fractions
    of the video), so frame and sound tokens at the same moment get the same code."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=times.device) * (-math.log(10000.0) / half))
    angles = (times.float() * scale).unsqueeze(-1) * freqs  # (..., half)
    code = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
    return code if code.shape[-1] == dim else torch.nn.functional.pad(code, (0, dim - code.shape[-1]))


class PlaceMotion(nn.Module):
    """Reads each place of each frame's square grid of places with its 3x3 neighbourhood, as it is
    now and as it changed since the frame before (zero change for the first frame): a per-place
    reduction, then a 3x3 convolution over the grid, ReLU and a linear layer.

    places (..., T, P, width) with P = side * side, row-major -> (..., T, P, out_dim)."""

    def __init__(self, *, width: int, hidden: int, out_dim: int, side: int):
        super().__init__()
        self.side = side
        self.norm = nn.LayerNorm(width)
        self.reduce = nn.Linear(width, max(1, hidden // 2))
        self.conv = nn.Conv2d(2 * self.reduce.out_features, hidden, kernel_size=3, padding=1)
        self.out = nn.Linear(hidden, out_dim)

    def forward(self, places: Tensor) -> Tensor:
        x = self.reduce(self.norm(places))  # (..., T, P, h)
        before = torch.cat([x[..., :1, :, :], x[..., :-1, :, :]], dim=-3)
        x = torch.cat([x, x - before], dim=-1)  # (..., T, P, 2h)
        lead, num_places = x.shape[:-2], x.shape[-2]
        grid = x.reshape(-1, self.side, self.side, x.shape[-1]).permute(0, 3, 1, 2)  # (N, 2h, side, side)
        read = torch.relu(self.conv(grid)).flatten(2).transpose(1, 2)  # (N, P, hidden)
        return self.out(read).reshape(*lead, num_places, -1)


def frame_change(frames: Tensor, mask: Tensor) -> Tensor:
    """frames (B, T, D), mask (B, T) bool -> (B, T, D): each frame token minus the one before it
    (zero for the first frame and wherever either of the two is padding). Events are changes, so
    heads that place them in time read this next to the frames themselves."""
    before = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    valid = mask & torch.cat([mask[:, :1], mask[:, :-1]], dim=1)
    return (frames - before) * valid.unsqueeze(-1).to(frames.dtype)
