"""BagOfWordsEncoder: one trainable vector per word, optionally started from GloVe or word2vec.

Also holds ``load_word_vectors`` and ``make_word_embedding``, which the recurrent and
transformer text encoders use for their own ``embeddings_file``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
from torch import Tensor, nn

from duomo.config import ConfigError

logger = logging.getLogger(__name__)

_NUM_SPECIALS = 5  # <pad> <unk> <bos> <eos> <sep> lead every WordTokenizer word list


def load_word_vectors(path: str | Path, vocab: list[str]) -> tuple[Tensor, Tensor]:
    """Vectors of ``vocab``'s words from a GloVe or word2vec text file.

    The file holds one ``word v1 v2 ... vE`` per line; a leading word2vec header ``N E`` is
    skipped. A word matches exactly, or else through its first lower-cased spelling in the file
    (our vocabulary is lower case; word2vec's is not). The first occurrence of a word wins.

    Returns vectors (V, E) float32, zero where not found, and found (V,) bool.
    Raises ConfigError naming the file (and line) when it is missing or malformed.
    """
    where = f"model.text.args.embeddings_file: {path}"
    if not Path(path).is_file():
        raise ConfigError(f"{where}: no such file")
    index = {word: i for i, word in enumerate(vocab)}
    exact: dict[int, list[float]] = {}  # vocab index -> vector, from an exact match
    lowered: dict[int, list[float]] = {}  # from a match after lower-casing
    width = 0
    with open(path, "rb") as lines:  # decoded line by line, so an error names its line
        for line_no, raw in enumerate(lines, start=1):
            try:
                fields = raw.decode("utf-8-sig").split()  # -sig: drops a leading byte-order mark
            except UnicodeDecodeError as err:
                raise ConfigError(f"{where}:{line_no}: not UTF-8 text ({err.reason}); "
                                  "a binary word2vec file must be converted to text first") from None
            if not fields:
                continue
            if line_no == 1 and len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit():
                width = int(fields[1])  # word2vec header: count and width
                continue
            if not width:
                width = len(fields) - 1
                if width < 1:
                    raise ConfigError(f"{where}:{line_no}: expected 'word v1 v2 ...', found one field")
            if len(fields) < width + 1:
                raise ConfigError(f"{where}:{line_no}: expected {width} numbers after the word, "
                                  f"found {len(fields) - 1}")
            # a few GloVe files have words with spaces: the last `width` fields are the vector
            word = " ".join(fields[:-width])
            if word in index and index[word] not in exact:
                found_in, i = exact, index[word]
            elif word.lower() in index and index[word.lower()] not in lowered:
                found_in, i = lowered, index[word.lower()]
            else:
                continue
            try:
                found_in[i] = [float(x) for x in fields[-width:]]
            except ValueError:
                raise ConfigError(f"{where}:{line_no}: the vector of {word!r} holds a non-number") from None
    if not width:
        raise ConfigError(f"{where}: holds no vectors")
    vectors = torch.zeros(len(vocab), width)
    found = torch.zeros(len(vocab), dtype=torch.bool)
    for i, values in {**lowered, **exact}.items():
        vectors[i] = torch.tensor(values)
        found[i] = True
    return vectors, found


def make_word_embedding(vocab: list[str], embed_dim: int, embeddings_file: str) -> nn.Embedding:
    """An nn.Embedding over ``vocab`` (row 0, <pad>, stays zero), of width ``embed_dim``, or of
    the file's width when ``embed_dim`` is 0 and ``embeddings_file`` is given.

    Rows of words found in ``embeddings_file`` copy its vectors; the others are drawn from a
    normal with the file vectors' standard deviation, so both kinds start on one scale.
    """
    if not embeddings_file:
        return nn.Embedding(len(vocab), embed_dim, padding_idx=0)
    vectors, found = load_word_vectors(embeddings_file, vocab)
    width = vectors.shape[1]
    if embed_dim and embed_dim != width:
        raise ConfigError(f"model.text.args.embed_dim: {embed_dim} differs from the {width}-wide vectors "
                          f"of {embeddings_file}; set it to 0 (use the file's width) or {width}")
    num_words = len(vocab) - _NUM_SPECIALS
    num_found = int(found[_NUM_SPECIALS:].sum())
    logger.info("%s: found %d of %d vocabulary words (%.0f%%)", embeddings_file, num_found, num_words,
                100.0 * num_found / max(num_words, 1))
    if num_found == 0:
        logger.warning("%s: none of the vocabulary's words are in the file; all rows stay random", embeddings_file)
    std = float(vectors[found].std()) if num_found > 1 else 1.0
    embedding = nn.Embedding(len(vocab), width, padding_idx=0)
    with torch.no_grad():
        weight = torch.randn(len(vocab), width) * (std if math.isfinite(std) and std > 0 else 1.0)
        weight[found] = vectors[found]
        weight[0] = 0.0
        embedding.weight.copy_(weight)
    return embedding


class BagOfWordsEncoder(nn.Module):
    """Word embeddings, one vector per token, independent of its neighbours.

    ids (B, L) long, mask (B, L) bool -> (B, L, dim); padded positions are zero.
    """

    def __init__(self, *, dim: int, vocab: list[str], embed_dim: int = 0, embeddings_file: str = "",
                 freeze_embeddings: bool = False, dropout: float = 0.0):
        """
        Args:
            embed_dim: width of the word vectors; 0 means dim, or the file's width when
                embeddings_file is given. Projected to dim when it differs.
            embeddings_file: GloVe / word2vec text file to start the word vectors from;
                vocabulary words not in it start random.
            freeze_embeddings: keep the word vectors fixed (only the projection trains).
        """
        super().__init__()
        if embed_dim < 0:
            raise ConfigError(f"model.text.args.embed_dim: must be 0 (= dim) or positive, got {embed_dim}")
        self.embed = make_word_embedding(vocab, embed_dim or (0 if embeddings_file else dim), embeddings_file)
        self.embed.weight.requires_grad_(not freeze_embeddings)
        width = self.embed.embedding_dim
        self.proj = nn.Linear(width, dim) if width != dim else nn.Identity()
        self.dropout = nn.Dropout(dropout)

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        x = self.proj(self.dropout(self.embed(ids)))  # (B, L, dim)
        return x * mask.unsqueeze(-1).to(x.dtype)
