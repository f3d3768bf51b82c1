"""Predictor for retrieval runs: embeddings of texts, video files and raw frames in one space, and
moments found in a video, with the preprocessing of training (checked against evaluation)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import duomo
from duomo.data.manifest import load_manifest
from duomo.errors import DuomoError
from duomo.eval.evaluate import evaluate_run
from duomo.video.decode import sample_uniform
from duomo.video.probe import probe
from tests.helpers.learning import make_tiny_world, tiny_config, train_once_each
from tests.helpers.videos import make_video

SOUND = ["data.use_audio=true", "data.num_mels=8", "model.audio.args={channels: [4, 8], time_stride: 4}"]
TRAIN = ["train.epochs=1", "train.batch_size=4", *SOUND]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    return make_tiny_world(tmp_path_factory.mktemp("world")).manifest_path


@pytest.fixture(scope="module")
def run_for(manifest, tmp_path_factory) -> Callable[[str], Path]:
    """run_for(preset) -> a tiny retrieval run ('retrieval' or 'retrieval_moment'), trained once."""
    return train_once_each(tmp_path_factory, lambda preset: tiny_config("retrieval", manifest, *TRAIN, preset=preset))


@pytest.fixture(scope="module")
def silent_video(tmp_path_factory) -> Path:
    """48 x 40 pixels, 9 frames at 5 fps, no sound."""
    return make_video(tmp_path_factory.mktemp("odd") / "odd.mkv", num_frames=9, fps=5, size=(48, 40),
                      pattern="square")


def test_text_and_video_embeddings_are_unit_vectors_of_one_space(run_for, silent_video):
    predictor = duomo.load(run_for("retrieval"))
    texts = predictor.embed_text(["a red circle grows", "a blue square", "zebra"])  # 'zebra' is unknown
    video = predictor.embed_video(silent_video)
    assert texts.shape == (3, 8) and video.shape == (8,)
    assert texts.dtype == np.float32 and video.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert np.linalg.norm(video) == pytest.approx(1.0, abs=1e-5)
    # one text alone embeds as it does among others (padding changes nothing)
    np.testing.assert_allclose(predictor.embed_text(["a blue square"])[0], texts[1], atol=1e-5)
    np.testing.assert_array_equal(predictor.embed_video(silent_video), video)


def test_frames_embed_as_the_file_they_came_from(run_for, silent_video):
    predictor = duomo.load(run_for("retrieval"))
    data = predictor.cfg.data
    frames = sample_uniform(silent_video, data.num_frames, size=(data.frame_size, data.frame_size)).frames
    # the file has no sound, and embed_frames takes the sound as silence: the same input
    np.testing.assert_allclose(predictor.embed_frames(frames), predictor.embed_video(silent_video), atol=1e-5)
    # any number of frames of any size: resampled and resized to the run's settings
    raw = sample_uniform(silent_video, 9).frames  # (9, 40, 48, 3)
    vector = predictor.embed_frames(raw)
    assert vector.shape == (8,) and np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    assert float(vector @ predictor.embed_video(silent_video)) > 0.9
    with pytest.raises(DuomoError, match="uint8 frames"):
        predictor.embed_frames(raw.astype(np.float32))
    with pytest.raises(DuomoError, match="uint8 frames"):
        predictor.embed_frames(raw[:0])


def test_embeddings_match_evaluation(run_for, manifest):
    """Evaluation reads the training cache, the predictor decodes the file: same vectors."""
    run = run_for("retrieval")
    report = evaluate_run(run, str(manifest), "test")
    assert {"t2v_r1", "t2v_r5", "t2v_r10", "t2v_mdr", "t2v_mnr", "v2t_r1", "v2t_mdr"} <= report.metrics.keys()
    predictor = duomo.load(run)
    paths = {r.video_id: r.video_path for r in load_manifest(manifest)}
    for p in report.predictions[:3]:
        np.testing.assert_allclose(predictor.embed_text([p.row.question])[0], p.text_vector, atol=1e-5)
        np.testing.assert_allclose(predictor.embed_video(paths[p.video_id]), p.video_vector, atol=1e-5)


def test_find_moment_matches_evaluation(run_for, manifest):
    run = run_for("retrieval_moment")
    report = evaluate_run(run, str(manifest), "test")
    assert {"r1_iou0.5", "r1_iou0.7", "mean_iou"} <= report.metrics.keys()
    predictor = duomo.load(run)
    paths = {r.video_id: r.video_path for r in load_manifest(manifest)}
    for p in report.predictions[:3]:
        start, end, score = predictor.find_moment(paths[p.video_id], p.row.question)
        duration = probe(paths[p.video_id]).duration_sec
        assert 0.0 <= start < end <= duration + 1e-6 and 0.0 < score <= 1.0
        assert (start, end) == pytest.approx(p.span, abs=1e-6) and score == pytest.approx(p.score, abs=1e-5)


def test_a_run_refuses_what_its_head_cannot_do(run_for, silent_video):
    with pytest.raises(DuomoError, match="moment head"):
        duomo.load(run_for("retrieval")).find_moment(silent_video, "a red circle")
    with pytest.raises(DuomoError, match="retrieval head"):
        duomo.load(run_for("retrieval_moment")).embed_text(["a red circle"])


MATCHER = ["model.head.args.rerank=2"]


@pytest.mark.parametrize("places", [False, True], ids=["tokens", "match_places"])
def test_a_matcher_reranks_evaluation_with_the_predictors_scores(manifest, tmp_path, places):
    """With a matcher, evaluation re-scores each caption's 2 best videos (the tiny test split has
    2) by the matcher; the predictor's ``match`` on the video file gives the same scores (with
    ``match_places`` too: evaluation keeps each video's places, the predictor reads them from the
    file), and a run without one refuses ``match`` in one line."""
    from duomo.train.run import fit

    run = fit(tiny_config("retrieval", manifest, *TRAIN, *MATCHER, f"model.head.args.match_places={str(places).lower()}"),
              tmp_path / "run").out_dir
    report = evaluate_run(run, str(manifest), "test")
    assert report.metrics["num_videos"] == 2
    predictor = duomo.load(run)
    paths = {r.video_id: r.video_path for r in load_manifest(manifest)}
    for p in report.predictions:
        assert len(p.reranked) == 2
        for vid, value in p.reranked.items():
            assert predictor.match(paths[vid], [p.row.question])[0] == pytest.approx(value, abs=1e-4)
    plain = duomo.load(fit(tiny_config("retrieval", manifest, *TRAIN, "model.head.args.matcher_layers=0"),
                           tmp_path / "plain").out_dir)
    with pytest.raises(DuomoError, match="no matcher"):
        plain.match(paths[report.predictions[0].video_id], ["a red circle"])
