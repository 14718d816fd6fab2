"""Arrays to network inputs: shapes, the inner validation split and data loaders."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from torch.utils.data import DataLoader


def network_input(X: NDArray[np.floating]) -> NDArray[np.float32]:
    """Give X the (N, C, L) or (N, 1, F, T) shape a network takes.

    Args:
        X: Spectra (N, L), multi-channel spectra (N, C, L) or spectrograms (N, 1, F, T).

    Returns:
        A C-contiguous float32 array: (N, 1, L) for 2-D X, X itself otherwise.

    Raises:
        ValueError: If X is not 2-, 3- or 4-D, or a 4-D X has more than one channel.
    """
    if X.ndim == 2:
        X = X[:, None, :]  # (N, 1, L): one input channel
    elif X.ndim == 4 and X.shape[1] != 1:
        raise ValueError(
            f"4-D X must be spectrograms of shape (n_samples, 1, F, T); got shape {X.shape}"
        )
    elif X.ndim not in (3, 4):
        raise ValueError(
            "X must be spectra (n_samples, n_bands), multi-channel spectra "
            "(n_samples, n_channels, n_bands) or spectrograms (n_samples, 1, F, T); "
            f"got shape {X.shape}"
        )
    return np.ascontiguousarray(X, dtype=np.float32)


def inner_split(
    n_samples: int, val_fraction: float, seed: int
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Split the rows given to ``fit`` into inner training and early-stopping rows.

    Only rows passed to ``fit`` are ever used, so an outer test fold can never steer early
    stopping. At least one row goes to each side when ``val_fraction`` > 0.

    Args:
        n_samples: Number of rows given to ``fit``.
        val_fraction: Fraction of them held out for validation, in [0, 1).
        seed: Seed of the random permutation.

    Returns:
        Sorted row indices (train, validation); validation is empty when
        ``val_fraction`` is 0.

    Raises:
        ValueError: If there are too few rows to hold any out.
    """
    if val_fraction == 0:
        return np.arange(n_samples), np.arange(0)
    if n_samples < 2:
        raise ValueError(
            f"val_fraction={val_fraction} needs at least 2 samples to hold one out for "
            f"early stopping; got {n_samples} (use val_fraction=0)"
        )
    n_val = min(max(round(val_fraction * n_samples), 1), n_samples - 1)
    order = np.random.default_rng(seed).permutation(n_samples)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def make_loader(
    X: NDArray[np.float32],
    Y: NDArray[np.float32] | NDArray[np.int64],
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    pin_memory: bool = False,
    device: str | None = None,
) -> DataLoader[tuple[object, ...]]:
    """A single-process DataLoader over in-memory tensors.

    Worker processes would only copy arrays that are already in memory; ``num_workers=0``
    avoids their start-up cost and the fork-safety issues of CUDA. Under DDP, Lightning
    replaces the sampler with a ``DistributedSampler``.

    Args:
        X: Network inputs, shape (N, ...).
        Y: Targets, shape (N, k) float (NaN = missing) or (N,) integer class labels.
        batch_size: Samples per batch.
        shuffle: Reshuffle every epoch (training) or not (validation).
        seed: Seed of the shuffling generator.
        pin_memory: Page-lock batches for faster copies to a GPU.
        device: Copy X and Y to this torch device once and cut every batch there (one
            indexing per batch instead of one copy per sample); None keeps them in host
            memory.

    Returns:
        The loader.
    """
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    class BatchedTensors(TensorDataset):
        """Tensors cut a whole batch at a time (``DataLoader`` calls ``__getitems__``)."""

        def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
            rows = torch.as_tensor(indices, device=self.tensors[0].device)
            return tuple(tensor[rows] for tensor in self.tensors)

    dataset: TensorDataset
    if device is not None:
        X_t, Y_t = torch.from_numpy(X).to(device), torch.from_numpy(Y).to(device)
        dataset = BatchedTensors(X_t, Y_t)
        pin_memory = False  # the tensors are already on the device
    else:
        dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(Y))
    # A last training batch of one sample would break BatchNorm ("expected more than 1 value
    # per channel"); drop it instead (it is a different sample each epoch when shuffled).
    drop_last = shuffle and len(X) > batch_size and len(X) % batch_size == 1
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator if shuffle else None,
        drop_last=drop_last,
        num_workers=0,
        pin_memory=pin_memory,
        collate_fn=_whole_batch if device is not None else None,
    )


def _whole_batch(batch: Any) -> Any:
    """The collate step of a dataset that returns whole batches: nothing left to do."""
    return batch
