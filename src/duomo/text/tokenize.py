"""Word-level tokenizer built from the training text and saved with the model.

Lower-cases, splits words and punctuation; ids 0-4 are reserved: <pad>, <unk>, <bos>, <eos>, <sep>.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

PAD, UNK, BOS, EOS, SEP = 0, 1, 2, 3, 4
SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>", "<sep>"]

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]", re.UNICODE)


def split_words(text: str) -> list[str]:
    """'What color is the Square?' -> ['what', 'color', 'is', 'the', 'square', '?']"""
    return _WORD.findall(text.lower())


class WordTokenizer:
    """Maps words to ids and back; ``words[i]`` is the word of id ``i``."""

    def __init__(self, words: list[str]):
        if words[: len(SPECIALS)] != SPECIALS:
            raise ValueError("a tokenizer's word list must start with the special tokens")
        self.words = list(words)
        self._ids = {word: i for i, word in enumerate(self.words)}

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1) -> "WordTokenizer":
        """From training text: every word seen at least ``min_count`` times, most frequent first."""
        counts = Counter(word for text in texts for word in split_words(text))
        kept = sorted((w for w, c in counts.items() if c >= min_count and w not in SPECIALS),
                      key=lambda w: (-counts[w], w))
        return cls(SPECIALS + kept)

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str, max_len: int | None = None, *, bos: bool = False, eos: bool = False) -> list[int]:
        """Ids of ``text``; with ``max_len``, at most that many ids (end token kept last)."""
        ids = [self._ids.get(word, UNK) for word in split_words(text)]
        if bos:
            ids = [BOS] + ids
        if max_len is not None:
            ids = ids[: max_len - 1 if eos else max_len]
        if eos:
            ids = ids + [EOS]
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Words of ``ids`` joined by spaces, stopping at <eos>, skipping <pad>/<bos>."""
        words = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i in (PAD, BOS):
                continue
            words.append(self.words[i] if 0 <= i < len(self.words) else "<unk>")
        text = " ".join(words)
        return re.sub(r" ([?.,!;:])", r"\1", text)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"words": self.words}))

    @classmethod
    def load(cls, path: str | Path) -> "WordTokenizer":
        return cls(json.loads(Path(path).read_text())["words"])
