"""SynthWorld scenes: config checks, determinism, timing rules, geometry and the compositional split."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from duomo.errors import DuomoError
from duomo.synth.scene import (
    ACTIONS, HELD_OUT, MOVES, SOUND_ACTIONS, WALLS, SynthConfig, half_extent, object_state, sample_scene,
    assign_split, scene_sounds, stratified_choice,
)

CONFIG = SynthConfig(num_videos=300, seed=11)


@pytest.fixture(scope="module")
def scenes():
    return [sample_scene(CONFIG, i) for i in range(CONFIG.num_videos)]


@pytest.mark.parametrize("changes", [{"size": 8}, {"split": "cogent"}, {"fps": 1}, {"max_objects": 4},
                                     {"min_duration_sec": 5.0, "max_duration_sec": 3.0}, {"val_fraction": 0.95}])
def test_config_rejects_bad_values(changes):
    with pytest.raises(DuomoError, match="bad SynthWorld config"):
        SynthConfig(**changes)


def test_same_seed_same_scene_other_seed_other_scene():
    assert sample_scene(CONFIG, 7) == sample_scene(SynthConfig(num_videos=300, seed=11), 7)
    assert sample_scene(CONFIG, 7) != sample_scene(SynthConfig(num_videos=300, seed=12), 7)


def test_stratified_choice_holds_each_option_once_per_block():
    options = ("a", "b", "c")
    picks = [stratified_choice(3, i, "test", options) for i in range(30)]
    assert all(sorted(picks[b:b + 3]) == list(options) for b in range(0, 30, 3))
    assert picks != [stratified_choice(4, i, "test", options) for i in range(30)]


def test_primary_labels_are_exactly_balanced(scenes):
    counts = Counter(s.primary_event.action for s in scenes)
    assert set(counts) == set(ACTIONS)
    assert max(counts.values()) - min(counts.values()) <= 1


def test_timing_rules(scenes):
    for scene in scenes:
        assert 2.0 <= scene.duration_sec <= 6.0
        primary = scene.primary_event
        ends = [shot.start_idx for shot in scene.shots[1:]] + [scene.num_frames]
        for obj in scene.objects:
            shot = scene.shots[obj.shot_idx]
            for event in obj.events:
                assert shot.start_idx <= event.start_idx < event.end_idx < ends[obj.shot_idx]
                assert event.start_sec == event.start_idx / scene.fps and event.end_sec == event.end_idx / scene.fps
                if event is not primary:
                    assert event.start_idx > primary.start_idx  # the primary event starts first
            for first, second in zip(obj.events, obj.events[1:]):
                assert first.end_idx < second.start_idx
            assert "appear" not in obj.actions[1:] and "disappear" not in obj.actions[:-1]
            assert not (obj.shape == "circle" and "rotate" in obj.actions)


def test_objects_stay_in_frame_and_apart(scenes):
    for scene in scenes[:80]:
        for frame_idx in range(scene.num_frames):
            shot = scene.shot_at(frame_idx)
            states = [(o, object_state(o, frame_idx / scene.fps)) for o in scene.objects if o.shot_idx == shot]
            for obj, s in states:
                reach = [half_extent(obj.shape, s.radius, s.angle, w) for w in WALLS]
                assert min(s.x - reach[0], 1 - s.x - reach[1], s.y - reach[2], 1 - s.y - reach[3]) > -1e-6
            visible = [s for _, s in states if s.alpha > 0]
            for i, a in enumerate(visible):
                for b in visible[i + 1:]:
                    assert math.hypot(a.x - b.x, a.y - b.y) > a.radius + b.radius


def test_events_change_the_state_they_name(scenes):
    for scene in scenes[:150]:
        for obj in scene.objects:
            for event in obj.events:
                before, after = object_state(obj, event.start_sec), object_state(obj, event.end_sec)
                if event.action in MOVES:
                    dx, dy = MOVES[event.action]
                    assert (after.x - before.x, after.y - before.y) == pytest.approx((dx * event.amount, dy * event.amount))
                elif event.action == "grow":
                    assert after.radius > 1.4 * before.radius
                elif event.action == "shrink":
                    assert after.radius < 0.7 * before.radius
                elif event.action == "appear":
                    assert (before.alpha, after.alpha) == (0.0, 1.0)
                elif event.action == "disappear":
                    assert (before.alpha, after.alpha) == (1.0, 0.0)
                elif event.action == "bounce":
                    contact = object_state(obj, event.contact_idx / scene.fps)
                    reach = half_extent(obj.shape, contact.radius, contact.angle, event.wall)
                    gap = {"left": contact.x - reach, "right": 1 - contact.x - reach,
                           "top": contact.y - reach, "bottom": 1 - contact.y - reach}[event.wall]
                    assert gap == pytest.approx(0, abs=1e-6)  # touches the wall on the contact frame
                    assert (after.x, after.y) == pytest.approx((before.x, before.y))


def test_sounds_come_from_noisy_objects_at_bounces_and_appearances(scenes):
    for scene in scenes:
        sounds = scene_sounds(scene)
        expected = sum(a in SOUND_ACTIONS for o in scene.objects if o.is_noisy for a in o.actions)
        assert len(sounds) == expected
        for sound in sounds:
            assert scene.objects[sound.object_idx].is_noisy
            assert sound.time_sec == sound.frame_idx / scene.fps


def test_compositional_split_holds_out_pairs_until_test():
    config = SynthConfig(num_videos=400, seed=3, split="compositional")
    by_split = Counter()
    for i in range(config.num_videos):
        scene = sample_scene(config, i)
        by_split[scene.split] += 1
        shown = {(c, o.shape) for o in scene.objects for c in o.colors}
        if scene.split == "test":
            assert shown & set(HELD_OUT), scene.video_id
        else:
            assert not shown & set(HELD_OUT), scene.video_id
    assert by_split["test"] > 20 and by_split["train"] > 250


def test_split_sizes_are_exact():
    config = SynthConfig(num_videos=390, seed=2, val_fraction=30 / 390, test_fraction=60 / 390)
    splits = Counter(assign_split(config, i) for i in range(config.num_videos))
    assert splits == {"train": 300, "val": 30, "test": 60}
    again = [assign_split(config, i) for i in range(config.num_videos)]
    other_seed = SynthConfig(**{**config.__dict__, "seed": 3})
    assert again != [assign_split(other_seed, i) for i in range(config.num_videos)]
