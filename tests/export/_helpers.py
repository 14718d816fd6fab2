"""Helpers shared by the export tests."""

from __future__ import annotations

import numpy as np


def target_sd(model) -> np.ndarray:
    """The training sd of each target (ddof=1), from the model's training summary."""
    return np.array([model.training["targets"][name]["sd"] for name in model.targets])
