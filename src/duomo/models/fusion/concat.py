"""ConcatFusion: a [CLS] token, video tokens and text tokens in one sequence, mixed by a transformer.

The default for QA: the question and the frames attend to each other in every layer.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from duomo.batch import Fused
from duomo.config import ConfigError


class ConcatFusion(nn.Module):
    """Tags video and text tokens with a modality embedding, prepends a learned [CLS] token and
    mixes the whole sequence with a pre-norm transformer encoder.

    video (B, N, D), video_mask (B, N) + text (B, L, D), text_mask (B, L); L may be 0
    -> tokens (B, 1 + N + L, D) ([CLS] first, padding positions zeroed), mask (B, 1 + N + L),
       pooled (B, D): the [CLS] output after the final LayerNorm.
    """

    def __init__(self, *, dim: int, num_layers: int = 2, num_heads: int = 4, ff_mult: int = 4,
                 dropout: float = 0.1):
        super().__init__()
        if dim % num_heads:
            raise ConfigError(f"model.fusion.args.num_heads: {num_heads} does not divide model.dim {dim}")
        layer = nn.TransformerEncoderLayer(dim, num_heads, dim_feedforward=dim * ff_mult, dropout=dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        # nested tensors only speed up post-norm layers; asking for them with norm_first only warns
        self.mixer = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.modality = nn.Parameter(torch.zeros(2, dim))  # row 0 tags video tokens, row 1 text tokens
        nn.init.normal_(self.cls, std=0.02)
        nn.init.normal_(self.modality, std=0.02)

    def forward(self, video: Tensor, video_mask: Tensor, text: Tensor, text_mask: Tensor) -> Fused:
        batch_size = video.shape[0]
        cls = self.cls.expand(batch_size, -1, -1)
        tokens = torch.cat([cls, video + self.modality[0], text + self.modality[1]], dim=1)  # (B, 1+N+L, D)
        cls_mask = torch.ones(batch_size, 1, dtype=torch.bool, device=video.device)
        mask = torch.cat([cls_mask, video_mask.bool(), text_mask.bool()], dim=1)
        # the [CLS] key is always valid, so no row is fully masked; the transformer wants True = ignore
        mixed = self.norm(self.mixer(tokens, src_key_padding_mask=~mask))
        mixed = mixed * mask.unsqueeze(-1).to(mixed.dtype)
        return Fused(tokens=mixed, mask=mask, pooled=mixed[:, 0], first_frame=1, text_tokens=text.shape[1])
