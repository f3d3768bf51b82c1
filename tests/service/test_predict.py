"""Caption, answer and classify routes with tiny trained runs loaded by ``--model`` (the same
answers as calling the Predictor directly), and one model per task."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

import duomo
from duomo.errors import DuomoError
from duomo.service.app import ServiceSettings, create_app, load_predictors
from tests.helpers.learning import make_tiny_world, tiny_config, train_once_each

pytestmark = pytest.mark.slow  # trains three tiny runs

TRAIN = ["train.epochs=1", "train.batch_size=4"]


@pytest.fixture(scope="module")
def run_for(tmp_path_factory):
    manifest = make_tiny_world(tmp_path_factory.mktemp("world")).manifest_path
    return train_once_each(tmp_path_factory, lambda task: tiny_config(task, manifest, *TRAIN))


def test_caption_answer_and_classify_with_loaded_models(run_for, scene_library):
    runs = {task: str(run_for(task)) for task in ("caption", "qa", "classify")}
    settings = ServiceSettings(db_dir=scene_library.db, models=list(runs.values()))
    video = scene_library.videos["red.mp4"]
    video_id = scene_library.video_id("red.mp4")
    with TestClient(create_app(settings)) as client:
        info = client.get("/api/info").json()
        assert {(m["task"], m["run_dir"]) for m in info["models"]} == set(runs.items())

        caption = client.post(f"/api/videos/{video_id}/caption")
        assert caption.status_code == 200
        assert caption.json()["caption"] == duomo.load(runs["caption"]).caption(video)
        assert caption.json()["run_dir"] == runs["caption"]

        asked = client.post(f"/api/videos/{video_id}/answer", json={"question": "what color is the square?"}).json()
        expected = duomo.load(runs["qa"]).answer(video, "what color is the square?")
        assert asked["answer"] == expected.text and asked["score"] == pytest.approx(expected.score, abs=1e-6)

        labels = client.post(f"/api/videos/{video_id}/classify").json()
        expected_labels = duomo.load(runs["classify"]).classify(video)
        assert [item["label"] for item in labels["top"]] == [label for label, _ in expected_labels.top]


def test_two_models_of_one_task_are_refused(run_for):
    run = str(run_for("caption"))
    with pytest.raises(DuomoError, match="a caption model is already loaded"):
        load_predictors([run, run])
