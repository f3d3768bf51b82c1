"""Retrieval head: a dual encoder. Video tokens and query text are each pooled, projected to one
shared space and L2-normalised; a symmetric contrastive loss (InfoNCE, as in CLIP, Radford et al.,
2021, https://arxiv.org/abs/2103.00020) with a learnable temperature pulls each caption towards
its own video and away from the batch's other videos, and each video towards its own captions.

With ``matcher_layers`` the head also has a matcher: the query's words attend over one video's
tokens (the cross-attention fusion's blocks) and a linear layer scores the pair, as the
image-text matching head of ALBEF (Li et al., 2021, https://arxiv.org/abs/2107.07651). It is
trained on each query's own video against negatives drawn from the batch by the dual encoder's
similarity (hard ones more often), and at evaluation it re-ranks the dual encoder's top
``rerank`` videos of each query: one vector per video cannot say which colour goes with which
shape and which move, the words reading the video can.

With ``match_places`` each of the matcher's words also looks inside the candidate's frames, as
stacked attention looks into an image's regions for a question (Yang et al., 2016,
https://arxiv.org/abs/1511.02274) and FILIP matches each word to its best image patch (Yao et al.,
2021, https://arxiv.org/abs/2111.07783): the word, projected, attends over every place of every
valid frame (``Fused.places``, ``model.cell_pool``'s readings before their maximum), and the score
also reads, pooled over the words by a learned weight each, the places found, their agreement
with the word (elementwise product) and the word's best place's match. A frame token's maximum
over its places keeps "something orange" and "a star somewhere" but not that the orange thing is
the star; "an orange star" (a word in context) finds the place that is both.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from duomo.batch import Fused, HeadOutput, VideoBatch
from duomo.config import ConfigError
from duomo.models.fusion.cross_attention import CrossAttentionFusion
from duomo.models.layers import MLP


class RetrievalHead(nn.Module):
    """Text <-> video similarity. Needs the ``separate`` fusion, which leaves the video tokens
    untouched and pools the text alone:

    fused.tokens (B, N, D) video tokens of each row's video, fused.mask (B, N),
    fused.pooled (B, D) the row's pooled query text
    -> logits (B, V): scaled cosine similarity of each row's text to each of the batch's V videos
       (V = len(batch.video_ids); a video no row belongs to gets -1e4).

    Embeddings (``embed_video``, ``embed_text``) are (B, embed_dim) float with unit L2 norm. The
    video tokens are pooled by attention (``pool_heads`` learned scores per token, a softmax over
    the valid tokens each, the heads' weighted sums side by side) or by their mean.
    """

    def __init__(self, *, dim: int, embed_dim: int = 256, hidden_dim: int = 0, pool: str = "attention",
                 temperature: float = 0.07, learn_temperature: bool = True, max_scale: float = 100.0,
                 dropout: float = 0.0, segment_queries: bool = False, pool_heads: int = 1,
                 matcher_layers: int = 0, match_negatives: int = 7, match_weight: float = 1.0, rerank: int = 32,
                 match_dropout: float = 0.1, match_ff_mult: int = 2, match_places: bool = False):
        super().__init__()
        self.segment_queries = segment_queries
        """Training also has one query row per manifest segment with a caption, a positive for the
        whole video (the rows are made by ``duomo.data.datasets.make_rows``; evaluation keeps the
        captions alone)."""
        if pool not in ("attention", "mean"):
            raise ConfigError(f"model.head.args.pool: choose attention or mean, got {pool!r}")
        if pool_heads < 1 or (pool_heads > 1 and pool != "attention"):
            raise ConfigError(f"model.head.args.pool_heads: at least 1, and more only with attention pooling, got {pool_heads}")
        self.pool = pool
        # attention pooling: per head, one learned score per video token, softmax over the valid
        # ones; several heads each gather what their own scores pick (the objects, the moves, the
        # sound), side by side in the vector the projection reads
        self.pool_score = nn.Linear(dim, pool_heads) if pool == "attention" else None
        if hidden_dim > 0:
            self.video_proj: nn.Module = MLP(dim * pool_heads, hidden_dim, embed_dim, dropout)
            self.text_proj: nn.Module = MLP(dim, hidden_dim, embed_dim, dropout)
        else:
            self.video_proj = nn.Linear(dim * pool_heads, embed_dim)
            self.text_proj = nn.Linear(dim, embed_dim)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)), requires_grad=learn_temperature)
        self.max_scale = max_scale
        if matcher_layers < 0 or match_negatives < 1 or rerank < 1:
            raise ConfigError(f"model.head.args: matcher_layers >= 0, match_negatives >= 1 and rerank >= 1, got "
                              f"{matcher_layers}, {match_negatives} and {rerank}")
        self.matcher = (CrossAttentionFusion(dim=dim, num_layers=matcher_layers, video_attends=False,
                                            dropout=match_dropout, ff_mult=match_ff_mult)
                        if matcher_layers else None)
        """The words of a query attending over one video's tokens; ``match_score`` reads its pooled vector."""
        if match_places and not matcher_layers:
            raise ConfigError("model.head.args.match_places: the matcher's words look inside the candidate's "
                              "frames; needs model.head.args.matcher_layers too")
        self.match_places = match_places
        if match_places:  # the words' places found, their agreement with the words, the best places' match
            self.place_query = nn.Linear(dim, dim)
            self.place_norm = nn.LayerNorm(dim)
            self.word_weight = nn.Linear(dim, 1)
        self.match_score = nn.Linear(dim + (2 * dim + 1 if match_places else 0), 1) if matcher_layers else None
        self.match_negatives = match_negatives
        """Negatives per query in the matcher's loss, drawn from the batch's other videos."""
        self.match_weight = match_weight
        self.rerank = rerank
        """How many of the dual encoder's best candidates the matcher re-orders at evaluation."""

    @property
    def scale(self) -> Tensor:
        """Inverse temperature, capped at ``max_scale`` (as in CLIP) so training stays stable."""
        return self.log_scale.exp().clamp(max=self.max_scale)

    def embed_video(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """Video tokens (B, N, D), mask (B, N) -> (B, E) unit vectors."""
        mask = mask.bool()
        if self.pool_score is not None:
            scores = self.pool_score(tokens).masked_fill(~mask.unsqueeze(-1), float("-inf"))  # (B, N, heads)
            weights = torch.softmax(scores, dim=1).nan_to_num(0.0)  # a row with no valid token: zeros
            pooled = torch.einsum("bnh,bnd->bhd", weights, tokens.masked_fill(~mask.unsqueeze(-1), 0.0)).flatten(1)
        else:
            weights = mask.to(tokens.dtype).unsqueeze(-1)
            pooled = (tokens * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return F.normalize(self.video_proj(pooled), dim=-1)

    def embed_text(self, pooled: Tensor) -> Tensor:
        """Pooled text (B, D) -> (B, E) unit vectors."""
        return F.normalize(self.text_proj(pooled), dim=-1)

    def embed(self, out: HeadOutput) -> tuple[Tensor, Tensor]:
        """(text (B, E), video (B, E)): each row's query embedding and its video's embedding."""
        return self.embed_text(out.fused.pooled), self.embed_video(*split_video(out.fused)[:2])

    def match(self, text: Tensor, text_mask: Tensor, video: Tensor, video_mask: Tensor,
              rows: Tensor | None = None, places: Tensor | None = None, frame_mask: Tensor | None = None) -> Tensor:
        """The matcher's logit that each text (P, L, D) with mask (P, L) describes its video:
        video (P, N, D) and mask (P, N), or with ``rows`` (P,) long, text i reads video ``rows[i]``
        of video (V, N, D) -> (P,). With ``match_places``, the videos' ``places`` (P or V, T,
        places, D) and ``frame_mask`` (P or V, T), indexed by ``rows`` as the video is."""
        if self.matcher is None:
            raise ValueError("this retrieval head has no matcher (model.head.args.matcher_layers: 0)")
        fused = self.matcher(video, video_mask, text, text_mask, rows=rows)
        features = fused.pooled
        if self.match_places:
            if places is None or frame_mask is None:
                raise ValueError("model.head.args.match_places: the matcher reads the places of each frame, "
                                 "which only model.cell_pool gives; set model.cell_pool too")
            words, word_mask = fused.tokens[:, -fused.text_tokens:], fused.mask[:, -fused.text_tokens:]
            features = torch.cat([features, *self.look_inside(words, word_mask.bool(), places, frame_mask.bool(), rows)],
                                 dim=-1)
        return self.match_score(features).squeeze(-1)

    def look_inside(self, words: Tensor, word_mask: Tensor, places: Tensor, frame_mask: Tensor,
                    rows: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``match_places``: words (P, L, D) with mask (P, L) read places (P, T, places, D) of the
        frames frame_mask (P, T) keeps (or with ``rows`` (P,), pair i the places and frames of
        video ``rows[i]``, normed once per video) -> (P, D) the places found, (P, D) their
        agreement with the words, (P, 1) the best places' match, each pooled over the valid words
        by the softmax of ``word_weight``. Word l's query q (projected) scores each place by <q, place> / sqrt(D)
        (places layer-normed); a softmax over all the valid frames' places weighs them (found f),
        the agreement is q * f, the best match the highest score. A pair with no valid frame
        finds nothing (zeros)."""
        places = self.place_norm(places).flatten(1, 2)  # (P or V, T * places, D)
        if rows is not None:
            places, frame_mask = places[rows], frame_mask[rows]
        valid = frame_mask.repeat_interleave(places.shape[1] // frame_mask.shape[1], dim=1)  # (P, T * places)
        query = self.place_query(words)  # (P, L, D)
        scores = torch.einsum("pld,pnd->pln", query, places) / places.shape[-1] ** 0.5
        scores = scores.masked_fill(~valid.unsqueeze(1), float("-inf"))
        found = torch.einsum("pln,pnd->pld", torch.softmax(scores, dim=-1).nan_to_num(0.0), places)
        best = scores.amax(dim=-1)
        best = torch.where(valid.any(dim=1, keepdim=True), best, torch.zeros_like(best))  # (P, L)
        weight = self.word_weight(words).squeeze(-1).masked_fill(~word_mask, float("-inf"))
        weight = torch.softmax(weight, dim=-1).nan_to_num(0.0)  # (P, L)
        return (torch.einsum("pl,pld->pd", weight, found), torch.einsum("pl,pld->pd", weight, found * query),
                torch.einsum("pl,pl->p", weight, best).unsqueeze(-1))

    def forward(self, fused: Fused, batch: VideoBatch) -> HeadOutput:
        video_tokens, video_mask, _, _ = split_video(fused)
        text, video = self.embed_text(fused.pooled), self.embed_video(video_tokens, video_mask)
        rows = batch.row_videos
        first = _first_row_of_each_video(rows, len(batch.video_ids))  # (V,)
        has_row = first < rows.shape[0]
        per_video = video[first.clamp(max=rows.shape[0] - 1)]  # (V, E)
        logits = self.scale * text @ per_video.T  # (B, V)
        return HeadOutput(logits=logits.masked_fill(~has_row.unsqueeze(0), -1e4), fused=fused)

    def loss(self, out: HeadOutput, batch: VideoBatch) -> Tensor:
        """Symmetric InfoNCE with several positives: for each row, its video (and the video of any
        other row with the very same text); for each video, every row that is positive for it."""
        rows = batch.row_videos
        num_videos = out.logits.shape[1]
        own = F.one_hot(rows, num_videos).to(out.logits.dtype)  # (B, V)
        if batch.text_ids is not None:
            ids = batch.text_ids.masked_fill(~batch.text_mask.bool(), 0)
            same_text = (ids.unsqueeze(1) == ids.unsqueeze(0)).all(-1).to(own.dtype)  # (B, B)
            positive = (same_text @ own) > 0
        else:
            positive = own > 0
        text_to_video = _multi_positive_nll(out.logits, positive)
        has_row = own.sum(0) > 0
        video_to_text = _multi_positive_nll(out.logits.T[has_row], positive.T[has_row])
        loss = (text_to_video + video_to_text) / 2
        if self.matcher is not None:
            loss = loss + self.match_weight * self.match_loss(out, batch, positive & has_row.unsqueeze(0))
        return loss

    def match_loss(self, out: HeadOutput, batch: VideoBatch, positive: Tensor) -> Tensor:
        """Cross-entropy of each row's own video among it and ``match_negatives`` of the batch's
        other videos (no positive of the row), drawn without replacement with probability
        softmax(dual encoder logits) in training: the videos the dual encoder confuses come most
        often, and a near-duplicate the labels call negative does not come every time; in eval
        mode the most similar ones. Fewer when some row has fewer negatives; 0 when one has none."""
        rows = batch.row_videos
        num_videos = out.logits.shape[1]
        has_row = torch.zeros(num_videos, dtype=torch.bool, device=rows.device)
        has_row[rows] = True
        allowed = ~positive & has_row.unsqueeze(0)  # (B, V)
        count = min(self.match_negatives, int(allowed.sum(1).min()))
        if count < 1:
            return out.logits.new_zeros(())
        logits = out.logits.detach().masked_fill(~allowed, float("-inf"))
        if self.training:
            weights = torch.softmax(logits, dim=1) + 1e-6 * allowed  # a far video's may underflow to 0: still drawable
            negatives = torch.multinomial(weights, count)  # (B, count)
        else:  # validation's loss: the hardest ones, the same every time
            negatives = logits.topk(count, dim=1).indices
        candidates = torch.cat([rows.unsqueeze(1), negatives], dim=1)  # (B, 1 + count)
        video, video_mask, text, text_mask = split_video(out.fused)
        first = _first_row_of_each_video(rows, num_videos).clamp(max=rows.shape[0] - 1)
        pairs = candidates.shape[1]
        scores = self.match(text.repeat_interleave(pairs, 0), text_mask.repeat_interleave(pairs, 0),
                            video[first], video_mask[first], rows=candidates.flatten(), places=out.fused.places,
                            frame_mask=batch.frame_mask)
        target = torch.zeros(rows.shape[0], dtype=torch.long, device=rows.device)
        return F.cross_entropy(scores.view(-1, pairs), target)

    def predict(self, out: HeadOutput) -> list[list[int]]:
        """Per row, the batch's video indices ordered by similarity, best first (evaluation ranks
        over a whole split with ``embed`` instead)."""
        return torch.argsort(out.logits, dim=1, descending=True).tolist()


def split_video(fused: Fused) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(video tokens, their mask, text tokens, their mask) of a fused row set: the separate
    fusion's tokens are the video's, followed by the text's when it keeps them (``keep_text``)."""
    cut = fused.tokens.shape[1] - fused.text_tokens
    return fused.tokens[:, :cut], fused.mask[:, :cut], fused.tokens[:, cut:], fused.mask[:, cut:]


def _first_row_of_each_video(rows: Tensor, num_videos: int) -> Tensor:
    """(V,) index of each video's first row; B (past the end) for a video with no row."""
    first = torch.full((num_videos,), rows.shape[0], dtype=torch.long, device=rows.device)
    return first.scatter_reduce(0, rows, torch.arange(rows.shape[0], device=rows.device), reduce="amin")


def _multi_positive_nll(logits: Tensor, positive: Tensor) -> Tensor:
    """Mean over rows of -log(sum of softmax(logits) over the row's positives); (R, K), (R, K) bool."""
    all_terms = torch.logsumexp(logits, dim=1)
    positive_terms = torch.logsumexp(logits.masked_fill(~positive, float("-inf")), dim=1)
    return (all_terms - positive_terms).mean()
