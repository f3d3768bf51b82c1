"""Answer head for open-ended and multiple-choice video QA (and dialog turns).

pooled (B, D) -> logits over the answer vocabulary (B, K). Multiple-choice rows pick the best
of their own choices (``choice_mask``); open-ended rows pick from every answer.

With ``ground_weight`` > 0, training also has grounding rows: a description of one event of the
video (a manifest segment's caption) and its span, no answer. For them the head says, frame by
frame, whether the event happens there, from the frame tokens conditioned on the fused vector
(FiLM, as the moment head does), with binary cross-entropy against the frames inside the span,
weighted by ``ground_weight``: the text encoder, the fusion and the frame tokens learn to find
described events in time, which questions about what happens, to what, and in which order need.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from duomo.batch import Fused, HeadOutput, VideoBatch
from duomo.models.heads.moment import inside_loss, span_bins
from duomo.models.layers import MLP


class QAHead(nn.Module):
    """Classifies the fused question-video vector into one of ``num_answers`` answers.

    ``hidden_dim = 0`` gives one dense softmax layer (the classic baseline); otherwise an MLP.
    """

    def __init__(self, *, dim: int, num_answers: int, hidden_dim: int = 512, dropout: float = 0.1,
                 label_smoothing: float = 0.0, ground_weight: float = 0.0):
        super().__init__()
        if hidden_dim > 0:
            self.classifier: nn.Module = MLP(dim, hidden_dim, num_answers, dropout)
        else:
            self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, num_answers))
        self.label_smoothing = label_smoothing
        self.ground_weight = ground_weight
        if ground_weight > 0:
            self.ground_scale = nn.Linear(dim, dim)
            self.ground_shift = nn.Linear(dim, dim)
            self.ground_out = MLP(dim, dim, 1, dropout)

    def forward(self, fused: Fused, batch: VideoBatch) -> HeadOutput:
        ground = None
        if self.ground_weight > 0 and batch.spans is not None:
            start = fused.first_frame
            frames = fused.tokens[:, start : start + batch.frame_mask.shape[1]]  # (B, T, D)
            x = frames * (1 + self.ground_scale(fused.pooled).unsqueeze(1)) + self.ground_shift(fused.pooled).unsqueeze(1)
            ground = self.ground_out(x).squeeze(-1)  # (B, T)
        return HeadOutput(logits=self.classifier(fused.pooled), fused=fused, choice_mask=batch.choice_mask, ground=ground)

    def loss(self, out: HeadOutput, batch: VideoBatch) -> Tensor:
        answered = batch.labels != -100
        # cross-entropy's mean over no row is nan; a batch of grounding rows alone has no answer loss
        loss = (F.cross_entropy(out.logits[answered], batch.labels[answered], label_smoothing=self.label_smoothing)
                if answered.any() else out.logits.sum() * 0.0)
        if out.ground is None:
            return loss
        spans = batch.spans
        grounded = ~torch.isnan(spans[:, 0])  # rows with a span: the grounding rows
        if not grounded.any():
            return loss
        mask = batch.frame_mask[batch.rows] if batch.rows is not None else batch.frame_mask  # (B, T)
        mask = mask[grounded]
        start, end = span_bins(spans[grounded], mask)
        return loss + self.ground_weight * inside_loss(out.ground[grounded], start, end, mask)

    def predict(self, out: HeadOutput) -> list[tuple[int, float]]:
        """(answer index, probability) per row, the argmax among the row's allowed answers."""
        logits = out.logits
        if out.choice_mask is not None:
            logits = logits.masked_fill(~out.choice_mask, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        score, index = probs.max(dim=-1)
        return [(int(i), float(s)) for i, s in zip(index, score)]
