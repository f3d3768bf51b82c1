"""The learning-rate schedule: warm-up, cosine decay by steps, and by time when capped."""

from __future__ import annotations

import pytest
import torch

from duomo.train.optim import build_schedule


def rates(total: int, warmup: int, time_fraction=None, steps: int | None = None) -> list[float]:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    schedule = build_schedule(optimizer, warmup, total, time_fraction)
    seen = []
    for _ in range(steps or total):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return seen


def test_warm_up_then_cosine_to_zero_at_the_last_step():
    seen = rates(total=100, warmup=10)
    assert seen[:3] == pytest.approx([0.1, 0.2, 0.3])
    assert seen[9] == pytest.approx(1.0)
    assert seen[55] == pytest.approx(0.5 * (1 + torch.cos(torch.tensor(torch.pi * 45 / 90)).item()))
    assert seen[-1] < 0.001


def test_a_time_cap_decays_the_rate_as_the_budget_runs_out():
    clock = {"fraction": 0.0}
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    schedule = build_schedule(optimizer, 10, 1000, lambda: clock["fraction"])
    for _ in range(20):
        optimizer.step()
        schedule.step()
    assert optimizer.param_groups[0]["lr"] > 0.99  # 1% of the steps, no time used: still at the peak
    clock["fraction"] = 0.5
    optimizer.step()
    schedule.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5)  # half the time gone: half way down
    clock["fraction"] = 1.0
    optimizer.step()
    schedule.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
