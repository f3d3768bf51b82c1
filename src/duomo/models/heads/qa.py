"""Answer head for open-ended and multiple-choice video QA (and dialog turns).

pooled (B, D) -> logits over the answer vocabulary (B, K). Multiple-choice rows pick the best
of their own choices (``choice_mask``); open-ended rows pick from every answer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from duomo.batch import Fused, HeadOutput, VideoBatch
from duomo.models.layers import MLP


class QAHead(nn.Module):
    """Classifies the fused question-video vector into one of ``num_answers`` answers.

    ``hidden_dim = 0`` gives one dense softmax layer (the classic baseline); otherwise an MLP.
    """

    def __init__(self, *, dim: int, num_answers: int, hidden_dim: int = 512, dropout: float = 0.1,
                 label_smoothing: float = 0.0):
        super().__init__()
        if hidden_dim > 0:
            self.classifier: nn.Module = MLP(dim, hidden_dim, num_answers, dropout)
        else:
            self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, num_answers))
        self.label_smoothing = label_smoothing

    def forward(self, fused: Fused, batch: VideoBatch) -> HeadOutput:
        return HeadOutput(logits=self.classifier(fused.pooled), fused=fused, choice_mask=batch.choice_mask)

    def loss(self, out: HeadOutput, batch: VideoBatch) -> Tensor:
        return F.cross_entropy(out.logits, batch.labels, ignore_index=-100, label_smoothing=self.label_smoothing)

    def predict(self, out: HeadOutput) -> list[tuple[int, float]]:
        """(answer index, probability) per row, the argmax among the row's allowed answers."""
        logits = out.logits
        if out.choice_mask is not None:
            logits = logits.masked_fill(~out.choice_mask, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        score, index = probs.max(dim=-1)
        return [(int(i), float(s)) for i, s in zip(index, score)]
