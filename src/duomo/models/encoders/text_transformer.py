"""TransformerTextEncoder: word embeddings plus sinusoidal positions, through a transformer encoder.

Vaswani et al., 2017, https://arxiv.org/abs/1706.03762 (pre-norm layers).
"""

from __future__ import annotations

from torch import Tensor, nn

from duomo.config import ConfigError
from duomo.models.encoders.text_bag import make_word_embedding
from duomo.models.layers import padding_safe, sinusoid_table


class TransformerTextEncoder(nn.Module):
    """Self-attention over each row's real tokens.

    ids (B, L) long, mask (B, L) bool -> (B, L, dim); padded positions are zero. L <= max_len.
    """

    def __init__(self, *, dim: int, vocab: list[str], num_layers: int = 2, num_heads: int = 4,
                 ff_mult: int = 4, dropout: float = 0.1, max_len: int = 512, embeddings_file: str = ""):
        """
        Args:
            ff_mult: feed-forward width as a multiple of dim.
            max_len: longest text (in tokens) the position table covers.
            embeddings_file: GloVe / word2vec text file to start the word vectors from; vectors
                of another width than dim are projected to dim.
        """
        super().__init__()
        if dim % num_heads:
            raise ConfigError(f"model.text.args.num_heads: {num_heads} does not divide model.dim {dim}")
        if num_layers < 1:
            raise ConfigError(f"model.text.args.num_layers: must be at least 1, got {num_layers}")
        self.embed = make_word_embedding(vocab, 0 if embeddings_file else dim, embeddings_file)
        width = self.embed.embedding_dim
        self.proj = nn.Linear(width, dim) if width != dim else nn.Identity()
        self.register_buffer("positions", sinusoid_table(max_len, dim), persistent=False)  # (max_len, dim)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(dim, num_heads, dim * ff_mult, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(dim), enable_nested_tensor=False)

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        length = ids.shape[1]
        if length > self.positions.shape[0]:
            raise ConfigError(f"model.text.args.max_len: {self.positions.shape[0]} is shorter than a "
                              f"{length}-token text; raise it or lower data.max_text_len")
        x = self.proj(self.embed(ids)) + self.positions[:length]  # (B, L, dim)
        # the transformer wants True at padding, the opposite of our masks
        x = self.layers(self.dropout(x), src_key_padding_mask=padding_safe(mask))
        return x * mask.unsqueeze(-1).to(x.dtype)
