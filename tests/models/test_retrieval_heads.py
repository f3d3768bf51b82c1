"""Behaviour of the retrieval heads: the dual encoder's contrastive loss (hand-computed on a tiny
case, several captions per video, identical captions of two videos) and ranking after overfitting;
the moment head's frame bins, decoding (start <= end) and overfitting to target spans."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from duomo.batch import Fused, HeadOutput, VideoBatch
from duomo.config import ConfigError
from duomo.models.heads.moment import MomentHead, span_bins
from duomo.models.heads.retrieval import RetrievalHead
from duomo.models.layers import frame_change
from duomo.text.tokenize import PAD
from tests.models.test_heads import overfit

D = 16


def retrieval_batch(num_videos: int, rows: list[int], ids: list[list[int]]) -> VideoBatch:
    text_ids = torch.tensor(ids)
    return VideoBatch(video_ids=[f"v{i}" for i in range(num_videos)],
                      frame_mask=torch.ones(num_videos, 1, dtype=torch.bool), rows=torch.tensor(rows),
                      text_ids=text_ids, text_mask=text_ids != PAD)


def out_with(logits: list[list[float]]) -> HeadOutput:
    logits = torch.tensor(logits)
    fused = Fused(tokens=torch.zeros(logits.shape[0], 1, D), mask=torch.ones(logits.shape[0], 1, dtype=torch.bool),
                  pooled=torch.zeros(logits.shape[0], D))
    return HeadOutput(logits=logits, fused=fused)


def test_contrastive_loss_matches_hand_computation():
    head = RetrievalHead(dim=D)
    # rows 0 and 1 are captions of video 0, row 2 of video 1
    batch = retrieval_batch(2, [0, 0, 1], [[5, 6], [7, PAD], [8, 9]])
    logits = [[2.0, 0.0], [1.0, 1.0], [0.0, 3.0]]
    lse = lambda *xs: math.log(sum(math.exp(x) for x in xs))  # noqa: E731
    text_to_video = ((lse(2, 0) - 2) + (lse(1, 1) - 1) + (lse(0, 3) - 3)) / 3
    # video 0's positives are rows 0 and 1; video 1's is row 2
    video_to_text = ((lse(2, 1, 0) - lse(2, 1)) + (lse(0, 1, 3) - 3)) / 2
    loss = head.loss(out_with(logits), batch)
    assert loss.item() == pytest.approx((text_to_video + video_to_text) / 2, rel=1e-6)


def test_the_same_caption_of_two_videos_is_no_negative():
    head = RetrievalHead(dim=D)
    batch = retrieval_batch(2, [0, 1], [[5, 6], [5, 6]])  # both videos have the caption "5 6"
    logits = [[4.0, 4.0], [4.0, 4.0]]
    # each row's positives are both videos (and each video's are both rows): nothing to push apart
    assert head.loss(out_with(logits), batch).item() == pytest.approx(0.0, abs=1e-6)
    different = retrieval_batch(2, [0, 1], [[5, 6], [5, 7]])
    assert head.loss(out_with(logits), different).item() == pytest.approx(math.log(2), rel=1e-6)


def test_forward_gives_scaled_cosine_similarities_per_video():
    torch.manual_seed(0)
    head = RetrievalHead(dim=D, embed_dim=8, temperature=0.5)
    batch = retrieval_batch(2, [0, 0, 1], [[5], [6], [7]])
    gen = torch.Generator().manual_seed(0)
    video = torch.randn(2, 3, D, generator=gen)
    fused = Fused(tokens=video[batch.rows], mask=torch.ones(3, 3, dtype=torch.bool), pooled=torch.randn(3, D, generator=gen))
    out = head(fused, batch)
    assert out.logits.shape == (3, 2)
    text, per_row_video = head.embed(out)
    assert torch.allclose(text.norm(dim=-1), torch.ones(3)) and torch.allclose(per_row_video.norm(dim=-1), torch.ones(3))
    expected = 2.0 * text @ per_row_video[[0, 2]].T  # scale = 1 / temperature
    torch.testing.assert_close(out.logits, expected)
    assert out.logits.abs().max() <= 2.0 + 1e-5


def test_pool_heads_each_weigh_the_valid_tokens_on_their_own():
    """``pool_heads``: the projection reads each head's softmax-weighted sum of the valid video
    tokens, side by side (hand-computed from the heads' scores); a padded token gets no weight."""
    torch.manual_seed(0)
    head = RetrievalHead(dim=D, embed_dim=8, pool_heads=2)
    tokens = torch.randn(1, 3, D, generator=torch.Generator().manual_seed(2))
    mask = torch.tensor([[True, True, False]])
    read = []
    head.video_proj.register_forward_hook(lambda module, args, out: read.append(args[0]))
    head.embed_video(tokens, mask)
    scores = head.pool_score(tokens[0, :2])  # (2 valid tokens, 2 heads)
    expected = torch.cat([torch.softmax(scores[:, h], dim=0) @ tokens[0, :2] for h in range(2)])
    torch.testing.assert_close(read[0][0], expected)
    assert not torch.allclose(expected[:D], expected[D:])  # the two heads weigh differently
    with pytest.raises(ConfigError, match="pool_heads"):
        RetrievalHead(dim=D, pool="mean", pool_heads=2)
    with pytest.raises(ConfigError, match=r"^model\.head\.args: matcher_layers >= 0, match_negatives >= 1"):
        RetrievalHead(dim=D, matcher_layers=1, match_negatives=0)


@pytest.mark.parametrize("pool_heads", [1, 3])
def test_retrieval_head_overfits_to_rank_each_caption_first(pool_heads):
    torch.manual_seed(0)
    head = RetrievalHead(dim=D, embed_dim=8, pool_heads=pool_heads)
    gen = torch.Generator().manual_seed(1)
    num_videos = 5
    rows = torch.tensor([0, 0, 1, 2, 2, 3, 4])
    video = torch.randn(num_videos, 3, D, generator=gen)
    fused = Fused(tokens=video[rows], mask=torch.ones(len(rows), 3, dtype=torch.bool),
                  pooled=torch.randn(len(rows), D, generator=gen))
    batch = retrieval_batch(num_videos, rows.tolist(), [[5 + i] for i in range(len(rows))])

    def ranked_first(h) -> bool:
        return [ranking[0] for ranking in h.predict(h(fused, batch))] == rows.tolist()

    overfit(head, fused, batch, ranked_first)


def test_span_bins_over_each_rows_valid_frames():
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    spans = torch.tensor([[0.3, 0.6], [0.3, 0.6]])
    start, end = span_bins(spans, mask)
    # 4 frames: 0.3 falls in frame 1 ([0.25, 0.5)), 0.6 in frame 2; 2 frames: frames 0 and 1
    assert start.tolist() == [1, 0] and end.tolist() == [2, 1]
    # an end exactly on a frame edge stays in the frame before it; an empty span keeps end >= start
    start, end = span_bins(torch.tensor([[0.0, 0.5], [0.5, 0.5]]), mask[:1].expand(2, 4))
    assert start.tolist() == [0, 2] and end.tolist() == [1, 2]


def test_moment_predict_picks_the_best_ordered_pair():
    head = MomentHead(dim=D, num_heads=2)
    logits = torch.full((1, 4, 3), -5.0)
    logits[0, 2, 0] = 5.0  # start most likely at frame 2
    logits[0, 0, 1] = 4.0  # end most likely at frame 0: before the start, so not allowed
    logits[0, 3, 1] = 3.0  # the best end at or after frame 2
    (start, end, p), = head.predict(HeadOutput(logits=logits, fused=None))
    assert (start, end) == (0.5, 1.0)
    log_start = torch.log_softmax(logits[0, :, 0], 0)[2]
    log_end = torch.log_softmax(logits[0, :, 1], 0)[3]
    assert p == pytest.approx(float((log_start + log_end).exp()), rel=1e-5)
    # padding frames (-inf start and end) are never picked: 2 valid frames of 4
    logits[0, 2:, :2] = float("-inf")
    (start, end, _), = head.predict(HeadOutput(logits=logits, fused=None))
    assert 0.0 <= start < end <= 1.0 and end in (0.5, 1.0)


@pytest.mark.parametrize("num_layers,motion_delta", [(0, False), (1, False), (1, True)])
def test_moment_head_overfits_to_the_target_spans(num_layers, motion_delta):
    torch.manual_seed(0)
    head = MomentHead(dim=D, num_layers=num_layers, num_heads=2, dropout=0.0, motion_delta=motion_delta)
    gen = torch.Generator().manual_seed(0)
    num_frames = 8
    tokens = torch.randn(3, num_frames + 2, D, generator=gen)  # 8 frame tokens, then 2 others
    mask = torch.ones(3, num_frames + 2, dtype=torch.bool)
    mask[2, 6:num_frames] = False  # row 2's video has 6 frames
    fused = Fused(tokens=tokens, mask=mask, pooled=torch.randn(3, D, generator=gen))
    spans = torch.tensor([[0.0, 0.25], [0.5, 1.0], [1 / 6, 0.5]])
    batch = VideoBatch(video_ids=["a", "b", "c"], frame_mask=torch.ones(3, num_frames, dtype=torch.bool),
                       spans=spans)

    def exact(h) -> bool:
        predicted = [(s, e) for s, e, _ in h.predict(h(fused, batch))]
        return all(s == pytest.approx(a) and e == pytest.approx(b) for (s, e), (a, b) in zip(predicted, spans.tolist()))

    overfit(head, fused, batch, exact, max_steps=300)


def test_moment_head_reads_the_frame_tokens_after_a_cls_token():
    """With ``Fused.first_frame`` 1 (concat's [CLS] token first) the head reads tokens 1..T: changing
    the [CLS] token changes nothing, changing frame 0's token changes the logits."""
    torch.manual_seed(0)
    head = MomentHead(dim=D, num_layers=1, num_heads=2, dropout=0.0).eval()
    num_frames = 4
    tokens = torch.randn(2, 1 + num_frames + 3, D)  # [CLS], 4 frames, 3 sound tokens
    fused = Fused(tokens=tokens, mask=torch.ones(2, 8, dtype=torch.bool), pooled=torch.randn(2, D), first_frame=1)
    batch = VideoBatch(video_ids=["a", "b"], frame_mask=torch.ones(2, num_frames, dtype=torch.bool))
    with torch.no_grad():
        base = head(fused, batch).logits
        assert base.shape == (2, num_frames, 3)
        cls = tokens.clone()
        cls[:, 0] += 5.0
        torch.testing.assert_close(head(Fused(cls, fused.mask, fused.pooled, 1), batch).logits, base)
        frame = tokens.clone()
        frame[:, 1] += 5.0
        assert not torch.allclose(head(Fused(frame, fused.mask, fused.pooled, 1), batch).logits, base)


def test_frame_change_is_the_difference_to_the_frame_before_within_valid_frames():
    frames = torch.tensor([[[1.0], [4.0], [9.0], [7.0]]])
    mask = torch.tensor([[True, True, True, False]])
    assert frame_change(frames, mask)[0, :, 0].tolist() == [0.0, 3.0, 5.0, 0.0]


# --- the matcher (re-ranking) ---------------------------------------------------------------------


def with_words(video: torch.Tensor, words: torch.Tensor, rows: torch.Tensor) -> Fused:
    """The separate fusion's rows with ``keep_text``: each row's video tokens, then its words."""
    tokens = torch.cat([video[rows], words], dim=1)
    return Fused(tokens=tokens, mask=torch.ones(tokens.shape[:2], dtype=torch.bool), pooled=words.mean(1),
                 text_tokens=words.shape[1])


def test_the_matcher_binds_what_one_mean_vector_cannot():
    """Video 0 shows a red star and a blue circle, video 1 a red circle and a blue star: each
    object one token (its colour's vector plus its shape's). Their mean tokens are equal, so the
    dual encoder (mean pooling) ties them for every caption; the matcher, its caption's word
    (a colour and a shape, as a contextual encoder gives) attending over each video's tokens,
    learns to put each caption's own video first."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(3)
    colour, shape = torch.randn(2, D, generator=gen), torch.randn(2, D, generator=gen)  # red, blue; star, circle
    video = torch.stack([torch.stack([colour[0] + shape[0], colour[1] + shape[1]]),
                         torch.stack([colour[0] + shape[1], colour[1] + shape[0]])])  # (2 videos, 2 objects, D)
    pairs = [(0, 0, 0), (1, 1, 0), (0, 1, 1), (1, 0, 1)]  # (colour, shape, its video)
    words = torch.stack([(colour[c] + shape[s]).unsqueeze(0) for c, s, _ in pairs])  # (4 rows, 1 word, D)
    rows = torch.tensor([v for _, _, v in pairs])
    fused = with_words(video, words, rows)
    batch = retrieval_batch(2, rows.tolist(), [[5 + i] for i in range(4)])
    head = RetrievalHead(dim=D, embed_dim=8, pool="mean", matcher_layers=1, match_negatives=1, match_dropout=0.0)
    out = head(fused, batch)
    assert torch.allclose(out.logits[:, 0], out.logits[:, 1])  # the dual encoder cannot tell them apart

    def matcher_right(h) -> bool:
        own = h.match(words, torch.ones(4, 1, dtype=torch.bool), video, torch.ones(2, 2, dtype=torch.bool), rows=rows)
        other = h.match(words, torch.ones(4, 1, dtype=torch.bool), video, torch.ones(2, 2, dtype=torch.bool),
                        rows=1 - rows)
        return bool((own > other + 1.0).all())

    assert not matcher_right(head)
    overfit(head, fused, batch, matcher_right)


def test_the_matcher_never_draws_a_positive_as_a_negative():
    """Rows 0 and 2 have the same caption, so video 2 is no negative of row 0 (nor video 0 of row
    2): each row's candidates are its own video, then videos that are no positive of it."""
    torch.manual_seed(0)
    head = RetrievalHead(dim=D, embed_dim=8, matcher_layers=1, match_negatives=5)
    gen = torch.Generator().manual_seed(1)
    rows = torch.tensor([0, 1, 2, 3])
    video, words = torch.randn(4, 3, D, generator=gen), torch.randn(4, 2, D, generator=gen)
    batch = retrieval_batch(4, rows.tolist(), [[5, 6], [7, 8], [5, 6], [9, PAD]])
    seen = []
    match = head.match
    head.match = lambda *args, rows=None, **kw: seen.append(rows) or match(*args, rows=rows, **kw)
    for _ in range(20):  # negatives are drawn at random: every draw keeps to the rule
        loss = head.loss(head(with_words(video, words, rows), batch), batch)
        assert torch.isfinite(loss) and loss > 0
    for candidates in seen:
        # two negatives each: row 0 and 2 have only two videos that are no positive of theirs
        candidates = candidates.view(4, 3)
        assert candidates[:, 0].tolist() == [0, 1, 2, 3]
        assert set(candidates[0, 1:].tolist()) == {1, 3} and set(candidates[2, 1:].tolist()) == {1, 3}
        for r in (1, 3):
            assert r not in candidates[r, 1:].tolist() and len(set(candidates[r, 1:].tolist())) == 2


def test_the_matcher_loss_is_cross_entropy_of_the_own_video():
    """One negative per row, two videos: the loss adds mean -log softmax(own, other) of the match
    scores (weight 0.5) to the contrastive loss."""
    torch.manual_seed(0)
    head = RetrievalHead(dim=D, embed_dim=8, matcher_layers=1, match_weight=0.5)
    gen = torch.Generator().manual_seed(2)
    rows = torch.tensor([0, 1])
    video, words = torch.randn(2, 3, D, generator=gen), torch.randn(2, 2, D, generator=gen)
    batch = retrieval_batch(2, rows.tolist(), [[5], [6]])
    head.eval()  # no dropout
    out = head(with_words(video, words, rows), batch)
    mask2, mask3 = torch.ones(2, 2, dtype=torch.bool), torch.ones(2, 3, dtype=torch.bool)
    own = head.match(words, mask2, video, mask3, rows=rows)
    other = head.match(words, mask2, video, mask3, rows=1 - rows)
    expected_match = (torch.logsumexp(torch.stack([own, other], 1), 1) - own).mean()
    plain = RetrievalHead(dim=D, embed_dim=8)
    plain.load_state_dict(head.state_dict(), strict=False)
    expected = plain.loss(out, batch) + 0.5 * expected_match
    torch.testing.assert_close(head.loss(out, batch), expected)


def test_the_matcher_loss_in_eval_mode_takes_the_hardest_negatives():
    """Validation's loss is the same every time: each row's most similar other videos."""
    torch.manual_seed(0)
    head = RetrievalHead(dim=D, embed_dim=8, matcher_layers=1, match_negatives=1)
    gen = torch.Generator().manual_seed(4)
    rows = torch.tensor([0, 1, 2])
    video, words = torch.randn(3, 3, D, generator=gen), torch.randn(3, 2, D, generator=gen)
    batch = retrieval_batch(3, rows.tolist(), [[5], [6], [7]])
    head.eval()
    out = head(with_words(video, words, rows), batch)
    seen = []
    match = head.match
    head.match = lambda *args, rows=None, **kw: seen.append(rows) or match(*args, rows=rows, **kw)
    losses = {round(head.loss(out, batch).item(), 6) for _ in range(5)}
    assert len(losses) == 1
    logits = out.logits.clone()
    logits[rows, rows] = float("-inf")
    assert seen[0].view(3, 2)[:, 1].tolist() == logits.argmax(1).tolist()


# --- the matcher looking inside the frames (match_places) -------------------------------------------


def test_match_places_features_by_hand():
    """One pair, two words (the second padding), one valid frame of two places and one padded
    frame: the word's query scores the places by <q, LN(place)> / sqrt(D); the places found are
    their softmax-weighted sum, the agreement that times q, the best match the higher score; the
    padded word and frame count for nothing."""
    torch.manual_seed(0)
    head = RetrievalHead(dim=D, embed_dim=8, matcher_layers=1, match_places=True)
    gen = torch.Generator().manual_seed(5)
    words, places = torch.randn(1, 2, D, generator=gen), torch.randn(1, 2, 2, D, generator=gen)
    found, agree, best = head.look_inside(words, torch.tensor([[True, False]]), places, torch.tensor([[True, False]]))
    with torch.no_grad():
        q = head.place_query(words[0, 0])
        normed = torch.nn.functional.layer_norm(places[0, 0], (D,), head.place_norm.weight, head.place_norm.bias)
        scores = normed @ q / math.sqrt(D)
        weights = torch.softmax(scores, dim=0)
        expected = weights @ normed
    torch.testing.assert_close(found[0], expected)
    torch.testing.assert_close(agree[0], expected * q)
    torch.testing.assert_close(best[0, 0], scores.max())
    nothing = head.look_inside(words, torch.tensor([[True, False]]), places, torch.tensor([[False, False]]))
    assert all(not t.any() for t in nothing)  # no valid frame: nothing found


def test_match_places_bind_what_the_frame_tokens_pool_away():
    """Each video is one frame of two places: video 0 a red star and a blue circle, video 1 a red
    circle and a blue star (colours and shapes one-hot, so each frame token, the maximum over its
    places, is the same for both). The matcher reading the frame tokens alone scores each caption
    ("red star", a colour and a shape in one word) the same against both videos and cannot learn;
    with ``match_places`` its words find the place that is both, and it learns each caption's own
    video first."""
    eye = torch.eye(D)
    red, blue, star, circle = eye[0], eye[1], eye[2], eye[3]
    places = torch.stack([torch.stack([red + star, blue + circle]),
                          torch.stack([red + circle, blue + star])]).unsqueeze(1)  # (2 videos, 1 frame, 2, D)
    video = places.amax(dim=2)  # (2, 1, D): the frame tokens, equal
    pairs = [(red, star, 0), (blue, circle, 0), (red, circle, 1), (blue, star, 1)]
    words = torch.stack([(c + s).unsqueeze(0) for c, s, _ in pairs])  # (4 rows, 1 word, D)
    rows = torch.tensor([v for _, _, v in pairs])
    fused = dataclasses.replace(with_words(video, words, rows), places=places)
    batch = retrieval_batch(2, rows.tolist(), [[5 + i] for i in range(4)])
    one, two = torch.ones(4, 1, dtype=torch.bool), torch.ones(2, 1, dtype=torch.bool)
    frames = torch.ones(2, 1, dtype=torch.bool)

    def scores(h, videos):
        return h.match(words, one, video, two, rows=videos, places=places, frame_mask=frames)

    torch.manual_seed(0)
    plain = RetrievalHead(dim=D, embed_dim=8, pool="mean", matcher_layers=1, match_negatives=1, match_dropout=0.0)
    torch.testing.assert_close(scores(plain, rows), scores(plain, 1 - rows))  # it reads the same tokens
    torch.manual_seed(0)
    head = RetrievalHead(dim=D, embed_dim=8, pool="mean", matcher_layers=1, match_negatives=1, match_dropout=0.0,
                         match_places=True)

    def right(h) -> bool:
        return bool((scores(h, rows) > scores(h, 1 - rows) + 1.0).all())

    assert not right(head)
    overfit(head, fused, batch, right)


def test_match_places_needs_a_matcher_and_the_places():
    with pytest.raises(ConfigError, match=r"^model\.head\.args\.match_places: .* needs model\.head\.args\.matcher_layers"):
        RetrievalHead(dim=D, matcher_layers=0, match_places=True)
    head = RetrievalHead(dim=D, embed_dim=8, matcher_layers=1, match_places=True)
    with pytest.raises(ValueError, match="set model.cell_pool too"):
        head.match(torch.zeros(1, 1, D), torch.ones(1, 1, dtype=torch.bool), torch.zeros(1, 1, D),
                   torch.ones(1, 1, dtype=torch.bool))
