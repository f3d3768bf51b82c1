"""Frozen encoders: with ``model.freeze_video`` and ``model.freeze_audio`` the frame and sound
encoders never change, their outputs are computed once into the feature cache, and what training
reads from the cache is what the encoders give live (so ``duomo eval`` and ``predict`` match)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from duomo.batch import VideoBatch
from duomo.config import ConfigError, read_config
from duomo.data.datasets import TaskVocab, VideoDataset, split_records
from duomo.data.manifest import load_manifest
from duomo.data.media import cache_root, read_cached
from duomo.models.build import build_model, check
from duomo.train.checkpoint import load_checkpoint
from duomo.train.run import fit, frozen_features, frozen_sound, prepare
from tests.helpers.learning import make_tiny_world, tiny_config

FROZEN = ["train.epochs=2", "train.batch_size=2", "data.use_audio=true", "model.freeze_video=true",
          "model.freeze_audio=true", "model.tune_video_proj=false", "model.audio.args={channels: [4, 8, 8], time_stride: 8}",
          "model.cell_pool=0", "model.cell_motion=false"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, Path]:
    summary = make_tiny_world(tmp_path_factory.mktemp("world"), num_videos=6)
    out = tmp_path_factory.mktemp("run")
    fit(tiny_config("classify", summary.manifest_path, *FROZEN), out)
    return summary.manifest_path, out


def test_frozen_encoders_keep_their_first_weights_and_the_rest_learns(run):
    manifest, out = run
    cfg = tiny_config("classify", manifest, *FROZEN)
    vocab = TaskVocab.load(out / "vocab.json")
    torch.manual_seed(cfg.train.seed)
    start = build_model(cfg, vocab=vocab.tokenizer.words, num_outputs=vocab.num_outputs).state_dict()
    trained = load_checkpoint(out / "last.pt")["model"]
    for name, value in trained.items():
        if name.startswith(("video.", "audio.")):
            assert torch.equal(value, start[name]), name
    assert any(not torch.equal(trained[n], start[n]) for n in trained if n.startswith("head."))


def test_cached_frames_and_sound_are_what_the_encoders_give_live(run):
    manifest, out = run
    cfg = tiny_config("classify", manifest, *FROZEN)
    vocab = TaskVocab.load(out / "vocab.json")
    model = build_model(cfg, vocab=vocab.tokenizer.words, num_outputs=vocab.num_outputs)
    model.load_state_dict(load_checkpoint(out / "best.pt")["model"])
    model.eval()
    records = split_records(load_manifest(manifest), "train")
    stamps, _ = prepare(records, cfg)
    folders_before = sorted(p.name for p in cache_root(cfg.data).iterdir())
    features, sound = frozen_features(model, cfg, stamps), frozen_sound(model, cfg, stamps)
    assert sorted(p.name for p in cache_root(cfg.data).iterdir()) == folders_before  # read back, not recomputed
    for vid, stamp in stamps.items():
        media = read_cached(cfg.data, vid, stamp)
        frames = torch.from_numpy(media.frames).permute(0, 3, 1, 2).float().div(255.0).unsqueeze(0)
        mel = torch.from_numpy(media.mel.astype(np.float32)).unsqueeze(0)
        with torch.no_grad():
            live_frames = model.cached_frames(frames, torch.ones(frames.shape[:2], dtype=torch.bool))[0]
            live_sound, live_mask = model.encode_sound(mel, torch.ones(mel.shape[:2], dtype=torch.bool))
        assert live_mask.all()
        np.testing.assert_allclose(features[vid], live_frames.numpy(), rtol=1e-2, atol=1e-2)  # stored as float16
        assert sound[vid].shape == tuple(live_sound[0].shape)
        np.testing.assert_allclose(sound[vid], live_sound[0].numpy(), rtol=1e-2, atol=1e-2)


def test_running_the_frozen_encoders_counts_towards_the_time_cap(run, tmp_path, monkeypatch):
    """The minute and a half the (fake) clock says caching took (the train videos', then the val
    videos', 45 s each) is taken off what the loop gets."""
    import duomo.train.run as run_module

    manifest, _ = run
    clock = [1000.0]
    real = run_module.frozen_features
    calls = []

    def slow_features(*args, **kwargs):
        clock[0] += 45.0
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(run_module, "frozen_features", slow_features)
    monkeypatch.setattr(run_module, "time", type("FakeTime", (), {"monotonic": staticmethod(lambda: clock[0])}))
    out = tmp_path / "capped"
    fit(tiny_config("classify", manifest, *FROZEN, "train.epochs=1", "train.max_minutes=5"), out)
    assert len(calls) == 2
    assert load_checkpoint(out / "last.pt")["config"]["train"]["max_minutes"] == pytest.approx(3.5)


def test_tune_video_proj_caches_the_trunk_and_trains_only_the_projection(run, tmp_path):
    """With ``model.tune_video_proj`` the cache holds the wider trunk features; the convolutions
    keep their first weights while the projection learns; and the model on cached trunk features
    gives what it gives on the frames themselves (as ``eval`` and ``predict`` run it)."""
    manifest, _ = run
    tuned = [*FROZEN, "model.tune_video_proj=true"]
    out = tmp_path / "tuned"
    cfg = tiny_config("classify", manifest, *tuned)
    fit(cfg, out)
    vocab = TaskVocab.load(out / "vocab.json")
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, vocab=vocab.tokenizer.words, num_outputs=vocab.num_outputs)
    start = {name: value.clone() for name, value in model.state_dict().items()}
    trained = load_checkpoint(out / "last.pt")["model"]
    convs = [n for n in trained if n.startswith("video.features.") and n.endswith("weight")]
    assert convs and all(torch.equal(trained[n], start[n]) for n in convs)
    assert not torch.equal(trained["video.proj.weight"], start["video.proj.weight"])
    model.load_state_dict(trained)
    model.eval()
    stamps, _ = prepare(split_records(load_manifest(manifest), "train"), cfg)
    folders_before = sorted(p.name for p in cache_root(cfg.data).iterdir())
    features = frozen_features(model, cfg, stamps)
    # the trunk's key leaves out the projection, which trained: what training cached is reused
    assert sorted(p.name for p in cache_root(cfg.data).iterdir()) == folders_before
    vid = next(iter(stamps))
    assert features[vid].shape == (cfg.data.num_frames, model.video.trunk_dim)
    assert model.video.trunk_dim > cfg.model.dim
    frames = torch.from_numpy(read_cached(cfg.data, vid, stamps[vid]).frames).permute(0, 3, 1, 2).float().div(255.0)
    mask = torch.ones(1, len(frames), dtype=torch.bool)
    with torch.no_grad():
        live = model.video(frames.unsqueeze(0), mask)[0]
        from_cache = model.video.project(torch.from_numpy(features[vid]))
    torch.testing.assert_close(from_cache, live, rtol=2e-2, atol=2e-2)


def test_tune_video_proj_without_freezing_trains_the_whole_encoder(run):
    """A preset's tune_video_proj with ``--set model.freeze_video=false``: everything trains, the
    frames are not cached."""
    manifest, _ = run
    cfg = tiny_config("classify", manifest, "model.tune_video_proj=true")
    model = build_model(cfg, vocab=["a"], num_outputs=2)
    assert not model.cache_trunk and all(p.requires_grad for p in model.video.parameters())


@pytest.mark.parametrize(("overrides", "learns"), [(["model.video_tokens=grid"], "cell_proj.weight"),
                                                 (["model.cell_pool=8"], "cell_pool.1.weight"),
                                                 (["model.cell_pool=8", "model.cell_motion=true"], "cell_pool.conv.weight")],
                         ids=["grid_tokens", "cell_pool", "cell_motion"])
def test_cell_readers_on_a_frozen_encoder_cache_the_trunk_and_learn(run, tmp_path, overrides, learns):
    """``model.video_tokens=grid`` and ``model.cell_pool`` (with or without ``cell_motion``) read the frame encoder's cells: with a
    frozen encoder the cache holds the trunk (the cells are read from it), every encoder weight
    keeps its first value, their own layers (the cells' projection, the per-place MLP) learn,
    and the model gives the same on cached features as on the frames."""
    manifest, _ = run
    cfg = tiny_config("classify", manifest, *FROZEN, *overrides)
    out = tmp_path / "cells"
    fit(cfg, out)
    vocab = TaskVocab.load(out / "vocab.json")
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, vocab=vocab.tokenizer.words, num_outputs=vocab.num_outputs)
    assert model.cache_trunk and not any(p.requires_grad for p in model.video.parameters())
    start = {name: value.clone() for name, value in model.state_dict().items()}
    trained = load_checkpoint(out / "last.pt")["model"]
    assert all(torch.equal(trained[n], start[n]) for n in trained if n.startswith("video."))
    assert not torch.equal(trained[learns], start[learns])
    model.load_state_dict(trained)
    model.eval()
    stamps, _ = prepare(split_records(load_manifest(manifest), "train"), cfg)
    features = frozen_features(model, cfg, stamps)
    vid = next(iter(stamps))
    assert features[vid].shape == (cfg.data.num_frames, model.video.trunk_dim)
    frames = torch.from_numpy(read_cached(cfg.data, vid, stamps[vid]).frames).permute(0, 3, 1, 2).float().div(255.0)
    mask = torch.ones(1, len(frames), dtype=torch.bool)
    live = VideoBatch(video_ids=[vid], frames=frames.unsqueeze(0), frame_mask=mask)
    cached = VideoBatch(video_ids=[vid], features=torch.from_numpy(features[vid]).float().unsqueeze(0), frame_mask=mask)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_media(cached)[0], model.encode_media(live)[0], rtol=2e-2, atol=2e-2)


def test_train_views_show_each_train_video_through_one_of_its_interleaved_views(run, tmp_path):
    """``data.train_views=2``: train videos are decoded, and their frozen features cached, at twice
    the frames, val videos at the run's own count; an item is one view of them (rows v, v + 2, ...),
    the same view all through one epoch and for a resumed run, both views over the epochs; the
    saved config keeps the run's frame count, so eval and predict read that many frames."""
    manifest, _ = run
    cfg = tiny_config("classify", manifest, *FROZEN, "data.train_views=2")
    frames = cfg.data.num_frames
    out = tmp_path / "views"
    fit(cfg, out)
    saved = read_config(out / "config.yaml")
    assert (saved.data.num_frames, saved.data.train_views) == (frames, 2)
    assert load_checkpoint(out / "last.pt")["config"]["data"]["num_frames"] == frames
    wide = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, num_frames=2 * frames))
    records = load_manifest(manifest)
    train_stamps, _ = prepare(split_records(records, "train"), wide)
    val_stamps, _ = prepare(split_records(records, "val"), cfg)
    vocab = TaskVocab.load(out / "vocab.json")
    model = build_model(cfg, vocab=vocab.tokenizer.words, num_outputs=vocab.num_outputs)
    model.load_state_dict(load_checkpoint(out / "last.pt")["model"])
    folders_before = sorted(p.name for p in cache_root(cfg.data).iterdir())
    features = frozen_features(model, wide, train_stamps)
    assert frozen_features(model, cfg, val_stamps)[next(iter(val_stamps))].shape[0] == frames
    assert sorted(p.name for p in cache_root(cfg.data).iterdir()) == folders_before  # both cached by the run
    dataset = VideoDataset(split_records(records, "train"), wide, vocab, train_stamps, train=True,
                           features=features, views=2, seed=cfg.train.seed)
    seen = set()
    for epoch in range(8):
        dataset.start_epoch(epoch)
        picked = []
        for index in range(len(dataset)):
            item = dataset[index]
            full = features[item.video_id]
            assert full.shape[0] == 2 * frames and item.features.shape[0] == frames
            view = next(v for v in (0, 1) if np.array_equal(item.features, full[v::2]))
            assert np.array_equal(dataset[index].features, item.features)  # the same view all epoch
            picked.append(view)
        seen.update(picked)
        dataset.start_epoch(epoch)
        assert [next(v for v in (0, 1) if np.array_equal(dataset[i].features, features[dataset[i].video_id][v::2]))
                for i in range(len(dataset))] == picked  # a resumed epoch draws the same
    assert seen == {0, 1}


def test_train_views_refuse_heads_that_place_frames_in_time(run):
    manifest, _ = run
    with pytest.raises(ConfigError, match=r"^data\.train_views: must be at least 1"):
        tiny_config("classify", manifest, "data.train_views=0")
    with pytest.raises(ConfigError, match=r"^data\.train_views: the moment head places its frames in time"):
        check(tiny_config("retrieval", manifest, "data.train_views=2", preset="retrieval_moment"))


SOUND_TRAINS = [o for o in FROZEN if o != "model.freeze_audio=true"]


def test_freeze_audio_after_trains_the_sound_encoder_then_freezes_and_caches_it(run, tmp_path):
    """``model.freeze_audio_after=1``: the sound encoder learns in epoch 1 exactly as in a run of
    one epoch, keeps those weights through epochs 2 and 3 while the rest learns on, and its
    tokens are cached once, frozen, for the epochs after (read by train and val alike)."""
    manifest, _ = run
    one = fit(tiny_config("classify", manifest, *SOUND_TRAINS, "train.epochs=1", "model.freeze_audio_after=1"),
              tmp_path / "one").out_dir
    cache = cache_root(tiny_config("classify", manifest).data)
    folders_before = sorted(p.name for p in cache.iterdir())
    three = fit(tiny_config("classify", manifest, *SOUND_TRAINS, "train.epochs=3", "model.freeze_audio_after=1"),
                tmp_path / "three").out_dir
    cfg = tiny_config("classify", manifest, *SOUND_TRAINS)
    torch.manual_seed(cfg.train.seed)
    vocab = TaskVocab.load(three / "vocab.json")
    start = build_model(cfg, vocab=vocab.tokenizer.words, num_outputs=vocab.num_outputs).state_dict()
    after_one, after_three = load_checkpoint(one / "last.pt")["model"], load_checkpoint(three / "last.pt")["model"]
    audio = [n for n in start if n.startswith("audio.") and n.endswith("weight")]
    assert audio and any(not torch.equal(after_one[n], start[n]) for n in audio)  # it learned in epoch 1
    for name in (n for n in start if n.startswith("audio.")):
        assert torch.equal(after_three[name], after_one[name]), name  # and not after
    assert any(not torch.equal(after_three[n], after_one[n]) for n in start if n.startswith("head."))
    # one new cache folder: the frozen encoder's tokens (a run of one epoch never froze it)
    assert len(sorted(p.name for p in cache.iterdir())) == len(folders_before) + 1


def test_freeze_audio_after_a_resumed_run_past_it_reads_the_cached_tokens(run, tmp_path):
    """A run stopped after epoch 2 of 3 and resumed: the encoder stays frozen (the same weights
    as the run that went straight through, which cached its tokens before epoch 2)."""
    manifest, _ = run
    common = [*SOUND_TRAINS, "model.freeze_audio_after=1"]
    straight = fit(tiny_config("classify", manifest, *common, "train.epochs=3"), tmp_path / "straight").out_dir
    fit(tiny_config("classify", manifest, *common, "train.epochs=2"), tmp_path / "resumed")
    resumed = fit(tiny_config("classify", manifest, *common, "train.epochs=3"), tmp_path / "resumed",
                  resume=True).out_dir
    a, b = load_checkpoint(straight / "last.pt")["model"], load_checkpoint(resumed / "last.pt")["model"]
    for name in (n for n in a if n.startswith("audio.")):
        assert torch.equal(a[name], b[name]), name


@pytest.mark.parametrize(("overrides", "message"), [
    (["model.freeze_audio_after=-1"], "model.freeze_audio_after: epochs, 0 (never) or more, got -1"),
    (["model.freeze_audio_after=2", "model.freeze_audio=true"], "frozen from the start"),
])
def test_freeze_audio_after_bad_settings_are_one_line_errors(run, overrides, message):
    manifest, _ = run
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        tiny_config("classify", manifest, *overrides)
    assert "\n" not in str(error.value)
