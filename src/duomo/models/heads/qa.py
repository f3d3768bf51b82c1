"""Answer head for open-ended and multiple-choice video QA (and dialog turns).

pooled (B, D) -> logits over the answer vocabulary (B, K). Multiple-choice rows pick the best
of their own choices (``choice_mask``); open-ended rows pick from every answer.

With ``ground_weight`` > 0, training also has grounding rows: a description of one event of the
video (a manifest segment's caption) and its span, no answer. For them the head says, frame by
frame, whether the event happens there, from the frame tokens conditioned on the fused vector
(FiLM, as the moment head does), with binary cross-entropy against the frames inside the span,
weighted by ``ground_weight``: the text encoder, the fusion and the frame tokens learn to find
described events in time, which questions about what happens, to what, and in which order need.

With ``slots`` = K > 0, the answer also reads K places in time the question points at: K learned
attention poolings over the question's fused words (one might learn to gather "the red circle
shrinks", another "after the star slides down"), each grounded over the frames by the same FiLM
scorer the grounding rows train, a softmax over the valid frames; each slot gives the frames'
weighted sum and its expected time (a fraction of the video). The classifier reads the pooled
vector, every slot's frames and every slot's time, so "before or after" can compare two times
and "what does it do after ..." can read the frames found. Needs a fusion that keeps the text
tokens (``Fused.text_tokens``: cross_attn, concat, attention, late_concat) and one token per frame.
With ``slot_ground`` the grounding rows also ground each slot's query of their description (the
same loss, averaged over the pooled vector and the slots), so the slots' queries learn to find
events as the pooled one does.
With ``slot_order`` the classifier also reads where in the question each slot reads (the expected
position of its words, a fraction of the question) and, for each pair of slots, the product of
their difference in question position and in time: positive when the question names the two in
the order they happen. "Does X happen before or after Y?" is then one sign, whichever slot came
to read X, where from times alone the classifier must first learn which slot is which. On
SynthWorld it measured no better (QA 0.753, before/after 0.518; README), so no preset uses it.
With ``pair_ground`` (the words joining two captions, "and") training also has pair grounding
rows: two events of the video described in one text, "A and B", in either order, and slot k
grounded on the span of the k-th event named (``batch.slot_spans``, the same loss). The slots
otherwise learn which part of the question to read from the answers alone, and a question that
names two events ("does X grow before or after Y moves up?") gives them nothing to tell which
slot should read which; here slot 1 learns to find what the text names first, slot 2 what it
names second. Their loss weighs ``pair_weight`` (``ground_weight`` unless given). Needs
``slot_ground`` (and so ``ground_weight``) and at least 2 slots. On SynthWorld before/after
questions rose to 0.89-0.91 in four runs; at the grounding rows' weight other families fell (QA
0.720-0.744), at ``pair_weight: 0.75`` less so, and QA rose from 0.754 to 0.777 beside the
same-day preset (README), so the qa preset uses that.
With ``slot_places`` each slot also looks inside its frames, as stacked attention looks into an
image's regions for a question (Yang et al., 2016, https://arxiv.org/abs/1511.02274): its query,
projected, attends over the places of each frame (``Fused.places``, ``model.cell_pool``'s
readings, a softmax over the places of each frame), and the slot adds the places found, weighted
by its frames' weights, and how well the best place of any valid frame matches its query. The
frame tokens pool their places by a maximum, which keeps "something red" and "a star somewhere"
but not always which place is which; a slot asking for "the red object" reads the red place's
shape, and "is there a yellow star?" how well the best place answers to it.
With ``slot_tracks`` each slot also follows what it found through time: the places it finds in
each valid frame, in order, run through a small bi-directional GRU whose last states the answer
reads, a track of the object the slot asks about. The frames' weighted sum of ``slot_places``
forgets the order, which "what does the red star do first?" needs. Needs ``slot_places``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from duomo.batch import Fused, HeadOutput, VideoBatch
from duomo.models.heads.moment import inside_loss, span_bins
from duomo.models.layers import MLP, look_into_frames, valid_fractions


class Slots(NamedTuple):
    """What ``QAHead.read_slots`` finds, K slots for each of B rows over T frames."""
    seen: Tensor
    """(B, K * D) each slot's frames weighted by ``weights``."""
    when: Tensor
    """(B, K) each slot's expected time as a fraction of the video (frame k of n valid ones at
    (k + 0.5) / n, the time the frame tokens' time codes carry)."""
    where: Tensor
    """(B, K, T) each slot's grounding logits."""
    at: Tensor
    """(B, K) each slot's expected place in the question (word k of n at (k + 0.5) / n)."""
    queries: Tensor
    """(B, K, D) each slot's query, its attention pooling of the question's fused words."""
    weights: Tensor
    """(B, K, T) the softmax of ``where`` over the valid frames (padded frames get no weight)."""


class QAHead(nn.Module):
    """Classifies the fused question-video vector into one of ``num_answers`` answers.

    ``hidden_dim = 0`` gives one dense softmax layer (the classic baseline); otherwise an MLP.
    """

    def __init__(self, *, dim: int, num_answers: int, hidden_dim: int = 512, dropout: float = 0.1,
                 label_smoothing: float = 0.0, ground_weight: float = 0.0, slots: int = 0, slot_ground: bool = False,
                 slot_order: bool = False, pair_ground: str = "", pair_weight: float | None = None,
                 slot_places: bool = False, slot_tracks: bool = False):
        super().__init__()
        if slots < 0:
            raise ValueError(f"model.head.args.slots: must be 0 (off) or positive, got {slots}")
        self.slots = slots
        if slot_ground and not (slots and ground_weight > 0):
            raise ValueError("model.head.args.slot_ground: grounds the slots' queries on the grounding rows; "
                             "needs slots and ground_weight too")
        self.slot_ground = slot_ground
        if slot_order and slots < 2:
            raise ValueError("model.head.args.slot_order: compares the slots' places in the question and in time; "
                             "needs at least 2 slots")
        self.slot_order = slot_order
        if pair_ground and not (slot_ground and slots >= 2):
            raise ValueError("model.head.args.pair_ground: grounds slots 1 and 2 on the two events a pair "
                             "grounding row names; needs slot_ground and at least 2 slots")
        self.pair_weight = ground_weight if pair_weight is None else pair_weight
        """The pair grounding rows' loss weight (``ground_weight`` unless given)."""
        if slot_places and not slots:
            raise ValueError("model.head.args.slot_places: each slot looks inside the frames it finds; needs slots")
        self.slot_places = slot_places
        if slot_tracks and not slot_places:
            raise ValueError("model.head.args.slot_tracks: follows the places each slot finds through time; "
                             "needs slot_places")
        self.slot_tracks = slot_tracks
        width = dim + slots * (dim + 1)  # the pooled vector, then each slot's frames and time
        if slot_places:  # each slot's places found and its best place's match
            width += slots * (dim + 1)
            self.place_query = nn.Linear(dim, dim)
            self.place_norm = nn.LayerNorm(dim)
        if slot_tracks:  # each slot's track: a GRU's last states, each way, over its places found frame by frame
            width += slots * 2 * (dim // 2)
            self.track = nn.GRU(dim, dim // 2, batch_first=True, bidirectional=True)
        if slot_order:  # each slot's place in the question, each pair's agreement of question and time order
            width += slots + slots * (slots - 1) // 2
        if hidden_dim > 0:
            self.classifier: nn.Module = MLP(width, hidden_dim, num_answers, dropout)
        else:
            self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, num_answers))
        self.label_smoothing = label_smoothing
        self.ground_weight = ground_weight
        self.slot_score = nn.Linear(dim, slots) if slots else None
        if ground_weight > 0 or slots:
            self.ground_scale = nn.Linear(dim, dim)
            self.ground_shift = nn.Linear(dim, dim)
            self.ground_out = MLP(dim, dim, 1, dropout)

    def forward(self, fused: Fused, batch: VideoBatch) -> HeadOutput:
        start = fused.first_frame
        frames = fused.tokens[:, start : start + batch.frame_mask.shape[1]]  # (B, T, D)
        ground = None
        if self.ground_weight > 0 and batch.spans is not None:
            ground = self.ground_frames(frames, fused.pooled.unsqueeze(1)).squeeze(1)  # (B, T)
        features = fused.pooled
        if self.slot_score is not None:
            frame_mask = fused.mask[:, start : start + frames.shape[1]].bool()
            slots = self.read_slots(fused, frames, frame_mask)
            features = torch.cat([features, slots.seen, slots.when], dim=-1)
            if self.slot_places:
                features = torch.cat([features, *self.look_inside(fused, batch, slots, frame_mask)], dim=-1)
            if self.slot_order:
                at, when = slots.at, slots.when
                first, second = torch.triu_indices(self.slots, self.slots, offset=1, device=when.device)
                agree = (at[:, first] - at[:, second]) * (when[:, first] - when[:, second])  # (B, pairs)
                features = torch.cat([features, at, agree], dim=-1)
            if self.slot_ground and ground is not None:
                ground = torch.cat([ground.unsqueeze(1), slots.where], dim=1)  # (B, 1 + K, T)
        return HeadOutput(logits=self.classifier(features), fused=fused, choice_mask=batch.choice_mask, ground=ground)

    def ground_frames(self, frames: Tensor, queries: Tensor) -> Tensor:
        """Frames (B, T, D) scaled and shifted by each of queries (B, Q, D) -> logits (B, Q, T) of
        "the query happens in this frame"."""
        x = frames.unsqueeze(1) * (1 + self.ground_scale(queries).unsqueeze(2)) + self.ground_shift(queries).unsqueeze(2)
        return self.ground_out(x).squeeze(-1)

    def read_slots(self, fused: Fused, frames: Tensor, frame_mask: Tensor) -> Slots:
        """Each slot's query, the frames it finds and when (``Slots``)."""
        if not fused.text_tokens:
            raise ValueError("model.head.args.slots: the fusion keeps no text tokens to read the question's slots "
                             "from; use cross_attn, concat, attention or late_concat")
        text = fused.tokens[:, -fused.text_tokens:]  # (B, L, D)
        text_mask = fused.mask[:, -fused.text_tokens:].bool()
        scores = self.slot_score(text).masked_fill(~text_mask.unsqueeze(-1), float("-inf"))  # (B, L, K)
        reads = torch.softmax(scores, dim=1).nan_to_num(0.0)  # (B, L, K)
        queries = torch.einsum("blk,bld->bkd", reads, text)  # (B, K, D)
        where = self.ground_frames(frames, queries)  # (B, K, T)
        weights = torch.softmax(where.masked_fill(~frame_mask.unsqueeze(1), float("-inf")), dim=-1).nan_to_num(0.0)
        times = valid_fractions(frame_mask).to(frames.dtype)  # (B, T)
        at = torch.einsum("blk,bl->bk", reads, valid_fractions(text_mask).to(text.dtype))
        return Slots(seen=torch.einsum("bkt,btd->bkd", weights, frames).flatten(1),
                     when=torch.einsum("bkt,bt->bk", weights, times), where=where, at=at, queries=queries,
                     weights=weights)

    def look_inside(self, fused: Fused, batch: VideoBatch, slots: Slots, frame_mask: Tensor) -> tuple[Tensor, ...]:
        """``slot_places``: (B, K * D) each slot's places found, (B, K) its best place's match, and
        with ``slot_tracks`` (B, K * 2 * (D // 2)) its track (``follow``).
        Slot k's query q (projected) scores each place p of each frame t by <q, place> / sqrt(D)
        (places layer-normed); a softmax over each frame's places weighs them, and the frames'
        weights (``Slots.weights``) weigh the frames.
        The best match is the highest score over the valid frames' places (0 for a row with none)."""
        if fused.places is None:
            raise ValueError("model.head.args.slot_places: reads the places of each frame, which only "
                             "model.cell_pool gives; set model.cell_pool too")
        places = self.place_norm(fused.places)[batch.row_videos]  # (B, T, P, D)
        scores, inside = look_into_frames(self.place_query(slots.queries), places)  # (B, K, T, P), (B, K, T, D)
        found = torch.einsum("bkt,bktd->bkd", slots.weights, inside).flatten(1)
        valid = frame_mask[:, None, :, None]
        best = scores.masked_fill(~valid, float("-inf")).amax(dim=(-2, -1))  # (B, K)
        best = torch.where(frame_mask.any(dim=1, keepdim=True), best, torch.zeros_like(best))
        if not self.slot_tracks:
            return found, best
        return found, best, self.follow(inside, frame_mask)

    def follow(self, inside: Tensor, frame_mask: Tensor) -> Tensor:
        """``slot_tracks``: the places each slot finds in each frame, inside (B, K, T, D), over the
        valid frames frame_mask (B, T) in order -> (B, K * 2 * (D // 2)): the bi-directional
        GRU's last state each way; a row with no valid frame gets zeros."""
        rows, slots, frames, dim = inside.shape
        order = torch.argsort((~frame_mask).to(torch.int8), dim=1, stable=True)  # the valid frames first, in order
        inside = inside.gather(2, order[:, None, :, None].expand_as(inside))
        lengths = frame_mask.sum(dim=1)  # (B,)
        packed = nn.utils.rnn.pack_padded_sequence(inside.flatten(0, 1), lengths.repeat_interleave(slots).clamp(min=1).cpu(),
                                                   batch_first=True, enforce_sorted=False)
        _, last = self.track(packed)  # (2, B * K, D // 2)
        track = last.transpose(0, 1).reshape(rows, slots * last.shape[0] * last.shape[-1])
        return track * (lengths > 0).unsqueeze(-1).to(track.dtype)

    def loss(self, out: HeadOutput, batch: VideoBatch) -> Tensor:
        answered = batch.labels != -100
        # cross-entropy's mean over no row is nan; a batch of grounding rows alone has no answer loss
        loss = (F.cross_entropy(out.logits[answered], batch.labels[answered], label_smoothing=self.label_smoothing)
                if answered.any() else out.logits.sum() * 0.0)
        if out.ground is None:
            return loss
        frame_mask = batch.frame_mask[batch.rows] if batch.rows is not None else batch.frame_mask  # (B, T)
        if batch.slot_spans is not None and out.ground.dim() == 3:  # pair grounding rows: slot k, the k-th event named
            loss = loss + self.pair_loss(out.ground[:, 1:], batch.slot_spans, frame_mask)
        spans = batch.spans
        grounded = ~torch.isnan(spans[:, 0])  # rows with a span: the grounding rows
        if not grounded.any():
            return loss
        mask = frame_mask[grounded]
        start, end = span_bins(spans[grounded], mask)
        ground = out.ground[grounded]
        if ground.dim() == 3:  # slot_ground: the pooled vector's logits and each slot's, the same span
            queries = ground.shape[1]
            start, end = start.repeat_interleave(queries), end.repeat_interleave(queries)
            ground, mask = ground.flatten(0, 1), mask.repeat_interleave(queries, dim=0)
        return loss + self.ground_weight * inside_loss(ground, start, end, mask)

    def pair_loss(self, slots: Tensor, slot_spans: Tensor, frame_mask: Tensor) -> Tensor:
        """``pair_weight`` times the grounding loss of each pair grounding row's slot k (its
        logits ``slots`` (B, K, T)) against the k-th span of ``slot_spans`` (B, S, 2), over the
        rows that have them and their valid frames; 0 when no row has."""
        paired = ~torch.isnan(slot_spans[:, 0, 0])
        if not paired.any():
            return slots.sum() * 0.0
        count = slot_spans.shape[1]
        spans, mask = slot_spans[paired].flatten(0, 1), frame_mask[paired].repeat_interleave(count, dim=0)
        start, end = span_bins(spans, mask)
        return self.pair_weight * inside_loss(slots[paired, :count].flatten(0, 1), start, end, mask)

    def predict(self, out: HeadOutput) -> list[tuple[int, float]]:
        """(answer index, probability) per row, the argmax among the row's allowed answers."""
        logits = out.logits
        if out.choice_mask is not None:
            logits = logits.masked_fill(~out.choice_mask, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        score, index = probs.max(dim=-1)
        return [(int(i), float(s)) for i, s in zip(index, score)]
