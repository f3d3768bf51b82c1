"""The summarize head: its loss ranks frames, it overfits a tiny batch, and it refuses a fusion
that does not keep frame tokens first."""

from __future__ import annotations

import pytest
import torch

from duomo.batch import Fused, VideoBatch
from duomo.config import ConfigError, load_config
from duomo.models import build
from duomo.models.heads.summarize import SummarizeHead, window_mean

B, T, D = 3, 6, 16


def _batch(importance: torch.Tensor) -> VideoBatch:
    return VideoBatch(video_ids=[str(i) for i in range(len(importance))],
                      frame_mask=torch.ones(importance.shape, dtype=torch.bool), importance=importance)


def _fit(head: SummarizeHead, fused: Fused, batch: VideoBatch, steps: int = 300) -> tuple[float, float, torch.Tensor]:
    """Adam on one batch -> (first loss, last loss, predicted importance (B, T) in eval mode)."""
    optimizer = torch.optim.Adam(head.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        loss = head.loss(head(fused, batch), batch)
        losses.append(float(loss.detach()))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    head.eval()
    with torch.no_grad():
        return losses[0], losses[-1], torch.tensor(head.predict(head(fused, batch)))


def test_head_overfits_a_tiny_batch_and_ranks_frames_like_the_targets():
    torch.manual_seed(0)
    head = SummarizeHead(dim=D, num_heads=2, dropout=0.0)
    tokens = torch.randn(B, T + 2, D)  # T frame tokens, then 2 sound tokens
    fused = Fused(tokens=tokens, mask=torch.ones(B, T + 2, dtype=torch.bool), pooled=tokens.mean(dim=1))
    importance = torch.tensor([[0.1, 0.9, 0.5, 0.2, 0.3, 0.7],
                               [0.8, 0.1, 0.0, 0.6, 0.2, 0.4],
                               [0.2, 0.3, 0.9, 0.8, 0.1, 0.5]])
    batch = _batch(importance)
    first, last, predicted = _fit(head, fused, batch)
    # soft targets: the cross-entropy cannot reach 0, only their entropy (about 0.49 here)
    assert last < first - 0.2
    assert torch.equal(predicted.argsort(dim=1), importance.argsort(dim=1))
    assert (predicted - importance).abs().max() < 0.1


def test_padding_frames_get_no_score_and_no_loss():
    head = SummarizeHead(dim=D, num_heads=2).eval()
    tokens = torch.randn(1, T, D)
    mask = torch.tensor([[True] * 4 + [False] * 2])
    batch = VideoBatch(video_ids=["a"], frame_mask=mask, importance=torch.rand(1, T))
    out = head(Fused(tokens=tokens, mask=mask, pooled=tokens[:, :4].mean(dim=1)), batch)
    assert torch.isinf(out.logits[0, 4:]).all() and torch.isfinite(out.logits[0, :4]).all()
    assert len(head.predict(out)[0]) == 4
    changed = VideoBatch(video_ids=["a"], frame_mask=mask, importance=batch.importance.clone())
    changed.importance[0, 4:] = 1 - changed.importance[0, 4:]
    assert torch.equal(head.loss(out, batch), head.loss(out, changed))


def test_loss_is_lower_when_the_order_is_right():
    head = SummarizeHead(dim=D, rank_weight=1.0)
    batch = _batch(torch.tensor([[0.1, 0.5, 0.9]]))
    fused = Fused(tokens=torch.zeros(1, 3, D), mask=torch.ones(1, 3, dtype=torch.bool), pooled=torch.zeros(1, D))
    right = type(head(fused, batch))(logits=torch.tensor([[-2.0, 0.0, 2.0]]), fused=fused)
    wrong = type(right)(logits=torch.tensor([[2.0, 0.0, -2.0]]), fused=fused)
    assert head.loss(right, batch) < head.loss(wrong, batch)


def test_summarize_needs_frame_tokens_first():
    with pytest.raises(ConfigError, match="model.fusion.name: the summarize head reads the frame tokens first"):
        build.check(load_config("summarize", None, ["model.fusion=concat"]))
    with pytest.raises(ConfigError, match="model.temporal.name: the summarize head needs one token per frame"):
        build.check(load_config("summarize", None, ["model.temporal=mean"]))


def test_window_mean_averages_the_valid_entries_of_each_window():
    values = torch.tensor([[1.0, 3.0, 5.0, 10.0, float("-inf")]])
    mask = torch.tensor([[True, True, True, True, False]])
    window = torch.tensor([[0.0, 0.0, 1.0, 1.0, 1.0]])
    out = window_mean(values, mask, window)
    assert out[0, :4].tolist() == [2.0, 2.0, 7.5, 7.5]
    assert out[0, 4] == float("-inf")


def test_frames_of_one_second_share_one_score_and_learn_per_second_targets():
    """label_sec=1: a 3 s video sampled at 6 frames (0.25 s, 0.75 s, ...) scores seconds, not frames."""
    torch.manual_seed(0)
    head = SummarizeHead(dim=D, num_heads=2, dropout=0.0)
    tokens = torch.randn(2, 6, D)
    fused = Fused(tokens=tokens, mask=torch.ones(2, 6, dtype=torch.bool), pooled=tokens.mean(dim=1))
    per_second = torch.tensor([[0.2, 0.9, 0.4], [0.7, 0.1, 0.5]])
    batch = _batch(per_second.repeat_interleave(2, dim=1))
    batch.frame_times = ((torch.arange(6) + 0.5) / 6 * 3.0).repeat(2, 1)
    _, _, predicted = _fit(head, fused, batch)
    assert torch.equal(predicted[:, 0::2], predicted[:, 1::2])  # both frames of a second agree
    assert torch.equal(predicted[:, 0::2].argsort(dim=1), per_second.argsort(dim=1))
    assert (predicted[:, 0::2] - per_second).abs().max() < 0.1
    with pytest.raises(ConfigError, match="label_sec"):
        SummarizeHead(dim=D, label_sec=-1.0)
