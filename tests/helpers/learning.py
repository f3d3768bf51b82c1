"""Tiny learning runs for tests: ``--set`` overrides that shrink a task's data and model to toy
sizes, a tiny SynthWorld to train on, run configs built from the two, and runs trained once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from duomo.config import RunConfig, load_config
from duomo.synth.scene import SynthConfig
from duomo.synth.world import WorldSummary, generate_world
from duomo.train.run import fit

TINY_OVERRIDES = [
    "data.num_frames=4", "data.frame_size=16", "data.use_audio=false", "data.num_workers=1",
    "model.dim=16", "model.video.args={channels: [4, 8], grid: 2}",
    "model.temporal.args={num_layers: 1, num_heads: 2, ff_mult: 2}",
    "model.fusion.args={num_layers: 1, num_heads: 2, ff_mult: 2}",
    "train.warmup_steps=1", "train.pretrain_video_epochs=0", "model.freeze_video=false",
]
"""``--set`` overrides for any task's frames, video, temporal and fusion parts at toy sizes;
epochs and batch size are left to each test. With no pre-training the CNN trains end to end
(a preset that freezes it after pre-training would leave it random)."""

TINY_TEXT = "model.text.args={num_layers: 1, num_heads: 2, ff_mult: 2}"
TINY_HEAD = "model.head.args={hidden_dim: 16}"
TINY_TASK_OVERRIDES = {
    "qa": [TINY_TEXT, TINY_HEAD],
    "dialog": [TINY_TEXT, TINY_HEAD],
    "classify": [TINY_HEAD],
    "caption": ["model.head.args={decoder: gru, num_layers: 1, beam_size: 2, max_len: 12}"],
    # the preset's matcher at one layer (the separate fusion keeps the query's words for it)
    "retrieval": ["model.fusion.args={keep_text: true}", "model.head.args={embed_dim: 8, matcher_layers: 1}"],
    "retrieval_moment": ["model.fusion.args={}", "model.head.args={num_layers: 1, num_heads: 2, ff_mult: 2}"],
    "summarize": ["model.fusion.args={hidden_dim: 8}", "model.head.args={num_layers: 1, num_heads: 2, ff_mult: 2}"],
}
"""Per preset, after ``TINY_OVERRIDES``: a one-layer text encoder for the tasks that read text
(qa, dialog) and a small head."""


def make_tiny_world(root: Path, *, num_videos: int = 8, val_fraction: float = 0.25,
                    test_fraction: float = 0.25) -> WorldSummary:
    """``num_videos`` SynthWorld videos of 32 px, 1-2 s long with no cuts, in ``root``
    (the defaults give 4 train, 2 val and 2 test videos)."""
    config = SynthConfig(num_videos=num_videos, size=32, min_duration_sec=1.0, max_duration_sec=2.0, cut_prob=0.0,
                         val_fraction=val_fraction, test_fraction=test_fraction)
    return generate_world(root, config)


def tiny_config(task: str, manifest: Path, *extra: str, preset: str | None = None) -> RunConfig:
    """``preset`` (default: the task's own) on ``manifest`` with ``TINY_OVERRIDES`` and
    ``TINY_TASK_OVERRIDES[preset]``, then ``extra`` overrides (a later one wins;
    ``model.head.args.max_len=10`` changes one arg)."""
    preset = preset or task
    return load_config(task, preset, [f"data.manifest={manifest}", *TINY_OVERRIDES, *TINY_TASK_OVERRIDES[preset], *extra])


def train_once_each(tmp_path_factory: pytest.TempPathFactory,
                    config_for: Callable[[str], RunConfig]) -> Callable[[str], Path]:
    """run_for(name) -> the folder of a run trained with ``config_for(name)`` in a new temporary
    folder the first time ``name`` is asked for, and the same folder after that."""
    runs: dict[str, Path] = {}

    def run_for(name: str) -> Path:
        if name not in runs:
            runs[name] = fit(config_for(name), tmp_path_factory.mktemp(name)).out_dir
        return runs[name]

    return run_for
