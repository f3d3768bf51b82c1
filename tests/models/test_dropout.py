"""``layers.Dropout``, the faster dropout every built model uses: the same result in
distribution as ``nn.Dropout``, seeded, with the right gradient; and ``faster_dropout`` swaps it in
everywhere, torch's own transformer layers included."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from duomo.models.build import build_model
from duomo.models.layers import Dropout, faster_dropout, keep_scale
from tests.helpers.learning import tiny_config


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_drops_a_share_p_and_scales_the_rest(p):
    x = torch.randn(1000, 1001)  # an odd count: the last random word is only partly used
    y = Dropout(p).train()(x)
    dropped = y == 0
    # the share dropped is round(p * 65536) / 65536; a million draws put it within 5 standard errors
    share = round(p * 65536) / 65536
    assert abs(dropped.float().mean().item() - share) < 5 * (share * (1 - share) / x.numel()) ** 0.5
    torch.testing.assert_close(y[~dropped], x[~dropped] / (1 - share))


def test_each_element_is_dropped_independently():
    """Neighbouring elements (lanes of one random word) are uncorrelated, and no lane is biased."""
    mask = keep_scale(torch.Size([400_000, 4]), 0.5, torch.float32, torch.device("cpu")) > 0
    lanes = mask.float().mean(0)
    assert torch.all((lanes - 0.5).abs() < 0.005), lanes
    both = (mask[:, 0] & mask[:, 1]).float().mean().item()
    assert abs(both - 0.25) < 0.005


def test_seeded_reproducible_and_passes_through_in_eval():
    x = torch.randn(64, 33)
    drop = Dropout(0.2).train()
    torch.manual_seed(5)
    first = drop(x)
    torch.manual_seed(5)
    assert torch.equal(drop(x), first)
    assert not torch.equal(drop(x), first)  # the generator moved on
    assert drop.eval()(x) is x
    assert Dropout(0.0).train()(x) is x
    assert torch.equal(Dropout(1.0).train()(x), torch.zeros_like(x))
    nearly = Dropout(1 - 1e-7).train()(torch.ones(100_000))  # rounds to all but one in 65,536 dropped
    assert torch.isfinite(nearly).all() and (nearly > 0).sum() < 20


def test_gradient_is_the_kept_mask_times_the_scale():
    x = torch.randn(50, 20, requires_grad=True)
    y = Dropout(0.25).train()(x)
    y.backward(torch.ones_like(y))
    kept = y.detach() != 0
    torch.testing.assert_close(x.grad, kept.float() / 0.75)


def test_faster_dropout_replaces_every_torch_dropout_keeping_p():
    net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.3),
                        nn.TransformerEncoderLayer(8, 2, 16, dropout=0.2, batch_first=True))
    faster_dropout(net)
    drops = [m for m in net.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 4 and all(type(m) is Dropout for m in drops)
    assert [m.p for m in drops] == [0.3, 0.2, 0.2, 0.2]
    layer = net[2].train()
    torch.manual_seed(0)
    out = layer(torch.randn(3, 5, 8))  # the transformer layer runs with them (its slow path in training)
    assert out.shape == (3, 5, 8)


def test_built_models_hold_no_torch_dropout(tmp_path):
    manifest = tmp_path / "manifest.jsonl"  # only named: building reads no data
    for task in ("qa", "caption"):
        model = build_model(tiny_config(task, manifest), vocab=["a", "b"], num_outputs=3)
        drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
        assert drops and all(type(m) is Dropout for m in drops)
