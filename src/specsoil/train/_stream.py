"""Training on a stream of batches: the iterable dataset behind ``CNNRegressor.fit_stream``.

Each epoch asks a caller's function for that epoch's batches (for example row groups of a
Parquet file larger than memory, read one at a time and shuffled by the caller), checks and
standardises each batch as it passes, and hands it on. Nothing is kept: only the batch in
flight (and the one Lightning prefetches) is in memory.

Imported lazily by the estimator, because it imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch.utils.data import DataLoader, IterableDataset

Batch = tuple[NDArray[np.float32], NDArray[np.floating]]
TrainBatches = Callable[[int], Iterable[Batch]]
ValBatches = Callable[[], Iterable[Batch]]


class BatchStream(IterableDataset[tuple[torch.Tensor, torch.Tensor]]):
    """Batches ``(X_net, Y)`` from a caller's function, checked and standardised one by one.

    Args:
        batches: ``batches(epoch)`` for training (the epoch is 0-based, read from the
            trainer when the epoch's iteration starts, so a resumed run continues at the
            right epoch), or ``batches()`` for validation.
        per_epoch: Whether ``batches`` takes the epoch number.
        input_shape: Per-sample network input shape every X must have.
        target_mean: Per-target mean subtracted from Y, shape (k,).
        target_scale: Per-target scale Y is divided by, shape (k,).
        skip_single: Skip batches of one sample (training: BatchNorm cannot normalise a
            batch of one).
        name: The argument's name in error messages (``"train_batches"``).
    """

    def __init__(
        self,
        batches: Callable[..., Iterable[Batch]],
        *,
        per_epoch: bool,
        input_shape: tuple[int, ...],
        target_mean: NDArray[np.float64],
        target_scale: NDArray[np.float64],
        skip_single: bool,
        name: str,
    ) -> None:
        self.batches = batches
        self.per_epoch = per_epoch
        self.input_shape = input_shape
        self.target_mean = target_mean
        self.target_scale = target_scale
        self.skip_single = skip_single
        self.name = name
        self._epoch: Callable[[], int] = lambda: 0

    def bind_trainer(self, trainer: Any) -> None:
        """Read the epoch from ``trainer.current_epoch`` (called by the training engine)."""
        self._epoch = lambda: int(trainer.current_epoch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # A generator: the caller's function runs when the first batch is requested, by
        # which time the trainer's epoch counter names the epoch being run.
        if self.per_epoch:
            epoch = self._epoch()
            where = f"{self.name}(epoch={epoch})"
            batches = self.batches(epoch)
        else:
            where = f"{self.name}()"
            batches = self.batches()
        used = 0
        for index, batch in enumerate(batches):
            x, target = self._check(batch, f"{where} batch {index}")
            if self.skip_single and x.shape[0] < 2:
                continue
            used += 1
            yield torch.from_numpy(x), torch.from_numpy(target)
        if not used:
            # An empty epoch would record a NaN loss and step the schedule for nothing.
            smallest = " of at least 2 samples" if self.skip_single else ""
            raise ValueError(f"{where} yielded no batches{smallest}")

    def _check(self, batch: object, where: str) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Network input and standardised targets of one batch, or a ValueError naming it."""
        if not isinstance(batch, tuple | list) or len(batch) != 2:
            raise ValueError(f"{where}: expected a pair (X_net, Y); got {type(batch).__name__}")
        X = np.asarray(batch[0])
        Y = np.asarray(batch[1], dtype=np.float64)
        expected = ("B", *self.input_shape)
        if X.ndim != len(expected) or tuple(X.shape[1:]) != self.input_shape or X.shape[0] < 1:
            raise ValueError(
                f"{where}: X must have shape {expected} (network-shaped, B >= 1); got {X.shape}"
            )
        k = self.target_mean.shape[0]
        if Y.ndim == 1 and k == 1:
            Y = Y[:, None]  # (B, 1)
        if Y.shape != (X.shape[0], k):
            raise ValueError(f"{where}: Y must have shape ({X.shape[0]}, {k}); got {Y.shape}")
        if np.isinf(Y).any():
            raise ValueError(f"{where}: Y has infinite values (NaN marks a missing value)")
        if not np.isfinite(X).all():
            raise ValueError(f"{where}: X has NaN or infinite values")
        x = np.array(X, dtype=np.float32, order="C", copy=True)  # writable, own memory
        target = ((Y - self.target_mean) / self.target_scale).astype(np.float32)
        return x, target


def stream_loader(
    batches: Callable[..., Iterable[Batch]],
    *,
    per_epoch: bool,
    input_shape: tuple[int, ...],
    target_mean: NDArray[np.float64],
    target_scale: NDArray[np.float64],
    skip_single: bool,
    name: str,
    pin_memory: bool = False,
) -> DataLoader[Any]:
    """A single-process DataLoader over a :class:`BatchStream` (batches pass as they are).

    Args:
        batches: The caller's batch function (see :class:`BatchStream`).
        per_epoch: Whether it takes the epoch number.
        input_shape: Per-sample network input shape.
        target_mean: Per-target mean, shape (k,).
        target_scale: Per-target scale, shape (k,).
        skip_single: Skip one-sample batches.
        name: The argument's name in error messages.
        pin_memory: Page-lock batches for faster copies to a GPU.

    Returns:
        The loader; it has no length.
    """
    stream = BatchStream(
        batches,
        per_epoch=per_epoch,
        input_shape=input_shape,
        target_mean=target_mean,
        target_scale=target_scale,
        skip_single=skip_single,
        name=name,
    )
    # batch_size=None: the caller's batches are already batches.
    return DataLoader(stream, batch_size=None, num_workers=0, pin_memory=pin_memory)
