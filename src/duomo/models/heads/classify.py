"""Classification head: single-label (softmax) or multi-label (one sigmoid per class).

pooled (B, D) -> logits (B, K).

With ``place_queries`` = Q > 0 the classes also read Q learned queries that look inside the
frames, as the qa head's slots do for a question (stacked attention, Yang et al., 2016,
https://arxiv.org/abs/1511.02274), with no question: query q attends over the places of each
frame (``Fused.places``, ``model.cell_pool``'s readings before their maximum; a softmax over the
frame's places), then over the valid frames by how well what it found there answers a second
learned vector (a softmax over the frames), and gives what it found and when (the expected time,
a fraction of the video). A frame token's maximum over its places keeps "something moves down"
but not always which thing; a query can learn to follow what moves and say when.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from duomo.batch import Fused, HeadOutput, VideoBatch
from duomo.models.layers import MLP, look_into_frames, valid_fractions


class ClassifyHead(nn.Module):
    """Labels for a whole video. Single-label rows carry ``labels`` (B,) class indices;
    multi-label rows carry ``labels`` (B, K) float multi-hot targets."""

    def __init__(self, *, dim: int, num_classes: int, multi_label: bool = False, hidden_dim: int = 512,
                 dropout: float = 0.1, threshold: float = 0.5, label_smoothing: float = 0.0,
                 all_labels_weight: float = 0.0, place_queries: int = 0):
        super().__init__()
        if place_queries < 0:
            raise ValueError(f"model.head.args.place_queries: 0 (off) or a number of queries, got {place_queries}")
        self.place_queries = place_queries
        width = dim + place_queries * (dim + 1)  # the pooled vector, then each query's places found and when
        if place_queries:
            self.place_query = nn.Parameter(torch.randn(place_queries, dim) * dim ** -0.5)
            self.frame_query = nn.Parameter(torch.randn(place_queries, dim) * dim ** -0.5)
            self.place_norm = nn.LayerNorm(dim)
        if hidden_dim > 0:
            self.classifier: nn.Module = MLP(width, hidden_dim, num_classes, dropout)
        else:
            self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, num_classes))
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
        features = fused.pooled
        if self.place_queries:
            features = torch.cat([features, *self.look_inside(fused, batch)], dim=-1)
        return HeadOutput(logits=self.classifier(features), fused=fused, label_sets=others)

    def look_inside(self, fused: Fused, batch: VideoBatch) -> tuple[Tensor, Tensor]:
        """``place_queries``: (B, Q * D) each query's places found, weighed over the frames, and
        (B, Q) when. Query q scores each place of each frame by <q, place> / sqrt(D) (places
        layer-normed), a softmax over the frame's places gives what it finds there, f_t; the
        frames weigh by a softmax over the valid ones of <v_q, f_t> / sqrt(D). A row with no
        valid frame finds nothing (zeros)."""
        if fused.places is None:
            raise ValueError("model.head.args.place_queries: reads the places of each frame, which only "
                             "model.cell_pool gives; set model.cell_pool too")
        rows = batch.row_videos
        places = self.place_norm(fused.places)[rows]  # (B, T, P, D)
        frame_mask = batch.frame_mask[rows].bool()  # (B, T)
        _, inside = look_into_frames(self.place_query.expand(len(rows), -1, -1), places)  # (B, Q, T, D)
        frames = torch.einsum("qd,bqtd->bqt", self.frame_query, inside) / places.shape[-1] ** 0.5
        weights = torch.softmax(frames.masked_fill(~frame_mask.unsqueeze(1), float("-inf")), dim=-1).nan_to_num(0.0)
        found = torch.einsum("bqt,bqtd->bqd", weights, inside).flatten(1)
        return found, torch.einsum("bqt,bt->bq", weights, valid_fractions(frame_mask).to(places.dtype))

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
