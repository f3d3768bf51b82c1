"""Frame, temporal and audio encoders: shapes, padding invariance, gradients, state_dict round
trips, loading weights, the TorchScript slot, and that the audio encoder can tell tones apart."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch import nn

from duomo.config import ConfigError
from duomo.models.encoders.audio import MelCNNEncoder
from duomo.models.encoders.cnn import FRAME_MEAN, FRAME_STD, SmallCNNEncoder
from duomo.models.encoders.pretrained import PretrainedFrameEncoder
from duomo.models.encoders.resnet import ResNet18Encoder
from duomo.models.layers import encode_valid_frames
from duomo.models.encoders.temporal import (
    MeanTemporalEncoder,
    RecurrentTemporalEncoder,
    TransformerTemporalEncoder,
)
from duomo.video.transforms import log_mel_spectrogram

D = 16


class TinyBackbone(nn.Module):
    """A stand-in for a user's pretrained CNN: (N, 3, S, S) -> (N, 12, S / 2, S / 2)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))


@pytest.fixture(scope="module")
def backbone_path(tmp_path_factory) -> str:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("backbone") / "tiny.pt"
    torch.jit.script(TinyBackbone()).save(str(path))
    return str(path)


def make_frame_encoder(name: str, backbone_path: str, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    if name == "cnn_small":
        return SmallCNNEncoder(dim=D, channels=(8, 8, 16, 16), grid=2, **kwargs)
    if name == "cnn_small_luma":
        return SmallCNNEncoder(dim=D, channels=(8, 8, 16, 16), grid=2, luma_branch=True, **kwargs)
    if name == "cnn_small_conv":
        return SmallCNNEncoder(dim=D, channels=(8, 8, 16, 16), grid=2, stem="conv", global_max=True, **kwargs)
    if name == "resnet18":
        return ResNet18Encoder(dim=D, width=8, **kwargs)
    return PretrainedFrameEncoder(dim=D, path=backbone_path, image_size=24, **kwargs)


FRAME_ENCODERS = ["cnn_small", "cnn_small_luma", "cnn_small_conv", "resnet18", "pretrained"]


def frame_inputs(batch_size: int = 2, num_frames: int = 4, size: int = 32, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    frames = torch.rand(batch_size, num_frames, 3, size, size, generator=gen)
    mask = torch.ones(batch_size, num_frames, dtype=torch.bool)
    mask[1, 2:] = False
    return frames, mask


# --- per-frame encoders ----------------------------------------------------------------------


@pytest.mark.parametrize("name", FRAME_ENCODERS)
def test_frame_encoder_shapes_and_zero_padding(name, backbone_path):
    encoder = make_frame_encoder(name, backbone_path)
    frames, mask = frame_inputs()
    out = encoder(frames, mask)
    assert encoder.out_dim == D
    assert out.shape == (2, 4, D)
    assert torch.isfinite(out).all()
    assert torch.all(out[1, 2:] == 0)
    assert out[0].abs().sum(dim=-1).min() > 0


@pytest.mark.parametrize("name", FRAME_ENCODERS)
def test_frame_encoder_is_its_projection_of_its_trunk(name, backbone_path):
    """``project`` of ``trunk_images`` is ``forward`` (what ``model.tune_video_proj`` caches and
    trains on); over the valid frames the trunk is zero on padding."""
    encoder = make_frame_encoder(name, backbone_path).eval()
    frames, mask = frame_inputs()
    trunk = encode_valid_frames(encoder.trunk_images, frames, mask, encoder.trunk_dim)
    assert trunk.shape == (2, 4, encoder.trunk_dim) and torch.all(trunk[1, 2:] == 0)
    torch.testing.assert_close(encoder.project(trunk)[mask], encoder(frames, mask)[mask], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", FRAME_ENCODERS)
def test_cells_regroup_the_trunk(name, backbone_path):
    """``cells`` (what ``model.video_tokens: grid`` reads) holds every trunk number once, in
    ``cell_shape``."""
    encoder = make_frame_encoder(name, backbone_path).eval()
    trunk = encoder.trunk_images(torch.rand(3, 3, 32, 32))
    cells = encoder.cells(trunk)
    assert cells.shape == (3, *encoder.cell_shape)
    assert torch.equal(cells.flatten(1).sort(dim=1).values, trunk.sort(dim=1).values)


@pytest.mark.parametrize("global_max", [False, True])
def test_small_cnn_cells_are_each_place_of_both_stacks(global_max):
    """Cell r * grid + c holds the colour stack's pooled map at row r, column c, then the luma
    stack's at the same place; with global_max one last cell holds both stacks' maxima."""
    torch.manual_seed(0)
    encoder = SmallCNNEncoder(dim=D, channels=(8, 8, 8, 12), grid=2, stem="conv", luma_branch=True,
                              global_max=global_max).eval()
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        cells = encoder.cells(encoder.trunk_images(images))
        colour = encoder.features((images - FRAME_MEAN) / FRAME_STD)  # (2, 12, 2, 2)
        luma = encoder.luma(encoder.grey(images))
    assert encoder.cell_shape == (5 if global_max else 4, 24) and cells.shape == (2, *encoder.cell_shape)
    for row in range(2):
        for col in range(2):
            torch.testing.assert_close(cells[:, row * 2 + col], torch.cat([colour[:, :, row, col], luma[:, :, row, col]], 1))
    if global_max:
        torch.testing.assert_close(cells[:, 4], torch.cat([colour.amax(dim=(2, 3)), luma.amax(dim=(2, 3))], 1))


@pytest.mark.parametrize("name", FRAME_ENCODERS)
def test_frame_encoder_padding_invariance(name, backbone_path):
    encoder = make_frame_encoder(name, backbone_path).eval()
    frames, mask = frame_inputs()
    base = encoder(frames, mask)
    extra = torch.rand(2, 3, 3, 32, 32)  # garbage in padded slots must not matter
    longer = encoder(torch.cat([frames, extra], 1), torch.cat([mask, torch.zeros(2, 3, dtype=torch.bool)], 1))
    assert longer.shape == (2, 7, D)
    torch.testing.assert_close(longer[:, :4][mask], base[mask], atol=1e-5, rtol=0)
    assert torch.all(longer[:, 4:] == 0)


@pytest.mark.parametrize("name", FRAME_ENCODERS)
def test_frame_encoder_all_padding(name, backbone_path):
    encoder = make_frame_encoder(name, backbone_path)
    frames, _ = frame_inputs()
    out = encoder(frames, torch.zeros(2, 4, dtype=torch.bool))
    assert out.shape == (2, 4, D) and torch.all(out == 0)


@pytest.mark.parametrize("name", FRAME_ENCODERS)
def test_frame_encoder_every_trainable_parameter_gets_a_gradient(name, backbone_path):
    encoder = make_frame_encoder(name, backbone_path).train()
    frames, mask = frame_inputs()
    encoder(frames, mask).pow(2).sum().backward()
    trainable = [(n, p) for n, p in encoder.named_parameters() if p.requires_grad]
    assert trainable
    for param_name, param in trainable:
        assert param.grad is not None and param.grad.abs().sum() > 0, param_name


@pytest.mark.parametrize("name", FRAME_ENCODERS)
def test_frame_encoder_state_dict_round_trip(name, backbone_path):
    source = make_frame_encoder(name, backbone_path).train()
    frames, mask = frame_inputs()
    source(frames, mask)  # moves BatchNorm running statistics away from their initial values
    torch.manual_seed(1)
    target = make_frame_encoder(name, backbone_path)
    for p in target.parameters():
        nn.init.normal_(p)
    target.load_state_dict(source.state_dict())
    for key, value in source.state_dict().items():
        assert torch.equal(value, target.state_dict()[key]), key
    source.eval(), target.eval()
    assert torch.equal(source(frames, mask), target(frames, mask))


@pytest.mark.parametrize("stem", ["patch", "conv"])
@pytest.mark.parametrize("size", [(16, 16), (17, 23), (24, 40), (64, 64)])
def test_small_cnn_any_size_from_16(size, stem):
    encoder = SmallCNNEncoder(dim=D, channels=(8, 8, 8, 8), stem=stem, global_max=True)
    frames = torch.rand(1, 2, 3, *size)
    assert encoder(frames, torch.ones(1, 2, dtype=torch.bool)).shape == (1, 2, D)


def test_small_cnn_joint_stack_sees_both_maps_at_each_place():
    """joint: a third stack over the colour and luma stacks' last maps side by side; its pooled map
    follows theirs in every cell (and in the maxima), encode_stacks' luma features stay the luma
    stack's, and the projection's gradient reaches the joint convolution."""
    torch.manual_seed(0)
    encoder = SmallCNNEncoder(dim=D, channels=(8, 8, 8, 12), grid=2, stem="conv", luma_branch=True,
                              global_max=True, joint=6).eval()
    assert encoder.stack_channels == [12, 12, 6] and encoder.cell_shape == (5, 30)
    assert encoder.trunk_dim == 30 * 5 and encoder.luma_dim == 12 * 5
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        cells = encoder.cells(encoder.trunk_images(images))
        colour = encoder.features((images - FRAME_MEAN) / FRAME_STD)
        luma = encoder.luma(encoder.grey(images))
        joint = encoder.joint(torch.cat([colour, luma], dim=1))  # (2, 6, 2, 2)
        _, luma_features = encoder.encode_stacks(images)
    assert cells.shape == (2, 5, 30)
    for row in range(2):
        for col in range(2):
            torch.testing.assert_close(cells[:, row * 2 + col],
                                       torch.cat([colour[:, :, row, col], luma[:, :, row, col], joint[:, :, row, col]], 1))
    torch.testing.assert_close(cells[:, 4], torch.cat([m.amax(dim=(2, 3)) for m in (colour, luma, joint)], 1))
    torch.testing.assert_close(luma_features, encoder.pool(luma))
    encoder.train()
    (encoder.encode_images(images) * torch.randn(2, D)).sum().backward()  # (a plain sum of LayerNorm is flat)
    assert encoder.joint[0].weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="model.video.args.joint: .* without luma_branch"):
        SmallCNNEncoder(dim=D, joint=8)


def test_small_cnn_luma_branch_sees_brightness_not_hue():
    """With the colour stack's share of the projection zeroed, the output comes from the luma
    branch alone: a square in two colours of equal luminance gives the same features, a circle of
    either colour does not."""
    torch.manual_seed(0)
    encoder = SmallCNNEncoder(dim=D, channels=(8, 8, 8, 8), grid=2, luma_branch=True).eval()
    with torch.no_grad():
        encoder.proj.weight[:, : 8 * 2 * 2] = 0.0

    def picture(colour: tuple[float, float, float], shape: str) -> torch.Tensor:
        image = torch.zeros(1, 3, 32, 32)
        ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
        inside = ((ys - 16).abs() <= 6) & ((xs - 16).abs() <= 6) if shape == "square" else (
            (ys - 16) ** 2 + (xs - 16) ** 2 <= 36)
        for channel, value in enumerate(colour):
            image[0, channel][inside] = value
        return image

    grey, pinkish = (0.5, 0.5, 0.5), (0.5 + 0.587 * 0.1 / 0.299, 0.4, 0.5)  # both luminance 0.5
    with torch.no_grad():
        squares = [encoder.encode_images(picture(c, "square")) for c in (grey, pinkish)]
        circle = encoder.encode_images(picture(grey, "circle"))
    torch.testing.assert_close(squares[0], squares[1], rtol=1e-4, atol=1e-5)
    assert (squares[0] - circle).abs().max() > 1e-3


def test_small_cnn_global_max_says_what_not_where():
    """With the grid's share of the projection zeroed, only the channel maxima remain: a square
    moved by 16 pixels (a whole cell of the 4 max-pools) gives the same features, a circle at the
    same place does not."""
    torch.manual_seed(0)
    encoder = SmallCNNEncoder(dim=D, channels=(8, 8, 8, 8), grid=2, stem="conv", global_max=True).eval()
    with torch.no_grad():
        encoder.proj.weight[:, : 8 * 2 * 2] = 0.0
    ys, xs = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")

    def picture(x: int, shape: str) -> torch.Tensor:  # far enough from the edges not to see them
        inside = ((ys - 64).abs() <= 6) & ((xs - x).abs() <= 6) if shape == "square" else (
            (ys - 64) ** 2 + (xs - x) ** 2 <= 36)
        return inside.float().expand(1, 3, 128, 128)

    with torch.no_grad():
        left, right = (encoder.encode_images(picture(x, "square")) for x in (48, 64))
        circle = encoder.encode_images(picture(48, "circle"))
    torch.testing.assert_close(left, right, rtol=1e-4, atol=1e-5)
    assert (left - circle).abs().max() > 1e-3


def test_small_cnn_bad_stem():
    with pytest.raises(ConfigError, match="model.video.args.stem: must be one of patch, conv"):
        SmallCNNEncoder(dim=D, stem="patchify")
    with pytest.raises(ConfigError, match="model.video.args.luma_stem: must be one of patch, conv"):
        SmallCNNEncoder(dim=D, luma_branch=True, luma_stem="grey")


def test_small_cnn_luma_stacks_and_remap():
    """encode_stacks gives the luma stack's own features (luma_dim wide, none without it); with
    luma_remap the luma stack ignores overall brightness in eval and sees a new random remap of
    the grey frame at every training call, while the colour stack is left alone."""
    torch.manual_seed(0)
    plain = SmallCNNEncoder(dim=D, channels=(8, 8, 8, 8), grid=2)
    assert plain.luma_dim == 0 and plain.encode_stacks(torch.rand(2, 3, 32, 32))[1] is None
    encoder = SmallCNNEncoder(dim=D, channels=(8, 8, 8, 8), grid=2, global_max=True, luma_branch=True,
                              stem="patch", luma_stem="conv", luma_remap=True)
    assert isinstance(encoder.luma[0], nn.Conv2d) and encoder.luma[0].kernel_size == (3, 3)
    assert encoder.features[0].kernel_size == (4, 4)
    images = torch.rand(2, 3, 32, 32) * 0.8
    encoder.eval()
    with torch.no_grad():
        features, luma = encoder.encode_stacks(images)
        assert features.shape == (2, D) and luma.shape == (2, encoder.luma_dim) == (2, 8 * (2 * 2 + 1))
        torch.testing.assert_close(encoder.encode_stacks(images + 0.1)[1], luma, rtol=1e-4, atol=1e-5)
        encoder.train()
        greys = [encoder.grey(images) for _ in range(2)]
    assert (greys[0] - greys[1]).abs().max() > 1e-2
    centred = [g - g.mean(dim=(2, 3), keepdim=True) for g in greys]  # a gain of either sign about the mean
    ratio = centred[0] / centred[1]
    assert torch.allclose(ratio[0], ratio[0].flatten()[0].expand_as(ratio[0]), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("stem", ["patch", "conv"])
def test_small_cnn_keeps_where_things_are(stem):
    # the same square on the left or on the right of the frame gives different features
    encoder = SmallCNNEncoder(dim=D, channels=(8, 8, 8, 8), stem=stem, global_max=True).eval()
    left, right = torch.zeros(1, 1, 3, 32, 32), torch.zeros(1, 1, 3, 32, 32)
    left[..., 8:16, 0:8] = 1.0
    right[..., 8:16, 24:32] = 1.0
    mask = torch.ones(1, 1, dtype=torch.bool)
    assert (encoder(left, mask) - encoder(right, mask)).abs().max() > 1e-3


def test_resnet18_real_size_has_resnet18_parameter_count():
    encoder = ResNet18Encoder(dim=512)
    # torchvision's resnet18 has 11,689,512 parameters: 11,176,512 without its 1000-way fc
    assert sum(p.numel() for p in encoder.parameters()) == 11_176_512 + 512 * 512 + 512


@pytest.mark.parametrize("name", ["cnn_small", "resnet18"])
def test_weights_from_plain_state_dict_and_from_checkpoint(name, backbone_path, tmp_path):
    source = make_frame_encoder(name, backbone_path).train()
    frames, mask = frame_inputs()
    source(frames, mask)
    source.eval()
    expected = source(frames, mask)
    plain = tmp_path / "plain.pt"
    torch.save(source.state_dict(), plain)
    checkpoint = tmp_path / "run.pt"
    model_state = {f"video.{k}": v for k, v in source.state_dict().items()}
    model_state["head.proj.weight"] = torch.zeros(3, 3)  # other parts of the model are ignored
    torch.save({"model": model_state, "step": 7}, checkpoint)
    for path in (plain, checkpoint):
        torch.manual_seed(123)
        loaded = make_frame_encoder(name, backbone_path, weights=str(path)).eval()
        assert torch.equal(loaded(frames, mask), expected)


@pytest.mark.parametrize("name", ["cnn_small", "resnet18"])
def test_bad_weights_raise_config_error_naming_the_file(name, backbone_path, tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(ConfigError, match="nope.pt: no such weights file"):
        make_frame_encoder(name, backbone_path, weights=str(missing))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="garbage.pt: cannot load weights"):
        make_frame_encoder(name, backbone_path, weights=str(garbage))
    other = tmp_path / "other.pt"
    torch.save(nn.Linear(3, 3).state_dict(), other)
    with pytest.raises(ConfigError, match="other.pt: weights do not fit .*missing keys.*unexpected keys"):
        make_frame_encoder(name, backbone_path, weights=str(other))
    no_video = tmp_path / "no_video.pt"
    torch.save({"model": {"head.w": torch.zeros(1)}}, no_video)
    with pytest.raises(ConfigError, match="no_video.pt: checkpoint holds no 'video"):
        make_frame_encoder(name, backbone_path, weights=str(no_video))


def test_weights_of_the_wrong_shape(tmp_path):
    path = tmp_path / "wide.pt"
    torch.save(SmallCNNEncoder(dim=D, channels=(8, 8, 16, 32)).state_dict(), path)
    with pytest.raises(ConfigError, match="wide.pt: weights do not fit SmallCNNEncoder: .* wrong shape"):
        SmallCNNEncoder(dim=D, channels=(8, 8, 16, 16), weights=str(path))


# --- the TorchScript slot ----------------------------------------------------------------------


def test_pretrained_frozen_backbone_stays_frozen_and_in_eval(backbone_path):
    encoder = make_frame_encoder("pretrained", backbone_path)
    assert encoder.feature_dim == 12
    assert not any(p.requires_grad for p in encoder.backbone.parameters())
    encoder.train()
    assert encoder.training and not encoder.backbone.training
    frames, mask = frame_inputs()
    running_mean = encoder.backbone.bn.running_mean.clone()
    encoder(frames, mask).sum().backward()
    assert torch.equal(encoder.backbone.bn.running_mean, running_mean)
    assert encoder.proj.weight.grad is not None


def test_pretrained_trainable_backbone_learns(backbone_path):
    encoder = make_frame_encoder("pretrained", backbone_path, trainable=True).train()
    assert encoder.backbone.training
    frames, mask = frame_inputs()
    encoder(frames, mask).pow(2).sum().backward()
    assert all(p.grad is not None for p in encoder.backbone.parameters())


def test_pretrained_accepts_traced_backbone_returning_vectors(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 5, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    path = tmp_path / "traced.pt"
    torch.jit.trace(net, torch.rand(1, 3, 20, 20)).save(str(path))
    encoder = PretrainedFrameEncoder(dim=D, path=str(path), image_size=20, mean=[0.5] * 3, std=[0.5] * 3)
    assert encoder.feature_dim == 5
    frames, mask = frame_inputs(size=48)  # resized to 20 x 20 inside
    assert encoder(frames, mask).shape == (2, 4, D)


def test_pretrained_bad_file_raises_config_error(tmp_path):
    with pytest.raises(ConfigError, match="missing.pt: no such TorchScript file"):
        PretrainedFrameEncoder(dim=D, path=str(tmp_path / "missing.pt"))
    plain = tmp_path / "state.pt"
    torch.save(nn.Linear(2, 2).state_dict(), plain)
    with pytest.raises(ConfigError, match="state.pt: cannot load as a TorchScript module"):
        PretrainedFrameEncoder(dim=D, path=str(plain))


def test_pretrained_backbone_with_wrong_output_raises(tmp_path):
    path = tmp_path / "flat.pt"
    torch.jit.script(nn.Flatten(0)).save(str(path))  # (N, 3, S, S) -> (N * 3 * S * S,)
    with pytest.raises(ConfigError, match=r"flat.pt: backbone must return \(N, F\)"):
        PretrainedFrameEncoder(dim=D, path=str(path), image_size=8)


# --- temporal encoders -------------------------------------------------------------------------


def make_temporal(name: str) -> nn.Module:
    torch.manual_seed(0)
    if name == "mean":
        return MeanTemporalEncoder(dim=D)
    if name in ("gru", "lstm"):
        return RecurrentTemporalEncoder(dim=D, cell=name, num_layers=2, dropout=0.1)
    if name == "gru_forward":
        return RecurrentTemporalEncoder(dim=D, cell="gru", bidirectional=False)
    return TransformerTemporalEncoder(dim=D, num_layers=2, num_heads=2, ff_mult=2,
                                      motion_delta=name == "transformer_delta")


TEMPORAL = ["mean", "gru", "lstm", "gru_forward", "transformer", "transformer_delta"]


def temporal_inputs(num_frames: int = 5, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3, num_frames, D, generator=gen)
    mask = torch.ones(3, num_frames, dtype=torch.bool)
    mask[1, 3:] = False
    mask[2, :] = False  # a row with no valid frame
    return x, mask


@pytest.mark.parametrize("name", TEMPORAL)
def test_temporal_shapes_and_masks(name):
    encoder = make_temporal(name).eval()
    x, mask = temporal_inputs()
    tokens, out_mask = encoder(x, mask)
    if name == "mean":
        assert tokens.shape == (3, 1, D)
        assert out_mask.tolist() == [[True], [True], [False]]
        torch.testing.assert_close(tokens[1, 0], x[1, :3].mean(0))
    else:
        assert tokens.shape == (3, 5, D)
        assert torch.equal(out_mask, mask)
    assert torch.isfinite(tokens).all()
    assert torch.all(tokens[~out_mask] == 0)


@pytest.mark.parametrize("name", TEMPORAL)
def test_temporal_padding_invariance(name):
    encoder = make_temporal(name).eval()
    x, mask = temporal_inputs()
    tokens, out_mask = encoder(x, mask)
    # garbage in the padded slots of row 1 and three extra padded frames everywhere
    x2 = torch.cat([x, 100 * torch.randn(3, 3, D)], 1)
    x2[1, 3:5] = 100.0
    mask2 = torch.cat([mask, torch.zeros(3, 3, dtype=torch.bool)], 1)
    tokens2, out_mask2 = encoder(x2, mask2)
    num_out = tokens.shape[1]
    assert torch.equal(out_mask2[:, :num_out], out_mask)
    torch.testing.assert_close(tokens2[:, :num_out][out_mask], tokens[out_mask], atol=1e-5, rtol=0)


def test_transformer_motion_delta_sees_change_not_level():
    """With attention and feed-forward switched off (zero output projections) every token is
    computed alone; zeroing the delta projection's weights then changes only the token of the
    frame where the video jumps, and nothing in a still video."""
    torch.manual_seed(0)
    encoder = TransformerTemporalEncoder(dim=D, num_layers=1, num_heads=2, dropout=0.0, motion_delta=True).eval()
    layer = encoder.encoder.layers[0]
    with torch.no_grad():
        for linear in (layer.self_attn.out_proj, layer.linear2):
            linear.weight.zero_(), linear.bias.zero_()
    still = torch.randn(1, 1, D).expand(1, 4, D).clone()
    moving = still.clone()
    moving[:, 2:] += 1.0  # a jump at frame 2, then still again
    mask = torch.ones(1, 4, dtype=torch.bool)
    with torch.no_grad():
        before = [encoder(x, mask)[0] for x in (still, moving)]
        encoder.delta.weight.zero_()
        after = [encoder(x, mask)[0] for x in (still, moving)]
    assert torch.equal(before[0], after[0])
    changed = (before[1] - after[1]).abs().amax(-1)[0]
    assert changed[2] > 1e-3
    assert changed[[0, 1, 3]].max() < 1e-6


@pytest.mark.parametrize("name", [n for n in TEMPORAL if n != "mean"])
def test_temporal_every_parameter_gets_a_gradient(name):
    encoder = make_temporal(name).train()
    x, mask = temporal_inputs()
    tokens, _ = encoder(x, mask)
    tokens.pow(2).sum().backward()
    for param_name, param in encoder.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, param_name


@pytest.mark.parametrize("name", TEMPORAL)
def test_temporal_state_dict_round_trip(name):
    source = make_temporal(name).eval()
    target = make_temporal(name).eval()
    for p in target.parameters():
        nn.init.normal_(p)
    target.load_state_dict(source.state_dict())
    x, mask = temporal_inputs()
    assert torch.equal(source(x, mask)[0], target(x, mask)[0])


def test_recurrent_reads_valid_frames_in_order_wherever_they_sit():
    encoder = make_temporal("gru").eval()
    x, _ = temporal_inputs()
    holes = torch.tensor([[True, False, True, False, True]])
    tokens, _ = encoder(x[:1], holes)
    prefix, _ = encoder(x[:1, [0, 2, 4]], torch.ones(1, 3, dtype=torch.bool))
    torch.testing.assert_close(tokens[0, holes[0]], prefix[0], atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["gru", "transformer"])
def test_order_aware_encoders_see_frame_order(name):
    encoder = make_temporal(name).eval()
    x, _ = temporal_inputs()
    mask = torch.ones(1, 5, dtype=torch.bool)
    forward, _ = encoder(x[:1], mask)
    backward, _ = encoder(x[:1].flip(1), mask)
    assert (forward.flip(1) - backward).abs().max() > 1e-3


def test_bad_temporal_config():
    with pytest.raises(ConfigError, match="cell"):
        RecurrentTemporalEncoder(dim=D, cell="rnn")
    with pytest.raises(ConfigError, match="num_heads"):
        TransformerTemporalEncoder(dim=D, num_heads=3)
    encoder = TransformerTemporalEncoder(dim=D, num_heads=2, max_len=4)
    with pytest.raises(ConfigError, match="max_len"):
        encoder(torch.zeros(1, 5, D), torch.ones(1, 5, dtype=torch.bool))


# --- audio -------------------------------------------------------------------------------------


def make_audio_encoder(**kwargs) -> MelCNNEncoder:
    torch.manual_seed(0)
    return MelCNNEncoder(dim=D, num_mels=20, channels=(8, 8, 16), **kwargs)


def audio_inputs(num_frames: int = 37, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    mel = torch.randn(2, num_frames, 20, generator=gen) * 4 - 4
    mask = torch.ones(2, num_frames, dtype=torch.bool)
    mask[1, 22:] = False
    return mel, mask


@pytest.mark.parametrize("time_stride", [1, 2, 4, 8])
def test_audio_shapes_and_mask(time_stride):
    encoder = make_audio_encoder(time_stride=time_stride).eval()
    mel, mask = audio_inputs()
    tokens, out_mask = encoder(mel, mask)
    num_tokens = -(-37 // time_stride)
    assert tokens.shape == (2, num_tokens, D)
    assert out_mask[0].all()
    # row 1 has 22 valid frames: token j is valid iff frame j * stride < 22
    assert out_mask[1].tolist() == [j * time_stride < 22 for j in range(num_tokens)]
    assert torch.all(tokens[~out_mask] == 0)
    assert torch.isfinite(tokens).all()


@pytest.mark.parametrize("num_frames", [37, 40])
def test_audio_appended_padding_leaves_every_valid_token_alone(num_frames):
    encoder = make_audio_encoder().eval()
    mel, mask = audio_inputs(num_frames)
    tokens, out_mask = encoder(mel, mask)
    mel2 = torch.cat([mel, 50 * torch.randn(2, 13, 20)], 1)
    mel2[1, 22:num_frames] = 30.0  # garbage in row 1's own padding too
    mask2 = torch.cat([mask, torch.zeros(2, 13, dtype=torch.bool)], 1)
    tokens2, out_mask2 = encoder(mel2, mask2)
    num_tokens = tokens.shape[1]
    assert torch.equal(out_mask2[:, :num_tokens], out_mask) and not out_mask2[:, num_tokens:].any()
    torch.testing.assert_close(tokens2[:, :num_tokens][out_mask], tokens[out_mask], atol=1e-5, rtol=0)


def test_audio_every_parameter_gets_a_gradient_and_round_trips():
    encoder = make_audio_encoder(dropout=0.1).train()
    mel, mask = audio_inputs()
    tokens, _ = encoder(mel, mask)
    tokens.pow(2).sum().backward()
    for param_name, param in encoder.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, param_name
    target = MelCNNEncoder(dim=D, num_mels=20, channels=(8, 8, 16), dropout=0.1)
    target.load_state_dict(encoder.state_dict())
    encoder.eval(), target.eval()
    assert torch.equal(encoder(mel, mask)[0], target(mel, mask)[0])


def test_audio_convolutions_are_channels_last_and_give_what_the_plain_layout_gives():
    """The blocks' weights sit in channels-last layout (faster on CPU); a state dict saved in the
    plain layout loads into it, and the tokens are those of the same encoder laid out plainly."""
    encoder = make_audio_encoder().eval()
    convs = [m.weight for m in encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert all(not w.is_contiguous() for w in convs[1:])  # the first reads one channel: both layouts at once
    plain = make_audio_encoder().eval()
    plain.blocks.to(memory_format=torch.contiguous_format)
    plain.load_state_dict(encoder.state_dict())
    assert all(m.weight.is_contiguous() for m in plain.modules() if isinstance(m, torch.nn.Conv2d))
    mel, mask = audio_inputs()
    torch.testing.assert_close(plain(mel, mask)[0], encoder(mel, mask)[0], rtol=1e-5, atol=1e-5)
    reloaded = make_audio_encoder().eval()
    reloaded.load_state_dict({k: v.contiguous() for k, v in plain.state_dict().items()})
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in reloaded.modules()
               if isinstance(m, torch.nn.Conv2d))
    assert torch.equal(reloaded(mel, mask)[0], encoder(mel, mask)[0])


@pytest.mark.parametrize("time_stride", [0, 3, 16])
def test_audio_bad_time_stride(time_stride):
    with pytest.raises(ConfigError, match="time_stride"):
        make_audio_encoder(time_stride=time_stride)


def beep_clips(num_clips: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Log-mels (N, 100, 64) of 2 s of noise with a 0.3 s beep of one of four pitches at a random
    time; some clips are shorter (masked tail filled with loud garbage). Labels are pitch indices."""
    rate, pitches = 16000, (400.0, 600.0, 900.0, 1350.0)
    labels = rng.integers(0, len(pitches), num_clips)
    mels, masks = [], []
    for label in labels:
        valid_sec = rng.uniform(1.0, 2.0)
        wave = rng.standard_normal(2 * rate).astype(np.float32) * 0.01
        start = int(rng.uniform(0.0, valid_sec - 0.3) * rate)
        t = np.arange(int(0.3 * rate)) / rate
        wave[start:start + len(t)] += 0.3 * np.sin(2 * np.pi * pitches[label] * t + rng.uniform(0, 6.28))
        mel = log_mel_spectrogram(wave, rate)  # (100, 64)
        mask = np.arange(len(mel)) < int(valid_sec / 0.02)
        mel[~mask] = rng.uniform(-14, 10, (int((~mask).sum()), 64))
        mels.append(mel)
        masks.append(mask)
    return torch.from_numpy(np.stack(mels)), torch.from_numpy(np.stack(masks)), torch.from_numpy(labels)


def test_audio_encoder_learns_to_tell_beeps_apart():
    rng = np.random.default_rng(0)
    train_mel, train_mask, train_labels = beep_clips(256, rng)
    test_mel, test_mask, test_labels = beep_clips(64, rng)
    torch.manual_seed(0)
    encoder = MelCNNEncoder(dim=32, num_mels=64, channels=(16, 32, 32))
    probe = nn.Linear(32, 4)
    optimizer = torch.optim.AdamW([*encoder.parameters(), *probe.parameters()], lr=3e-3)

    def logits(mel, mask):
        tokens, token_mask = encoder(mel, mask)
        weights = token_mask.unsqueeze(-1).float()
        return probe((tokens * weights).sum(1) / weights.sum(1).clamp(min=1))

    for step in range(100):
        idx = torch.from_numpy(rng.choice(256, 32, replace=False))
        loss = nn.functional.cross_entropy(logits(train_mel[idx], train_mask[idx]), train_labels[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    encoder.eval()
    with torch.no_grad():
        accuracy = (logits(test_mel, test_mask).argmax(-1) == test_labels).float().mean().item()
    assert accuracy == 1.0


# --- speed -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_small_cnn_training_speed():
    """Frames per second of a SmallCNNEncoder training step (batch 512, 64x64, AdamW); prints only."""
    torch.manual_seed(0)
    encoder = SmallCNNEncoder(dim=256).train()
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-3)
    frames = torch.rand(64, 8, 3, 64, 64)
    mask = torch.ones(64, 8, dtype=torch.bool)

    def step():
        loss = encoder(frames, mask).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()
    num_steps = 5
    start = time.perf_counter()
    for _ in range(num_steps):
        step()
    seconds = time.perf_counter() - start
    print(f"SmallCNNEncoder: {num_steps * 512 / seconds:.0f} frames/s training at 64x64, batch 512, "
          f"{torch.get_num_threads()} threads")


@pytest.mark.parametrize("name", FRAME_ENCODERS)
def test_frame_encoder_runs_under_autocast(name, backbone_path):
    encoder = make_frame_encoder(name, backbone_path)
    frames, mask = frame_inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = encoder(frames, mask)
    assert out.shape == (2, 4, D) and torch.all(out[1, 2:] == 0)


def test_temporal_and_audio_run_under_autocast():
    x, mask = temporal_inputs()
    mel, mel_mask = audio_inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for name in TEMPORAL:
            tokens, _ = make_temporal(name)(x, mask)
            assert torch.isfinite(tokens).all(), name
        tokens, _ = make_audio_encoder()(mel, mel_mask)
        assert torch.isfinite(tokens).all()
