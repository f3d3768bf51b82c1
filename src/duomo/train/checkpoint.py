"""One checkpoint format and one save/load pair: model, optimizer, schedule, position, resolved config."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from duomo.errors import DuomoError


class CheckpointError(DuomoError):
    """A checkpoint or run folder that cannot be read."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` atomically: a run killed while saving keeps the previous file intact."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})") from err
