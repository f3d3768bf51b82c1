"""Text of a summary: key phrases for chapter titles (TF-IDF over the chapters' words) and the
extractive summary (the transcript sentences most central by MiniLM similarity)."""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

STOPWORDS = frozenset("""a an the and or but if then so of to in on at by for with from as is are was were be been
being it its this that these those there here i you he she we they me him her us them my your his our their
what which who whom whose when where why how all any both each few more most other some such no nor not only
own same than too very can will just do does did done have has had having would could should may might must
shall about above after again against below between into through during before under over up down out off
once further also yeah okay ok oh um uh like get got go going gonna let lets well really right now one two
""".split())

WORD = re.compile(r"[a-zA-Z][a-zA-Z'-]{2,}")


def key_phrases(documents: list[str], top_k: int = 3) -> list[list[str]]:
    """For each document, its ``top_k`` words by TF-IDF against the others (stopwords and
    words under 3 letters left out), best first; [] for a document with no words."""
    tokens = [[w.lower().strip("'-") for w in WORD.findall(doc)] for doc in documents]
    tokens = [[w for w in words if w not in STOPWORDS] for words in tokens]
    df = Counter(w for words in tokens for w in set(words))
    n = len(documents)
    result = []
    for words in tokens:
        counts = Counter(words)
        scored = sorted(counts, key=lambda w: (-counts[w] * math.log((1 + n) / (1 + df[w])) - counts[w] * 1e-3, w))
        result.append(scored[:top_k])
    return result


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``: split after . ! ? (kept), blank pieces dropped."""
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]


def central_sentences(vectors: np.ndarray, count: int) -> list[int]:
    """Indices (increasing) of the ``count`` rows of ``vectors`` (N, E) with the highest mean
    cosine similarity to all the others (ties to the earlier one)."""
    n = len(vectors)
    if n == 0 or count <= 0:
        return []
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit.T
    centrality = (similarity.sum(axis=1) - np.diag(similarity)) / max(1, n - 1)
    order = sorted(range(n), key=lambda i: (-round(float(centrality[i]), 9), i))
    return sorted(order[:count])
