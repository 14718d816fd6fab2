"""Training losses: a multi-task squared error that skips missing lab values."""

from __future__ import annotations

import torch


def masked_mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the target entries that are present (finite).

    Soil libraries rarely have every property measured on every sample; a missing value
    (NaN) must neither be imputed nor pull the network anywhere, so it is dropped from both
    the sum and the count. A batch in which no entry is present gives a loss of 0 that is
    still attached to the graph, so the optimiser step is a no-op for it.

    Args:
        pred: Network outputs, shape (batch, n_targets).
        target: Targets on the same scale, shape (batch, n_targets); NaN marks missing.

    Returns:
        A scalar tensor: sum of squared errors over present entries / their number.

    Raises:
        ValueError: If the shapes differ.
    """
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape; got {tuple(pred.shape)} "
            f"and {tuple(target.shape)}"
        )
    present = torch.isfinite(target)
    # Zero the missing entries before subtracting: NaN * 0 is NaN, and NaN in the forward
    # pass would poison the gradient even where it is masked out.
    error = torch.where(present, pred - torch.nan_to_num(target), torch.zeros_like(pred))
    count = present.sum()
    return (error.float() ** 2).sum() / count.clamp(min=1)
