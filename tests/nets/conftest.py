"""Fixtures for the network tests: seeded torch, one thread."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _torch_seed():
    """Seed torch for every test so that weights and inputs are repeatable."""
    torch.manual_seed(0)
