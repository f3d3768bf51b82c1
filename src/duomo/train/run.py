"""fit(): everything ``duomo train`` does, from a manifest to a run folder.

Loads the manifest, builds the vocabularies, decodes every video once into the cache (in
parallel), builds the model, optionally caches the frozen frame and sound encoders' outputs, and
calls the loop.
A run folder holds ``config.yaml`` (resolved), ``vocab.json``, ``best.pt``, ``last.pt``,
``metrics.csv`` and ``learning_curves.png``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from duomo.config import RunConfig, read_config, save_config
from duomo.data.collate import pad_sequences
from duomo.data.datasets import DatasetError, TaskVocab, VideoDataset, build_vocab, split_records
from duomo.data.manifest import VideoRecord, load_manifest
from duomo.data.media import cache_root, frames_key, mel_key, prepare_media, read_cached
from duomo.models.build import VIDEO_TAIL, build_model, check
from duomo.models.model import VideoTextModel
from duomo.store.features import FeatureKey, FeatureStore
from duomo.train.loop import Progress, TrainResult, train
from duomo.train.pretrain import pretrain_frame_encoder

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    out_dir: Path
    result: TrainResult
    num_train_videos: int
    num_train_rows: int
    num_val_videos: int
    skipped: dict[str, str]
    """Videos skipped because they failed to decode: id -> reason."""


def prepare(records: list[VideoRecord], cfg: RunConfig,
            on_prepare: Callable[[int, int], None] | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """Decode ``records``' videos into the cache. Returns (id -> file stamp, id -> failure).
    Failures raise DatasetError unless ``data.skip_bad_videos`` is set."""
    prepared = prepare_media([(r.video_id, r.video_path) for r in records], cfg.data, on_prepare)
    if prepared.failed and not cfg.data.skip_bad_videos:
        first = next(iter(prepared.failed.values()))
        more = f" (and {len(prepared.failed) - 1} more)" if len(prepared.failed) > 1 else ""
        raise DatasetError(f"{first}{more}; fix or remove it, or pass --set data.skip_bad_videos=true")
    for reason in prepared.failed.values():
        log.warning("skipped: %s", reason)
    return {vid: stamp for vid, (_, stamp) in prepared.ready.items()}, prepared.failed


def weights_digest(module: torch.nn.Module, skip: tuple[str, ...] = ()) -> str:
    """A short hash of ``module``'s state (names and values), less its submodules named in ``skip``:
    part of a frozen encoder's cache key."""
    weights = hashlib.sha1()
    for name, tensor in sorted(module.state_dict().items()):
        if name.split(".")[0] in skip:
            continue
        weights.update(name.encode())
        weights.update(tensor.detach().cpu().numpy().tobytes())
    return weights.hexdigest()[:16]


def frozen_features(model: VideoTextModel, cfg: RunConfig, stamps: dict[str, str],
                    on_progress: Callable[[int, int], None] | None = None) -> dict[str, np.ndarray]:
    """Per-frame features (T, D) of the frozen frame encoder for every video, or (T, trunk_dim)
    before its projection with ``model.cache_trunk``, computed once and kept in the FeatureStore
    under a key naming the encoder, its weights and the sampling."""
    # trunk features do not depend on the projection, which trains on: a tuned run's eval reuses them
    key = FeatureKey(cfg.model.video.name, weights_digest(model.video, VIDEO_TAIL if model.cache_trunk else ()),
                     {"args": cfg.model.video.args, "dim": cfg.model.dim, "trunk": model.cache_trunk,
                      **frames_key(cfg.data).settings})
    model.video.eval()

    def encode(chunk: list[str]) -> list[np.ndarray]:
        frames = np.stack([read_cached(cfg.data, vid, stamps[vid]).frames for vid in chunk])
        x = torch.from_numpy(frames).permute(0, 1, 4, 2, 3).float().div_(255.0)
        return list(model.cached_frames(x, torch.ones(x.shape[:2], dtype=torch.bool)).numpy())

    return _cached_outputs(key, cfg, stamps, encode, on_progress)


def frozen_sound(model: VideoTextModel, cfg: RunConfig, stamps: dict[str, str],
                 on_progress: Callable[[int, int], None] | None = None) -> dict[str, np.ndarray]:
    """Sound tokens (A', D) of the frozen sound encoder for every video, computed once from the
    cached log-mel and kept in the FeatureStore under a key naming the encoder, its weights and
    the spectrogram settings."""
    key = FeatureKey(cfg.model.audio.name, weights_digest(model.audio),
                     {"args": cfg.model.audio.args, "dim": cfg.model.dim, **mel_key(cfg.data).settings})
    model.audio.eval()

    device = next(model.audio.parameters()).device  # the loop may have moved the model (freeze_audio_after)

    def encode(chunk: list[str]) -> list[np.ndarray]:
        mel, mask = pad_sequences([read_cached(cfg.data, vid, stamps[vid]).mel for vid in chunk])
        tokens, token_mask = model.encode_sound(mel.to(device), mask.to(device))
        return [array[valid] for array, valid in zip(tokens.cpu().numpy(), token_mask.cpu().numpy())]

    return _cached_outputs(key, cfg, stamps, encode, on_progress)


def _cached_outputs(key: FeatureKey, cfg: RunConfig, stamps: dict[str, str],
                    encode: Callable[[list[str]], list[np.ndarray]],
                    on_progress: Callable[[int, int], None] | None) -> dict[str, np.ndarray]:
    """video id -> ``encode``'s array for it (float32), from the FeatureStore under ``key``;
    the videos not stored yet are encoded 32 at a time, without gradients, and stored as float16."""
    store = FeatureStore(cache_root(cfg.data))
    todo = [vid for vid in stamps if not store.has(key, vid, stamps[vid])]
    with torch.no_grad():
        for start in range(0, len(todo), 32):
            chunk = todo[start : start + 32]
            for vid, array in zip(chunk, encode(chunk)):
                store.put(key, vid, stamps[vid], array.astype(np.float16))
            if on_progress:
                on_progress(start + len(chunk), len(todo))
    return {vid: store.get(key, vid, stamps[vid]).astype(np.float32) for vid in stamps}


def pretrained(model: VideoTextModel, cfg: RunConfig, out: Path, records: list[VideoRecord],
               stamps: dict[str, str], on_progress: Callable[[int, int], None] | None = None) -> RunConfig:
    """Pre-trains the frame encoder (``train.pretrain_video_epochs``) unless the run already has
    a ``last.pt`` (its weights then hold the result), noting the seconds it took in
    ``pretrain.json``; returns ``cfg`` with those seconds taken off ``train.max_minutes``, so
    the whole run keeps to the cap."""
    note = out / "pretrain.json"
    if not (out / "last.pt").exists():
        note.write_text(json.dumps(pretrain_frame_encoder(model, cfg, records, stamps,
                                                          cfg.train.pretrain_video_epochs, on_progress)))
    if not note.exists():
        return cfg
    return less_time(cfg, json.loads(note.read_text())["seconds"])


def less_time(cfg: RunConfig, seconds: float) -> RunConfig:
    """``cfg`` with ``seconds`` taken off ``train.max_minutes`` (none when there is no cap)."""
    if not cfg.train.max_minutes:
        return cfg
    # what is left, kept positive (0 would mean no cap) and never above the cap it was given
    left = max(cfg.train.max_minutes - seconds / 60, min(cfg.train.max_minutes, 1e-3))
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, max_minutes=left))


def fit(cfg: RunConfig, out_dir: str | Path, *, resume: bool = False,
        on_prepare: Callable[[int, int], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_pretrain: Callable[[int, int], None] | None = None) -> FitResult:
    """Train ``cfg.task`` on ``cfg.data.manifest`` into ``out_dir`` (see module docstring).

    With ``resume``, the saved config and vocabulary in ``out_dir`` are used (only
    ``train.epochs`` and ``train.max_minutes`` may differ from the saved run).
    """
    out = Path(out_dir)
    if resume:
        if not (out / "config.yaml").exists():
            raise DatasetError(f"{out}: nothing to resume (no config.yaml); start a new run without --resume")
        saved = read_config(out / "config.yaml")
        cfg = dataclasses.replace(saved, train=dataclasses.replace(saved.train, epochs=cfg.train.epochs,
                                                                   max_minutes=cfg.train.max_minutes))
    elif (out / "last.pt").exists():
        raise DatasetError(f"{out}: already holds a run; pass --resume to continue it, or choose another --out")
    check(cfg)
    records = load_manifest(cfg.data.manifest)
    train_records = split_records(records, "train")
    val_records = split_records(records, "val")
    if not train_records:
        raise DatasetError(f"{cfg.data.manifest}: the train split is empty")
    vocab = TaskVocab.load(out / "vocab.json") if resume else build_vocab(train_records, cfg)
    out.mkdir(parents=True, exist_ok=True)  # only once the manifest and its vocabulary are known good
    save_config(cfg, out / "config.yaml")
    vocab.save(out / "vocab.json")

    # train videos are decoded at every view's frames (data.train_views), the val ones as evaluation reads them
    views = cfg.data.train_views
    train_cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, num_frames=cfg.data.num_frames * views))
    train_stamps, failed = prepare(train_records, train_cfg, on_prepare)
    val_stamps, val_failed = prepare(val_records, cfg, on_prepare)
    failed.update(val_failed)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, vocab=vocab.tokenizer.words, num_outputs=vocab.num_outputs,
                        frame_words=len(vocab.frame_words))
    loop_cfg = cfg
    if cfg.train.pretrain_video_epochs:
        # pre-trained on the train videos' frames, all views; the loop keeps the run's own data settings
        loop_cfg = dataclasses.replace(pretrained(model, train_cfg, out, train_records, train_stamps, on_pretrain),
                                       data=cfg.data)
    caching = time.monotonic()
    features = val_features = sound = None
    if cfg.model.freeze_video:
        features = frozen_features(model, train_cfg, train_stamps, on_prepare)
        val_features = frozen_features(model, cfg, val_stamps, on_prepare)
    if cfg.model.freeze_audio and model.audio is not None:  # the spectrogram does not depend on the frames
        sound = frozen_sound(model, cfg, {**train_stamps, **val_stamps}, on_prepare)
    loop_cfg = less_time(loop_cfg, time.monotonic() - caching)  # running the frozen encoders counts too

    train_set = VideoDataset(train_records, train_cfg, vocab, train_stamps, train=True, features=features, sound=sound,
                             views=views, seed=cfg.train.seed)
    if not len(train_set):
        raise DatasetError(f"{cfg.data.manifest}: no train video has anything to learn for task {cfg.task}")
    val_pick = val_records[: cfg.train.max_val_videos] if cfg.train.max_val_videos else val_records
    val_set = VideoDataset(val_pick, cfg, vocab, val_stamps, train=False, features=val_features, sound=sound)
    log.info("train: %d videos, %d rows; val: %d videos", len(train_set), train_set.num_rows, len(val_set))
    before_epoch = None
    if cfg.model.freeze_audio_after and model.audio is not None:  # the config refuses it with freeze_audio
        def before_epoch(epoch: int) -> None:
            """From epoch ``freeze_audio_after`` on (a resumed run's first one included), the
            sound encoder is frozen and both sets read its cached tokens."""
            if epoch < cfg.model.freeze_audio_after or train_set.sound is not None:
                return
            model.audio.requires_grad_(False)
            frozen = frozen_sound(model, cfg, {**train_stamps, **val_stamps})
            train_set.use_sound(frozen)
            val_set.use_sound(frozen)
            log.info("sound encoder frozen after %d epochs; its tokens are cached", epoch)
    result = train(loop_cfg, model, train_set, val_set, out, vocab, resume=resume, on_progress=on_progress,
                   before_epoch=before_epoch)
    return FitResult(out, result, len(train_set), train_set.num_rows, len(val_set), failed)

