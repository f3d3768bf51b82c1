"""MelCNNEncoder: a small 2-D CNN over a log-mel spectrogram, giving one token per few frames."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from duomo.config import ConfigError

# Fixed affine for log(mel + 1e-6) of a waveform in [-1, 1] (duomo.video.transforms): digital
# silence is -13.8, a faint noise floor about -3, a loud tone about +9; this maps them to
# roughly [-2.5, 3]. A learned per-band gain and shift follow.
LOG_MEL_CENTER = -4.0
LOG_MEL_SCALE = 4.0


class MelCNNEncoder(nn.Module):
    """Conv blocks over (time, mel) that halve the mel axis each time and the time axis
    ``log2(time_stride)`` times, then mel bins x channels -> Linear -> dim per time step
    (no output LayerNorm, see below).

    mel (B, A, M) log-mel frames, mask (B, A) -> tokens (B, ceil(A / time_stride), dim),
    mask (B, ceil(A / time_stride)): token j covers frames [j * s, (j + 1) * s) and is valid
    iff any of them is. Invalid tokens are zeros.

    Padding: masked frames are zeroed after the input normalisation, and every block's output
    is zeroed where its (downsampled) mask is False, so a valid position sees padding exactly
    as the zeros a convolution pads with at a sequence end. Appending masked frames therefore
    leaves every valid token unchanged (in eval mode; in training, BatchNorm's batch
    statistics include the zeroed positions).

    Args:
        channels: one conv block (3x3 conv, BN, ReLU) per entry; each halves the mel axis,
            and the first ``log2(time_stride)`` also halve time.
        time_stride: a power of two, at most 2 ** len(channels).
    """

    def __init__(self, *, dim: int, num_mels: int, channels: tuple[int, ...] = (32, 64, 128), time_stride: int = 4,
                 dropout: float = 0.0):
        super().__init__()
        channels = list(channels)
        if not channels or min(channels) < 1:
            raise ConfigError(f"model.audio.args.channels: need at least one positive width, got {channels}")
        num_halvings = time_stride.bit_length() - 1
        if time_stride < 1 or time_stride != 1 << num_halvings or num_halvings > len(channels):
            raise ConfigError(f"model.audio.args.time_stride: must be a power of two up to "
                              f"{1 << len(channels)} (2 ** number of channels), got {time_stride}")
        self.time_stride = time_stride
        self.time_strides = [2 if i < num_halvings else 1 for i in range(len(channels))]
        self.band_gain = nn.Parameter(torch.ones(num_mels))
        self.band_shift = nn.Parameter(torch.zeros(num_mels))
        self.blocks = nn.ModuleList()
        c_in, bins = 1, num_mels
        for c_out, stride in zip(channels, self.time_strides):
            self.blocks.append(nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, stride=(stride, 2), padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ))
            c_in, bins = c_out, (bins + 1) // 2
        self.dropout = nn.Dropout(dropout)
        # mel bins are flattened, not pooled: pitch matters. No LayerNorm after it: that would
        # give silent tokens the same norm as sounding ones, and a masked mean over a clip would
        # then drown a short beep (the fusion's pre-norm layers rescale tokens anyway).
        self.proj = nn.Linear(c_in * bins, dim)
        # Convolution weights in channels-last layout: oneDNN then runs the blocks, backward
        # included, faster on CPU (a QA training step 1.19x -> 1.28x faster with the faster
        # dropout, bench/train_step.py). Same values, same state dict; loading copies into this layout.
        self.blocks.to(memory_format=torch.channels_last)

    def forward(self, mel: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        x = (mel - LOG_MEL_CENTER) / LOG_MEL_SCALE * self.band_gain + self.band_shift
        x = (x * mask.unsqueeze(-1).to(x.dtype)).unsqueeze(1)  # (B, 1, A, M)
        for block, stride in zip(self.blocks, self.time_strides):
            if stride == 2:
                if mask.shape[1] % 2:
                    mask = torch.cat([mask, mask.new_zeros(mask.shape[0], 1)], dim=1)
                mask = mask[:, 0::2] | mask[:, 1::2]  # (B, ceil(A / 2))
            x = block(x)
            x = x * mask[:, None, :, None].to(x.dtype)  # (B, C, A', M')
        tokens = x.permute(0, 2, 1, 3).flatten(2)  # (B, A', C * M')
        tokens = self.proj(self.dropout(tokens))
        return tokens * mask.unsqueeze(-1).to(tokens.dtype), mask
