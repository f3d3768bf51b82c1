"""Bringing in weights from a file: load_weights (for the built-in frame encoders' ``weights=``)
and PretrainedFrameEncoder, the slot for a user's own TorchScript backbone."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from duomo.config import ConfigError
from duomo.models.layers import encode_valid_frames

CHECKPOINT_PREFIX = "video."
"""Where a Duomo checkpoint keeps the frame encoder: ``checkpoint["model"]["video.<key>"]``."""


def load_weights(module: nn.Module, path: str) -> None:
    """Load ``path`` into ``module`` (strictly: every key, every shape).

    ``path`` is a ``.pt`` file holding either a plain state_dict of ``module`` or a Duomo
    checkpoint (a dict with key ``"model"``), whose ``video.`` entries are used with the prefix
    stripped. Raises ConfigError naming the file and the reason when it is missing, cannot be
    read, or its keys or shapes do not match.
    """
    name = type(module).__name__
    if not Path(path).is_file():
        raise ConfigError(f"{path}: no such weights file (weights= of {name})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file; all mean "unreadable"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{path}: cannot load weights for {name} ({reason})") from exc
    if not isinstance(state, dict):
        raise ConfigError(f"{path}: holds a {type(state).__name__}, not a state_dict or checkpoint")
    if isinstance(state.get("model"), dict):
        state = {k[len(CHECKPOINT_PREFIX):]: v for k, v in state["model"].items() if k.startswith(CHECKPOINT_PREFIX)}
        if not state:
            raise ConfigError(f"{path}: checkpoint holds no '{CHECKPOINT_PREFIX}*' (frame encoder) weights")
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [k for k in expected
                   if k in state and tuple(getattr(state[k], "shape", ())) != tuple(expected[k].shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (first {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (first {unexpected[0]})")
    if wrong_shape:
        key = wrong_shape[0]
        problems.append(f"{len(wrong_shape)} keys of the wrong shape (first {key}: file "
                        f"{tuple(getattr(state[key], 'shape', ()))}, model {tuple(expected[key].shape)})")
    if problems:
        raise ConfigError(f"{path}: weights do not fit {name}: {'; '.join(problems)}")
    module.load_state_dict(state, strict=True)


class PretrainedFrameEncoder(nn.Module):
    """A user's pretrained image backbone from a local TorchScript file, plus a linear projection.

    frames (B, T, 3, H, W) float in [0, 1], frame_mask (B, T) -> (B, T, dim); padded frames
    are not run and come out as zeros.

    The backbone (``torch.jit.load(path)``) maps (N, 3, image_size, image_size) images,
    normalized with ``mean`` / ``std``, to (N, F) or to (N, F, h, w), which is averaged over
    h, w. F is found by one dummy forward at construction. Frames are resized bilinearly to
    ``image_size``. The backbone is frozen (and kept in eval mode) unless ``trainable``;
    the projection F -> dim always trains.
    """

    def __init__(self, *, dim: int, path: str, mean: tuple[float, ...] = (0.485, 0.456, 0.406),
                 std: tuple[float, ...] = (0.229, 0.224, 0.225), image_size: int = 224, trainable: bool = False):
        super().__init__()
        if len(mean) != 3 or len(std) != 3:
            raise ConfigError(f"model.video.args.mean/std: need 3 values each (RGB), got {list(mean)} and {list(std)}")
        if not Path(path).is_file():
            raise ConfigError(f"{path}: no such TorchScript file (model.video.args.path)")
        try:
            self.backbone = torch.jit.load(path, map_location="cpu")
        except Exception as exc:  # not TorchScript, truncated, or saved by an incompatible torch
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"{path}: cannot load as a TorchScript module ({reason})") from exc
        self.image_size = image_size
        self.trainable = trainable
        self.out_dim = dim
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        if not trainable:
            for param in self.backbone.parameters():  # ScriptModules have no requires_grad_()
                param.requires_grad_(False)
        self.backbone.eval()
        try:
            with torch.no_grad():
                probe = self.backbone(torch.zeros(1, 3, image_size, image_size))
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"{path}: backbone failed on a (1, 3, {image_size}, {image_size}) image "
                              f"({reason})") from exc
        if not isinstance(probe, Tensor) or probe.dim() not in (2, 4):
            shape = tuple(probe.shape) if isinstance(probe, Tensor) else type(probe).__name__
            raise ConfigError(f"{path}: backbone must return (N, F) or (N, F, h, w), got {shape}")
        self.feature_dim = int(probe.shape[1])
        self.trunk_dim = self.feature_dim
        """Width of ``trunk_images``' features (the backbone's, pooled), what ``project`` reads."""
        self.cell_shape = (1, self.trunk_dim)
        """``cells``' shape: one, the whole frame pooled."""
        self.place_cells = 1
        """How many of ``cells``' cells are places: the one, the whole frame."""
        self.proj = nn.Linear(self.feature_dim, dim)

    def train(self, mode: bool = True) -> "PretrainedFrameEncoder":
        super().train(mode)
        if not self.trainable:  # a frozen backbone keeps its BatchNorm statistics and no dropout
            self.backbone.eval()
        return self

    def forward(self, frames: Tensor, frame_mask: Tensor) -> Tensor:
        return encode_valid_frames(self.encode_images, frames, frame_mask, self.out_dim)

    def encode_images(self, images: Tensor) -> Tensor:
        """images (N, 3, H, W) float in [0, 1] -> (N, dim)."""
        return self.project(self.trunk_images(images))

    def project(self, x: Tensor) -> Tensor:
        """(..., trunk_dim) -> (..., dim)."""
        return self.proj(x)

    def cells(self, x: Tensor) -> Tensor:
        """(..., trunk_dim) -> (..., 1, trunk_dim): the pooled trunk is one cell (``cell_shape``)."""
        return x.unsqueeze(-2)

    def trunk_images(self, images: Tensor) -> Tensor:
        """images (N, 3, H, W) float in [0, 1] -> (N, trunk_dim), the backbone's features."""
        images = (images - self.mean) / self.std
        if images.shape[-2:] != (self.image_size, self.image_size):
            images = F.interpolate(images, size=(self.image_size, self.image_size), mode="bilinear",
                                   align_corners=False)
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            features = self.backbone(images)
        if features.dim() == 4:
            features = features.mean(dim=(2, 3))  # (N, F)
        return features
