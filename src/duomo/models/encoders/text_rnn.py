"""RecurrentTextEncoder: word embeddings read by a (bidirectional) GRU or LSTM."""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from duomo.config import ConfigError
from duomo.models.encoders.text_bag import make_word_embedding


class RecurrentTextEncoder(nn.Module):
    """Word embeddings, then a GRU or LSTM over each row's real tokens, projected to dim.

    ids (B, L) long, mask (B, L) bool -> (B, L, dim); padded positions are zero.
    Real tokens come first in each row, padding after (as the collate function makes them);
    the sequences are packed, so padding never reaches a real position in either direction.
    """

    def __init__(self, *, dim: int, vocab: list[str], cell: str = "gru", num_layers: int = 1,
                 bidirectional: bool = True, embed_dim: int = 0, embeddings_file: str = "",
                 dropout: float = 0.0):
        """
        Args:
            cell: "gru" or "lstm".
            embed_dim: width of the word vectors; 0 means dim, or the file's width when
                embeddings_file is given.
            embeddings_file: GloVe / word2vec text file to start the word vectors from.
            dropout: on the word vectors and between recurrent layers.
        """
        super().__init__()
        if cell not in ("gru", "lstm"):
            raise ConfigError(f"model.text.args.cell: must be 'gru' or 'lstm', got {cell!r}")
        if num_layers < 1:
            raise ConfigError(f"model.text.args.num_layers: must be at least 1, got {num_layers}")
        if embed_dim < 0:
            raise ConfigError(f"model.text.args.embed_dim: must be 0 (= dim) or positive, got {embed_dim}")
        self.embed = make_word_embedding(vocab, embed_dim or (0 if embeddings_file else dim), embeddings_file)
        self.dropout = nn.Dropout(dropout)
        rnn_cls = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn_cls(self.embed.embedding_dim, dim, num_layers=num_layers, batch_first=True,
                           bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)
        self.proj = nn.Linear(dim * (2 if bidirectional else 1), dim)

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        x = self.dropout(self.embed(ids))  # (B, L, E)
        # a row with no real token still packs one (padding) step; the mask zeroes its output
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])  # (B, L, dirs * dim)
        out = self.proj(out)
        return out * mask.unsqueeze(-1).to(out.dtype)
