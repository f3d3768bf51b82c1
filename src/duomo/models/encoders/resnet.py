"""ResNet18Encoder: a ResNet-18 per-frame encoder written out in full (He et al., 2016,
https://arxiv.org/abs/1512.03385), no torchvision needed.

Module names follow torchvision's ``resnet18`` (conv1, bn1, layer1..layer4, downsample.0/1), so
its weights load here once its ``fc.*`` entries are dropped and ``proj.*`` added.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from duomo.models.encoders.pretrained import load_weights
from duomo.models.layers import encode_valid_frames

# ImageNet statistics: close to the 0.5 / 0.25 of a from-scratch net, and what ImageNet
# ResNet weights expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection: (N, c_in, H, W) -> (N, c_out, H / stride, W / stride)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + identity, inplace=True)


class ResNet18Encoder(nn.Module):
    """ResNet-18 (BasicBlock x [2, 2, 2, 2], widths ``width`` x (1, 2, 4, 8)), global average
    pool, Linear -> dim.

    frames (B, T, 3, H, W) float in [0, 1], frame_mask (B, T) -> (B, T, dim); padded frames
    are not run and come out as zeros. Normalizes with ImageNet mean/std. The stem (7x7 stride 2
    conv, 3x3 stride 2 max pool) divides the frame size by 4 and the stages by 8 more, so 64x64
    frames end on a 2x2 map; any H, W >= 16 works.

    Args:
        width: channels of the first stage (64 is the real ResNet-18).
        weights: optional ``.pt`` file with this encoder's state_dict or a Duomo checkpoint
            (see ``load_weights``).
    """

    def __init__(self, *, dim: int, weights: str = "", width: int = 64):
        super().__init__()
        self.out_dim = dim
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        widths = [width, 2 * width, 4 * width, 8 * width]
        self.layer1 = nn.Sequential(BasicBlock(width, widths[0], 1), BasicBlock(widths[0], widths[0], 1))
        self.layer2 = nn.Sequential(BasicBlock(widths[0], widths[1], 2), BasicBlock(widths[1], widths[1], 1))
        self.layer3 = nn.Sequential(BasicBlock(widths[1], widths[2], 2), BasicBlock(widths[2], widths[2], 1))
        self.layer4 = nn.Sequential(BasicBlock(widths[2], widths[3], 2), BasicBlock(widths[3], widths[3], 1))
        self.trunk_dim = widths[3]
        """Width of ``trunk_images``' features (the pooled last stage), what ``project`` reads."""
        self.cell_shape = (1, self.trunk_dim)
        """``cells``' shape: one, the whole frame pooled."""
        self.place_cells = 1
        """How many of ``cells``' cells are places: the one, the whole frame."""
        self.proj = nn.Linear(widths[3], dim)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if weights:
            load_weights(self, weights)
        self.to(memory_format=torch.channels_last)  # faster convolutions on CPU (oneDNN) and GPU

    def forward(self, frames: Tensor, frame_mask: Tensor) -> Tensor:
        # only real frames go through the net (and into BatchNorm's statistics)
        return encode_valid_frames(self.encode_images, frames, frame_mask, self.out_dim)

    def encode_images(self, images: Tensor) -> Tensor:
        """images (N, 3, H, W) float in [0, 1] -> (N, dim)."""
        return self.project(self.trunk_images(images))

    def trunk_images(self, images: Tensor) -> Tensor:
        """images (N, 3, H, W) float in [0, 1] -> (N, trunk_dim), the last stage's mean."""
        x = ((images - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        x = self.maxpool(F.relu(self.bn1(self.conv1(x)), inplace=True))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (N, 8 * width, H / 32, W / 32)
        return x.mean(dim=(2, 3))

    def project(self, x: Tensor) -> Tensor:
        """(..., trunk_dim) -> (..., dim)."""
        return self.proj(x)

    def cells(self, x: Tensor) -> Tensor:
        """(..., trunk_dim) -> (..., 1, trunk_dim): the pooled trunk is one cell (``cell_shape``)."""
        return x.unsqueeze(-2)
