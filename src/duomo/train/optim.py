"""AdamW with decoupled weight decay (none on biases and norms) and a warm-up + cosine schedule."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from duomo.config import TrainConfig


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or name.endswith("modality") else decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def build_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int,
                   time_fraction: Callable[[], float] | None = None):
    """Linear warm-up to the peak rate over ``warmup_steps``, then cosine decay to 0 at ``total_steps``.

    With ``time_fraction`` (the share of a time budget used so far, 0..1), the decay follows
    whichever of steps and time runs out first, so a run stopped by its time cap still ends at a
    low learning rate instead of being cut off at a high one.
    """
    warmup = max(1, min(warmup_steps, total_steps // 5 if total_steps > 5 else 1))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        if time_fraction is not None:
            progress = max(progress, min(1.0, time_fraction()))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
