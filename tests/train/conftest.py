"""Fixtures for the training-engine tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def band_task():
    """(X (96, 48) float32, y (96,)): Gaussian absorption bands whose heights set y linearly.

    Small enough that a few epochs of a tiny CNN take well under a second.
    """
    rng = np.random.default_rng(7)
    grid = np.arange(48.0)
    centres = np.array([8.0, 20.0, 33.0, 41.0])
    bands = np.exp(-0.5 * ((grid[None, :] - centres[:, None]) / 2.5) ** 2)
    heights = rng.uniform(0.0, 1.0, (96, 4))
    X = 0.5 + heights @ bands + rng.normal(0.0, 0.01, (96, 48))
    y = heights @ np.array([3.0, -2.0, 1.0, 0.5]) + 10.0
    return X.astype(np.float32), y
