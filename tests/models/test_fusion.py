"""Fusion modules: shapes, empty text, fully padded rows, padding invariance, attention weights,
and that cross-attention really reads the other modality."""

from __future__ import annotations

import pytest
import torch

from duomo.config import ConfigError
from duomo.models.fusion.attention import AttentionFusion
from duomo.models.fusion.concat import ConcatFusion
from duomo.models.fusion.cross_attention import CrossAttentionFusion

D = 16
FUSIONS = {
    "concat": lambda: ConcatFusion(dim=D, num_layers=1, num_heads=2, ff_mult=2),
    "attention": lambda: AttentionFusion(dim=D, hidden_dim=8),
    "cross_attn": lambda: CrossAttentionFusion(dim=D, num_layers=2, num_heads=2, ff_mult=2),
    "cross_attn_self": lambda: CrossAttentionFusion(dim=D, num_layers=2, num_heads=2, ff_mult=2, video_attends=False,
                                                    text_self_attends=True),
}
# extra leading tokens: ConcatFusion puts [CLS] first
NUM_EXTRA = {"concat": 1, "attention": 0, "cross_attn": 0, "cross_attn_self": 0}


def make_inputs(batch_size: int = 2, num_video: int = 5, num_text: int = 3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    video = torch.randn(batch_size, num_video, D, generator=gen)
    text = torch.randn(batch_size, num_text, D, generator=gen)
    video_mask = torch.ones(batch_size, num_video, dtype=torch.bool)
    text_mask = torch.ones(batch_size, num_text, dtype=torch.bool)
    if num_video > 1:
        video_mask[-1, -2:] = False  # the last row has two padded frames
    if num_text > 1:
        text_mask[0, -1] = False
    return video, video_mask, text, text_mask


@pytest.fixture(params=list(FUSIONS))
def name(request):
    return request.param


def build(name: str):
    torch.manual_seed(0)
    return FUSIONS[name]().eval()


@pytest.mark.parametrize("num_text", [3, 0])
def test_shapes(name, num_text):
    fusion = build(name)
    video, video_mask, text, text_mask = make_inputs(num_text=num_text)
    out = fusion(video, video_mask, text, text_mask)
    n = NUM_EXTRA[name] + 5 + num_text
    assert out.tokens.shape == (2, n, D)
    assert out.mask.shape == (2, n) and out.mask.dtype == torch.bool
    assert out.pooled.shape == (2, D)
    # the mask keeps the inputs' masks, in order, after any leading extra token
    expected = torch.cat([video_mask, text_mask], dim=1)
    assert torch.equal(out.mask[:, NUM_EXTRA[name]:], expected)
    assert torch.isfinite(out.tokens).all() and torch.isfinite(out.pooled).all()


@pytest.mark.parametrize("num_text", [3, 0])
def test_fully_padded_video_row_gives_no_nan(name, num_text):
    fusion = build(name).train()  # dropout on, gradients on: the harder case
    video, video_mask, text, text_mask = make_inputs(num_text=num_text)
    video_mask[0] = False
    video.requires_grad_(True)
    out = fusion(video, video_mask, text, text_mask)
    assert torch.isfinite(out.tokens).all() and torch.isfinite(out.pooled).all()
    (out.tokens.sum() + out.pooled.sum()).backward()
    assert torch.isfinite(video.grad).all()
    for param in fusion.parameters():
        assert param.grad is None or torch.isfinite(param.grad).all()


def test_row_without_any_valid_token_gives_no_nan(name):
    fusion = build(name)
    video, video_mask, text, text_mask = make_inputs()
    video_mask[1] = False
    text_mask[1] = False
    out = fusion(video, video_mask, text, text_mask)
    assert torch.isfinite(out.tokens).all() and torch.isfinite(out.pooled).all()


@pytest.mark.parametrize("num_text", [3, 0])
def test_padding_invariance(name, num_text):
    fusion = build(name)
    video, video_mask, text, text_mask = make_inputs(num_text=num_text)
    gen = torch.Generator().manual_seed(1)
    extra_v, extra_t = 3, 2
    padded_video = torch.cat([video, 100 * torch.randn(2, extra_v, D, generator=gen)], dim=1)
    padded_video_mask = torch.cat([video_mask, torch.zeros(2, extra_v, dtype=torch.bool)], dim=1)
    padded_text = torch.cat([text, 100 * torch.randn(2, extra_t, D, generator=gen)], dim=1)
    padded_text_mask = torch.cat([text_mask, torch.zeros(2, extra_t, dtype=torch.bool)], dim=1)
    with torch.no_grad():
        plain = fusion(video, video_mask, text, text_mask)
        padded = fusion(padded_video, padded_video_mask, padded_text, padded_text_mask)
    torch.testing.assert_close(padded.pooled, plain.pooled, atol=1e-5, rtol=0)
    # real tokens ([CLS], video, text) are unchanged too; text now sits after the extra video
    k = NUM_EXTRA[name]
    n = 5
    video_plain, video_padded = plain.tokens[:, : k + n], padded.tokens[:, : k + n]
    text_plain, text_padded = plain.tokens[:, k + n:], padded.tokens[:, k + n + extra_v: k + n + extra_v + num_text]
    vm = plain.mask[:, : k + n]
    torch.testing.assert_close(video_padded[vm], video_plain[vm], atol=1e-5, rtol=0)
    tm = plain.mask[:, k + n:]
    torch.testing.assert_close(text_padded[tm], text_plain[tm], atol=1e-5, rtol=0)


def test_concat_pooled_reads_video_and_text():
    fusion = build("concat")
    video, video_mask, text, text_mask = make_inputs()
    with torch.no_grad():
        base = fusion(video, video_mask, text, text_mask).pooled
        # another row's text / video (a constant shift would vanish in the pre-norm LayerNorms)
        other_text = fusion(video, video_mask, text.flip(0), text_mask.flip(0)).pooled
        other_video = fusion(video.flip(0), video_mask.flip(0), text, text_mask).pooled
    assert not torch.allclose(base, other_text, atol=1e-4)
    assert not torch.allclose(base, other_video, atol=1e-4)


def test_num_heads_must_divide_dim():
    with pytest.raises(ConfigError, match="num_heads"):
        ConcatFusion(dim=D, num_heads=3)
    with pytest.raises(ConfigError, match="num_heads"):
        CrossAttentionFusion(dim=D, num_heads=5)


# --- AttentionFusion ------------------------------------------------------------------------------


def test_attention_weights_sum_to_one_over_valid_tokens():
    fusion = build("attention")
    video, video_mask, text, text_mask = make_inputs()
    video_mask[1] = False  # a row whose only valid tokens are text
    weights = fusion.weights(video, video_mask, text, text_mask)
    mask = torch.cat([video_mask, text_mask], dim=1)
    assert weights.shape == (2, 5 + 3)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2))
    assert (weights[~mask] == 0).all()
    assert (weights[mask] > 0).all()
    # no valid token at all: all zero, not NaN
    empty = fusion.weights(video, torch.zeros_like(video_mask), text, torch.zeros_like(text_mask))
    assert (empty == 0).all()


def test_attention_matches_hand_computation():
    fusion = AttentionFusion(dim=2, hidden_dim=2)
    with torch.no_grad():
        fusion.proj.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        fusion.proj.bias.copy_(torch.tensor([0.0, -1.0]))
        fusion.score.weight.copy_(torch.tensor([[1.0, 1.0]]))
    # one row: video tokens a, b (b padded), text token c
    a, b, c = [0.5, 1.0], [9.0, 9.0], [-1.0, 0.5]
    video = torch.tensor([[a, b]])
    text = torch.tensor([[c]])
    video_mask = torch.tensor([[True, False]])
    text_mask = torch.tensor([[True]])
    # e = tanh(x0) + tanh(2 x1 - 1)
    e_a = torch.tanh(torch.tensor(0.5)) + torch.tanh(torch.tensor(1.0))
    e_c = torch.tanh(torch.tensor(-1.0)) + torch.tanh(torch.tensor(0.0))
    alpha_a = torch.exp(e_a) / (torch.exp(e_a) + torch.exp(e_c))
    alpha_c = 1 - alpha_a
    expected = torch.stack([alpha_a, torch.tensor(0.0), alpha_c]).unsqueeze(0)
    torch.testing.assert_close(fusion.weights(video, video_mask, text, text_mask), expected)

    summed = alpha_a * torch.tensor(a) + alpha_c * torch.tensor(c)
    # LayerNorm with its initial weight 1 / bias 0 over a 2-vector
    centred = summed - summed.mean()
    expected_pooled = centred / torch.sqrt(centred.pow(2).mean() + fusion.norm.eps)
    out = fusion(video, video_mask, text, text_mask)
    torch.testing.assert_close(out.pooled[0], expected_pooled)
    assert torch.equal(out.tokens, torch.cat([video, text], dim=1))


# --- CrossAttentionFusion -------------------------------------------------------------------------


def test_cross_attention_video_reads_text_and_text_reads_video():
    fusion = build("cross_attn")
    video, video_mask, text, text_mask = make_inputs()
    n = video.shape[1]
    with torch.no_grad():
        base = fusion(video, video_mask, text, text_mask)
        other_text = fusion(video, video_mask, text.flip(0), text_mask.flip(0))
        other_video = fusion(video.flip(0), video_mask.flip(0), text, text_mask)
    # new text, same video: the video tokens change
    vm = video_mask
    assert not torch.allclose(base.tokens[:, :n][vm], other_text.tokens[:, :n][vm], atol=1e-4)
    # new video, same text: the text tokens change
    tm = text_mask
    assert not torch.allclose(base.tokens[:, n:][tm], other_video.tokens[:, n:][tm], atol=1e-4)


def test_cross_attention_without_text_matches_fully_masked_text():
    fusion = build("cross_attn")
    video, video_mask, text, text_mask = make_inputs()
    with torch.no_grad():
        no_text = fusion(video, video_mask, text[:, :0], text_mask[:, :0])
        masked_text = fusion(video, video_mask, text, torch.zeros_like(text_mask))
    torch.testing.assert_close(no_text.pooled, masked_text.pooled, atol=1e-5, rtol=0)
    torch.testing.assert_close(no_text.tokens, masked_text.tokens[:, : video.shape[1]], atol=1e-5, rtol=0)


@pytest.mark.parametrize("video_attends", [False, True])
def test_cross_attention_per_video_rows_match_repeated_videos(video_attends):
    """Called with one row per video and ``rows`` (what VideoTextModel does when many questions
    share a video), cross-attention gives what it gives on the videos repeated per row, rows in
    any order and with any number per video; the gradient reaches the video."""
    torch.manual_seed(0)
    fusion = CrossAttentionFusion(dim=D, num_layers=2, num_heads=2, ff_mult=2, video_attends=video_attends).eval()
    video, video_mask, _, _ = make_inputs(batch_size=3)
    video_mask[0, 1] = False
    rows = torch.tensor([2, 0, 0, 2, 1, 2])
    _, _, text, text_mask = make_inputs(batch_size=len(rows), num_text=4, seed=1)
    text_mask[3, 1:] = False
    video.requires_grad_(True)
    by_row = fusion(video, video_mask, text, text_mask, rows=rows)
    repeated = fusion(video[rows], video_mask[rows], text, text_mask)
    torch.testing.assert_close(by_row.tokens, repeated.tokens, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(by_row.pooled, repeated.pooled, atol=1e-5, rtol=1e-5)
    assert torch.equal(by_row.mask, repeated.mask)
    (by_row.pooled * torch.randn(by_row.pooled.shape)).sum().backward()  # a LayerNorm's plain sum has no gradient
    assert video.grad is not None and video.grad[1].abs().sum() > 0


@pytest.mark.parametrize("self_attends", [False, True])
def test_cross_attention_text_words_read_each_other_only_with_text_self_attends(self_attends):
    """Without ``text_self_attends`` (and with ``video_attends=False``) a word's fused token depends
    on that word and the video alone; with it, on the other words too; padded words never count."""
    torch.manual_seed(0)
    fusion = CrossAttentionFusion(dim=D, num_layers=2, num_heads=2, ff_mult=2, video_attends=False,
                                  text_self_attends=self_attends).eval()
    video, video_mask, text, text_mask = make_inputs()
    n = video.shape[1]
    other = text.clone()
    other[:, 1] = torch.randn(2, D, generator=torch.Generator().manual_seed(5))  # word 1 differs
    padded = text.clone()
    padded[0, -1] = torch.randn(D, generator=torch.Generator().manual_seed(6))  # row 0's last word is padding
    with torch.no_grad():
        base = fusion(video, video_mask, text, text_mask).tokens
        moved = fusion(video, video_mask, other, text_mask).tokens
        unmoved = fusion(video, video_mask, padded, text_mask).tokens
    assert torch.allclose(base[:, n + 0], moved[:, n + 0], atol=1e-6) != self_attends
    torch.testing.assert_close(unmoved[0, : n + 2], base[0, : n + 2])
