"""collate: VideoItems -> one VideoBatch, exact tensors on tiny hand-made items."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from duomo.data.collate import collate
from duomo.data.datasets import Row, VideoItem
from duomo.data.media import Media

T, S, M = 2, 4, 3


def frames(seed: int) -> np.ndarray:
    """(T, S, S, 3) uint8 with distinct values everywhere, including 0 and 255."""
    values = (np.arange(T * S * S * 3) * 7 + seed) % 256
    values[0] = 0
    values[-1] = 255
    return values.reshape(T, S, S, 3).astype(np.uint8)


def item(video_id: str, rows: list[Row], *, seed: int = 0, mel_len: int | None = 2,
         features: np.ndarray | None = None) -> VideoItem:
    mel = None if mel_len is None else (np.arange(mel_len * M).reshape(mel_len, M) + 10 * seed).astype(np.float16)
    pixels = None if features is not None else frames(seed)
    return VideoItem(video_id, Media(frames=pixels, mel=mel), features, rows)


def test_frames_scaled_to_unit_range_and_permuted():
    items = [item("a", [Row()], seed=0), item("b", [Row()], seed=1)]
    batch = collate(items, task="classify")
    assert batch.frames.shape == (2, T, 3, S, S) and batch.frames.dtype == torch.float32
    expected = np.stack([frames(0), frames(1)]).transpose(0, 1, 4, 2, 3).astype(np.float32) / 255.0
    np.testing.assert_array_equal(batch.frames.numpy(), expected)
    assert batch.frames[0, 0, 0, 0, 0] == 0.0 and batch.frames[1, -1, -1, -1, -1] == 1.0
    # pixel (y=1, x=2) of frame 1, channel 2 of video b
    assert batch.frames[1, 1, 2, 1, 2] == float(frames(1)[1, 1, 2, 2]) / 255.0
    assert batch.frame_mask.dtype == torch.bool and batch.frame_mask.shape == (2, T) and batch.frame_mask.all()
    assert batch.features is None
    assert batch.video_ids == ["a", "b"]


def test_rows_map_each_row_to_its_video():
    items = [item("a", [Row(text_ids=[5]), Row(text_ids=[6])]), item("b", [Row(text_ids=[7])]),
             item("c", [Row(text_ids=[8]), Row(text_ids=[9]), Row(text_ids=[10])])]
    batch = collate(items, task="qa", num_outputs=4)
    assert batch.rows.tolist() == [0, 0, 1, 2, 2, 2]
    assert batch.rows.dtype == torch.long
    assert batch.num_rows == 6
    assert batch.text_ids[:, 0].tolist() == [5, 6, 7, 8, 9, 10]


def test_qa_text_padded_with_mask_labels_and_types():
    rows = [Row(text_ids=[5, 6, 7], label=2, qa_type="color"), Row(text_ids=[8], label=-100, qa_type="count")]
    batch = collate([item("a", rows[:1]), item("b", rows[1:])], task="qa", num_outputs=4)
    assert batch.text_ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch.text_mask.tolist() == [[True, True, True], [True, False, False]]
    assert batch.text_ids.dtype == torch.long and batch.text_mask.dtype == torch.bool
    assert batch.labels.tolist() == [2, -100] and batch.labels.dtype == torch.long
    assert batch.qa_types == ["color", "count"]
    assert batch.turn_idx == [0, 0]
    assert batch.target_ids is None


def test_choice_mask_only_on_the_choices_of_multiple_choice_rows():
    rows = [Row(text_ids=[5], label=1, choices=[1, 3]), Row(text_ids=[5], label=0), Row(text_ids=[5], label=4,
                                                                                          choices=[4, 0])]
    batch = collate([item("a", rows)], task="qa", num_outputs=5)
    assert batch.choice_mask.dtype == torch.bool
    assert batch.choice_mask.tolist() == [
        [False, True, False, True, False],
        [True, True, True, True, True],
        [True, False, False, False, True],
    ]


def test_dialog_turns():
    rows = [Row(text_ids=[5], label=0, turn_idx=0, qa_type="turn1"), Row(text_ids=[5, 4, 6], label=1, turn_idx=1,
                                                                          qa_type="turn2")]
    batch = collate([item("a", rows)], task="dialog", num_outputs=2)
    assert batch.turn_idx == [0, 1]
    assert batch.qa_types == ["turn1", "turn2"]
    assert batch.text_mask.tolist() == [[True, False, False], [True, True, True]]
    assert batch.choice_mask.all()


def test_audio_padded_with_mask():
    items = [item("a", [Row()], mel_len=2, seed=0), item("b", [Row()], mel_len=4, seed=1)]
    batch = collate(items, task="classify")
    assert batch.audio.shape == (2, 4, M) and batch.audio.dtype == torch.float32
    assert batch.audio_mask.tolist() == [[True, True, False, False], [True, True, True, True]]
    np.testing.assert_array_equal(batch.audio[0, :2].numpy(), np.arange(6).reshape(2, 3))
    assert (batch.audio[0, 2:] == 0).all()
    np.testing.assert_array_equal(batch.audio[1].numpy(), np.arange(12).reshape(4, 3) + 10)


def test_no_audio():
    batch = collate([item("a", [Row()], mel_len=None)], task="classify")
    assert batch.audio is None and batch.audio_mask is None


def test_classify_single_label():
    batch = collate([item("a", [Row(label=2, multi_hot=[2, 0])]), item("b", [Row(label=0, multi_hot=[0])])],
                    task="classify", num_outputs=3)
    assert batch.labels.tolist() == [2, 0] and batch.labels.dtype == torch.long
    assert batch.label_sets.tolist() == [[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]]  # every label of the video
    assert batch.text_ids is None


def test_classify_multi_label_is_multi_hot():
    items = [item("a", [Row(label=2, multi_hot=[2, 0])]), item("b", [Row(label=1, multi_hot=[1])]),
             item("c", [Row(label=-100, multi_hot=[])])]
    batch = collate(items, task="classify", num_outputs=4, multi_label=True)
    assert batch.labels.dtype == torch.float32
    assert batch.labels.tolist() == [[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]


def test_caption_train_targets_padded():
    rows = [Row(target_ids=[2, 5, 6, 3], references=["x y"]), Row(target_ids=[2, 7, 3], references=["x y"])]
    batch = collate([item("a", rows)], task="caption")
    assert batch.target_ids.tolist() == [[2, 5, 6, 3], [2, 7, 3, 0]]
    assert batch.target_mask.tolist() == [[True] * 4, [True, True, True, False]]
    assert batch.references == [["x y"], ["x y"]]
    assert batch.rows.tolist() == [0, 0]


def test_caption_eval_has_references_and_no_targets():
    batch = collate([item("a", [Row(references=["p", "q"])]), item("b", [Row(references=["r"])])], task="caption")
    assert batch.target_ids is None and batch.target_mask is None
    assert batch.references == [["p", "q"], ["r"]]


def test_features_instead_of_frames():
    feats = [np.arange(T * 5, dtype=np.float32).reshape(T, 5), np.ones((T, 5), dtype=np.float16)]
    items = [item("a", [Row(label=1)], features=feats[0]), item("b", [Row(label=0)], features=feats[1])]
    batch = collate(items, task="classify", num_outputs=2)
    assert batch.frames is None
    assert batch.features.shape == (2, T, 5) and batch.features.dtype == torch.float32
    np.testing.assert_array_equal(batch.features.numpy(), np.stack(feats).astype(np.float32))
    assert batch.frame_mask.tolist() == [[True] * T, [True] * T]
    assert batch.audio.shape == (2, 2, M)


@pytest.mark.parametrize("task", ["qa", "dialog", "caption", "classify"])
def test_batch_moves_to_a_device(task):
    rows = [Row(text_ids=[5], label=0, target_ids=[2, 3])]
    batch = collate([item("a", rows)], task=task, num_outputs=1).to("cpu")
    assert batch.frames.device.type == "cpu" and batch.num_rows == 1


def test_summarize_importance_and_frame_times_at_each_frame():
    """T = 2 frames over 3 s: frame 0 at 0.75 s (second 0), frame 1 at 2.25 s (second 2)."""
    batch = collate([item("a", [Row(importance=[0.1, 0.5, 0.9], duration_sec=3.0)]),
                     item("b", [Row(duration_sec=1.0)])], task="summarize")
    assert batch.frame_times.tolist() == [[0.75, 2.25], [0.25, 0.75]]
    assert batch.importance.flatten().tolist() == pytest.approx([0.1, 0.9, 0.0, 0.0])


def test_cached_sound_tokens_instead_of_the_spectrogram_padded_with_a_mask():
    tokens = [np.arange(6, dtype=np.float16).reshape(3, 2), np.array([[7.0, 8.0]], dtype=np.float16)]
    items = [VideoItem(vid, Media(frames=frames(0), mel=None), None, [Row(label=0)], sound)
             for vid, sound in zip("ab", tokens)]
    batch = collate(items, task="classify", num_outputs=2)
    assert batch.audio is None and batch.sound.dtype == torch.float32
    assert batch.sound.tolist() == [[[0, 1], [2, 3], [4, 5]], [[7, 8], [0, 0], [0, 0]]]
    assert batch.sound_mask.tolist() == [[True, True, True], [True, False, False]]


def test_qa_grounding_and_pair_grounding_spans_as_fractions_nan_elsewhere():
    """A grounding row's span and a pair grounding row's two spans, as fractions of the video's
    duration (clipped to [0, 1]); nan on the rows without them; no slot_spans without pair rows."""
    answer = Row(text_ids=[5], label=1)
    ground = Row(text_ids=[6], span=(1.0, 3.0), duration_sec=4.0)
    pair = Row(text_ids=[7], slot_spans=((2.0, 4.0), (0.0, 5.0)), duration_sec=4.0)
    batch = collate([item("a", [answer, ground]), item("b", [pair])], task="qa", num_outputs=4)
    nan = float("nan")
    torch.testing.assert_close(batch.spans, torch.tensor([[nan, nan], [0.25, 0.75], [nan, nan]]), equal_nan=True)
    torch.testing.assert_close(batch.slot_spans, torch.tensor([[[nan, nan]] * 2, [[nan, nan]] * 2,
                                                              [[0.5, 1.0], [0.0, 1.0]]]), equal_nan=True)
    only_pairs = collate([item("b", [pair])], task="qa", num_outputs=4)
    assert torch.isnan(only_pairs.spans).all() and only_pairs.slot_spans.shape == (1, 2, 2)
    assert collate([item("a", [answer, ground])], task="qa", num_outputs=4).slot_spans is None
