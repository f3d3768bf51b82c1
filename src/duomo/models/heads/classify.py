"""Classification head: single-label (softmax) or multi-label (one sigmoid per class).

pooled (B, D) -> logits (B, K).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from duomo.batch import Fused, HeadOutput, VideoBatch
from duomo.models.layers import MLP


class ClassifyHead(nn.Module):
    """Labels for a whole video. Single-label rows carry ``labels`` (B,) class indices;
    multi-label rows carry ``labels`` (B, K) float multi-hot targets."""

    def __init__(self, *, dim: int, num_classes: int, multi_label: bool = False, hidden_dim: int = 512,
                 dropout: float = 0.1, threshold: float = 0.5, label_smoothing: float = 0.0,
                 all_labels_weight: float = 0.0):
        super().__init__()
        if hidden_dim > 0:
            self.classifier: nn.Module = MLP(dim, hidden_dim, num_classes, dropout)
        else:
            self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, num_classes))
        self.all_labels_weight = all_labels_weight
        """Single-label: also learn, from the same pooled vector, every label the video has (the
        manifest's ``labels``, the first being the class), one sigmoid each, binary cross-entropy
        times this weight. 0: off."""
        self.all_labels = nn.Linear(dim, num_classes) if all_labels_weight > 0 and not multi_label else None
        self.multi_label = multi_label
        self.threshold = threshold
        self.label_smoothing = label_smoothing

    def forward(self, fused: Fused, batch: VideoBatch) -> HeadOutput:
        others = self.all_labels(fused.pooled) if self.all_labels is not None and batch.label_sets is not None else None
        return HeadOutput(logits=self.classifier(fused.pooled), fused=fused, label_sets=others)

    def loss(self, out: HeadOutput, batch: VideoBatch) -> Tensor:
        if self.multi_label:
            return F.binary_cross_entropy_with_logits(out.logits, batch.labels.float())
        loss = F.cross_entropy(out.logits, batch.labels, ignore_index=-100, label_smoothing=self.label_smoothing)
        if out.label_sets is not None:
            loss = loss + self.all_labels_weight * F.binary_cross_entropy_with_logits(out.label_sets, batch.label_sets)
        return loss

    def scores(self, out: HeadOutput) -> Tensor:
        """(B, K) class probabilities: softmax, or independent sigmoids for multi-label."""
        return torch.sigmoid(out.logits) if self.multi_label else torch.softmax(out.logits, dim=-1)

    def predict(self, out: HeadOutput) -> list[list[tuple[int, float]]]:
        """Per row, (class index, score) pairs, best first: the top class for single-label; every
        class over ``threshold`` (at least the best one) for multi-label."""
        probs = self.scores(out)
        results = []
        for row in probs:
            order = torch.argsort(row, descending=True)
            if self.multi_label:
                picked = [int(i) for i in order if row[i] >= self.threshold] or [int(order[0])]
            else:
                picked = [int(order[0])]
            results.append([(i, float(row[i])) for i in picked])
        return results
