"""Behaviour of the task heads: each one overfits a tiny batch of random fused vectors, and its
decoding follows its rules (multiple-choice answers stay among the choices; beam 1 is greedy)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from duomo.batch import Fused, HeadOutput, VideoBatch
from duomo.models.heads.caption import CaptionHead
from duomo.models.heads.classify import ClassifyHead
from duomo.models.heads.qa import QAHead
from duomo.text.tokenize import BOS, EOS, PAD

D = 16  # dim
N = 3  # fused tokens per row
K = 6  # answers / classes
VOCAB_SIZE = 12
MAX_STEPS = 200


def random_fused(rows: int, seed: int = 0) -> Fused:
    """(rows, N, D) tokens with the last token of row 0 masked out, and (rows, D) pooled vectors."""
    gen = torch.Generator().manual_seed(seed)
    mask = torch.ones(rows, N, dtype=torch.bool)
    mask[0, -1] = False
    return Fused(tokens=torch.randn(rows, N, D, generator=gen), mask=mask, pooled=torch.randn(rows, D, generator=gen))


def empty_batch(rows: int, **fields) -> VideoBatch:
    """A batch with only the fields a head reads (the fused vectors stand in for the videos)."""
    return VideoBatch(video_ids=[f"v{i}" for i in range(rows)], frame_mask=torch.ones(rows, 1, dtype=torch.bool),
                      **fields)


def overfit(head: nn.Module, fused: Fused, batch: VideoBatch, done, max_steps: int = MAX_STEPS,
            lr: float = 1e-2) -> int:
    """Adam steps on one batch until ``done(head)`` holds (checked in eval mode); returns the
    number of steps taken, or fails after ``max_steps``."""
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    for step in range(max_steps):
        head.train()
        loss = head.loss(head(fused, batch), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        head.eval()
        with torch.no_grad():
            if step % 10 == 9 and done(head):
                return step + 1
    pytest.fail(f"{type(head).__name__} did not overfit one batch in {max_steps} steps (last loss {loss.item():.4f})")


# --- QA -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hidden_dim", [0, 32], ids=["dense", "mlp"])
def test_qa_head_overfits_one_batch(hidden_dim):
    torch.manual_seed(0)
    head = QAHead(dim=D, num_answers=K, hidden_dim=hidden_dim, dropout=0.0)
    fused = random_fused(4)
    labels = torch.tensor([0, 3, 5, 3])
    batch = empty_batch(4, labels=labels, choice_mask=torch.ones(4, K, dtype=torch.bool))

    def all_right(h) -> bool:
        return [i for i, _ in h.predict(h(fused, batch))] == labels.tolist()

    overfit(head, fused, batch, all_right)
    with torch.no_grad():
        scores = [p for _, p in head.predict(head(fused, batch))]
    assert all(0.0 < p <= 1.0 for p in scores)


def test_qa_loss_ignores_unknown_answers():
    torch.manual_seed(0)
    head = QAHead(dim=D, num_answers=K, hidden_dim=0, dropout=0.0)
    fused = random_fused(3)
    known = empty_batch(2, labels=torch.tensor([1, 2]))
    with_unknown = empty_batch(3, labels=torch.tensor([1, 2, -100]))
    two = Fused(fused.tokens[:2], fused.mask[:2], fused.pooled[:2])
    with torch.no_grad():
        mixed = head.loss(head(fused, with_unknown), with_unknown)
        torch.testing.assert_close(mixed, head.loss(head(two, known), known))


def test_qa_grounding_loss_by_hand():
    """``ground_weight``: rows with a span (the grounding rows; nan elsewhere) add, times the
    weight, the binary cross-entropy of each frame's grounding logit against "inside the span"
    over the row's frames; answer rows add cross-entropy alone; a batch of grounding rows alone
    gives a finite loss."""
    torch.manual_seed(0)
    head = QAHead(dim=D, num_answers=K, hidden_dim=0, dropout=0.0, ground_weight=0.5)
    frames = 4
    fused = Fused(tokens=torch.randn(2, frames + 2, D), mask=torch.ones(2, frames + 2, dtype=torch.bool),
                  pooled=torch.randn(2, D))
    # row 0 answers 3; row 1 is grounded on [0.25, 0.75) of the video: frames 1 and 2 of 4
    batch = VideoBatch(video_ids=["a"], frame_mask=torch.ones(1, frames, dtype=torch.bool),
                       rows=torch.tensor([0, 0]), labels=torch.tensor([3, -100]),
                       spans=torch.tensor([[float("nan")] * 2, [0.25, 0.75]]))
    with torch.no_grad():
        out = head(fused, batch)
        assert out.ground.shape == (2, frames)
        ground = out.ground[1]
        inside = torch.tensor([0.0, 1.0, 1.0, 0.0])
        bce = -(inside * torch.log(torch.sigmoid(ground)) + (1 - inside) * torch.log(1 - torch.sigmoid(ground))).mean()
        answer = -torch.log_softmax(out.logits[0], dim=0)[3]
        torch.testing.assert_close(head.loss(out, batch), answer + 0.5 * bce)
        alone = dataclasses.replace(batch, labels=torch.tensor([-100, -100]))
        torch.testing.assert_close(head.loss(out, alone), 0.5 * bce)
        plain = dataclasses.replace(batch, spans=None)  # evaluation rows carry no span: no grounding
        assert head(fused, plain).ground is None


def test_qa_grounding_overfits_where_each_text_happens():
    """Two rows over the same frames, each grounded on another span, their pooled vectors telling
    them apart: the grounding logits learn to point at each row's own frames."""
    torch.manual_seed(0)
    head = QAHead(dim=D, num_answers=K, hidden_dim=0, dropout=0.0, ground_weight=1.0)
    frames = 6
    gen = torch.Generator().manual_seed(1)
    tokens = torch.randn(1, frames, D, generator=gen).expand(2, -1, -1).clone()
    fused = Fused(tokens=tokens, mask=torch.ones(2, frames, dtype=torch.bool), pooled=torch.randn(2, D, generator=gen))
    batch = VideoBatch(video_ids=["a"], frame_mask=torch.ones(1, frames, dtype=torch.bool), rows=torch.tensor([0, 0]),
                       labels=torch.tensor([-100, -100]), spans=torch.tensor([[0.0, 0.5], [0.5, 1.0]]))
    expected = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], dtype=torch.bool)
    overfit(head, fused, batch, lambda h: torch.equal(h(fused, batch).ground > 0, expected))


@pytest.mark.parametrize("slot_order", [False, True])
def test_qa_slots_by_hand(slot_order):
    """``slots``: the classifier reads the pooled vector, then per slot the frames weighted by the
    softmax over the valid frames of the FiLM grounding logit of the slot's attention pooling of
    the text tokens, then per slot that softmax's expected time ((k + 0.5) / n for frame k of n).
    ``slot_order`` adds each slot's expected place in the question ((k + 0.5) / n for word k of
    n, weighted by its attention over the words) and (place 0 - place 1) x (time 0 - time 1)."""
    torch.manual_seed(0)
    head = QAHead(dim=D, num_answers=K, hidden_dim=0, dropout=0.0, slots=2, slot_order=slot_order).eval()
    frames, words = 4, 3
    gen = torch.Generator().manual_seed(2)
    tokens = torch.randn(2, frames + words, D, generator=gen)
    mask = torch.ones(2, frames + words, dtype=torch.bool)
    mask[1, frames - 1] = mask[1, -1] = False  # row 1: three frames, two words
    fused = Fused(tokens=tokens, mask=mask, pooled=torch.randn(2, D, generator=gen), text_tokens=words)
    read = []
    head.classifier.register_forward_hook(lambda module, args, out: read.append(args[0]))
    batch = VideoBatch(video_ids=["a", "b"], frame_mask=torch.ones(2, frames, dtype=torch.bool))
    with torch.no_grad():
        head(fused, batch)
        for row, (num_frames, num_words) in enumerate([(4, 3), (3, 2)]):
            frame_tokens, text = tokens[row, :num_frames], tokens[row, frames : frames + num_words]
            expected = [fused.pooled[row]]
            times, places = [], []
            for slot in range(2):
                reads = torch.softmax(head.slot_score(text)[:, slot], dim=0)
                places.append(reads @ ((torch.arange(num_words) + 0.5) / num_words))
                query = reads @ text
                film = frame_tokens * (1 + head.ground_scale(query)) + head.ground_shift(query)
                weights = torch.softmax(head.ground_out(film).squeeze(-1), dim=0)
                expected.append(weights @ frame_tokens)
                times.append(weights @ ((torch.arange(num_frames) + 0.5) / num_frames))
            expected.append(torch.stack(times))
            if slot_order:
                expected.append(torch.stack([*places, (places[0] - places[1]) * (times[0] - times[1])]))
            torch.testing.assert_close(read[0][row], torch.cat(expected))
    with pytest.raises(ValueError, match="keeps no text tokens"):
        head(dataclasses.replace(fused, text_tokens=0), batch)
    with pytest.raises(ValueError, match="slot_order"):
        QAHead(dim=D, num_answers=K, slots=1, slot_order=True)


def test_qa_slot_grounding_loss_by_hand():
    """``slot_ground``: a grounding row's loss is the binary cross-entropy against its span averaged
    over the pooled vector's grounding logits and each slot's; answer rows are left alone."""
    torch.manual_seed(0)
    head = QAHead(dim=D, num_answers=K, hidden_dim=0, dropout=0.0, ground_weight=0.5, slots=2, slot_ground=True)
    frames, words = 4, 2
    fused = Fused(tokens=torch.randn(2, frames + words, D), mask=torch.ones(2, frames + words, dtype=torch.bool),
                  pooled=torch.randn(2, D), text_tokens=words)
    batch = VideoBatch(video_ids=["a"], frame_mask=torch.ones(1, frames, dtype=torch.bool),
                       rows=torch.tensor([0, 0]), labels=torch.tensor([3, -100]),
                       spans=torch.tensor([[float("nan")] * 2, [0.25, 0.75]]))
    with torch.no_grad():
        out = head(fused, batch)
        assert out.ground.shape == (2, 3, frames)
        inside = torch.tensor([0.0, 1.0, 1.0, 0.0])
        bce = torch.stack([F.binary_cross_entropy_with_logits(out.ground[1, q], inside) for q in range(3)]).mean()
        answer = -torch.log_softmax(out.logits[0], dim=0)[3]
        torch.testing.assert_close(head.loss(out, batch), answer + 0.5 * bce)
        plain = QAHead(dim=D, num_answers=K, hidden_dim=0, dropout=0.0, ground_weight=0.5, slots=2)
        assert plain(fused, batch).ground.shape == (2, frames)  # without slot_ground: the pooled vector's alone
    with pytest.raises(ValueError, match="slot_ground"):
        QAHead(dim=D, num_answers=K, slots=2, slot_ground=True)


def test_qa_pair_grounding_loss_by_hand():
    """``pair_ground``: a pair grounding row adds, times ``pair_weight`` (``ground_weight`` unless
    given), the binary cross-entropy
    of slot k's grounding logits against the k-th of its spans, averaged over both slots' frames;
    its pooled vector is not grounded (its span is nan); other rows are left alone."""
    torch.manual_seed(0)
    head = QAHead(dim=D, num_answers=K, hidden_dim=0, dropout=0.0, ground_weight=0.5, slots=2, slot_ground=True,
                  pair_ground="and")
    frames, words = 4, 3
    fused = Fused(tokens=torch.randn(2, frames + words, D), mask=torch.ones(2, frames + words, dtype=torch.bool),
                  pooled=torch.randn(2, D), text_tokens=words)
    nan = [float("nan")] * 2
    # row 0 answers 3; row 1 names an event in frame 3 first, then one in frames 0 and 1
    batch = VideoBatch(video_ids=["a"], frame_mask=torch.ones(1, frames, dtype=torch.bool),
                       rows=torch.tensor([0, 0]), labels=torch.tensor([3, -100]),
                       spans=torch.tensor([nan, nan]), slot_spans=torch.tensor([[nan, nan], [[0.75, 1.0], [0.0, 0.5]]]))
    with torch.no_grad():
        out = head(fused, batch)
        assert out.ground.shape == (2, 3, frames)
        inside = torch.tensor([[0.0, 0.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0]])
        bce = F.binary_cross_entropy_with_logits(out.ground[1, 1:], inside)
        answer = -torch.log_softmax(out.logits[0], dim=0)[3]
        torch.testing.assert_close(head.loss(out, batch), answer + 0.5 * bce)
        without = dataclasses.replace(batch, slot_spans=None)
        torch.testing.assert_close(head.loss(out, without), answer)
        weighted = QAHead(dim=D, num_answers=K, hidden_dim=0, dropout=0.0, ground_weight=0.5, slots=2,
                          slot_ground=True, pair_ground="and", pair_weight=2.0)
        weighted.load_state_dict(head.state_dict())
        torch.testing.assert_close(weighted.loss(weighted(fused, batch), batch), answer + 2.0 * bce)
    for kwargs in ({"slots": 2}, {"slots": 1, "slot_ground": True}):
        with pytest.raises(ValueError, match="pair_ground"):
            QAHead(dim=D, num_answers=K, ground_weight=0.5, pair_ground="and", **kwargs)


def test_qa_slots_learn_which_named_event_comes_first():
    """Before or after: two events among three kinds happen at two of six frames, the question's
    two words name them (word codes differ from frame codes; a position code tells the words
    apart). The pooled vector (the mean of the words) cannot say which comes first; two slots,
    each finding one word's event in time, can: the answers of every row learnt with slots, not
    without."""
    gen = torch.Generator().manual_seed(3)
    frames, kinds = 6, 3
    frame_code, word_code = torch.randn(kinds, D, generator=gen), torch.randn(kinds, D, generator=gen)
    position = torch.randn(2, D, generator=gen)
    rows = []
    for a in range(kinds):
        for b in range(kinds):
            for ta, tb in [(0, 3), (1, 5), (4, 2), (5, 0)]:
                if a != b:
                    rows.append((a, b, ta, tb))
    tokens = torch.zeros(len(rows), frames + 2, D)
    labels = []
    for i, (a, b, ta, tb) in enumerate(rows):
        tokens[i, ta], tokens[i, tb] = frame_code[a], frame_code[b]
        tokens[i, frames], tokens[i, frames + 1] = word_code[a] + position[0], word_code[b] + position[1]
        labels.append(0 if ta < tb else 1)
    fused = Fused(tokens=tokens, mask=torch.ones(len(rows), frames + 2, dtype=torch.bool),
                  pooled=tokens[:, frames:].mean(1), text_tokens=2)
    batch = VideoBatch(video_ids=[str(i) for i in range(len(rows))], frame_mask=torch.ones(len(rows), frames, dtype=torch.bool),
                       labels=torch.tensor(labels), choice_mask=torch.ones(len(rows), K, dtype=torch.bool))

    def all_right(h) -> bool:
        return [i for i, _ in h.predict(h(fused, batch))] == labels

    torch.manual_seed(0)
    overfit(QAHead(dim=D, num_answers=K, hidden_dim=32, dropout=0.0, slots=2), fused, batch, all_right, max_steps=600)
    torch.manual_seed(0)
    plain = QAHead(dim=D, num_answers=K, hidden_dim=32, dropout=0.0)
    with pytest.raises(pytest.fail.Exception):
        overfit(plain, fused, batch, all_right, max_steps=300)


def test_qa_slot_places_by_hand():
    """``slot_places``: after the slots' frames and times, per slot the places of its row's video
    (``Fused.places`` through ``batch.rows``, layer-normed), each frame's places weighed by a
    softmax over them of <projected query, place> / sqrt(D) and the frames by the slot's frame
    weights; then per slot the best such score over the valid frames' places."""
    torch.manual_seed(0)
    head = QAHead(dim=D, num_answers=K, hidden_dim=0, dropout=0.0, slots=2, slot_places=True).eval()
    frames, words, num_places = 3, 2, 4
    gen = torch.Generator().manual_seed(5)
    places = torch.randn(2, frames, num_places, D, generator=gen)  # two videos
    frame_mask = torch.tensor([[True, True, False], [True, True, True]])  # video 0's last frame is padding
    rows = torch.tensor([1, 0, 0])
    tokens = torch.randn(3, frames + words, D, generator=gen)
    mask = torch.cat([frame_mask[rows], torch.ones(3, words, dtype=torch.bool)], dim=1)
    fused = Fused(tokens=tokens, mask=mask, pooled=torch.randn(3, D, generator=gen), text_tokens=words, places=places)
    batch = VideoBatch(video_ids=["a", "b"], frame_mask=frame_mask, rows=rows)
    read = []
    head.classifier.register_forward_hook(lambda module, args, out: read.append(args[0]))
    with torch.no_grad():
        head(fused, batch)
        for row in range(3):
            valid = int(frame_mask[rows[row]].sum())
            frame_tokens, text = tokens[row, :valid], tokens[row, frames:]
            own = F.layer_norm(places[rows[row], :valid], (D,), head.place_norm.weight, head.place_norm.bias)
            found, best = [], []
            for slot in range(2):
                query = torch.softmax(head.slot_score(text)[:, slot], dim=0) @ text
                film = frame_tokens * (1 + head.ground_scale(query)) + head.ground_shift(query)
                weights = torch.softmax(head.ground_out(film).squeeze(-1), dim=0)  # (valid,)
                scores = own @ head.place_query(query) / D ** 0.5  # (valid, places)
                found.append(weights @ torch.einsum("tp,tpd->td", torch.softmax(scores, dim=1), own))
                best.append(scores.max())
            torch.testing.assert_close(read[0][row, D + 2 * (D + 1):], torch.cat([*found, torch.stack(best)]))
    with pytest.raises(ValueError, match="only model.cell_pool gives"):
        head(dataclasses.replace(fused, places=None), batch)
    with pytest.raises(ValueError, match="slot_places"):
        QAHead(dim=D, num_answers=K, slot_places=True)


def one_word_toy(tokens: torch.Tensor, places: torch.Tensor, labels: torch.Tensor):
    """(fused, batch, all_right) of a toy QA set: each row its own video, ``tokens`` (V, T + 1, D)
    its frames then a one-word question (also the pooled vector), ``places`` (V, T, P, D), every
    frame valid; ``all_right(head)`` when the head answers every row's label."""
    rows, frames = tokens.shape[0], tokens.shape[1] - 1
    fused = Fused(tokens=tokens, mask=torch.ones(rows, frames + 1, dtype=torch.bool), pooled=tokens[:, -1],
                  text_tokens=1, places=places)
    batch = VideoBatch(video_ids=[str(i) for i in range(rows)], frame_mask=torch.ones(rows, frames, dtype=torch.bool),
                       labels=labels)

    def all_right(h) -> bool:
        return torch.equal(torch.tensor([i for i, _ in h.predict(h(fused, batch))]), labels)

    return fused, batch, all_right


def test_qa_slot_places_learn_which_colour_goes_with_the_shape_asked():
    """Two objects in each frame, each a shape code plus a colour code at a place of its own; the
    frame tokens are their sum, the same whichever colour goes with which shape. Asked about one
    shape (a word code of its own), a head must say its colour: with ``slot_places`` every row is
    learnt, without it the rows that differ only in the pairing cannot be told apart."""
    gen = torch.Generator().manual_seed(4)
    kinds, frames = 3, 2
    shape_code, colour_code, word_code = (torch.randn(kinds, D, generator=gen) for _ in range(3))
    rows = [(shapes, colours, asked) for shapes in [(0, 1), (0, 2), (1, 2)] for first in range(kinds)
            for second in range(kinds) if first != second for colours in [(first, second)] for asked in (0, 1)]
    places = torch.stack([torch.stack([shape_code[s] + colour_code[c] for s, c in zip(shapes, colours)])
                          for shapes, colours, _ in rows])  # (V, 2 places, D)
    places = places.unsqueeze(1).expand(-1, frames, -1, -1).clone()
    places[:, 1] = places[:, 1].flip(1)  # the objects swap places in the second frame
    tokens = torch.cat([places.sum(2), torch.stack([word_code[shapes[asked]] for shapes, _, asked in rows])[:, None]], dim=1)
    labels = torch.tensor([colours[asked] for _, colours, asked in rows])
    fused, batch, all_right = one_word_toy(tokens, places, labels)
    torch.manual_seed(0)
    overfit(QAHead(dim=D, num_answers=K, hidden_dim=32, dropout=0.0, slots=2, slot_places=True), fused, batch,
            all_right, max_steps=600)
    torch.manual_seed(0)
    with pytest.raises(pytest.fail.Exception):
        overfit(QAHead(dim=D, num_answers=K, hidden_dim=32, dropout=0.0, slots=2), fused, batch, all_right, max_steps=300)



def test_qa_slot_tracks_by_hand():
    """``slot_tracks``: each slot's places found frame by frame go, valid frames only and in
    order, through the bi-directional GRU; the answer reads its last state each way (forward
    after the last valid frame, backward after the first). A row with no valid frame reads zeros."""
    torch.manual_seed(0)
    head = QAHead(dim=D, num_answers=K, slots=2, slot_places=True, slot_tracks=True).eval()
    gen = torch.Generator().manual_seed(6)
    inside = torch.randn(3, 2, 4, D, generator=gen)  # (rows, slots, frames, D)
    frame_mask = torch.tensor([[True, True, True, False], [False, True, False, True], [False, False, False, False]])
    with torch.no_grad():
        track = head.follow(inside, frame_mask).view(3, 2, -1)
        for row in range(2):
            for slot in range(2):
                _, last = head.track(inside[row, slot, frame_mask[row]].unsqueeze(0))  # (2, 1, D // 2)
                torch.testing.assert_close(track[row, slot], last[:, 0].flatten())
    assert not track[2].any()
    with pytest.raises(ValueError, match="slot_tracks: .* needs slot_places"):
        QAHead(dim=D, num_answers=K, slots=2, slot_tracks=True)


def test_qa_slot_tracks_learn_what_the_object_ends_as():
    """One object changes from one state to another between two frames (a state code at its
    place; a distractor code at the other place); the frame tokens say nothing. Asked what it
    ends as, a head with ``slot_places`` alone sees the same for a -> b as for b -> a (the frames'
    weighted sum of what it finds, and its best match), so it cannot learn every row; with
    ``slot_tracks`` it follows the object in order and does."""
    gen = torch.Generator().manual_seed(7)
    kinds, frames = 3, 2
    state, distractor, word = torch.randn(kinds, D, generator=gen), torch.randn(D, generator=gen), torch.randn(D, generator=gen)
    rows = [(first, second) for first in range(kinds) for second in range(kinds) if first != second]
    places = torch.stack([torch.stack([torch.stack([state[s], distractor]) for s in pair]) for pair in rows])  # (V, 2, 2, D)
    tokens = torch.cat([torch.zeros(len(rows), frames, D), word.expand(len(rows), 1, D)], dim=1)
    labels = torch.tensor([second for _, second in rows])
    fused, batch, all_right = one_word_toy(tokens, places, labels)
    torch.manual_seed(0)
    overfit(QAHead(dim=D, num_answers=K, hidden_dim=32, dropout=0.0, slots=1, slot_places=True, slot_tracks=True),
            fused, batch, all_right, max_steps=600)
    torch.manual_seed(0)
    with pytest.raises(pytest.fail.Exception):
        overfit(QAHead(dim=D, num_answers=K, hidden_dim=32, dropout=0.0, slots=1, slot_places=True), fused, batch,
                all_right, max_steps=300)

def test_qa_predict_keeps_to_each_rows_choices():
    logits = torch.tensor([[9.0, 1.0, 2.0, 0.0],   # best overall is 0, but only 1 and 2 are allowed
                           [0.0, 0.0, 5.0, 1.0]])  # open-ended row: the best of all
    choice_mask = torch.tensor([[False, True, True, False], [True, True, True, True]])
    out = HeadOutput(logits=logits, fused=random_fused(2), choice_mask=choice_mask)
    (first, p_first), (second, _) = QAHead(dim=D, num_answers=4).predict(out)
    assert (first, second) == (2, 2)
    # the probability is renormalised over the row's choices
    assert p_first == pytest.approx(torch.softmax(torch.tensor([1.0, 2.0]), 0)[1].item())


def test_qa_predict_never_returns_an_answer_outside_the_choices():
    torch.manual_seed(0)
    head = QAHead(dim=D, num_answers=K, hidden_dim=16).eval()
    rows = 64
    gen = torch.Generator().manual_seed(1)
    choice_mask = torch.rand(rows, K, generator=gen) < 0.4
    choice_mask[torch.arange(rows), torch.randint(0, K, (rows,), generator=gen)] = True  # at least one each
    fused = random_fused(rows, seed=2)
    batch = empty_batch(rows, choice_mask=choice_mask)
    with torch.no_grad():
        out = head(fused, batch)
    free = [i for i, _ in head.predict(HeadOutput(out.logits, out.fused))]
    picked = [i for i, _ in head.predict(out)]
    assert all(choice_mask[r, i] for r, i in enumerate(picked))
    assert any(not choice_mask[r, i] for r, i in enumerate(free))  # the mask did change something


# --- classify --------------------------------------------------------------------------------------


def test_classify_head_overfits_single_label():
    torch.manual_seed(0)
    head = ClassifyHead(dim=D, num_classes=K, hidden_dim=32, dropout=0.0)
    fused = random_fused(4)
    labels = torch.tensor([4, 1, 1, 0])
    batch = empty_batch(4, labels=labels)

    def all_right(h) -> bool:
        return [row[0][0] for row in h.predict(h(fused, batch))] == labels.tolist()

    overfit(head, fused, batch, all_right)
    with torch.no_grad():
        predictions = head.predict(head(fused, batch))
        probs = head.scores(head(fused, batch))
    assert all(len(row) == 1 for row in predictions)  # single-label: exactly the top class
    torch.testing.assert_close(probs.sum(1), torch.ones(4))


def test_classify_all_labels_loss_by_hand_and_it_learns_both():
    """``all_labels_weight``: cross-entropy of the class plus weight x binary cross-entropy of every
    label of the video, from the same pooled vector; without label sets (or at weight 0) the class alone."""
    torch.manual_seed(0)
    head = ClassifyHead(dim=D, num_classes=K, hidden_dim=32, dropout=0.0, all_labels_weight=0.5)
    fused = random_fused(3)
    labels = torch.tensor([4, 1, 0])
    sets = torch.zeros(3, K)
    for row, on in enumerate([[4, 2], [1], [0, 3, 5]]):
        sets[row, on] = 1.0
    batch = empty_batch(3, labels=labels, label_sets=sets)
    out = head(fused, batch)
    expected = F.cross_entropy(out.logits, labels) + 0.5 * F.binary_cross_entropy_with_logits(out.label_sets, sets)
    torch.testing.assert_close(head.loss(out, batch), expected)
    plain = empty_batch(3, labels=labels)
    assert head(fused, plain).label_sets is None
    torch.testing.assert_close(head.loss(head(fused, plain), plain), F.cross_entropy(out.logits, labels))
    off = ClassifyHead(dim=D, num_classes=K, hidden_dim=32, dropout=0.0)
    assert off(fused, batch).label_sets is None and off.all_labels is None

    def both_right(h) -> bool:
        got = h(fused, batch)
        return got.logits.argmax(1).tolist() == labels.tolist() and torch.equal(got.label_sets > 0, sets > 0)

    overfit(head, fused, batch, both_right)



def test_classify_place_queries_by_hand():
    """``place_queries``: after the pooled vector, per query the places of each valid frame
    weighed by a softmax of <q, LN(place)> / sqrt(D), the frames by a softmax over the valid ones
    of <v, what was found there> / sqrt(D); then per query the expected time of its frames."""
    torch.manual_seed(0)
    head = ClassifyHead(dim=D, num_classes=K, hidden_dim=0, dropout=0.0, place_queries=2).eval()
    gen = torch.Generator().manual_seed(8)
    places = torch.randn(2, 3, 4, D, generator=gen)  # two videos, three frames of four places
    frame_mask = torch.tensor([[True, True, False], [True, True, True]])
    fused = Fused(tokens=torch.zeros(2, 1, D), mask=torch.ones(2, 1, dtype=torch.bool),
                  pooled=torch.randn(2, D, generator=gen), places=places)
    batch = VideoBatch(video_ids=["a", "b"], frame_mask=frame_mask)
    read = []
    head.classifier.register_forward_hook(lambda module, args, out: read.append(args[0]))
    with torch.no_grad():
        head(fused, batch)
        for video in range(2):
            valid = int(frame_mask[video].sum())
            own = F.layer_norm(places[video, :valid], (D,), head.place_norm.weight, head.place_norm.bias)
            found, when = [], []
            for q in range(2):
                inside = torch.einsum("tp,tpd->td", torch.softmax(own @ head.place_query[q] / D ** 0.5, dim=1), own)
                weights = torch.softmax(inside @ head.frame_query[q] / D ** 0.5, dim=0)
                found.append(weights @ inside)
                when.append(weights @ ((torch.arange(valid) + 0.5) / valid))
            torch.testing.assert_close(read[0][video], torch.cat([fused.pooled[video], *found, torch.stack(when)]))
    with pytest.raises(ValueError, match="only model.cell_pool gives"):
        head(dataclasses.replace(fused, places=None), batch)


def test_classify_place_queries_learn_what_the_pooled_frames_cannot_tell():
    """Two objects in one frame, a shape code plus a colour code each at a place of its own; the
    pooled vector is their sum, the same whichever colour goes with which shape. The class is the
    colour of the first shape: with ``place_queries`` a query finds that shape's place and every
    video is learnt, without them the videos that differ only in the pairing cannot be told apart."""
    gen = torch.Generator().manual_seed(9)
    kinds = 3
    shape_code, colour_code = torch.randn(kinds, D, generator=gen), torch.randn(kinds, D, generator=gen)
    videos = [(shapes, (first, second)) for shapes in [(0, 1), (0, 2)] for first in range(kinds)
              for second in range(kinds) if first != second]
    places = torch.stack([torch.stack([shape_code[s] + colour_code[c] for s, c in zip(shapes, colours)])
                          for shapes, colours in videos]).unsqueeze(1)  # (V, 1 frame, 2 places, D)
    fused = Fused(tokens=places[:, :, 0], mask=torch.ones(len(videos), 1, dtype=torch.bool),
                  pooled=places.sum(dim=(1, 2)), places=places)
    labels = torch.tensor([colours[0] for _, colours in videos])
    batch = VideoBatch(video_ids=[str(i) for i in range(len(videos))],
                       frame_mask=torch.ones(len(videos), 1, dtype=torch.bool), labels=labels)

    def all_right(h) -> bool:
        return [row[0][0] for row in h.predict(h(fused, batch))] == labels.tolist()

    torch.manual_seed(0)
    overfit(ClassifyHead(dim=D, num_classes=K, hidden_dim=32, dropout=0.0, place_queries=2), fused, batch, all_right,
            max_steps=600)
    torch.manual_seed(0)
    with pytest.raises(pytest.fail.Exception):
        overfit(ClassifyHead(dim=D, num_classes=K, hidden_dim=32, dropout=0.0), fused, batch, all_right, max_steps=300)

def test_classify_head_overfits_multi_label():
    torch.manual_seed(0)
    head = ClassifyHead(dim=D, num_classes=K, multi_label=True, hidden_dim=32, dropout=0.0)
    fused = random_fused(4)
    hot = torch.zeros(4, K)
    for row, on in enumerate([[0, 2], [5], [1, 2, 3], [4, 0]]):
        hot[row, on] = 1.0
    batch = empty_batch(4, labels=hot)

    def sets_right(h) -> bool:
        predicted = [sorted(i for i, _ in row) for row in h.predict(h(fused, batch))]
        return predicted == [sorted(torch.nonzero(r).flatten().tolist()) for r in hot]

    overfit(head, fused, batch, sets_right)
    with torch.no_grad():
        predictions = head.predict(head(fused, batch))
    for row in predictions:
        scores = [s for _, s in row]
        assert scores == sorted(scores, reverse=True) and min(scores) >= head.threshold


def test_multi_label_predict_keeps_the_best_class_when_none_passes_the_threshold():
    head = ClassifyHead(dim=D, num_classes=3, multi_label=True)
    out = HeadOutput(logits=torch.tensor([[-5.0, -1.0, -3.0]]), fused=random_fused(1))
    [[(index, score)]] = head.predict(out)
    assert index == 1 and score == pytest.approx(torch.sigmoid(torch.tensor(-1.0)).item())


# --- caption ---------------------------------------------------------------------------------------

TARGETS = [[5, 6, 7], [8, 6, 9, 10]]  # word 6 follows different words: the decoder must track context
DECODERS = [
    pytest.param({"decoder": "gru", "attend": True}, id="gru-attend"),
    pytest.param({"decoder": "gru", "attend": False}, id="gru-plain"),
    pytest.param({"decoder": "transformer"}, id="transformer"),
]


def caption_head(**kw) -> CaptionHead:
    torch.manual_seed(0)
    return CaptionHead(dim=D, vocab_size=VOCAB_SIZE, num_layers=1, num_heads=2, ff_mult=2, dropout=0.0,
                       max_len=8, beam_size=3, **kw)


def target_ids(targets: list[list[int]]) -> torch.Tensor:
    """(B, S) <bos> words <eos>, 0-padded."""
    length = max(len(t) for t in targets) + 2
    ids = torch.full((len(targets), length), PAD)
    for i, t in enumerate(targets):
        ids[i, : len(t) + 2] = torch.tensor([BOS, *t, EOS])
    return ids


@pytest.mark.parametrize("kw", DECODERS)
def test_caption_head_overfits_and_decodes_the_targets(kw):
    head = caption_head(**kw)
    fused = random_fused(2)
    ids = target_ids(TARGETS)
    batch = empty_batch(2, target_ids=ids, target_mask=ids != PAD)

    def memorized(h) -> bool:
        return h.loss(h(fused, batch), batch).item() < 0.05

    overfit(head, fused, batch, memorized, max_steps=300)
    out = HeadOutput(fused.pooled, fused)
    assert head.predict(out, beam_size=1) == TARGETS  # greedy
    assert head.predict(out, beam_size=3) == TARGETS  # beam search
    assert head.predict(out) == TARGETS  # the head's own beam size (3)


@pytest.mark.parametrize("kw", DECODERS)
def test_caption_beam_of_one_is_greedy(kw):
    head = caption_head(**kw).eval()  # untrained: long, arbitrary captions
    fused = random_fused(4, seed=3)
    greedy = head.predict(HeadOutput(fused.pooled, fused), beam_size=1)
    beam_one = [head._beam(fused.tokens[i : i + 1], fused.mask[i : i + 1], fused.pooled[i : i + 1], 1)
                for i in range(4)]
    assert beam_one == greedy
    assert all(len(ids) <= head.max_len for ids in greedy)


def test_caption_predictions_hold_no_special_tokens():
    head = caption_head(decoder="transformer").eval()
    fused = random_fused(3, seed=4)
    for beam in (1, 3):
        for ids in head.predict(HeadOutput(fused.pooled, fused), beam_size=beam):
            assert not {BOS, EOS, PAD} & set(ids)


def test_caption_loss_ignores_padding():
    head = caption_head(decoder="gru", attend=True).eval()
    fused = random_fused(1)
    ids = target_ids([[5, 6]])
    padded = torch.cat([ids, torch.full((1, 3), PAD)], dim=1)
    short = empty_batch(1, target_ids=ids)
    long = empty_batch(1, target_ids=padded)
    with torch.no_grad():
        torch.testing.assert_close(head.loss(head(fused, short), short), head.loss(head(fused, long), long))


def test_transformer_decoder_needs_attention():
    with pytest.raises(ValueError, match="always attends"):
        CaptionHead(dim=D, vocab_size=VOCAB_SIZE, decoder="transformer", attend=False)
