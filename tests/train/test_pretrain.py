"""Text-supervised pre-training of the frame encoder: the target words come from the manifest
(some-but-not-most videos), the frame encoder alone changes, it learns to name the words of a
tiny world, and ``fit`` keeps the whole run (pre-training included) to ``max_minutes``."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from duomo.config import ConfigError, load_config
from duomo.data.datasets import split_records
from duomo.data.manifest import QAPair, VideoRecord, load_manifest
from duomo.models.build import build_model
from duomo.train.checkpoint import load_checkpoint
from duomo.train.pretrain import (weighted_bce, pretrain_frame_encoder, said_words, video_pairs, video_words,
                                  word_targets)
from duomo.train.run import fit, prepare
from tests.helpers.learning import make_tiny_world, tiny_config


def record(vid: str, caption: str, question: str = "", answer: str = "") -> VideoRecord:
    qa = (QAPair(question, answer),) if question else ()
    return VideoRecord(vid, f"/{vid}.mp4", "train", captions=(caption,), qa=qa)


def test_target_words_are_the_ones_that_tell_videos_apart():
    records = [record("a", "a red star"), record("b", "a blue square"), record("c", "a red square"),
               record("d", "a green circle")]
    assert video_words(records[0]) == {"a", "red", "star"}
    assert video_pairs(records[0]) == {"a red", "red star"}
    vocab, targets = word_targets(records)
    # "a" is in every video (more than 90%): no target, nor any pair with it; every other word and
    # pair is in 1 or 2 of 4
    words = {"red", "square", "star", "blue", "green", "circle"}
    assert "a" not in vocab and set(vocab) == words | {"red star", "blue square", "red square", "green circle"}
    assert vocab[:2] == ["red", "square"]  # the most frequent first
    assert targets.shape == (4, len(vocab))
    # a red square and a blue one: "red", "square" and "red square", never "red star"
    assert [w for w, hit in zip(vocab, targets[2]) if hit] == ["red", "square", "red square"]


def test_short_answers_are_the_targets_where_a_video_has_them():
    captioned = record("a", "this clip shows a red star moving left", "is there a green circle?", "no")
    assert video_words(captioned) == {"no"}  # the caption is left out, and the question names what is not there
    answered = VideoRecord("b", "/b.mp4", "train", captions=("then a star spins",), labels=("move_left",),
                           qa=(QAPair("which object spins?", "red star"),))
    assert video_words(answered) == {"move", "left", "red", "star"}
    assert video_pairs(answered) == {"move left", "red star"}


def test_captions_mark_which_targets_a_video_shows():
    """The answers choose the targets; with ``said`` (``train.pretrain_said_labels``) a caption
    saying one marks it in its video too."""
    records = [record("a", "a red star beside a blue square", "which object spins?", "red star"),
               record("b", "a blue square", "which object spins?", "blue square"),
               record("c", "a green circle", "which object spins?", "green circle")]
    assert {"blue", "square", "blue square", "red star"} <= said_words(records[0])
    assert "beside" in said_words(records[0]) and "spins" not in said_words(records[0])  # not the question's
    vocab, targets = word_targets(records)
    row = dict(zip(vocab, targets[0]))
    assert row["red star"] == 1.0 and row["blue square"] == row["blue"] == 0.0  # only what the answers say
    marked, targets = word_targets(records, said=True)
    assert marked == vocab and "beside" not in vocab  # the same targets: no answer says "beside"
    row = dict(zip(vocab, targets[0]))
    assert row["red star"] == row["blue square"] == row["blue"] == 1.0 and row["green"] == 0.0


def test_unsaid_targets_weigh_less_in_the_loss():
    logits, y = torch.tensor([[0.0, 2.0], [-1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    def bce(z, t):
        return -(t * torch.log(torch.sigmoid(z)) + (1 - t) * torch.log(1 - torch.sigmoid(z)))
    terms = bce(logits, y)
    expected = (terms[0, 0] + 0.25 * (terms[0, 1] + terms[1, 0] + terms[1, 1])) / (1 + 3 * 0.25)
    assert weighted_bce(logits, y, 0.25).item() == pytest.approx(expected.item(), rel=1e-6)
    plain = F.binary_cross_entropy_with_logits(logits, y)
    assert weighted_bce(logits, y, 1.0).item() == pytest.approx(plain.item(), rel=1e-6)


def test_targets_keep_to_max_words(monkeypatch):
    monkeypatch.setattr("duomo.train.pretrain.MAX_WORDS", 3)
    records = [record("a", "a red star"), record("b", "a blue square"), record("c", "a red square")]
    vocab, targets = word_targets(records)
    assert vocab == ["red", "square", "blue"] and targets.shape == (3, 3)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_tiny_world(tmp_path_factory.mktemp("world"), num_videos=8).manifest_path


LUMA = ["model.video.args.luma_branch=true", "model.video.args.luma_stem=conv", "model.video.args.luma_remap=true"]


@pytest.mark.parametrize(("luma", "cell_pool", "motion"), [(False, 0, False), (True, 0, False), (True, 8, False),
                                                          (True, 8, True)],
                         ids=["one_stack", "luma_stack", "cell_pool", "cell_motion"])
def test_pretraining_changes_only_the_frame_encoder_and_lowers_its_loss(world, luma, cell_pool, motion):
    """Pre-training changes the frame encoder and, with ``model.cell_pool`` (and ``cell_motion``),
    the reading of its places that the frame tokens add (trained with it), nothing else."""
    cfg = tiny_config("qa", world, *(LUMA if luma else []), f"model.cell_pool={cell_pool}",
                      f"model.cell_motion={str(motion).lower()}")
    records = split_records(load_manifest(world), "train")
    stamps, _ = prepare(records, cfg)
    torch.manual_seed(0)
    model = build_model(cfg, vocab=["<pad>", "<unk>", "<bos>", "<eos>", "red"], num_outputs=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = pretrain_frame_encoder(model, cfg, records, stamps, epochs=1)
    later = pretrain_frame_encoder(model, cfg, records, stamps, epochs=60)
    assert first["words"] > 0 and later["loss"] < first["loss"]
    changed = {k.split(".")[0] for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == ({"video", "cell_pool", "cell_pool_norm"} if cell_pool else {"video"})
    if luma:  # the luma stack's own head adds a second binary cross-entropy (about ln 2 at the start)
        assert model.video.luma_dim > 0 and first["loss"] > 1.2
        assert all(not torch.equal(v, before[f"video.luma.{k}"]) for k, v in model.video.luma.state_dict().items()
                   if k.endswith("weight"))
    else:
        assert first["loss"] < 0.9


def test_pretraining_reads_its_batch_and_frames_from_the_config(world):
    cfg = tiny_config("qa", world, *LUMA, "train.pretrain_video_batch=3", "train.pretrain_video_frames=2",
                      "train.pretrain_said_labels=true", "train.pretrain_unsaid_weight=0.5")
    records = split_records(load_manifest(world), "train")
    stamps, _ = prepare(records, cfg)
    model = build_model(cfg, vocab=["<pad>", "<unk>", "<bos>", "<eos>"], num_outputs=3)
    seen, progress = [], []
    trunk = model.video.trunk_images
    model.video.trunk_images = lambda x: (seen.append(x.shape[0]), trunk(x))[1]
    pretrain_frame_encoder(model, cfg, records, stamps, epochs=2,
                           on_progress=lambda done, total: progress.append(total))
    steps = -(-len(records) // 3)
    assert progress == [2 * steps] * (2 * steps)
    assert seen[0] == 3 * 2 and sum(seen) == 2 * 2 * len(records)  # 3 videos a step, 2 frames each


def test_pretraining_settings_are_checked_at_load():
    for key, value, reason in (("pretrain_video_batch", "0", "must be at least 1, got 0"),
                               ("pretrain_video_frames", "-1", "must be at least 1, got -1"),
                               ("pretrain_unsaid_weight", "0", r"must be in \(0, 1\], got 0.0"),
                               ("pretrain_unsaid_weight", "1.5", r"must be in \(0, 1\], got 1.5")):
        with pytest.raises(ConfigError, match=rf"^train\.{key}: {reason}$"):
            load_config("qa", None, [f"train.{key}={value}"])


def test_fit_pretrains_once_and_keeps_to_the_time_cap(world, tmp_path):
    out = tmp_path / "run"
    cfg = tiny_config("qa", world, "train.epochs=1", "train.batch_size=2", "train.pretrain_video_epochs=2",
                      "train.max_minutes=5")
    fit(cfg, out)
    note = json.loads((out / "pretrain.json").read_text())
    assert note["epochs"] == 2 and note["words"] > 0 and note["seconds"] >= 0
    saved = load_checkpoint(out / "last.pt")["config"]["train"]
    assert saved["max_minutes"] == pytest.approx(5 - note["seconds"] / 60)  # the loop got what was left
    # a resumed run does not pre-train again: its weights already hold the result
    fit(tiny_config("qa", world, "train.epochs=2", "train.batch_size=2", "train.pretrain_video_epochs=2",
                    "train.max_minutes=5"), out, resume=True)
    assert json.loads((out / "pretrain.json").read_text()) == note
