"""Caption head: an autoregressive decoder over the fused video tokens, trained with teacher
forcing, decoded greedily or with beam search.

Decoders: "gru" (a GRU over the words, then dot-product attention over the video tokens, as in
Luong et al., 2015, https://arxiv.org/abs/1508.04025) and "transformer" (causal self-attention
plus cross-attention, Vaswani et al., 2017). ``attend=False`` gives the classic design: a GRU
started from the pooled video vector with one dense softmax layer on top.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from duomo.batch import Fused, HeadOutput, VideoBatch
from duomo.models.layers import padding_safe, sinusoid_table
from duomo.text.tokenize import BOS, EOS, PAD


class CaptionHead(nn.Module):
    """fused tokens (B, N, D) -> next-word logits (B, S-1, V) under teacher forcing;
    ``predict`` returns token ids per row (without <bos>/<eos>)."""

    def __init__(self, *, dim: int, vocab_size: int, decoder: str = "transformer", num_layers: int = 2,
                 num_heads: int = 4, ff_mult: int = 4, dropout: float = 0.1, attend: bool = True,
                 beam_size: int = 3, max_len: int = 40, length_penalty: float = 0.7,
                 label_smoothing: float = 0.0):
        super().__init__()
        if decoder not in ("gru", "transformer"):
            raise ValueError(f"decoder must be 'gru' or 'transformer', not {decoder!r}")
        if decoder == "transformer" and not attend:
            raise ValueError("the transformer decoder always attends; use decoder='gru' with attend=False")
        self.decoder_kind = decoder
        self.attend = attend
        self.beam_size = beam_size
        self.max_len = max_len
        self.length_penalty = length_penalty
        self.label_smoothing = label_smoothing
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        if decoder == "gru":
            self.init_state = nn.Linear(dim, dim * num_layers)
            self.rnn = nn.GRU(dim, dim, num_layers=num_layers, batch_first=True,
                              dropout=dropout if num_layers > 1 else 0.0)
            self.num_layers = num_layers
            self.combine = nn.Linear(2 * dim, dim) if attend else None
        else:
            layer = nn.TransformerDecoderLayer(dim, num_heads, dim * ff_mult, dropout, batch_first=True, norm_first=True)
            self.transformer = nn.TransformerDecoder(layer, num_layers)
            self.norm = nn.LayerNorm(dim)
            self.register_buffer("positions", sinusoid_table(max(max_len, 64) + 2, dim), persistent=False)
        self.output = nn.Linear(dim, vocab_size)

    def forward(self, fused: Fused, batch: VideoBatch) -> HeadOutput:
        inputs = batch.target_ids[:, :-1]
        return HeadOutput(logits=self._logits(inputs, fused.tokens, fused.mask, fused.pooled), fused=fused)

    def loss(self, out: HeadOutput, batch: VideoBatch) -> Tensor:
        targets = batch.target_ids[:, 1:]
        return F.cross_entropy(out.logits.reshape(-1, out.logits.shape[-1]), targets.reshape(-1),
                               ignore_index=PAD, label_smoothing=self.label_smoothing)

    def _logits(self, inputs: Tensor, memory: Tensor, memory_mask: Tensor, pooled: Tensor) -> Tensor:
        """Next-word logits (B, S, V) for every prefix of ``inputs`` (B, S)."""
        x = self.dropout(self.embed(inputs))
        if self.decoder_kind == "gru":
            h0 = torch.tanh(self.init_state(pooled))  # (B, layers * D)
            h0 = h0.view(pooled.shape[0], self.num_layers, -1).transpose(0, 1).contiguous()
            hidden, _ = self.rnn(x, h0)  # (B, S, D)
            if self.combine is not None:
                scores = hidden @ memory.transpose(1, 2) / memory.shape[-1] ** 0.5  # (B, S, N)
                scores = scores.masked_fill(padding_safe(memory_mask).unsqueeze(1), float("-inf"))
                context = torch.softmax(scores, dim=-1) @ memory
                hidden = torch.tanh(self.combine(torch.cat([hidden, context], dim=-1)))
            return self.output(self.dropout(hidden))
        length = inputs.shape[1]
        x = x + self.positions[:length]
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=inputs.device), diagonal=1)
        hidden = self.transformer(x, memory, tgt_mask=causal, tgt_key_padding_mask=inputs == PAD,
                                  memory_key_padding_mask=padding_safe(memory_mask))
        return self.output(self.norm(hidden))

    @torch.no_grad()
    def predict(self, out: HeadOutput, beam_size: int | None = None) -> list[list[int]]:
        """Token ids of the best caption per row: greedy when ``beam_size`` is 1, else beam search
        with a length penalty (score / length ** length_penalty)."""
        beam = self.beam_size if beam_size is None else beam_size
        fused = out.fused
        if beam <= 1:
            return self._greedy(fused)
        return [self._beam(fused.tokens[i : i + 1], fused.mask[i : i + 1], fused.pooled[i : i + 1], beam)
                for i in range(fused.tokens.shape[0])]

    def _greedy(self, fused: Fused) -> list[list[int]]:
        batch_size = fused.tokens.shape[0]
        seq = torch.full((batch_size, 1), BOS, dtype=torch.long, device=fused.tokens.device)
        done = torch.zeros(batch_size, dtype=torch.bool, device=seq.device)
        for _ in range(self.max_len):
            step = self._logits(seq, fused.tokens, fused.mask, fused.pooled)[:, -1]
            nxt = step.argmax(-1).masked_fill(done, PAD)
            seq = torch.cat([seq, nxt.unsqueeze(1)], dim=1)
            done |= nxt == EOS
            if done.all():
                break
        return [_strip(row.tolist()) for row in seq]

    def _beam(self, memory: Tensor, memory_mask: Tensor, pooled: Tensor, beam: int) -> list[int]:
        device = memory.device
        seqs = torch.full((1, 1), BOS, dtype=torch.long, device=device)
        scores = torch.zeros(1, device=device)
        finished: list[tuple[float, list[int]]] = []
        for step in range(self.max_len):
            count = seqs.shape[0]
            logp = torch.log_softmax(self._logits(seqs, memory.expand(count, -1, -1), memory_mask.expand(count, -1),
                                                  pooled.expand(count, -1))[:, -1], dim=-1)  # (k, V)
            total = (scores.unsqueeze(1) + logp).view(-1)
            top_scores, top_idx = total.topk(min(beam, total.numel()))
            vocab = logp.shape[1]
            new_seqs, new_scores = [], []
            for score, idx in zip(top_scores.tolist(), top_idx.tolist()):
                parent, token = divmod(idx, vocab)
                seq = seqs[parent].tolist() + [token]
                if token == EOS:
                    finished.append((score / (len(seq) - 1) ** self.length_penalty, seq))
                else:
                    new_seqs.append(seq)
                    new_scores.append(score)
            if not new_seqs or (len(finished) >= beam and max(f[0] for f in finished) >=
                                max(new_scores) / (step + 2) ** self.length_penalty):
                break
            seqs = torch.tensor(new_seqs, dtype=torch.long, device=device)
            scores = torch.tensor(new_scores, device=device)
        if not finished:  # nothing ended within max_len: keep the best open hypothesis
            finished = [(s / seqs.shape[1] ** self.length_penalty, q) for s, q in zip(scores.tolist(), seqs.tolist())]
        return _strip(max(finished, key=lambda f: f[0])[1])


def _strip(ids: list[int]) -> list[int]:
    """Ids after <bos>, up to (not including) <eos>."""
    out = []
    for i in ids[1:] if ids and ids[0] == BOS else ids:
        if i == EOS:
            break
        if i != PAD:
            out.append(i)
    return out
