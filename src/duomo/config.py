"""Run configuration: typed dataclasses, YAML presets mapped onto them, ``--set`` overrides.

Precedence: dataclass defaults < preset YAML (``--config``) < ``--set section.key=value``.
Unknown keys are rejected naming the nearest valid key; values are type-checked on load.
Imports no torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from duomo.errors import DuomoError

TASKS = ("caption", "qa", "dialog", "classify", "retrieval", "summarize")


class ConfigError(DuomoError):
    """A config that cannot be used: unknown key, wrong type, or a broken cross-field rule."""


@dataclass
class Component:
    name: str
    """Key in the matching table of duomo.models.build."""
    args: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of that class's constructor (checked against its signature)."""


@dataclass
class DataConfig:
    manifest: str = ""
    """Path of manifest.jsonl (the CLI's --data)."""
    num_frames: int = 16
    """Frames sampled uniformly over each video."""
    train_views: int = 1
    """V > 1: training videos are decoded at num_frames * V uniformly spaced frames, and each epoch
    reads each through one of V interleaved views (frames v, v + V, v + 2V, ...): num_frames over
    the same span, each view a fraction of a frame interval apart, so the task sees more than one
    sampling of each video (with a frozen frame encoder, the cache holds all of them). Validation,
    evaluation and prediction read num_frames uniformly spaced frames, which lie between the views."""
    frame_size: int = 64
    """Frames are resized to frame_size x frame_size pixels."""
    use_audio: bool = True
    """Decode each video's soundtrack into a log-mel spectrogram (silence if it has none)."""
    sample_rate: int = 16000
    """Audio sample rate for the spectrogram."""
    num_mels: int = 64
    """Mel bands of the spectrogram."""
    hop_sec: float = 0.02
    """Spectrogram hop in seconds."""
    max_audio_sec: float = 30.0
    """Longer soundtracks are resampled in time to this many seconds' worth of spectrogram frames."""
    max_text_len: int = 48
    """Question/prompt tokens kept (dialog history is cut from the front)."""
    max_target_len: int = 40
    """Caption tokens kept, end token included."""
    min_word_count: int = 1
    """Words seen fewer times in training text map to <unk>."""
    cache_dir: str = ""
    """Feature cache folder; empty means .duomo-cache beside the manifest."""
    skip_bad_videos: bool = False
    """Skip videos that fail to decode (and report how many) instead of stopping."""
    num_workers: int = 2
    """Processes decoding videos into the cache."""


VIDEO_TOKENS = ("frame", "grid")


@dataclass
class ModelConfig:
    dim: int = 256
    """Width shared by every encoder output, fusion and head."""
    video: Component = field(default_factory=lambda: Component("cnn_small"))
    """Per-frame (spatial) encoder: frames (B, T, C, H, W) -> (B, T, dim)."""
    freeze_video: bool = False
    """Freeze the per-frame encoder and cache its features on disk (computed once per video)."""
    tune_video_proj: bool = False
    """With freeze_video: the frame encoder's last layer, its projection to ``dim``, still trains
    with the task, and the cache holds the wider features it reads (``trunk_dim``). Pre-training
    asks that projection only to name what is in a frame, not where it is or how big; trained
    with the task it can keep what the task needs (which way something moves).
    Without freeze_video the whole encoder trains and this changes nothing."""
    video_tokens: str = "frame"
    """What the fusion sees of each frame: "frame", one token (the frame encoder's output), or
    "grid", one token per cell of the encoder's spatial grid (``cells``): a shared projection of
    the cell's features plus a learned code of the cell, each cell followed through time by the
    temporal encoder on its own. What is where stays apart (which colour goes with which shape,
    which object moves), where one token per frame has to pack it into one vector. Encoders that
    pool to one vector (resnet18, pretrained) give one cell. The moment and summarize heads need
    one token per frame and refuse "grid"."""
    cell_pool: int = 0
    """With "frame" tokens: N > 0 adds to each frame's token a pooled reading of its grid cells
    (``cells``): a small MLP of hidden width N run on each place's features alone (every stack's
    channels there, so colour and shape at one place together), then the maximum over the places.
    A channel of it can say "a red circle is somewhere in the frame", which one linear projection
    of the pooled grid cannot (a red square beside a blue circle lights "red" and "circle" too).
    Trains with the task, on the cached trunk features when the encoder is frozen. 0: off.
    Encoders that pool to one vector (resnet18, pretrained) give one place."""
    cell_motion: bool = False
    """With cell_pool: each place is read with its 3x3 neighbourhood of places, as it is now and
    as it changed since the frame before (a 3x3 convolution over the grid of both), so a channel
    can say "something red moved left" (an object leaves one place for the next), which neither
    one frame's places nor the difference of two pooled frame tokens tell well."""
    place_tokens: bool = False
    """With cell_pool: the fusion also sees every place of every frame as a token of its own (the
    cell_pool reading of that place, before the maximum over places, plus a learned code of the
    place and the frame's time code), after the frame tokens. A question's words can then attend
    to the places of the object they name ("the red circle") and read what it does and when,
    where the frame token holds only the strongest reading of each channel over the frame."""
    frame_words: float = 0.0
    """Weight of an auxiliary training loss (0: off): each frame token, as the temporal model leaves
    it, names the words of the manifest's segment captions whose span holds the frame's time
    ("the red circle sinks" from 1.2 s to 2.0 s: "red", "circle", "sinks", and the pairs "red
    circle", "circle sinks" at the frames inside), binary cross-entropy over the words and pairs
    that 1-90% of the train segments use. A dense signal of what happens when, for any task; a
    manifest without captioned segments cannot use it. Needs one token per frame."""
    freeze_audio: bool = False
    """Freeze the sound encoder and cache its tokens on disk (computed once per video)."""
    freeze_audio_after: int = 0
    """Train the sound encoder with the task for this many epochs, then freeze it and cache its
    tokens (as ``freeze_audio`` does) for the epochs after; 0: never. A QA training step without
    the sound encoder's convolutions is 1.46x faster than before these speed-ups, against 1.28x
    with them (``bench/train_step.py``)."""
    temporal: Component = field(default_factory=lambda: Component("transformer"))
    """Temporal model over frame features: mean, gru, lstm, transformer."""
    audio: Component = field(default_factory=lambda: Component("mel_cnn"))
    """Audio encoder over the log-mel spectrogram, or 'none'."""
    text: Component = field(default_factory=lambda: Component("transformer"))
    """Text encoder for questions and prompts: bag, gru, lstm, transformer, minilm."""
    fusion: Component = field(default_factory=lambda: Component("concat"))
    """How video/audio and text tokens are combined: concat, attention, cross_attn."""
    text_groups: int = 4
    """Rows with text (questions, queries) are sorted by length and split into this many groups,
    each padded only to its own longest text and run through the text encoder and the fusion on
    its own, then put back in order: the same results (rows never read each other) for less work
    when short questions share a batch with long ones (QA batches are mostly padding). 1: off."""
    head: Component = field(default_factory=lambda: Component("qa"))
    """Task head; its table key is the task's (caption, qa, dialog, classify, retrieval, summarize), or moment
    (retrieval of a query's [start, end] inside one video)."""


@dataclass
class TrainConfig:
    epochs: int = 30
    """Passes over the training split (the loop also stops at max_minutes)."""
    max_minutes: float = 0.0
    """Stop training after this many minutes (0 = no limit), the final validation included (the
    loop stops early by the time the previous validation took); the best checkpoint is kept."""
    batch_size: int = 32
    """Videos per optimizer step (every question/caption of those videos is a row)."""
    lr: float = 1e-3
    """Peak learning rate after warm-up."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    pretrain_video_epochs: int = 0
    """Before the task trains, passes over the train videos teaching the frame encoder to name the
    words of each video's own short texts (answers, labels; captions where it has none) from a
    few of its frames (``duomo.train.pretrain``); counts towards max_minutes. 0 = off."""
    pretrain_video_batch: int = 32
    """Pre-training: videos per step."""
    pretrain_video_frames: int = 4
    """Pre-training: frames of each video a step reads (drawn at random, kept in time order)."""
    pretrain_said_labels: bool = False
    """Pre-training: a video's captions also mark which targets it shows. The targets still come
    from the short texts; an answer names one object of a video, a caption most of them."""
    pretrain_unsaid_weight: float = 1.0
    """Pre-training: weight in the loss of a target that none of a video's texts says (1 for one
    they say). Unsaid is not absent; at full weight, what no text names teaches the encoder to
    miss what it sees. In (0, 1]."""
    warmup_steps: int = 200
    """Linear warm-up steps, then cosine decay to zero at the last epoch."""
    grad_clip: float = 1.0
    """Gradient norm clip (0 = off)."""
    eval_every_epochs: int = 1
    """Validation passes happen every this many epochs (and at the end)."""
    max_val_videos: int = 0
    """Validate on at most this many val videos (0 = all)."""
    checkpoint_minutes: float = 5.0
    """Also save last.pt mid-epoch every this many minutes, so a killed run loses little."""
    seed: int = 0
    """Seed of every random choice: initialisation, shuffling, augmentation."""
    neighbour_batches: int = 0
    """Retrieval: after the first epoch, each batch is made of groups of this many videos, each a
    video and its nearest others by the model's own video embeddings (recomputed at the start of
    every epoch), so the contrastive loss and the matcher meet the videos the model confuses.
    0 or 1: plain shuffled batches."""
    device: str = "cpu"
    """Torch device: cpu, cuda, cuda:1, mps."""
    num_threads: int = 0
    """Torch CPU threads (0 = torch's default)."""


@dataclass
class RunConfig:
    task: str = "qa"
    """caption, qa, dialog, classify, retrieval or summarize."""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"task: unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        if self.data.num_frames < 1:
            raise ConfigError("data.num_frames: must be at least 1")
        if self.data.train_views < 1:
            raise ConfigError(f"data.train_views: must be at least 1 (1 is off), got {self.data.train_views}")
        if self.data.frame_size < 8:
            raise ConfigError("data.frame_size: must be at least 8 pixels")
        if self.train.batch_size < 1:
            raise ConfigError("train.batch_size: must be at least 1")
        for key in ("pretrain_video_batch", "pretrain_video_frames"):
            if getattr(self.train, key) < 1:
                raise ConfigError(f"train.{key}: must be at least 1, got {getattr(self.train, key)}")
        if not 0 < self.train.pretrain_unsaid_weight <= 1:
            raise ConfigError(f"train.pretrain_unsaid_weight: must be in (0, 1], "
                              f"got {self.train.pretrain_unsaid_weight}")
        if self.model.dim < 1:
            raise ConfigError("model.dim: must be positive")
        if self.model.video_tokens not in VIDEO_TOKENS:
            raise ConfigError(f"model.video_tokens: must be one of {', '.join(VIDEO_TOKENS)}, "
                              f"got {self.model.video_tokens!r}")
        if self.model.text_groups < 1:
            raise ConfigError(f"model.text_groups: must be at least 1 (1 is off), got {self.model.text_groups}")
        if self.model.cell_pool < 0:
            raise ConfigError(f"model.cell_pool: must be 0 (off) or a positive hidden width, got {self.model.cell_pool}")
        if self.model.cell_pool and self.model.video_tokens != "frame":
            off = " and ".join(["model.cell_pool=0"] + ["model.cell_motion=false"] * self.model.cell_motion
                               + ["model.place_tokens=false"] * self.model.place_tokens)
            raise ConfigError("model.cell_pool: reads the cells into one token per frame; use it with "
                              f"video_tokens: frame, not {self.model.video_tokens!r} (or set {off})")
        if self.model.frame_words < 0:
            raise ConfigError(f"model.frame_words: a loss weight, 0 (off) or more, got {self.model.frame_words}")
        if self.model.place_tokens and not self.model.cell_pool:
            raise ConfigError("model.place_tokens: the place tokens are cell_pool's readings; set model.cell_pool "
                              "to a hidden width (say 128) too, or model.place_tokens=false")
        if self.model.freeze_audio_after < 0:
            raise ConfigError(f"model.freeze_audio_after: epochs, 0 (never) or more, got {self.model.freeze_audio_after}")
        if self.model.freeze_audio_after and self.model.freeze_audio:
            raise ConfigError("model.freeze_audio_after: the sound encoder is frozen from the start "
                              "(model.freeze_audio=true); set one of the two")
        if self.model.cell_motion and not self.model.cell_pool:
            raise ConfigError("model.cell_motion: reads the places through cell_pool; set model.cell_pool "
                              "to a hidden width (say 128) too, or model.cell_motion=false")


def preset_path(name_or_path: str) -> Path:
    """A preset file: an existing path as given, else ``duomo/configs/<name>.yaml`` from the package."""
    path = Path(name_or_path)
    if path.exists():
        return path
    packaged = resources.files("duomo") / "configs" / f"{Path(name_or_path).stem}.yaml"
    if packaged.is_file():
        return Path(str(packaged))
    names = sorted(p.name[:-5] for p in (resources.files("duomo") / "configs").iterdir() if p.name.endswith(".yaml"))
    raise ConfigError(f"{name_or_path}: no such config file or preset (presets: {', '.join(names)})")


def load_config(task: str, config_file: str | None = None, overrides: list[str] | None = None) -> RunConfig:
    """The run config for ``task``: defaults, then the preset (``<task>.yaml`` when no file is
    given), then ``overrides`` (``section.key=value``, value parsed as YAML)."""
    raw: dict[str, Any] = {}
    path = preset_path(config_file or task)
    loaded = yaml.safe_load(path.read_text()) or {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of sections")
    raw = loaded
    raw["task"] = task
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item}: expected section.key=value")
        _set_dotted(raw, key.strip(), yaml.safe_load(value))
    return config_from_dict(raw)


def config_from_dict(raw: dict[str, Any]) -> RunConfig:
    """A RunConfig from nested dicts (a saved config.yaml), checking keys and types."""
    return _build(RunConfig, raw, "")


def config_to_dict(cfg: RunConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def save_config(cfg: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


def read_config(path: str | Path) -> RunConfig:
    """A resolved config saved beside a checkpoint."""
    return config_from_dict(yaml.safe_load(Path(path).read_text()))


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if isinstance(child, str):
            child = {"name": child}  # a Component given by name (fusion: concat) keeps its name
            node[part] = child
        elif not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    names = list(fields)
    kwargs = {}
    for key, value in raw.items():
        if key not in names:
            near = difflib.get_close_matches(str(key), names, n=1, cutoff=0.5)
            hint = f"; did you mean {prefix}{near[0]}?" if near else f"; valid keys: {', '.join(names)}"
            raise ConfigError(f"{prefix}{key}: unknown config key{hint}")
        default = fields[key].default_factory
        if hints[key] is Component and isinstance(value, dict) and "name" not in value \
                and default is not dataclasses.MISSING:
            value = {"name": default().name, **value}  # only args given: the default part keeps its name
        kwargs[key] = _convert(hints[key], value, f"{prefix}{key}")
    for name, f in fields.items():
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{prefix}{name}: missing")
    return cls(**kwargs)


def _convert(hint: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint):
        if isinstance(value, str) and hint is Component:
            return Component(value)  # --set model.fusion=cross_attn
        return _build(hint, value, where + ".")
    origin = typing.get_origin(hint)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if origin in (typing.Union, types.UnionType):
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):  # YAML reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if value is None:
            return ""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value
