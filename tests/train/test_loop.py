"""The training loop through ``fit``: the run folder it writes, exact resume (at an epoch
boundary, mid-epoch, after a time limit), seeded reproducibility, and bad-video handling."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from duomo.config import ConfigError, read_config
from duomo.data.datasets import DatasetError, TaskVocab
from duomo.models import build
from duomo.train import loop
from duomo.train.checkpoint import load_checkpoint
from duomo.train.loop import group_by_similarity
from duomo.train.run import fit
from tests.helpers.learning import make_tiny_world, tiny_config

# A model small enough that an epoch over the tiny world takes well under a second.
TINY = ["train.epochs=2", "train.batch_size=2"]
NUM_TRAIN = 6  # train videos of the world below: 3 batches an epoch
NEVER = "train.checkpoint_minutes=0"  # no timed mid-epoch checkpoints unless a test asks
ALWAYS = "train.checkpoint_minutes=1.0e-9"  # last.pt after every batch


class Killed(Exception):
    """Stands in for the process dying."""


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """10 tiny SynthWorld videos: 6 train, 2 val, 2 test."""
    summary = make_tiny_world(tmp_path_factory.mktemp("world"), num_videos=10, val_fraction=0.2, test_fraction=0.2)
    assert summary.splits == {"train": NUM_TRAIN, "val": 2, "test": 2}
    return summary.manifest_path


def tiny(manifest: Path, *more: str, task: str = "qa"):
    return tiny_config(task, manifest, *TINY, NEVER, *more)


@pytest.fixture(scope="module")
def straight(manifest, tmp_path_factory) -> Path:
    """A run trained 2 epochs without interruption."""
    out = tmp_path_factory.mktemp("straight")
    fit(tiny(manifest), out)
    return out


def weights(run: Path, name: str = "last.pt") -> dict[str, torch.Tensor]:
    return load_checkpoint(run / name)["model"]


def assert_same_weights(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> None:
    assert first.keys() == second.keys()
    different = [k for k in first if not torch.equal(first[k], second[k])]
    assert not different, f"weights differ: {different[:5]}"


def metrics_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def without_time(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != "elapsed_sec"} for row in rows]


def kill_at(epoch: int, batch: int):
    """An on_progress that dies once training batch ``batch`` of ``epoch`` is done (before any
    checkpoint after it is written)."""
    def on_progress(p) -> None:
        if p.phase == "train" and (p.epoch, p.batch) == (epoch, batch):
            raise Killed
    return on_progress


# --- the run folder --------------------------------------------------------------------------------


def test_fit_writes_a_complete_run_folder(straight, manifest):
    for name in ("config.yaml", "vocab.json", "best.pt", "last.pt", "metrics.csv", "learning_curves.png"):
        assert (straight / name).is_file(), name
    assert read_config(straight / "config.yaml") == tiny(manifest)
    vocab = TaskVocab.load(straight / "vocab.json")
    assert vocab.answers and vocab.num_outputs == len(vocab.answers)
    rows = metrics_rows(straight)
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert {"epoch", "train_loss", "val_loss", "val_accuracy"} <= rows[0].keys()
    assert all(float(row["train_loss"]) > 0 for row in rows)
    last = load_checkpoint(straight / "last.pt")
    assert (last["epoch"], last["batch_in_epoch"], last["step"]) == (2, 0, 2 * 3)
    best = load_checkpoint(straight / "best.pt")
    assert best["metric"] == "accuracy" and 1 <= best["epoch"] <= 2
    assert best["model"].keys() == last["model"].keys()
    assert (straight / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_two_fresh_runs_with_one_seed_give_identical_weights(straight, manifest, tmp_path):
    fit(tiny(manifest), tmp_path / "again")
    assert_same_weights(weights(straight), weights(tmp_path / "again"))
    assert without_time(metrics_rows(straight)) == without_time(metrics_rows(tmp_path / "again"))


def test_another_seed_gives_other_weights(straight, manifest, tmp_path):
    fit(tiny(manifest, "train.seed=1", "train.epochs=1"), tmp_path / "other")
    first = weights(straight)
    assert any(not torch.equal(first[k], v) for k, v in weights(tmp_path / "other").items())


# --- resume ----------------------------------------------------------------------------------------


def test_resume_after_a_kill_between_epochs_gives_identical_weights(straight, manifest, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(Killed):
        fit(tiny(manifest), run, on_progress=kill_at(epoch=2, batch=1))
    assert load_checkpoint(run / "last.pt")["epoch"] == 1  # the end-of-epoch checkpoint
    result = fit(tiny(manifest), run, resume=True)
    assert (result.result.epochs_done, result.result.steps) == (2, 6)
    assert_same_weights(weights(straight), weights(run))
    assert_same_weights(weights(straight, "best.pt"), weights(run, "best.pt"))
    assert without_time(metrics_rows(straight)) == without_time(metrics_rows(run))


def test_resume_after_a_kill_mid_epoch_gives_identical_weights(straight, manifest, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(Killed):
        fit(tiny(manifest, ALWAYS), run, on_progress=kill_at(epoch=1, batch=3))
    state = load_checkpoint(run / "last.pt")
    assert (state["epoch"], state["batch_in_epoch"], state["step"]) == (0, 2, 2)  # batch 3 was lost
    fit(tiny(manifest), run, resume=True)
    assert_same_weights(weights(straight), weights(run))
    # the resumed epoch's loss still counts the batches before the kill
    assert without_time(metrics_rows(straight)) == without_time(metrics_rows(run))


def test_one_epoch_then_resume_for_two_continues_the_run(straight, manifest, tmp_path):
    """A finished 1-epoch run extended to 2. Not the straight 2-epoch weights: the cosine
    schedule spans train.epochs, so epoch 1 ran at other learning rates."""
    run = tmp_path / "run"
    fit(tiny(manifest, "train.epochs=1"), run)
    result = fit(tiny(manifest, "train.epochs=2"), run, resume=True)
    assert (result.result.epochs_done, result.result.steps) == (2, 6)
    assert [row["epoch"] for row in metrics_rows(run)] == ["1", "2"]
    assert read_config(run / "config.yaml").train.epochs == 2


def test_resume_uses_the_saved_config_and_vocabulary(manifest, tmp_path):
    run = tmp_path / "run"
    fit(tiny(manifest, "train.epochs=1"), run)
    vocab = (run / "vocab.json").read_text()
    # only epochs and max_minutes are taken from the new config
    fit(tiny(manifest, "train.epochs=1", "model.dim=32", "train.lr=0.5"), run, resume=True)
    saved = read_config(run / "config.yaml")
    assert (saved.model.dim, saved.train.lr) == (16, tiny(manifest).train.lr)
    assert (run / "vocab.json").read_text() == vocab


def test_time_limit_stops_early_and_keeps_a_best_checkpoint(straight, manifest, tmp_path):
    run = tmp_path / "run"
    result = fit(tiny(manifest, "train.max_minutes=1.0e-9"), run).result
    assert result.stopped_early and result.steps == 1 and result.epochs_done == 1
    assert (run / "best.pt").is_file() and len(metrics_rows(run)) == 1
    state = load_checkpoint(run / "last.pt")
    assert (state["epoch"], state["batch_in_epoch"]) == (0, 1)  # resumes inside epoch 1
    # with the limit lifted, the resumed run is the straight run
    fit(tiny(manifest, "train.max_minutes=0"), run, resume=True)
    assert_same_weights(weights(straight), weights(run))
    assert without_time(metrics_rows(straight)) == without_time(metrics_rows(run))


def test_a_new_run_refuses_a_folder_holding_a_run(straight, manifest):
    with pytest.raises(DatasetError, match="already holds a run; pass --resume"):
        fit(tiny(manifest), straight)


def test_resume_needs_a_run(manifest, tmp_path):
    with pytest.raises(DatasetError, match="nothing to resume"):
        fit(tiny(manifest), tmp_path / "empty", resume=True)


# --- bad videos ------------------------------------------------------------------------------------


@pytest.fixture
def manifest_with_a_corrupt_video(manifest, tmp_path) -> tuple[Path, Path]:
    """The world's manifest in another folder, its first train video replaced by garbage."""
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video\n" * 100)
    first_train = next(row for row in rows if row["split"] == "train")
    for row in rows:
        row["video"] = str(bad if row is first_train else (manifest.parent / row["video"]).resolve())
    path = tmp_path / "manifest.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path, bad


def test_a_corrupt_video_stops_training_with_one_line_naming_it(manifest_with_a_corrupt_video, tmp_path):
    path, bad = manifest_with_a_corrupt_video
    with pytest.raises(DatasetError) as info:
        fit(tiny(path, "train.epochs=1"), tmp_path / "run")
    message = str(info.value)
    assert "\n" not in message and str(bad) in message and "data.skip_bad_videos=true" in message


def test_skip_bad_videos_trains_on_the_rest(manifest_with_a_corrupt_video, tmp_path):
    path, bad = manifest_with_a_corrupt_video
    result = fit(tiny(path, "train.epochs=1", "data.skip_bad_videos=true"), tmp_path / "run")
    assert len(result.skipped) == 1 and str(bad) in next(iter(result.skipped.values()))
    assert result.num_train_videos == NUM_TRAIN - 1
    assert (tmp_path / "run" / "best.pt").is_file()


def test_time_limit_keeps_back_the_time_of_a_validation(manifest, tmp_path, monkeypatch):
    """On a fake clock where a step takes 0.1 s and a validation 10 s, a 1-minute cap stops
    training when the last validation would no longer fit, so the run ends within the cap, final
    validation included (without the reserve it would end about 10 s over)."""
    import duomo.train.loop as loop

    clock = {"now": 0.0}

    class FakeTime:
        @staticmethod
        def monotonic() -> float:
            return clock["now"]

    real_predict = loop.predict_dataset

    def slow_predict(*args, **kwargs):
        clock["now"] += 10.0
        return real_predict(*args, **kwargs)

    real_step = torch.optim.AdamW.step

    def slow_step(self, *args, **kwargs):
        clock["now"] += 0.1
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(loop, "time", FakeTime)
    monkeypatch.setattr(loop, "predict_dataset", slow_predict)
    monkeypatch.setattr(torch.optim.AdamW, "step", slow_step)
    result = fit(tiny(manifest, "train.epochs=50", "train.max_minutes=1"), tmp_path / "run").result
    assert result.stopped_early
    assert 50.0 < result.elapsed_sec <= 60.0


# --- neighbour batches ------------------------------------------------------------------------------


def test_group_by_similarity_puts_each_video_with_its_nearest_unplaced_ones():
    similarity = np.array([[1.0, 0.1, 0.9, 0.2, 0.0],
                           [0.1, 1.0, 0.3, 0.8, 0.2],
                           [0.9, 0.3, 1.0, 0.1, 0.7],
                           [0.2, 0.8, 0.1, 1.0, 0.6],
                           [0.0, 0.2, 0.7, 0.6, 1.0]])
    # 3 first: its nearest is 1; then 0 with 2; 4 is left alone at the end
    assert group_by_similarity(similarity, [3, 0, 1, 4, 2], 2) == [3, 1, 0, 2, 4]
    # groups of 3: 4 with 2 and 3; then 1 with 0, the only one left
    assert group_by_similarity(similarity, [4, 1, 0, 2, 3], 3) == [4, 2, 3, 1, 0]
    assert group_by_similarity(similarity, [2, 0, 1, 3, 4], 1) == [2, 0, 1, 3, 4]


def test_neighbour_batches_resume_mid_epoch_with_the_order_they_started(manifest, tmp_path, monkeypatch):
    """Retrieval with ``neighbour_batches``: epoch 2's order comes from the model's embeddings at
    its start; a run killed in epoch 2 resumes with that saved order, not one from the moved-on
    model, and ends with the weights of a run never killed."""
    calls = []
    real = loop.neighbour_order
    monkeypatch.setattr(loop, "neighbour_order", lambda *args: calls.append(args[2]) or real(*args))
    config = ["train.neighbour_batches=2"]
    straight_run = tmp_path / "straight"
    fit(tiny(manifest, *config, task="retrieval"), straight_run)
    assert len(calls) == 1  # epoch 2 only
    run = tmp_path / "run"
    with pytest.raises(Killed):
        fit(tiny(manifest, ALWAYS, *config, task="retrieval"), run, on_progress=kill_at(epoch=2, batch=2))
    assert len(calls) == 2
    state = load_checkpoint(run / "last.pt")
    assert (state["epoch"], state["batch_in_epoch"]) == (1, 1) and sorted(state["order"]) == list(range(NUM_TRAIN))
    fit(tiny(manifest, *config, task="retrieval"), run, resume=True)
    assert len(calls) == 2  # the resumed epoch did not regroup
    assert_same_weights(weights(straight_run), weights(run))


def test_neighbour_batches_need_the_retrieval_head(manifest):
    with pytest.raises(ConfigError, match=r"^train\.neighbour_batches: groups videos by the retrieval head's "):
        build.check(tiny(manifest, "train.neighbour_batches=4"))


def test_pair_grounding_rows_reach_the_head_in_training(manifest, tmp_path, monkeypatch):
    """``pair_ground`` on the qa preset: the joining word joins the vocabulary and training batches
    carry pair grounding rows (their slot spans) into the head's pair loss, a finite one."""
    from duomo.models.heads.qa import QAHead
    seen = []
    pair_loss = QAHead.pair_loss

    def counting(self, slots, slot_spans, frame_mask):
        value = pair_loss(self, slots, slot_spans, frame_mask)
        seen.append((int((~torch.isnan(slot_spans[:, 0, 0])).sum()), float(value.detach())))
        return value

    monkeypatch.setattr(QAHead, "pair_loss", counting)
    grounding = ["model.head.args.ground_weight=1.0", "model.head.args.slots=2", "model.head.args.slot_ground=true",
                 "model.head.args.pair_ground=alongside"]
    run = fit(tiny(manifest, *grounding), tmp_path / "run").out_dir
    assert "alongside" in TaskVocab.load(run / "vocab.json").tokenizer.words
    assert sum(rows for rows, _ in seen) > 0 and all(np.isfinite(value) for _, value in seen)
    assert all(value > 0 for rows, value in seen if rows)
