"""Predictor (``duomo.load``): tiny trained runs answer, caption and classify any video file,
with the preprocessing of training, and refuse what they cannot do with one-line errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import duomo
from duomo.data.manifest import load_manifest
from duomo.errors import DuomoError, MediaError
from duomo.eval.evaluate import evaluate_run
from duomo.inference import Answer, Labels, Predictor
from duomo.train.checkpoint import CheckpointError
from tests.helpers.learning import make_tiny_world, tiny_config, train_once_each
from tests.helpers.videos import make_video

TRAIN = ["train.epochs=1", "train.batch_size=4"]
SLOTS = "model.head.args={hidden_dim: 16, ground_weight: 1.0, slots: 2, slot_ground: true, slot_places: true}"
"""The presets' two slots, grounded and looking inside their frames' places."""
EXTRA = {
    # the qa run also hears: a video without sound must still work
    "qa": ["data.use_audio=true", "data.num_mels=8", "model.audio.args={channels: [4, 8], time_stride: 4}", SLOTS],
    "dialog": [SLOTS],
    "caption": ["model.head.args.max_len=10"],  # test_caption_a_video_of_another_size counts on it
}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """8 tiny 32 px SynthWorld videos at 10 fps, with sound."""
    return make_tiny_world(tmp_path_factory.mktemp("world")).manifest_path


@pytest.fixture(scope="module")
def run_for(manifest, tmp_path_factory) -> Callable[[str], Path]:
    """run_for(task) -> a tiny run folder, trained once per module."""
    return train_once_each(tmp_path_factory, lambda task: tiny_config(task, manifest, *TRAIN, *EXTRA.get(task, [])))


@pytest.fixture(scope="module")
def odd_video(tmp_path_factory) -> Path:
    """Unlike the training videos: 48 x 40 pixels, 7 frames at 5 fps, no sound, another codec."""
    return make_video(tmp_path_factory.mktemp("odd") / "odd.mkv", num_frames=7, fps=5, size=(48, 40),
                      pattern="square")


def test_answer_a_video_of_another_size_length_and_rate(run_for, odd_video):
    predictor = duomo.load(run_for("qa"))
    assert isinstance(predictor, Predictor) and predictor.task == "qa"
    answer = predictor.answer(odd_video, "what color is the square?")
    assert isinstance(answer, Answer)
    assert answer.text in predictor.vocab.answers and 0.0 < answer.score <= 1.0
    # the same call gives the same answer: eval mode, no randomness
    assert predictor.answer(odd_video, "what color is the square?") == answer


def test_multiple_choice_answers_are_among_the_choices(run_for, odd_video):
    predictor = duomo.load(run_for("qa"))
    answers = predictor.vocab.answers
    free = predictor.answer(odd_video, "how many shapes can you see?")
    others = [a for a in answers if a != free.text]
    for choices in (others[:2], others[-3:], [free.text, others[0]]):
        answer = predictor.answer(odd_video, "how many shapes can you see?", choices=choices)
        assert answer.text in choices
        assert answer.score >= 1 / len(choices) - 1e-6  # the best of the choices, renormalised over them
    # the model's own favourite wins whenever it is offered
    assert predictor.answer(odd_video, "how many shapes can you see?", [others[0], free.text]).text == free.text


def test_choices_the_model_never_learned_are_refused(run_for, odd_video):
    predictor = duomo.load(run_for("qa"))
    with pytest.raises(DuomoError, match="none of the choices") as info:
        predictor.answer(odd_video, "what color is the square?", choices=["ultraviolet", "plaid"])
    assert "\n" not in str(info.value)


def test_predictor_matches_evaluation_on_a_manifest_video(run_for, manifest):
    """Predictor decodes the file itself; evaluation reads the training cache: same preprocessing."""
    run = run_for("qa")
    report = evaluate_run(run, str(manifest), "test")
    predictor = duomo.load(run)
    records = {r.video_id: r for r in load_manifest(manifest)}
    for p in report.predictions[:4]:
        qa = next(qa for qa in records[p.video_id].qa if qa.question == p.row.question)
        choices = [c for c in qa.choices or () if c in predictor.vocab.answers] or None
        answer = predictor.answer(records[p.video_id].video_path, qa.question, choices=choices)
        assert answer.text == p.text and answer.score == pytest.approx(p.score, abs=1e-5)


def test_dialog_answers_with_history(run_for, odd_video):
    predictor = duomo.load(run_for("dialog"))
    history = [("which object is the first to act?", "red circle")]
    answer = predictor.answer(odd_video, "what does it do at first?", history=history)
    assert answer.text in predictor.vocab.answers and 0.0 < answer.score <= 1.0


def test_classify_a_video_of_another_size(run_for, odd_video):
    predictor = duomo.load(run_for("classify"))
    result = predictor.classify(odd_video)
    assert isinstance(result, Labels)
    labels = predictor.vocab.labels
    assert len(result.labels) == 1 and result.labels[0][0] in labels  # single-label model
    assert len(result.top) == min(5, len(labels))
    scores = [s for _, s in result.top]
    assert scores == sorted(scores, reverse=True) and result.top[0] == pytest.approx(result.labels[0])
    assert len(predictor.classify(odd_video, top_k=2).top) == 2


def test_caption_a_video_of_another_size(run_for, odd_video):
    predictor = duomo.load(run_for("caption"))
    words = set(predictor.vocab.tokenizer.words)
    for beam in (None, 1, 3):
        caption = predictor.caption(odd_video, beam_size=beam)
        assert isinstance(caption, str) and set(caption.split()) <= words
        assert len(caption.split()) <= 10


def test_a_model_refuses_another_task(run_for, odd_video):
    with pytest.raises(DuomoError, match="this is a qa model; caption needs a caption run"):
        duomo.load(run_for("qa")).caption(odd_video)
    with pytest.raises(DuomoError, match="answering needs a qa or dialog run"):
        duomo.load(run_for("classify")).answer(odd_video, "what color is the square?")


def test_a_folder_that_is_not_a_run_gives_one_line(tmp_path):
    with pytest.raises(CheckpointError) as info:
        duomo.load(tmp_path)
    message = str(info.value)
    assert message == f"{tmp_path}: not a finished run folder (no config.yaml)"


def test_a_missing_checkpoint_is_named(run_for):
    with pytest.raises(CheckpointError, match=r"\(no epoch7\.pt\)"):
        duomo.load(run_for("qa"), checkpoint="epoch7.pt")
    assert duomo.load(run_for("qa"), checkpoint="last.pt").task == "qa"


def test_an_unreadable_video_raises_a_media_error(run_for, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video" * 100)
    with pytest.raises(MediaError) as info:
        duomo.load(run_for("qa")).answer(broken, "what color is the square?")
    assert str(broken) in str(info.value) and "\n" not in str(info.value)



def test_caption_span_of_the_whole_video_is_its_caption(run_for, odd_video):
    from duomo.video import probe

    predictor = duomo.load(run_for("caption"))
    # the span covering the whole video is preprocessed exactly like the whole video
    assert predictor.caption_span(odd_video, 0.0, probe(odd_video).duration_sec) == predictor.caption(odd_video)
    with pytest.raises(DuomoError, match="this is a qa model; caption needs a caption run"):
        duomo.load(run_for("qa")).caption_span(odd_video, 0.0, 0.5)
