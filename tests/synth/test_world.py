"""SynthWorld end to end on a dozen tiny videos: files, determinism, and pixels and audio matching the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from duomo.data.manifest import load_manifest
from duomo.synth.scene import BACKGROUNDS, COLORS, PITCH_HZ, SynthConfig, object_state, sample_scene
from duomo.synth.world import generate_world

# every object noisy, so the soundtrack has beeps to find; long enough for cuts
CONFIG = SynthConfig(num_videos=12, seed=5, size=64, fps=8, min_duration_sec=2.0, max_duration_sec=4.0, sound_prob=1.0)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    summary = generate_world(out, CONFIG, workers=1)
    assert summary.num_videos == 12
    return out


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def _frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_writes_a_valid_manifest_and_one_video_per_row(world):
    records = load_manifest(world / "manifest.jsonl")
    assert len(records) == 12 and all(r.video_path.is_file() for r in records)
    assert (world / "synth.yaml").is_file()
    with av.open(str(records[0].video_path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio[0].codec_context.name == "aac"


def test_same_config_same_files_whatever_the_workers(world, tmp_path):
    again = tmp_path / "again"
    generate_world(again, CONFIG, workers=2)
    assert (again / "manifest.jsonl").read_bytes() == (world / "manifest.jsonl").read_bytes()
    for row in _rows(world):
        assert (again / row["video"]).read_bytes() == (world / row["video"]).read_bytes()
    other = tmp_path / "other"
    generate_world(other, SynthConfig(**{**CONFIG.__dict__, "seed": 6, "num_videos": 3}), workers=1)
    assert _rows(other)[0] != _rows(world)[0]


def test_pixels_show_what_the_manifest_says(world):
    checked = 0
    for row in _rows(world):
        scene = sample_scene(CONFIG, int(row["id"][1:]))
        frames = _frames(world / row["video"])
        assert frames.shape == (row["num_frames"], 64, 64, 3)
        for frame_idx in range(0, scene.num_frames, 2):
            shot = scene.shot_at(frame_idx)
            for obj in (o for o in scene.objects if o.shot_idx == shot):
                state = object_state(obj, frame_idx / scene.fps)
                changing = any(e.action == "change_color" and e.start_sec <= frame_idx / scene.fps <= e.end_sec
                               for e in obj.events)
                if state.alpha < 1 or changing:
                    continue
                pixel = frames[frame_idx, int(state.y * 64), int(state.x * 64)].astype(int)
                nearest = min(COLORS, key=lambda c: np.abs(pixel - COLORS[c]).sum())
                expected = [e.new_color for e in obj.events if e.new_color and e.end_sec <= frame_idx / scene.fps]
                assert nearest == (expected[-1] if expected else obj.color)
                assert np.abs(pixel - np.array(state.rgb)).max() < 40
                checked += 1
    assert checked > 100


def test_cut_changes_the_background_at_the_annotated_time(world):
    cuts = 0
    for row in _rows(world):
        frames = _frames(world / row["video"])
        for shot_idx, start in enumerate(row["shots"]):
            frame_idx = round(start * row["fps"])
            # objects cover well under half the frame, so the median pixel is background
            median = np.median(frames[frame_idx].reshape(-1, 3), axis=0)
            assert np.abs(median - BACKGROUNDS[row["backgrounds"][shot_idx]]).max() < 12
            if shot_idx:
                before = np.median(frames[frame_idx - 1].reshape(-1, 3), axis=0)
                assert np.abs(before - BACKGROUNDS[row["backgrounds"][shot_idx - 1]]).max() < 12
                cuts += 1
    assert cuts >= 2


def test_beeps_are_at_the_annotated_times_with_the_shape_pitch(world):
    beeps = 0
    for row in _rows(world):
        with av.open(str(world / row["video"])) as container:
            rate = container.streams.audio[0].sample_rate
            audio = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
        for sound in row["sounds"]:
            start = int((sound["time"] + 0.03) * rate)
            window = audio[start:start + int(0.18 * rate)] * np.hanning(int(0.18 * rate))
            spectrum = np.abs(np.fft.rfft(window))
            peak = np.fft.rfftfreq(len(window), 1 / rate)[spectrum.argmax()]
            shape = row["objects"][sound["object"]]["shape"]
            assert abs(peak - PITCH_HZ[shape]) < 20, (row["id"], sound, peak)
            assert sound["pitch_hz"] == PITCH_HZ[shape]
            beeps += 1
        times = [s["time"] for s in row["sounds"]]
        quiet = [t for t in np.arange(0.0, row["duration"] - 0.3, 0.1) if all(abs(t - s) > 0.4 for s in times)]
        for t in quiet[:3]:
            assert np.sqrt(np.mean(audio[int(t * rate):int((t + 0.1) * rate)] ** 2)) < 0.01
    assert beeps >= 3


def test_a_smaller_rerun_removes_the_videos_it_no_longer_lists(tmp_path):
    config = SynthConfig(num_videos=3, seed=1, size=64, fps=8, min_duration_sec=2.0, max_duration_sec=3.0)
    generate_world(tmp_path, config, workers=1)
    keep = tmp_path / "videos" / "notes.mp4"  # not a SynthWorld name: never touched
    keep.write_bytes(b"x")
    generate_world(tmp_path, SynthConfig(**{**config.__dict__, "num_videos": 2}), workers=1)
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == ["notes.mp4", "v0000.mp4", "v0001.mp4"]
    assert len(_rows(tmp_path)) == 2


def test_a_killed_rerun_leaves_no_stale_manifest(tmp_path, monkeypatch):
    import duomo.synth.world as world_module

    config = SynthConfig(num_videos=3, seed=1, size=64, fps=8, min_duration_sec=2.0, max_duration_sec=3.0)
    generate_world(tmp_path, config, workers=1)
    make_one = world_module._make_video_task
    done = []

    def killed_after_one(task):
        if done:
            raise KeyboardInterrupt  # as if Ctrl-C hit while the second video was being made
        done.append(make_one(task))
        return done[-1]

    monkeypatch.setattr(world_module, "_make_video_task", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        generate_world(tmp_path, SynthConfig(**{**config.__dict__, "seed": 2}), workers=1)
    assert len(done) == 1  # one video of the new run was overwritten...
    assert not (tmp_path / "manifest.jsonl").exists()  # ...so the old manifest must not survive
