"""Video file -> model inputs (sampled frames and log-mel spectrogram), the same for training,
evaluation and prediction, with a disk cache so each video is decoded once per setting.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from duomo.config import DataConfig
from duomo.errors import DuomoError, MediaError
from duomo.store.features import FeatureKey, FeatureStore, file_stamp
from duomo.video.decode import sample_uniform
from duomo.video.probe import open_container
from duomo.video.transforms import log_mel_spectrogram

log = logging.getLogger(__name__)

MEDIA_VERSION = "1"
"""Bump when load_media's output changes for the same settings (invalidates caches)."""
SILENCE = float(np.log(1e-6))


@dataclass
class Media:
    frames: np.ndarray
    """(T, S, S, 3) uint8."""
    mel: np.ndarray | None
    """(A, M) float16 log-mel, or None when audio is off."""


def frames_key(cfg: DataConfig) -> FeatureKey:
    return FeatureKey("frames", MEDIA_VERSION, {"num_frames": cfg.num_frames, "size": cfg.frame_size,
                                                "sampling": "uniform"})


def mel_key(cfg: DataConfig) -> FeatureKey:
    return FeatureKey("log_mel", MEDIA_VERSION, {"sample_rate": cfg.sample_rate, "num_mels": cfg.num_mels,
                                                 "hop_sec": cfg.hop_sec, "max_audio_sec": cfg.max_audio_sec})


def load_media(path: str | Path, cfg: DataConfig) -> Media:
    """Decode ``cfg.num_frames`` uniformly spaced frames at frame_size x frame_size, and the
    soundtrack's log-mel spectrogram (one silent frame when the video has no sound).

    Raises MediaError for a file that cannot be read.
    """
    return Media(frames=load_frames(path, cfg), mel=load_mel(path, cfg) if cfg.use_audio else None)


def load_frames(path: str | Path, cfg: DataConfig) -> np.ndarray:
    """(T, S, S, 3) uint8: ``cfg.num_frames`` uniformly spaced frames at frame_size x frame_size."""
    return sample_uniform(path, cfg.num_frames, size=(cfg.frame_size, cfg.frame_size)).frames


def load_mel(path: str | Path, cfg: DataConfig) -> np.ndarray:
    """(A, M) float16 log-mel of the first audio stream; longer than max_audio_sec is resampled in time."""
    with open_container(path) as container:  # opening is enough to see the streams; no packet scan
        has_audio = bool(container.streams.audio)
    if not has_audio:
        return np.full((1, cfg.num_mels), SILENCE, dtype=np.float16)
    from duomo.video.audio import decode_audio

    return _mel(decode_audio(path, cfg.sample_rate), cfg)


def load_span(path: str | Path, cfg: DataConfig, start_sec: float, end_sec: float) -> Media:
    """``load_media`` of the stretch ``[start_sec, end_sec)`` of a video: ``cfg.num_frames``
    frames spread over it and the log-mel of its sound (silence when there is none)."""
    from duomo.video.decode import decode_clip

    frames = decode_clip(path, num_frames=cfg.num_frames, start_sec=start_sec, end_sec=end_sec,
                         size=(cfg.frame_size, cfg.frame_size)).frames
    if not cfg.use_audio:
        return Media(frames=frames, mel=None)
    with open_container(path) as container:
        has_audio = bool(container.streams.audio)
    if not has_audio:
        return Media(frames=frames, mel=np.full((1, cfg.num_mels), SILENCE, dtype=np.float16))
    from duomo.video.audio import decode_audio

    return Media(frames=frames, mel=_mel(decode_audio(path, cfg.sample_rate, start_sec, end_sec), cfg))


def _mel(waveform: np.ndarray, cfg: DataConfig) -> np.ndarray:
    """(A, M) float16 log-mel of a waveform at cfg.sample_rate, at most max_audio_sec of frames."""
    mel = log_mel_spectrogram(waveform, cfg.sample_rate, num_mels=cfg.num_mels, hop_sec=cfg.hop_sec)
    max_frames = max(1, int(round(cfg.max_audio_sec / cfg.hop_sec)))
    if mel.shape[0] > max_frames:
        pick = np.linspace(0, mel.shape[0] - 1, max_frames).round().astype(int)
        mel = mel[pick]
    return mel.astype(np.float16)


def cache_root(cfg: DataConfig) -> Path:
    if cfg.cache_dir:
        return Path(cfg.cache_dir)
    return Path(cfg.manifest).resolve().parent / ".duomo-cache"


@dataclass
class Prepared:
    """Which videos are ready in the cache, and which failed (with the reason)."""

    ready: dict[str, tuple[Path, str]]
    """video id -> (video path, file stamp)."""
    failed: dict[str, str]
    """video id -> one-line reason."""


def _prepare_one(job: tuple[str, str, DataConfig, str]) -> tuple[str, str, str | None]:
    video_id, path, cfg, root = job
    store = FeatureStore(root)
    try:
        stamp = file_stamp(path)
        fkey, mkey = frames_key(cfg), mel_key(cfg)
        need_frames = not store.has(fkey, video_id, stamp)
        need_mel = cfg.use_audio and not store.has(mkey, video_id, stamp)
        if need_frames:
            store.put(fkey, video_id, stamp, load_frames(path, cfg))
        if need_mel:
            store.put(mkey, video_id, stamp, load_mel(path, cfg))
        return video_id, stamp, None
    except (DuomoError, OSError) as err:
        return video_id, "", str(err) if isinstance(err, MediaError) else f"{path}: {err}"


def prepare_media(items: Sequence[tuple[str, Path]], cfg: DataConfig,
                  on_progress: Callable[[int, int], None] | None = None) -> Prepared:
    """Decode every (video id, path) not yet in the cache, in ``cfg.num_workers`` processes.

    Returns what is ready and what failed; the caller decides whether failures are fatal.
    """
    root = str(cache_root(cfg))
    jobs = [(vid, str(path), cfg, root) for vid, path in items]
    ready: dict[str, tuple[Path, str]] = {}
    failed: dict[str, str] = {}
    paths = dict(items)
    done = 0
    if cfg.num_workers > 1 and len(jobs) > 1:
        ctx = multiprocessing.get_context("fork")  # workers only decode; no torch state is shared
        with ctx.Pool(cfg.num_workers) as pool:
            results = pool.imap_unordered(_prepare_one, jobs, chunksize=4)
            for vid, stamp, error in results:
                done += 1
                _record(vid, stamp, error, paths, ready, failed)
                if on_progress:
                    on_progress(done, len(jobs))
    else:
        for job in jobs:
            vid, stamp, error = _prepare_one(job)
            done += 1
            _record(vid, stamp, error, paths, ready, failed)
            if on_progress:
                on_progress(done, len(jobs))
    return Prepared(ready=ready, failed=failed)


def _record(vid, stamp, error, paths, ready, failed) -> None:
    if error is None:
        ready[vid] = (Path(paths[vid]), stamp)
    else:
        failed[vid] = error


def read_cached(cfg: DataConfig, video_id: str, stamp: str) -> Media:
    store = FeatureStore(cache_root(cfg))
    frames = store.get(frames_key(cfg), video_id, stamp)
    mel = store.get(mel_key(cfg), video_id, stamp) if cfg.use_audio else None
    return Media(frames=frames, mel=mel)
