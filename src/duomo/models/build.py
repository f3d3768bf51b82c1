"""Name -> class tables for every part, and build_model(cfg, vocab): the one place parts are wired.

To add a part: write its file, add one line to a table here, run the tests (the contract tests
are parametrized over these tables).
"""

from __future__ import annotations

import functools
import inspect
import types
import typing

from torch import nn

from duomo.config import Component, ConfigError, RunConfig
from duomo.models.encoders.audio import MelCNNEncoder
from duomo.models.encoders.cnn import SmallCNNEncoder
from duomo.models.encoders.pretrained import PretrainedFrameEncoder
from duomo.models.encoders.resnet import ResNet18Encoder
from duomo.models.encoders.temporal import MeanTemporalEncoder, RecurrentTemporalEncoder, TransformerTemporalEncoder
from duomo.models.encoders.text_bag import BagOfWordsEncoder
from duomo.models.encoders.text_minilm import MiniLMTextEncoder
from duomo.models.encoders.text_rnn import RecurrentTextEncoder
from duomo.models.encoders.text_transformer import TransformerTextEncoder
from duomo.models.fusion.attention import AttentionFusion
from duomo.models.fusion.concat import ConcatFusion
from duomo.models.fusion.cross_attention import CrossAttentionFusion
from duomo.models.fusion.late_concat import LateConcatFusion
from duomo.models.fusion.separate import SeparateFusion
from duomo.models.heads.caption import CaptionHead
from duomo.models.heads.classify import ClassifyHead
from duomo.models.heads.moment import MomentHead
from duomo.models.heads.qa import QAHead
from duomo.models.heads.retrieval import RetrievalHead
from duomo.models.heads.summarize import SummarizeHead
from duomo.models.layers import faster_dropout
from duomo.models.model import VideoTextModel

# Per-frame encoders: (*, dim, ...) ; frames (B, T, C, H, W) -> (B, T, dim)
FRAME_ENCODERS = {
    "cnn_small": SmallCNNEncoder,
    "resnet18": ResNet18Encoder,
    "pretrained": PretrainedFrameEncoder,
}
# Temporal encoders: (*, dim, ...) ; (B, T, dim) -> (B, T', dim)
TEMPORAL_ENCODERS = {
    "mean": MeanTemporalEncoder,
    "gru": functools.partial(RecurrentTemporalEncoder, cell="gru"),
    "lstm": functools.partial(RecurrentTemporalEncoder, cell="lstm"),
    "transformer": TransformerTemporalEncoder,
}
# Audio encoders: (*, dim, num_mels, ...) ; log-mel (B, A, M) -> (B, A', dim)
AUDIO_ENCODERS = {
    "mel_cnn": MelCNNEncoder,
}
# Text encoders: (*, dim, vocab, ...) ; ids (B, L) -> (B, L, dim)
TEXT_ENCODERS = {
    "bag": BagOfWordsEncoder,
    "gru": functools.partial(RecurrentTextEncoder, cell="gru"),
    "lstm": functools.partial(RecurrentTextEncoder, cell="lstm"),
    "transformer": TransformerTextEncoder,
    "minilm": MiniLMTextEncoder,
}
# Fusions: (*, dim, ...) ; video (B, N, dim) + text (B, L, dim) -> Fused
FUSIONS = {
    "concat": ConcatFusion,
    "attention": AttentionFusion,
    "cross_attn": CrossAttentionFusion,
    "late_concat": LateConcatFusion,
    "separate": SeparateFusion,
}
# Heads: (*, dim, <task sizes>, ...) ; the task name picks the head (see TASK_HEADS).
HEADS = {
    "caption": CaptionHead,
    "qa": QAHead,
    "dialog": QAHead,
    "classify": ClassifyHead,
    "retrieval": RetrievalHead,
    "moment": MomentHead,
    "summarize": SummarizeHead,
}
# Tasks with more than one head; every other task's head is named after the task.
TASK_HEADS = {"retrieval": ("retrieval", "moment")}

TABLES = {
    "model.video": FRAME_ENCODERS,
    "model.temporal": TEMPORAL_ENCODERS,
    "model.audio": AUDIO_ENCODERS,
    "model.text": TEXT_ENCODERS,
    "model.fusion": FUSIONS,
    "model.head": HEADS,
}


def _lookup(where: str, component: Component):
    table = TABLES[where]
    if component.name not in table:
        raise ConfigError(f"{where}.name: unknown {component.name!r}; choose one of {', '.join(table)}")
    return table[component.name]


# Arguments build_model passes itself; a config may not set them.
INJECTED = {"dim", "vocab", "num_mels", "vocab_size", "num_answers", "num_classes"}


def check(cfg: RunConfig) -> None:
    """Bind every Component's args to its class's signature, so a typo fails at startup."""
    for where in TABLES:
        component = _component(cfg, where)
        if component is None:
            continue
        cls = _lookup(where, component)
        params = inspect.signature(cls).parameters
        for key in component.args:
            if key in INJECTED:
                raise ConfigError(f"{where}.args.{key}: set by Duomo itself"
                                  + (" (use model.dim)" if key == "dim" else " (from the data)"))
            if key not in params or params[key].kind is not inspect.Parameter.KEYWORD_ONLY:
                valid = [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
                raise ConfigError(f"{where}.args.{key}: {component.name} takes no such argument "
                                  f"(it takes {', '.join(valid)})")
            wanted = _arg_types(cls).get(key)
            if wanted is not None and not _fits(component.args[key], wanted):
                raise ConfigError(f"{where}.args.{key}: {component.name} takes {_type_name(wanted)}, "
                                  f"not {component.args[key]!r}")


@functools.cache
def _arg_types(cls: type) -> dict[str, object]:
    """Each keyword argument's annotated type (``typing.get_type_hints`` of ``__init__``)."""
    return typing.get_type_hints(cls.__init__)


def _fits(value: object, wanted: object) -> bool:
    """Whether a config value (what YAML gives: bool, int, float, str, list, dict, None) suits an
    annotation: a bool only a bool, an int an int, a float an int or a float, a str a str, a
    tuple or list a list; each member of a union tried; any other annotation is not checked."""
    if typing.get_origin(wanted) in (typing.Union, types.UnionType):
        return any(_fits(value, option) for option in typing.get_args(wanted))
    if wanted is type(None):
        return value is None
    if wanted is bool:
        return isinstance(value, bool)
    if wanted is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if wanted is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if wanted is str:
        return isinstance(value, str)
    if _is_list(wanted):
        return isinstance(value, (list, tuple))
    return True


def _is_list(wanted: object) -> bool:
    """Whether an annotation is a tuple or list, bare or typed (``tuple[int, ...]``)."""
    return wanted in (tuple, list) or typing.get_origin(wanted) in (tuple, list)


def _type_name(wanted: object) -> str:
    """"true or false", "a whole number", "a number", "a string", "a list", joined by "or"."""
    if typing.get_origin(wanted) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(option) for option in typing.get_args(wanted))
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "a string", type(None): "null"}
    return names.get(wanted, "a list" if _is_list(wanted) else str(wanted))


def _component(cfg: RunConfig, where: str) -> Component | None:
    component = getattr(cfg.model, where.split(".")[1])
    if where == "model.audio" and (component.name == "none" or not cfg.data.use_audio):
        return None
    if where == "model.head" and component.name not in TASK_HEADS.get(cfg.task, (cfg.task,)):
        raise ConfigError(f"model.head.name: {component.name!r} does not match the task {cfg.task!r}"
                          f" (use {' or '.join(TASK_HEADS.get(cfg.task, (cfg.task,)))})")
    if where == "model.head" and component.name == "retrieval" and cfg.model.fusion.name != "separate":
        raise ConfigError(f"model.fusion.name: the retrieval head compares video and text embedded apart; "
                          f"use separate, not {cfg.model.fusion.name!r}")
    if where == "model.head" and cfg.train.neighbour_batches > 1 and component.name != "retrieval":
        raise ConfigError(f"train.neighbour_batches: groups videos by the retrieval head's video embeddings; the "
                          f"{component.name} head has none (set train.neighbour_batches=0)")
    if where == "model.head" and component.name == "retrieval" and component.args.get("matcher_layers", 0) > 0 \
            and not cfg.model.fusion.args.get("keep_text", False):
        raise ConfigError("model.head.args.matcher_layers: the matcher reads the query's words; set "
                          "model.fusion.args.keep_text=true, or model.head.args.matcher_layers=0")
    if where == "model.head" and component.name == "summarize" and cfg.model.temporal.name == "mean":
        raise ConfigError("model.temporal.name: the summarize head needs one token per frame; mean keeps one per video")
    if where == "model.head" and component.name == "summarize" and cfg.model.fusion.name not in ("attention", "separate",
                                                                                                   "late_concat"):
        raise ConfigError(f"model.fusion.name: the summarize head reads the frame tokens first; use attention, "
                          f"separate or late_concat, not {cfg.model.fusion.name!r}")
    if where == "model.head" and component.name in ("moment", "summarize") and cfg.model.video_tokens != "frame":
        raise ConfigError(f"model.video_tokens: the {component.name} head needs one token per frame; use frame")
    per_frame = cfg.model.temporal.name != "mean" and cfg.model.video_tokens == "frame"
    if where == "model.head" and not per_frame:  # the losses that read each frame's token
        for key, on in (("model.head.args.ground_weight", component.args.get("ground_weight", 0) > 0),
                        ("model.head.args.slots", component.args.get("slots", 0) > 0),
                        ("model.frame_words", cfg.model.frame_words > 0)):
            if on:
                raise ConfigError(f"{key}: needs one token per frame (model.video_tokens: frame, a temporal "
                                  f"model other than mean); or set {key}=0")
    if where == "model.head" and component.args.get("slot_ground") and not (
            component.args.get("slots", 0) > 0 and component.args.get("ground_weight", 0) > 0):
        raise ConfigError("model.head.args.slot_ground: grounds the slots' queries on the grounding rows; needs "
                          "model.head.args.slots and model.head.args.ground_weight too, or set model.head.args.slot_ground=false")
    joiner = component.args.get("pair_ground", "") if where == "model.head" else ""
    if not isinstance(joiner, str):
        raise ConfigError(f"model.head.args.pair_ground: the words that join a pair grounding row's two captions "
                          f"(such as \"and\"), not {joiner!r}")
    if where == "model.head" and component.args.get("pair_ground") and not (
            component.args.get("slot_ground") and component.args.get("slots", 0) >= 2):
        raise ConfigError("model.head.args.pair_ground: grounds slots 1 and 2 on the two events a pair grounding "
                          "row names; needs model.head.args.slot_ground and model.head.args.slots of at least 2, "
                          "or set model.head.args.pair_ground=''")
    weight = component.args.get("pair_weight") if where == "model.head" else None
    if weight is not None and (isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0):
        raise ConfigError(f"model.head.args.pair_weight: the pair grounding rows' loss weight, a number >= 0, "
                          f"not {weight!r}")
    if where == "model.head" and component.args.get("slot_order") and component.args.get("slots", 0) < 2:
        raise ConfigError("model.head.args.slot_order: compares the slots' places in the question and in time; needs "
                          "model.head.args.slots of at least 2, or set model.head.args.slot_order=false")
    if where == "model.head" and component.args.get("slot_places") and not (
            component.args.get("slots", 0) > 0 and cfg.model.cell_pool > 0):  # slots already need frame tokens
        raise ConfigError("model.head.args.slot_places: each slot looks inside its frames' places, read by "
                          "model.cell_pool; needs model.head.args.slots and model.cell_pool too, "
                          "or set model.head.args.slot_places=false")
    if where == "model.head" and component.args.get("slot_tracks") and not component.args.get("slot_places"):
        raise ConfigError("model.head.args.slot_tracks: follows the places each slot finds through time; needs "
                          "model.head.args.slot_places too, or set model.head.args.slot_tracks=false")
    if where == "model.head" and component.args.get("place_queries", 0) and not cfg.model.cell_pool > 0:
        raise ConfigError("model.head.args.place_queries: the queries look inside each frame's places, read by "
                          "model.cell_pool; set model.cell_pool too, or model.head.args.place_queries=0")
    if where == "model.head" and component.args.get("match_places") and not (
            component.args.get("matcher_layers", 0) > 0 and cfg.model.cell_pool > 0):
        raise ConfigError("model.head.args.match_places: the matcher's words look inside the candidate's frames' "
                          "places, read by model.cell_pool; needs model.head.args.matcher_layers and "
                          "model.cell_pool too, or set model.head.args.match_places=false")
    if where == "model.head" and component.args.get("slots", 0) > 0 and cfg.model.fusion.name == "separate":
        raise ConfigError("model.head.args.slots: reads the question's fused words, which the separate fusion "
                          "does not keep; use cross_attn, concat, attention or late_concat")
    if where == "model.head" and component.name in ("moment", "summarize") and cfg.data.train_views > 1:
        raise ConfigError(f"data.train_views: the {component.name} head places its frames in time, which a view "
                          "shifts; use data.train_views=1")
    if where == "model.head" and component.name == "moment" and cfg.model.temporal.name == "mean":
        raise ConfigError("model.temporal.name: the moment head needs one token per frame; mean keeps one per video")
    return component


def build_model(cfg: RunConfig, *, vocab: list[str], num_outputs: int, frame_words: int = 0) -> VideoTextModel:
    """The model for ``cfg``. ``vocab`` is the tokenizer's word list; ``num_outputs`` is the
    number of answers (qa, dialog) or classes (classify), unused by caption and retrieval;
    ``frame_words`` the number of words the frame tokens name (``model.frame_words``)."""
    check(cfg)
    m = cfg.model
    dim = m.dim
    video = _lookup("model.video", m.video)(dim=dim, **m.video.args)
    temporal = _lookup("model.temporal", m.temporal)(dim=dim, **m.temporal.args)
    audio_cfg = _component(cfg, "model.audio")
    audio = None
    if audio_cfg is not None:
        audio = _lookup("model.audio", audio_cfg)(dim=dim, num_mels=cfg.data.num_mels, **audio_cfg.args)
    text = _lookup("model.text", m.text)(dim=dim, vocab=vocab, **m.text.args)
    fusion = _lookup("model.fusion", m.fusion)(dim=dim, **m.fusion.args)
    head_cls = _lookup("model.head", m.head)
    if cfg.task == "caption":
        head: nn.Module = head_cls(dim=dim, vocab_size=len(vocab), **m.head.args)
    elif cfg.task == "classify":
        head = head_cls(dim=dim, num_classes=num_outputs, **m.head.args)
    elif cfg.task in ("retrieval", "summarize"):
        head = head_cls(dim=dim, **m.head.args)
    else:
        head = head_cls(dim=dim, num_answers=num_outputs, **m.head.args)
    if m.freeze_video:
        for param in video.parameters():
            param.requires_grad_(False)
        if m.tune_video_proj and m.video_tokens == "frame":  # grid tokens have a projection of their own
            for module in video_tail(video):
                module.requires_grad_(True)
    if m.freeze_audio and audio is not None:
        for param in audio.parameters():
            param.requires_grad_(False)
    model = VideoTextModel(dim=dim, video=video, temporal=temporal, audio=audio, text=text, fusion=fusion, head=head,
                           cache_trunk=m.freeze_video and (m.tune_video_proj or m.video_tokens == "grid" or m.cell_pool > 0),
                           grid_tokens=m.video_tokens == "grid", cell_pool=m.cell_pool,
                           cell_motion=m.cell_motion, place_tokens=m.place_tokens,
                           frame_words=frame_words if m.frame_words > 0 else 0, frame_word_weight=m.frame_words,
                           text_groups=m.text_groups)
    return faster_dropout(model)  # every dropout drawn the faster way, the same in distribution


VIDEO_TAIL = ("proj", "norm")
"""Names of a frame encoder's layers after its trunk (``project``'s), which ``model.tune_video_proj``
keeps trainable and whose weights the trunk features in the cache do not depend on."""


def video_tail(video: nn.Module) -> list[nn.Module]:
    """The frame encoder's ``VIDEO_TAIL`` layers it has."""
    return [module for name in VIDEO_TAIL if isinstance(module := getattr(video, name, None), nn.Module)]
