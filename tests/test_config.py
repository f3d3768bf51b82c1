"""RunConfig loading: defaults < preset < --set, unknown keys, types, presets, save/read, build.check."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from duomo.config import Component, ConfigError, RunConfig, load_config, read_config, save_config
from duomo.models import build

PRESETS = sorted(p.name[:-5] for p in (resources.files("duomo") / "configs").iterdir() if p.name.endswith(".yaml"))


def preset_head(name: str) -> str:
    raw = yaml.safe_load((resources.files("duomo") / "configs" / f"{name}.yaml").read_text())
    return raw["model"]["head"]["name"]


def preset_task(name: str) -> str:
    """The task a preset is for: its head's table key, or the task that head serves (moment)."""
    head = preset_head(name)
    return next((task for task, heads in build.TASK_HEADS.items() if head in heads), head)


def write_preset(tmp_path, text: str):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    return str(path)


def test_presets_are_found():
    assert {"caption", "qa", "dialog", "classify", "qa_seed_baseline", "caption_seed_baseline", "retrieval",
            "retrieval_moment"} <= set(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_every_packaged_preset_loads_and_passes_build_check(name):
    task = preset_task(name)
    cfg = load_config(task, name)
    assert cfg.task == task
    assert cfg.model.head.name == preset_head(name)
    build.check(cfg)


def test_defaults_then_preset_then_set(tmp_path):
    path = write_preset(tmp_path, "train: {lr: 0.5, epochs: 3}\ndata: {num_frames: 4}\n")
    cfg = load_config("qa", path, ["train.lr=0.25", "data.frame_size=32"])
    assert cfg.train.lr == 0.25  # --set beats the preset
    assert cfg.train.epochs == 3  # preset beats the default
    assert cfg.data.num_frames == 4
    assert cfg.data.frame_size == 32  # --set beats the default
    assert cfg.train.batch_size == 32  # untouched default
    assert cfg.data.max_text_len == 48
    assert cfg.model == RunConfig().model  # no model section: every default


def test_task_preset_is_used_when_no_file_is_given():
    cfg = load_config("qa")
    assert cfg.model.dim == 128  # qa.yaml; the dataclass default is 256
    assert cfg.model.fusion == Component("cross_attn", {"num_layers": 2, "video_attends": False})
    assert cfg.data.num_mels == 64
    assert cfg.train.seed == 0


def test_int_given_for_float_becomes_float():
    cfg = load_config("qa", None, ["train.lr=1"])
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)


@pytest.mark.parametrize(
    "override, expected",
    [
        ("train.lrr=1", "train.lrr: unknown config key; did you mean train.lr?"),
        ("trainn.lr=1", "trainn: unknown config key; did you mean train?"),
        ("data.num_frame=4", "data.num_frame: unknown config key; did you mean data.num_frames?"),
        ("model.fusion.argz={}", "model.fusion.argz: unknown config key; did you mean model.fusion.args?"),
    ],
)
def test_unknown_key_names_the_nearest_valid_key(override, expected):
    with pytest.raises(ConfigError) as err:
        load_config("qa", None, [override])
    assert str(err.value) == expected


def test_unknown_key_without_near_match_lists_the_valid_keys():
    with pytest.raises(ConfigError, match=r"zzz: unknown config key; valid keys: task, data, model, train"):
        load_config("qa", None, ["zzz=1"])


def test_unknown_key_in_a_preset_file(tmp_path):
    path = write_preset(tmp_path, "train: {batch_sise: 4}\n")
    with pytest.raises(ConfigError, match=r"train\.batch_sise: unknown config key; did you mean train\.batch_size\?"):
        load_config("qa", path)


@pytest.mark.parametrize(
    "override, expected",
    [
        ("train.epochs=abc", "train.epochs: expected an integer, got 'abc'"),
        ("train.epochs=1.5", "train.epochs: expected an integer, got 1.5"),
        ("train.epochs=true", "train.epochs: expected an integer, got True"),
        ("train.lr=fast", "train.lr: expected a number, got 'fast'"),
        ("train.lr=false", "train.lr: expected a number, got False"),
        ("data.use_audio=1", "data.use_audio: expected true or false, got 1"),
        ("model.fusion.args=3", "model.fusion.args: expected a mapping, got 3"),
        ("train=3", "train: expected a mapping, got 3"),
    ],
)
def test_wrong_type_names_the_key(override, expected):
    with pytest.raises(ConfigError) as err:
        load_config("qa", None, [override])
    assert str(err.value) == expected


@pytest.mark.parametrize(
    "override, key",
    [("data.num_frames=0", "data.num_frames"), ("data.frame_size=4", "data.frame_size"),
     ("train.batch_size=0", "train.batch_size"), ("model.dim=0", "model.dim"),
     ("model.video_tokens=cells", "model.video_tokens")],
)
def test_cross_field_rules_name_the_setting(override, key):
    with pytest.raises(ConfigError, match=rf"^{key}: "):
        load_config("qa", None, [override])


def test_unknown_task_lists_the_tasks(tmp_path):
    path = write_preset(tmp_path, "{}\n")
    with pytest.raises(ConfigError, match=r"task: unknown task 'translate'; choose one of caption, qa, dialog, classify"):
        load_config("translate", path)


def test_malformed_set_item():
    with pytest.raises(ConfigError, match=r"--set train\.lr: expected section\.key=value"):
        load_config("qa", None, ["train.lr"])


def test_fusion_shortcut_sets_the_name_and_drops_the_old_args():
    cfg = load_config("qa", None, ["model.fusion=concat"])
    assert cfg.model.fusion == Component("concat", {})
    build.check(cfg)


def test_set_one_arg_of_a_component_keeps_name_and_other_args():
    cfg = load_config("qa", None, ["model.fusion.args.num_layers=3"])
    assert cfg.model.fusion == Component("cross_attn", {"num_layers": 3, "video_attends": False})


def test_set_name_keeps_the_args():
    cfg = load_config("qa", None, ["model.fusion.name=concat", "model.fusion.args.video_attends=null"])
    assert cfg.model.fusion.name == "concat"
    assert cfg.model.fusion.args == {"num_layers": 2, "video_attends": None}


def test_shortcut_then_an_arg():
    cfg = load_config("qa", None, ["model.fusion=concat", "model.fusion.args.num_layers=3"])
    assert cfg.model.fusion == Component("concat", {"num_layers": 3})


def test_args_of_a_part_the_preset_leaves_out_keep_the_default_name(tmp_path):
    path = write_preset(tmp_path, "model: {head: {name: qa}}\n")
    cfg = load_config("qa", path, ["model.temporal.args.num_layers=1"])
    assert cfg.model.temporal == Component("transformer", {"num_layers": 1})


def test_unknown_preset_lists_the_presets():
    with pytest.raises(ConfigError) as err:
        load_config("qa", "no_such_preset")
    message = str(err.value)
    assert message.startswith("no_such_preset: no such config file or preset (presets: ")
    for name in PRESETS:
        assert name in message


def test_preset_that_is_not_a_mapping(tmp_path):
    path = write_preset(tmp_path, "- 1\n- 2\n")
    with pytest.raises(ConfigError, match="a config file must be a mapping of sections"):
        load_config("qa", path)


def test_save_then_read_gives_the_same_config(tmp_path):
    cfg = load_config("caption", None, ["train.lr=0.002", "model.head.args.beam_size=2", "data.hop_sec=0.01"])
    save_config(cfg, tmp_path / "config.yaml")
    again = read_config(tmp_path / "config.yaml")
    assert again == cfg
    assert again.model.audio.args["channels"] == [32, 64, 96, 128]
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["task"] == "caption"


def test_build_check_rejects_an_unknown_arg_naming_the_valid_ones():
    cfg = load_config("qa", None, ["model.fusion=concat", "model.fusion.args.depth=3"])
    with pytest.raises(ConfigError) as err:
        build.check(cfg)
    assert str(err.value) == ("model.fusion.args.depth: concat takes no such argument "
                              "(it takes dim, num_layers, num_heads, ff_mult, dropout)")



@pytest.mark.parametrize("setting, message", [
    ("model.head.args.slot_places=maybe", "model.head.args.slot_places: qa takes true or false, not 'maybe'"),
    ("model.head.args.slots=2.5", "model.head.args.slots: qa takes a whole number, not 2.5"),
    ("model.head.args.hidden_dim=true", "model.head.args.hidden_dim: qa takes a whole number, not True"),
    ("model.head.args.dropout=high", "model.head.args.dropout: qa takes a number, not 'high'"),
    ("model.video.args.channels=3", "model.video.args.channels: cnn_small takes a list, not 3"),
    ("model.temporal.args.num_layers=two", "model.temporal.args.num_layers: transformer takes a whole number, not 'two'"),
])
def test_build_check_rejects_an_arg_of_the_wrong_type(setting, message):
    """An argument's value must suit its annotation (a YAML ``maybe`` is a string, not a switch),
    so a mistyped value fails at startup in one line, not as a wrong model or a traceback."""
    with pytest.raises(ConfigError) as err:
        build.check(load_config("qa", None, [setting]))
    assert str(err.value) == message


def test_build_check_takes_a_whole_number_for_a_number_and_null_where_it_may_be_absent():
    build.check(load_config("qa", None, ["model.head.args.dropout=0", "model.head.args.pair_weight=null"]))

def test_build_check_rejects_an_unknown_name_listing_the_choices():
    cfg = load_config("qa", None, ["model.fusion=fancy"])
    with pytest.raises(ConfigError) as err:
        build.check(cfg)
    assert str(err.value) == "model.fusion.name: unknown 'fancy'; choose one of concat, attention, cross_attn, late_concat, separate"


def test_build_check_holds_retrieval_heads_to_their_rules():
    with pytest.raises(ConfigError, match=r"model\.fusion\.name: the retrieval head .* use separate, not 'concat'"):
        build.check(load_config("retrieval", None, ["model.fusion=concat"]))
    with pytest.raises(ConfigError, match=r"model\.temporal\.name: the moment head needs one token per frame"):
        build.check(load_config("retrieval", "retrieval_moment", ["model.temporal=mean"]))
    with pytest.raises(ConfigError, match=r"'moment' does not match the task 'qa'"):
        build.check(load_config("qa", None, ["model.head=moment"]))


def test_build_check_rejects_a_head_for_another_task():
    cfg = load_config("qa", None, ["model.head=caption"])
    with pytest.raises(ConfigError, match=r"model\.head\.name: 'caption' does not match the task 'qa'"):
        build.check(cfg)


def test_build_check_ignores_audio_args_when_audio_is_off():
    cfg = load_config("qa", None, ["data.use_audio=false", "model.audio.args.bogus=1"])
    build.check(cfg)
