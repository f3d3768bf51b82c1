"""Video file -> frames and log-mel (load_media), and the disk cache that prepare_media fills."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from duomo.config import DataConfig
from duomo.data import media as media_module
from duomo.data.media import SILENCE, cache_root, load_media, prepare_media, read_cached
from duomo.video.audio import decode_audio
from duomo.video.transforms import num_spectrogram_frames
from tests.helpers.videos import expected_frames, make_video, tone, truncated_copy

SIZE = 16
NUM_FRAMES = 8
PICKED = [1, 3, 5, 7]  # uniform_indices(8, 4): the centres of 4 equal segments


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Two lossless 8-frame 16x16 "index" clips (one with a 0.8 s tone), a corrupt and a truncated file."""
    root = tmp_path_factory.mktemp("media")
    loud = make_video(root / "loud.mkv", NUM_FRAMES, 10, size=(SIZE, SIZE), audio=tone(440, 0.8, 16000),
                      sample_rate=16000)
    quiet = make_video(root / "quiet.mkv", NUM_FRAMES, 10, size=(SIZE, SIZE))
    corrupt = root / "corrupt.mkv"
    corrupt.write_bytes(b"this is not a video" * 20)
    truncated = truncated_copy(loud, root / "truncated.mkv", 0.3)
    return {"loud": loud, "quiet": quiet, "corrupt": corrupt, "truncated": truncated}


def data_config(tmp_path, **kw) -> DataConfig:
    base = dict(num_frames=4, frame_size=SIZE, num_mels=8, cache_dir=str(tmp_path / "cache"), num_workers=1)
    return DataConfig(**{**base, **kw})


def test_load_media_frames_are_exact(clips, tmp_path):
    media = load_media(clips["loud"], data_config(tmp_path))
    assert media.frames.shape == (4, SIZE, SIZE, 3) and media.frames.dtype == np.uint8
    np.testing.assert_array_equal(media.frames, expected_frames(NUM_FRAMES, (SIZE, SIZE))[PICKED])


def test_load_media_frames_are_resized_to_frame_size(clips, tmp_path):
    media = load_media(clips["loud"], data_config(tmp_path, frame_size=8, use_audio=False))
    assert media.frames.shape == (4, 8, 8, 3) and media.frames.dtype == np.uint8
    # red is flat 16 * i on frame i, so it survives resizing
    assert media.frames[..., 0].reshape(4, -1).min(1).tolist() == [16 * i for i in PICKED]
    assert media.frames[..., 0].reshape(4, -1).max(1).tolist() == [16 * i for i in PICKED]
    assert media.mel is None


def test_load_media_mel_of_a_video_with_sound(clips, tmp_path):
    cfg = data_config(tmp_path)
    media = load_media(clips["loud"], cfg)
    num_samples = len(decode_audio(clips["loud"], cfg.sample_rate))
    assert media.mel.dtype == np.float16
    assert media.mel.shape == (num_spectrogram_frames(num_samples, 320), 8)  # hop 0.02 s at 16 kHz
    assert media.mel.shape[0] >= 40  # 0.8 s of sound
    assert float(media.mel.astype(np.float32).max()) > SILENCE + 10  # the tone is loud, not silence


def test_load_media_long_sound_is_resampled_to_max_audio_sec(clips, tmp_path):
    media = load_media(clips["loud"], data_config(tmp_path, max_audio_sec=0.2))
    assert media.mel.shape == (10, 8)  # 0.2 s / 0.02 s hop


def test_load_media_without_sound_gives_one_silent_row(clips, tmp_path):
    media = load_media(clips["quiet"], data_config(tmp_path))
    assert media.mel.dtype == np.float16
    np.testing.assert_array_equal(media.mel, np.full((1, 8), SILENCE, dtype=np.float16))


def test_cache_root_defaults_beside_the_manifest(tmp_path):
    cfg = DataConfig(manifest=str(tmp_path / "set" / "manifest.jsonl"))
    assert cache_root(cfg) == (tmp_path / "set" / ".duomo-cache").resolve()
    assert cache_root(replace(cfg, cache_dir=str(tmp_path / "elsewhere"))) == tmp_path / "elsewhere"


def test_prepare_media_one_or_two_workers_cache_the_same_arrays(clips, tmp_path):
    items = [("loud", clips["loud"]), ("quiet", clips["quiet"])]
    one = data_config(tmp_path, cache_dir=str(tmp_path / "one"), num_workers=1)
    two = data_config(tmp_path, cache_dir=str(tmp_path / "two"), num_workers=2)
    ready_one, ready_two = prepare_media(items, one), prepare_media(items, two)
    assert ready_one.failed == {} and ready_two.failed == {}
    assert ready_one.ready == ready_two.ready
    assert ready_one.ready["loud"][0] == clips["loud"]
    for vid, (_, stamp) in ready_one.ready.items():
        a, b = read_cached(one, vid, stamp), read_cached(two, vid, stamp)
        np.testing.assert_array_equal(a.frames, b.frames)
        np.testing.assert_array_equal(a.mel, b.mel)
        direct = load_media(clips[vid], one)
        np.testing.assert_array_equal(a.frames, direct.frames)
        np.testing.assert_array_equal(a.mel, direct.mel)


@pytest.mark.parametrize("num_workers", [1, 2])
def test_prepare_media_reports_bad_files_without_raising(clips, tmp_path, num_workers):
    items = [(name, clips[name]) for name in ("corrupt", "loud", "truncated")]
    progress = []
    prepared = prepare_media(items, data_config(tmp_path, num_workers=num_workers),
                             on_progress=lambda done, total: progress.append((done, total)))
    assert set(prepared.ready) == {"loud"}
    assert set(prepared.failed) == {"corrupt", "truncated"}
    for name, reason in prepared.failed.items():
        assert reason.startswith(f"{clips[name]}: ")
        assert "\n" not in reason
    assert sorted(progress) == [(1, 3), (2, 3), (3, 3)]


def test_prepare_media_missing_file_is_reported(tmp_path):
    missing = tmp_path / "gone.mkv"
    prepared = prepare_media([("gone", missing)], data_config(tmp_path))
    assert prepared.ready == {}
    assert prepared.failed["gone"].startswith(str(missing))


def test_second_prepare_is_a_cache_hit(clips, tmp_path, monkeypatch):
    cfg = data_config(tmp_path)
    items = [("loud", clips["loud"]), ("quiet", clips["quiet"])]
    first = prepare_media(items, cfg)

    def fail(*args, **kwargs):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(media_module, "sample_uniform", fail)
    monkeypatch.setattr(media_module, "load_mel", fail)
    second = prepare_media(items, cfg)
    assert second.ready == first.ready and second.failed == {}


def test_turning_audio_on_decodes_only_the_sound(clips, tmp_path, monkeypatch):
    items = [("loud", clips["loud"])]
    prepare_media(items, data_config(tmp_path, use_audio=False))

    def fail(*args, **kwargs):
        raise AssertionError("frames decoded again")

    monkeypatch.setattr(media_module, "sample_uniform", fail)
    prepared = prepare_media(items, data_config(tmp_path, use_audio=True))
    assert set(prepared.ready) == {"loud"}
    assert read_cached(data_config(tmp_path), "loud", prepared.ready["loud"][1]).mel.shape[1] == 8


def test_other_sampling_settings_miss_the_cache(clips, tmp_path, monkeypatch):
    items = [("quiet", clips["quiet"])]
    prepare_media(items, data_config(tmp_path))
    calls = []
    real = media_module.sample_uniform
    monkeypatch.setattr(media_module, "sample_uniform", lambda *a, **k: calls.append(a) or real(*a, **k))
    prepared = prepare_media(items, data_config(tmp_path, num_frames=2))
    assert len(calls) == 1
    frames = read_cached(data_config(tmp_path, num_frames=2), "quiet", prepared.ready["quiet"][1]).frames
    np.testing.assert_array_equal(frames, expected_frames(NUM_FRAMES, (SIZE, SIZE))[[2, 6]])
