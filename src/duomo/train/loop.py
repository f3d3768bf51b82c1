"""The one training loop for every task: forward, head.loss, backward, clip, step, schedule, log,
validate, checkpoint. Resumable from ``last.pt`` with nothing lost; seeded and reproducible.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from duomo.config import RunConfig, config_to_dict
from duomo.data.collate import collate
from duomo.data.datasets import TaskVocab, VideoDataset
from duomo.eval.evaluate import batches, is_multi_label, predict_dataset, score, selection_metric
from duomo.models.model import VideoTextModel
from duomo.train.checkpoint import load_checkpoint, save_checkpoint
from duomo.train.optim import build_optimizer, build_schedule

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """What the loop reports after every step (the CLI draws a progress bar from it)."""

    epoch: int
    num_epochs: int
    batch: int
    num_batches: int
    loss: float
    rows_per_sec: float
    lr: float
    phase: str = "train"
    """'train', or 'val' while validating (batch counts validation videos then)."""


@dataclass
class TrainResult:
    epochs_done: int
    steps: int
    best_metric: float
    best_epoch: int
    elapsed_sec: float
    history: list[dict]
    stopped_early: bool


def train(cfg: RunConfig, model: VideoTextModel, train_set: VideoDataset, val_set: VideoDataset | None,
          out_dir: str | Path, vocab: TaskVocab, *, resume: bool = False,
          on_progress: Callable[[Progress], None] | None = None,
          before_epoch: Callable[[int], None] | None = None) -> TrainResult:
    """Train ``model`` on ``train_set``, validating on ``val_set`` every ``eval_every_epochs``.

    Writes into ``out_dir``: ``last.pt`` (every epoch and every ``checkpoint_minutes``),
    ``best.pt`` (best validation ``selection_metric(cfg)``), ``metrics.csv`` and ``learning_curves.png``.
    With ``resume``, continues from ``last.pt`` at the batch where it stopped. ``before_epoch``
    is called with each epoch's index (from 0) before the epoch starts, a resumed one included.
    """
    tc = cfg.train
    out = Path(out_dir)
    device = torch.device(tc.device)
    if tc.num_threads:
        torch.set_num_threads(tc.num_threads)
    torch.manual_seed(tc.seed)
    model.to(device)
    optimizer = build_optimizer(model, tc)
    num_batches = math.ceil(len(train_set) / tc.batch_size)
    clock = {"elapsed": 0.0}  # seconds trained so far (resumed runs included), read by the schedule
    time_fraction = (lambda: clock["elapsed"] / (tc.max_minutes * 60)) if tc.max_minutes else None
    schedule = build_schedule(optimizer, tc.warmup_steps, tc.epochs * num_batches, time_fraction)
    multi_label = is_multi_label(cfg)
    metric_name = selection_metric(cfg)

    epoch, batch_start, step = 0, 0, 0
    best, best_epoch, elapsed, history = -math.inf, -1, 0.0, []
    resumed_loss = (0.0, 0)  # the interrupted epoch's loss sum and rows so far
    resumed_order: list[int] | None = None  # the interrupted epoch's order (neighbour_batches)
    order: list[int] = []
    if resume and (out / "last.pt").exists():
        state = load_checkpoint(out / "last.pt")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        epoch, batch_start, step = state["epoch"], state["batch_in_epoch"], state["step"]
        best, best_epoch, elapsed, history = state["best"], state["best_epoch"], state["elapsed_sec"], state["history"]
        resumed_loss = (state.get("loss_sum", 0.0), state.get("loss_rows", 0))
        resumed_order = state.get("order")
        torch.set_rng_state(state["rng"])
        clock["elapsed"] = elapsed
        # The rate for the next step comes from this run's schedule (its time cap may differ).
        for group, base, rate in zip(optimizer.param_groups, schedule.base_lrs, schedule.lr_lambdas):
            group["lr"] = base * rate(schedule.last_epoch)
        log.info("resumed from %s at epoch %d, batch %d", out / "last.pt", epoch + 1, batch_start)

    def checkpoint(next_epoch: int, next_batch: int, rows: list[dict]) -> None:
        save_checkpoint(out / "last.pt", {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
            "epoch": next_epoch, "batch_in_epoch": next_batch, "step": step, "best": best, "best_epoch": best_epoch,
            "elapsed_sec": elapsed, "history": rows, "rng": torch.get_rng_state(), "config": config_to_dict(cfg),
            "loss_sum": loss_sum if next_batch else 0.0, "loss_rows": loss_rows if next_batch else 0,
            "order": order if next_batch else None,
        })

    started = time.monotonic() - elapsed
    val_sec = 0.0  # how long the latest validation took
    last_saved = time.monotonic()
    stopped_early = False
    while epoch < tc.epochs and not stopped_early:
        if before_epoch:
            before_epoch(epoch)
        model.train()
        train_set.start_epoch(epoch)
        order = np.random.default_rng(tc.seed + epoch).permutation(len(train_set)).tolist()
        if tc.neighbour_batches > 1 and epoch > 0:
            # a resumed epoch keeps the order it started with (the model has moved on since)
            order = resumed_order if batch_start and resumed_order else neighbour_order(
                model, train_set, order, tc.neighbour_batches, cfg, vocab, device)
        loss_sum, loss_rows = resumed_loss if batch_start else (0.0, 0)
        rows_seen, epoch_started, stop_batch = 0, time.monotonic(), 0
        for batch_idx, (items, rows) in enumerate(batches(train_set, tc.batch_size, order)):
            if batch_idx < batch_start:
                continue
            batch = collate(items, task=cfg.task, num_outputs=vocab.num_outputs, multi_label=multi_label).to(device)
            out_head = model(batch)
            loss = model.head.loss(out_head, batch) + model.frame_word_loss(out_head, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            optimizer.step()
            clock["elapsed"] = time.monotonic() - started
            schedule.step()
            step += 1
            loss_sum += loss.item() * len(rows)
            loss_rows += len(rows)
            rows_seen += len(rows)
            elapsed = time.monotonic() - started
            if on_progress:
                on_progress(Progress(epoch + 1, tc.epochs, batch_idx + 1, num_batches, loss_sum / max(1, loss_rows),
                                     rows_seen / max(1e-9, time.monotonic() - epoch_started),
                                     schedule.get_last_lr()[0]))
            # the last validation's time is kept back, so the final one also ends within the cap
            if tc.max_minutes and elapsed + val_sec > tc.max_minutes * 60:
                stopped_early = True
                stop_batch = batch_idx + 1 if batch_idx + 1 < num_batches else 0
                log.info("stopping: %.1f minutes reached", tc.max_minutes)
                break
            if tc.checkpoint_minutes and time.monotonic() - last_saved > tc.checkpoint_minutes * 60:
                checkpoint(epoch, batch_idx + 1, history)
                last_saved = time.monotonic()
        batch_start = 0
        epoch += 1
        is_last = epoch >= tc.epochs or stopped_early
        row = {"epoch": epoch, "step": step, "train_loss": loss_sum / max(1, loss_rows),
               "lr": schedule.get_last_lr()[0], "elapsed_sec": round(time.monotonic() - started, 1)}
        if val_set is not None and len(val_set) and (epoch % tc.eval_every_epochs == 0 or is_last):
            def val_progress(done: int, total: int) -> None:
                if on_progress:
                    on_progress(Progress(epoch, tc.epochs, done, total, row["train_loss"], 0.0, row["lr"], "val"))

            val_started = time.monotonic()
            preds, val_loss = predict_dataset(model, val_set, cfg, vocab, device=str(device), beam_size=1,
                                              on_progress=val_progress)
            metrics = score(cfg.task, preds, vocab, use_meteor=False)
            val_sec = time.monotonic() - val_started
            row["val_loss"] = val_loss
            row.update({f"val_{k}": v for k, v in metrics.items() if isinstance(v, float)})
            value = metrics.get(metric_name, math.nan)
            if not math.isnan(value) and value > best:
                best, best_epoch = value, epoch
                save_checkpoint(out / "best.pt", {"model": model.state_dict(), "epoch": epoch, "step": step,
                                                  "metric": metric_name, "value": value,
                                                  "config": config_to_dict(cfg)})
            model.train()
        history.append(row)
        elapsed = time.monotonic() - started
        if tc.max_minutes and epoch < tc.epochs and elapsed + val_sec > tc.max_minutes * 60:
            stopped_early = True  # another epoch's validation would end past the cap: this one was the last
            log.info("stopping: another validation would pass %.1f minutes", tc.max_minutes)
        if stop_batch:  # stopped mid-epoch: a resumed run finishes this epoch (and writes its row) first
            checkpoint(epoch - 1, stop_batch, history[:-1])
        else:
            checkpoint(epoch, 0, history)
        last_saved = time.monotonic()
        write_metrics(out, history)
        log.info("epoch %d: %s", epoch, row)
    if not (out / "best.pt").exists():  # no validation split: the last weights are the best we have
        save_checkpoint(out / "best.pt", {"model": model.state_dict(), "epoch": epoch, "step": step,
                                          "metric": metric_name, "value": math.nan, "config": config_to_dict(cfg)})
    return TrainResult(epoch, step, best, best_epoch, elapsed, history, stopped_early)


@torch.no_grad()
def neighbour_order(model: VideoTextModel, dataset: VideoDataset, order: list[int], group: int, cfg: RunConfig,
                    vocab: TaskVocab, device: torch.device) -> list[int]:
    """``order`` regrouped for ``train.neighbour_batches``: every video's embedding
    (``head.embed_video``, cosine similarity), grouped by ``group_by_similarity``."""
    was_training = model.training
    model.eval()
    vectors = []
    for items, _ in batches(dataset, cfg.train.batch_size):
        batch = collate(items, task=cfg.task, num_outputs=vocab.num_outputs).to(device)
        vectors.append(model.head.embed_video(*model.encode_media(batch)).cpu())
    model.train(was_training)
    embeddings = torch.cat(vectors)
    return group_by_similarity((embeddings @ embeddings.T).numpy(), order, group)


def group_by_similarity(similarity: np.ndarray, order: list[int], group: int) -> list[int]:
    """Taking the items in ``order``, each one not yet placed followed by its ``group - 1`` most
    similar items (``similarity`` (N, N)) not yet placed; every item comes once."""
    placed = np.zeros(len(order), dtype=bool)
    regrouped: list[int] = []
    for seed in order:
        if placed[seed]:
            continue
        placed[seed] = True
        close = np.where(placed, -np.inf, similarity[seed])
        count = min(group - 1, int((~placed).sum()))
        neighbours = np.argsort(-close, kind="stable")[:count].tolist()
        placed[neighbours] = True
        regrouped += [seed, *neighbours]
    return regrouped


def write_metrics(out: Path, history: list[dict]) -> None:
    """metrics.csv (rewritten whole, atomically) and learning_curves.png from the history rows."""
    keys: list[str] = []
    for row in history:
        keys.extend(k for k in row if k not in keys)
    tmp = out / f".metrics.csv.{os.getpid()}.tmp"
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, out / "metrics.csv")
    try:
        from duomo.eval.plots import plot_learning_curves

        plot_learning_curves(history, out / "learning_curves.png")
    except ImportError:  # matplotlib is optional
        log.warning("matplotlib is not installed: no learning_curves.png")
