"""SmallCNNEncoder: a fast from-scratch per-frame CNN for 64-128 px frames (CPU-friendly)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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
    """A few conv layers over each frame, pooled to a small spatial grid (and optionally to one
    global maximum).

    frames (B, T, 3, H, W) float in [0, 1], frame_mask (B, T) -> (B, T, dim); padded frames
    are not run and come out as zeros. Works for any H, W >= 16.

    Layers (``stem="patch"``): Conv 4x4 stride 4 (``channels[0]``) -> BN -> ReLU, then one 3x3
    Conv -> BN -> ReLU per further entry of ``channels`` (the first at stride 1, the others at
    stride 2). At 64x64 the maps are 16x16 -> 16 -> 8 -> 4.
    Layers (``stem="conv"``): per entry of ``channels``, 3x3 Conv stride 1 -> BN -> ReLU ->
    MaxPool 2x2; at 64x64 the maps are 32 -> 16 -> 8 -> 4. It sees every pixel at full
    resolution, so small shapes keep their corners: on SynthWorld frames it learns which shapes
    are present in 3 epochs where the patch stem is still near chance after 6 (``bench/README``),
    at about 2.2x the multiply-adds for the same widths.
    Then AdaptiveAvgPool2d(grid), which keeps *where* things are (motion direction needs it),
    -> flatten, plus (``global_max``) each channel's maximum over the whole map, which says
    *what* is there wherever it is, so one weight serves every position -> dropout -> Linear ->
    dim -> LayerNorm.

    Args:
        stem: "patch" (fast, coarse) or "conv" (full resolution, learns shape much sooner).
        global_max: also feed each channel's global maximum to the projection.
        luma_branch: add a second stack of the same layers over the frame's luminance (Rec. 601
            grey), whose grid features join the colour stack's before the projection. Colour is
            the easiest thing to learn from pixels and a single stack learns it first, shapes
            much later; the colour-blind branch can only learn from shape and texture. Twice
            the convolution cost.
        luma_stem: the luma stack's stem when it differs from ``stem`` (say a cheap "patch"
            colour stack, which learns colour and place quickly anyway, and a "conv" luma stack).
        luma_remap: in training, each grey frame's brightness is remapped by a random gain of
            either sign (0.5 to 1.5 times, so dark may become light) about its own mean plus a
            random offset; in eval it is only centred. Luminance alone still tells some colours
            apart (yellow is bright, blue dark); remapped, it tells none, so the luma stack must
            learn shape even when the targets name colours (``bench/frame_encoder.py``).
        joint: width of a third stack (0: none; needs ``luma_branch``): one 3x3 Conv -> BN -> ReLU
            over the colour and luma stacks' last maps side by side, pooled like them. Each stack
            alone knows one half of "a red star" (the colour stack colour, the colour-blind one
            shape); a channel that sees both maps at the same place can fire for the pair, and
            its global maximum says the pair is somewhere in the frame, which neither stack's
            maxima can (a red circle beside a blue star light "red" and "star" too).
        weights: optional ``.pt`` file with this encoder's state_dict or a Duomo checkpoint
            (see ``load_weights``).
    """

    def __init__(self, *, dim: int, channels: tuple[int, ...] = (48, 64, 96, 128), grid: int = 4,
                 dropout: float = 0.0, luma_branch: bool = False, stem: str = "patch",
                 global_max: bool = False, luma_stem: str = "", luma_remap: bool = False, joint: int = 0,
                 weights: str = ""):
        super().__init__()
        channels = list(channels)
        if not channels or min(channels) < 1:
            raise ConfigError(f"model.video.args.channels: need at least one positive width, got {channels}")
        if grid < 1:
            raise ConfigError(f"model.video.args.grid: must be at least 1, got {grid}")
        if joint < 0:
            raise ConfigError(f"model.video.args.joint: must be 0 or more, got {joint}")
        if joint and not luma_branch:
            raise ConfigError(f"model.video.args.joint: needs luma_branch: true (got {joint} without luma_branch)")
        luma_stem = luma_stem or stem
        for key, value in (("stem", stem), ("luma_stem", luma_stem)):
            if value not in STEMS:
                raise ConfigError(f"model.video.args.{key}: must be one of {', '.join(STEMS)}, got {value!r}")
        self.out_dim = dim
        self.register_buffer("mean", torch.full((1, 3, 1, 1), FRAME_MEAN), persistent=False)
        self.register_buffer("std", torch.full((1, 3, 1, 1), FRAME_STD), persistent=False)
        self.register_buffer("luma_weights", torch.tensor(LUMA).view(1, 3, 1, 1), persistent=False)
        self.features = STEMS[stem](3, channels)
        self.luma = STEMS[luma_stem](1, channels) if luma_branch else None
        self.joint = None
        if joint:
            self.joint = nn.Sequential(nn.Conv2d(2 * channels[-1], joint, kernel_size=3, padding=1, bias=False),
                                       nn.BatchNorm2d(joint), nn.ReLU(inplace=True))
        self.luma_remap = luma_remap
        self.grid = grid
        self.global_max = global_max
        self.dropout = nn.Dropout(dropout)
        cells = grid * grid + (1 if global_max else 0)
        self.stack_channels = [channels[-1]] * (2 if luma_branch else 1) + ([joint] if joint else [])
        """Channels of each stack's last map, in the trunk's order: colour, luma, joint."""
        self.luma_dim = channels[-1] * cells if luma_branch else 0
        """Width of ``encode_stacks``'s luma features (0: no luma stack)."""
        self.trunk_dim = sum(self.stack_channels) * cells
        """Width of ``trunk_images``' features, what ``project`` reads."""
        self.cell_shape = (cells, sum(self.stack_channels))
        """(cells, width of each) of ``cells``: the grid's cells (then the global maxima), each
        with every stack's channels."""
        self.place_cells = grid * grid
        """How many of ``cells``' first cells are places in the frame (the global maxima are not)."""
        self.proj = nn.Linear(self.trunk_dim, dim)
        self.norm = nn.LayerNorm(dim)
        if weights:
            load_weights(self, weights)
        # NHWC convolutions are about 1.3x faster to train on CPU (oneDNN) and suit GPUs too
        self.features.to(memory_format=torch.channels_last)
        for stack in (self.luma, self.joint):
            if stack is not None:
                stack.to(memory_format=torch.channels_last)

    def forward(self, frames: Tensor, frame_mask: Tensor) -> Tensor:
        # only real frames go through the net (and into BatchNorm's statistics)
        return encode_valid_frames(self.encode_images, frames, frame_mask, self.out_dim)

    def encode_images(self, images: Tensor) -> Tensor:
        """images (N, 3, H, W) float in [0, 1] -> (N, dim)."""
        return self.encode_stacks(images)[0]

    def encode_stacks(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        """images (N, 3, H, W) float in [0, 1] -> (N, dim) features and the luma stack's own pooled
        features (N, C * (grid * grid [+ 1])), None without ``luma_branch``; pre-training gives the
        latter a head of its own, so the colour-blind stack learns to name what it can see alone."""
        x = self.trunk_images(images)
        return self.project(x), self.luma_features(x)

    def luma_features(self, trunk: Tensor) -> Tensor | None:
        """(N, trunk_dim) -> the luma stack's part of it (N, luma_dim), None without ``luma_branch``."""
        start = self.stack_channels[0] * self.cell_shape[0]
        return trunk[:, start : start + self.luma_dim] if self.luma_dim else None

    def trunk_images(self, images: Tensor) -> Tensor:
        """images (N, 3, H, W) float in [0, 1] -> (N, trunk_dim): each stack's pooled grid (and
        maxima), colour first, then luma, then joint, before the projection."""
        normed = ((images - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        colour = self.features(normed)
        if self.luma is None:
            return self.pool(colour)  # (N, C * (grid * grid [+ 1]))
        luma = self.luma(self.grey(images).contiguous(memory_format=torch.channels_last))
        pooled = [self.pool(colour), self.pool(luma)]
        if self.joint is not None:
            pooled.append(self.pool(self.joint(torch.cat([colour, luma], dim=1))))
        return torch.cat(pooled, dim=1)

    def project(self, x: Tensor) -> Tensor:
        """(..., trunk_dim) -> (..., dim)."""
        return self.norm(self.proj(self.dropout(x)))

    def cells(self, x: Tensor) -> Tensor:
        """(..., trunk_dim) -> (..., cells, width) (``cell_shape``): the trunk regrouped by place,
        one vector per grid cell (row-major), then one of the global maxima, each joining every
        stack's channels at that place (colour, luma, joint)."""
        cells, pooled = self.grid * self.grid, self.cell_shape[0]
        per_cell, maxima = [], []
        for channels, stack in zip(self.stack_channels, x.split([c * pooled for c in self.stack_channels], dim=-1)):
            # (..., C * cells [+ C]), channel-major as ``pool`` flattens it
            per_cell.append(stack[..., :channels * cells].unflatten(-1, (channels, cells)).transpose(-1, -2))
            maxima.append(stack[..., channels * cells:].unsqueeze(-2))  # (..., 1, C), or C = 0
        out = torch.cat(per_cell, dim=-1)
        return torch.cat([out, torch.cat(maxima, dim=-1)], dim=-2) if self.global_max else out

    def grey(self, images: Tensor) -> Tensor:
        """(N, 3, H, W) in [0, 1] -> (N, 1, H, W) normalized luminance, remapped (``luma_remap``)."""
        grey = (images * self.luma_weights).sum(dim=1, keepdim=True)
        if self.luma_remap:
            grey = grey - grey.mean(dim=(2, 3), keepdim=True)
            if self.training:
                n = len(grey)
                gain = (torch.rand(n, 1, 1, 1, device=grey.device) + 0.5) * torch.where(
                    torch.rand(n, 1, 1, 1, device=grey.device) < 0.5, -1.0, 1.0)
                grey = grey * gain + torch.rand(n, 1, 1, 1, device=grey.device) - 0.5
            grey = grey + FRAME_MEAN
        return (grey - FRAME_MEAN) / FRAME_STD

    def pool(self, maps: Tensor) -> Tensor:
        """(N, C, h, w) -> (N, C * grid * grid), plus (N, C) channel maxima with ``global_max``."""
        x = F.adaptive_avg_pool2d(maps, self.grid).flatten(1)
        if self.global_max:
            x = torch.cat([x, maps.amax(dim=(2, 3))], dim=1)
        return x


def _patch_stack(in_channels: int, channels: list[int]) -> nn.Sequential:
    """Conv 4x4 stride 4 -> BN -> ReLU, one 3x3 Conv -> BN -> ReLU per further width (the first at
    stride 1, the others at stride 2)."""
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
    return nn.Sequential(*layers)


def _full_res_stack(in_channels: int, channels: list[int]) -> nn.Sequential:
    """Per width: 3x3 Conv stride 1 -> BN -> ReLU -> MaxPool 2x2 (a map of 2 pixels or less is
    not pooled further)."""
    layers: list[nn.Module] = []
    for c_in, c_out in zip([in_channels] + channels[:-1], channels):
        layers += [
            nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, ceil_mode=True),
        ]
    return nn.Sequential(*layers)


STEMS = {"patch": _patch_stack, "conv": _full_res_stack}
