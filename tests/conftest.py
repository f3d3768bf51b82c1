"""Shared fixtures: seeding and a temporary directory for generated media."""

from __future__ import annotations

import random

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One torch thread: tiny models run faster, and far faster on a busy shared machine, than
    two threads spinning against other processes."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
