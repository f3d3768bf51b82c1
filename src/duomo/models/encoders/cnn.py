"""SmallCNNEncoder: a fast from-scratch per-frame CNN for 64-128 px frames (CPU-friendly)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from duomo.config import ConfigError
from duomo.models.encoders.pretrained import load_weights
from duomo.models.layers import encode_valid_frames

# From-scratch nets see inputs centred on 0 with roughly unit spread; these fixed constants do
# that for frames in [0, 1] without depending on any dataset's statistics.
FRAME_MEAN = 0.5
FRAME_STD = 0.25
LUMA = (0.299, 0.587, 0.114)
"""Rec. 601 weights of R, G, B in luminance."""


class SmallCNNEncoder(nn.Module):
    """A patchify stem and a few 3x3 conv layers, pooled to a small spatial grid.

    frames (B, T, 3, H, W) float in [0, 1], frame_mask (B, T) -> (B, T, dim); padded frames
    are not run and come out as zeros. Works for any H, W >= 16.

    Layers: Conv 4x4 stride 4 (``channels[0]``) -> BN -> ReLU, then one 3x3 Conv -> BN -> ReLU
    per further entry of ``channels`` (the first at stride 1, the others at stride 2), then
    AdaptiveAvgPool2d(grid), which keeps *where* things are (motion direction needs it),
    -> flatten -> dropout -> Linear -> dim -> LayerNorm. At 64x64 the default grid is
    16x16 -> 16 -> 8 -> 4.

    Args:
        luma_branch: add a second stack of the same layers over the frame's luminance (Rec. 601
            grey), whose grid features join the colour stack's before the projection. Colour is
            the easiest thing to learn from pixels and a single stack learns it first, shapes
            much later; the colour-blind branch can only learn from shape and texture. Twice
            the convolution cost.
        weights: optional ``.pt`` file with this encoder's state_dict or a Duomo checkpoint
            (see ``load_weights``).
    """

    def __init__(self, *, dim: int, channels: tuple[int, ...] = (48, 64, 96, 128), grid: int = 4,
                 dropout: float = 0.0, luma_branch: bool = False, weights: str = ""):
        super().__init__()
        channels = list(channels)
        if not channels or min(channels) < 1:
            raise ConfigError(f"model.video.args.channels: need at least one positive width, got {channels}")
        if grid < 1:
            raise ConfigError(f"model.video.args.grid: must be at least 1, got {grid}")
        self.out_dim = dim
        self.register_buffer("mean", torch.full((1, 3, 1, 1), FRAME_MEAN), persistent=False)
        self.register_buffer("std", torch.full((1, 3, 1, 1), FRAME_STD), persistent=False)
        self.register_buffer("luma_weights", torch.tensor(LUMA).view(1, 3, 1, 1), persistent=False)
        self.features = _conv_stack(3, channels, grid)
        self.luma = _conv_stack(1, channels, grid) if luma_branch else None
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(channels[-1] * grid * grid * (2 if luma_branch else 1), dim)
        self.norm = nn.LayerNorm(dim)
        if weights:
            load_weights(self, weights)
        # NHWC convolutions are about 1.3x faster to train on CPU (oneDNN) and suit GPUs too
        self.features.to(memory_format=torch.channels_last)
        if self.luma is not None:
            self.luma.to(memory_format=torch.channels_last)

    def forward(self, frames: Tensor, frame_mask: Tensor) -> Tensor:
        # only real frames go through the net (and into BatchNorm's statistics)
        return encode_valid_frames(self.encode_images, frames, frame_mask, self.out_dim)

    def encode_images(self, images: Tensor) -> Tensor:
        """images (N, 3, H, W) float in [0, 1] -> (N, dim)."""
        normed = ((images - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        x = self.features(normed).flatten(1)  # (N, C * grid * grid)
        if self.luma is not None:
            grey = (images * self.luma_weights).sum(dim=1, keepdim=True)
            grey = ((grey - FRAME_MEAN) / FRAME_STD).contiguous(memory_format=torch.channels_last)
            x = torch.cat([x, self.luma(grey).flatten(1)], dim=1)
        return self.norm(self.proj(self.dropout(x)))


def _conv_stack(in_channels: int, channels: list[int], grid: int) -> nn.Sequential:
    """Conv 4x4 stride 4 -> BN -> ReLU, one 3x3 Conv -> BN -> ReLU per further width (the first at
    stride 1, the others at stride 2), AdaptiveAvgPool2d(grid)."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, channels[0], kernel_size=4, stride=4, bias=False),
        nn.BatchNorm2d(channels[0]),
        nn.ReLU(inplace=True),
    ]
    for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
        layers += [
            nn.Conv2d(c_in, c_out, kernel_size=3, stride=1 if i == 0 else 2, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        ]
    layers.append(nn.AdaptiveAvgPool2d(grid))
    return nn.Sequential(*layers)
