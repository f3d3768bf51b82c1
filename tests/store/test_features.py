"""FeatureStore: exact round trips, keys that separate settings, file stamps, atomic no-pickle writes."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from duomo.store.features import FeatureKey, FeatureStore, file_stamp

KEY = FeatureKey("frames", "1", {"num_frames": 4, "size": 16})


@pytest.fixture
def store(tmp_path) -> FeatureStore:
    return FeatureStore(tmp_path / "cache")


def all_files(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files)


@pytest.mark.parametrize("dtype", [np.uint8, np.float16, np.float32, np.int64])
def test_put_get_round_trip_is_exact(store, dtype):
    array = (np.arange(2 * 3 * 4).reshape(2, 3, 4) * 7 % 251).astype(dtype)
    assert not store.has(KEY, "v1", "abc")
    store.put(KEY, "v1", "abc", array)
    assert store.has(KEY, "v1", "abc")
    back = store.get(KEY, "v1", "abc")
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_non_contiguous_array_round_trips(store):
    array = np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2]
    store.put(KEY, "v1", "abc", array)
    np.testing.assert_array_equal(store.get(KEY, "v1", "abc"), array)


def test_put_overwrites(store):
    store.put(KEY, "v1", "abc", np.zeros(3))
    store.put(KEY, "v1", "abc", np.ones(3))
    np.testing.assert_array_equal(store.get(KEY, "v1", "abc"), np.ones(3))


def test_video_ids_and_stamps_are_separate(store):
    store.put(KEY, "v1", "abc", np.zeros(2))
    assert not store.has(KEY, "v2", "abc")
    assert not store.has(KEY, "v1", "abd")


@pytest.mark.parametrize(
    "other",
    [
        FeatureKey("frames", "1", {"num_frames": 8, "size": 16}),
        FeatureKey("frames", "2", {"num_frames": 4, "size": 16}),
        FeatureKey("log_mel", "1", {"num_frames": 4, "size": 16}),
        FeatureKey("frames", "1", {"num_frames": 4}),
    ],
)
def test_a_different_key_gets_a_different_folder(store, other):
    path = store.put(KEY, "v1", "abc", np.zeros(2))
    assert other.digest() != KEY.digest()
    assert not store.has(other, "v1", "abc")
    assert store.path(other, "v1", "abc").parent != path.parent


def test_equal_keys_share_a_folder_whatever_the_settings_order():
    a = FeatureKey("frames", "1", {"num_frames": 4, "size": 16})
    b = FeatureKey("frames", "1", {"size": 16, "num_frames": 4})
    assert a.digest() == b.digest()
    assert len(a.digest()) == 16


def test_key_json_records_the_key(store):
    path = store.put(KEY, "v1", "abc", np.zeros(2))
    assert path.parent == store.root / KEY.digest()
    recorded = json.loads((path.parent / "key.json").read_text())
    assert recorded == {"encoder": "frames", "version": "1", "settings": {"num_frames": 4, "size": 16}}
    assert FeatureKey(**recorded).digest() == KEY.digest()


def test_layout_and_no_temporary_files_left(store):
    stamp = "0123456789"
    store.put(KEY, "a/b c", stamp, np.zeros(2))
    store.put(KEY, "v2", stamp, np.zeros(2))
    assert all_files(store.root) == sorted([
        f"{KEY.digest()}/key.json", f"{KEY.digest()}/a_b_c-{stamp}.npy", f"{KEY.digest()}/v2-{stamp}.npy",
    ])


def test_object_arrays_are_never_pickled(store):
    with pytest.raises(ValueError, match="allow_pickle=False"):
        store.put(KEY, "v1", "abc", np.array([{"a": 1}, None], dtype=object))
    assert not store.has(KEY, "v1", "abc")
    assert not any(name.endswith(".tmp") for name in all_files(store.root))


def test_a_pickled_file_in_the_store_is_refused_on_load(store):
    path = store.path(KEY, "v1", "abc")
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle=False"):
        store.get(KEY, "v1", "abc")


def test_file_stamp_changes_when_the_file_changes(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"0123456789")
    first = file_stamp(video)
    assert first == file_stamp(video)
    assert len(first) == 10
    stat = os.stat(video)
    os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # touched: new mtime
    touched = file_stamp(video)
    assert touched != first
    os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    with open(video, "r+b") as handle:  # same mtime as before, different size
        handle.truncate(5)
    os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert file_stamp(video) not in (first, touched)


def test_file_stamp_of_a_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        file_stamp(tmp_path / "nope.mp4")
