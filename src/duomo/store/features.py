"""FeatureStore: per-video arrays on disk (decoded frames, spectrograms, frozen-encoder features).

Layout: ``root/<key hash>/key.json`` records the full FeatureKey; each video's array is
``root/<key hash>/<video id>-<file stamp>.npy``. The file stamp hashes the video file's size and
modification time, so an edited video never reuses stale arrays, and a changed encoder, weights
or sampling setting gets a different key hash. Writes are atomic (temporary file, then rename):
a killed run leaves no half-written array. Arrays only; nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FeatureKey:
    encoder: str
    """What made the arrays: 'frames', 'log_mel', or an encoder's table name."""
    version: str = ""
    """Weights version (a hash of the weights) or code version of the extractor."""
    settings: dict[str, Any] = field(default_factory=dict, hash=False)
    """Sampling and extractor settings (frame count, size, sample rate, ...)."""

    def digest(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:16]


def file_stamp(path: str | Path) -> str:
    """A short hash of a file's size and modification time."""
    stat = os.stat(path)
    return hashlib.sha1(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:10]


class FeatureStore:
    """``put`` / ``get`` / ``has`` arrays keyed by FeatureKey plus video id and file stamp."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _dir(self, key: FeatureKey) -> Path:
        folder = self.root / key.digest()
        if not (folder / "key.json").exists():
            folder.mkdir(parents=True, exist_ok=True)
            _atomic_write_text(folder / "key.json", json.dumps(asdict(key), sort_keys=True, default=str, indent=1))
        return folder

    def path(self, key: FeatureKey, video_id: str, stamp: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in video_id)
        return self._dir(key) / f"{safe}-{stamp}.npy"

    def has(self, key: FeatureKey, video_id: str, stamp: str) -> bool:
        return self.path(key, video_id, stamp).exists()

    def get(self, key: FeatureKey, video_id: str, stamp: str) -> np.ndarray:
        return np.load(self.path(key, video_id, stamp), allow_pickle=False)

    def put(self, key: FeatureKey, video_id: str, stamp: str, array: np.ndarray) -> Path:
        target = self.path(key, video_id, stamp)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as handle:
                np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)  # e.g. an object array (never pickled): leave nothing behind
            raise
        return target


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
