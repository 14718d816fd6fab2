"""Training on a stream of batches: ``CNNRegressor.fit_stream`` and its iterable dataset.

Each epoch asks a caller's function for that epoch's batches (for example row groups of a
Parquet file larger than memory, read one at a time and shuffled by the caller), checks and
standardises each batch as it passes, and hands it on. Nothing is kept: only the batch in
flight (and the one Lightning prefetches) is in memory.

Imported lazily by the estimator, because it imports torch.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch.utils.data import DataLoader, IterableDataset

from specsoil.nets import SpectralCNN
from specsoil.train._engine import pin_memory, run_schedule, seeded, train_network
from specsoil.train._estimator import CNNRegressor
from specsoil.train._registry import create_net

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
        """Read the epoch from the trainer (called by the training engine).

        The count of epochs whose training has been processed names the epoch being run,
        also on a run resumed from a checkpoint written at the end of an epoch, where
        ``trainer.current_epoch`` still names the epoch that checkpoint closed.
        """
        self._epoch = lambda: int(trainer.fit_loop.epoch_progress.current.processed)

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


def fit_stream(
    estimator: CNNRegressor,
    train_batches: TrainBatches,
    *,
    input_shape: tuple[int, ...],
    target_mean: NDArray[np.float64],
    target_scale: NDArray[np.float64],
    val_batches: ValBatches | None = None,
) -> None:
    """The body of ``CNNRegressor.fit_stream``: train ``estimator`` in place on streamed batches.

    PyTorch is checked to be installed by the caller; the arguments are those of
    ``CNNRegressor.fit_stream``, whose docstring describes them.

    Raises:
        ValueError: If a parameter, a shape or a batch is invalid, or the parameters ask
            for DDP (several processes cannot share one stream).
        SpecsoilError: If a resumed run does not match.
    """
    settings = estimator._check_params()
    if not settings.single_process:
        raise ValueError(
            "fit_stream trains in one process on one device; got "
            f"strategy={estimator.strategy!r}, devices={estimator.devices!r}, "
            f"num_nodes={estimator.num_nodes!r} (use strategy='auto' and devices=1, or fit "
            "for data-parallel training)"
        )
    if not callable(train_batches):
        raise ValueError(f"train_batches must be callable(epoch); got {train_batches!r}")
    if val_batches is not None and not callable(val_batches):
        raise ValueError(f"val_batches must be callable() or None; got {val_batches!r}")
    shape = _check_input_shape(input_shape)
    if settings.augment and len(shape) == 3:
        raise ValueError(
            f"augment perturbs spectra, so input_shape must be (n_channels, n_bands); got {shape}"
        )
    mean, scale = _check_target_stats(target_mean, target_scale)
    # The fitted attributes a fit on X of this layout would set.
    estimator.input_shape_ = shape
    estimator._x_ndim = 2 if len(shape) == 2 and shape[0] == 1 else len(shape) + 1
    estimator.n_features_in_ = shape[1] if estimator._x_ndim == 2 else shape[0]
    if hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_
    estimator.target_mean_, estimator.target_scale_, estimator._y_ndim = mean, scale, 2
    seed = estimator._base_seed(settings)
    estimator._check_run_file(settings, seed, None, shape, mean.shape[0])
    pin = pin_memory(settings)

    def loader(batches: Callable[..., Any], *, training: bool) -> Any:
        return stream_loader(
            batches,
            per_epoch=training,
            input_shape=shape,
            target_mean=mean,
            target_scale=scale,
            skip_single=training,
            name="train_batches" if training else "val_batches",
            pin_memory=pin,
        )

    members: list[SpectralCNN] = []
    histories: list[dict[str, Any]] = []
    for i in range(settings.n_ensemble):
        with seeded(seed + i):
            net = create_net(
                settings.module,
                n_outputs=mean.shape[0],
                input_shape=shape,
                params=settings.module_params,
            )
            train_loader = loader(train_batches, training=True)
            val_loader = None if val_batches is None else loader(val_batches, training=False)
            net, history = train_network(
                net,
                train_loader,
                val_loader,
                task=estimator._task,
                settings=settings,
                seed=seed + i,
                run_dir=estimator._run_dir(settings, i),
            )
        estimator._warn_if_diverged(history, settings, stacklevel=5)
        history["schedule"] = run_schedule(settings, history)
        members.append(net)
        histories.append(history)
    no_rows = [np.arange(0) for _ in members]
    estimator._set_members(members, histories, no_rows)


def _check_input_shape(input_shape: object) -> tuple[int, ...]:
    """``input_shape`` of ``fit_stream`` as a tuple: (C, L) or (1, F, T).

    Raises:
        ValueError: If it is not.
    """
    dims = list(input_shape) if isinstance(input_shape, tuple | list) else []
    ok = (
        len(dims) in (2, 3)
        and all(isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in dims)
        and all(int(d) >= 1 for d in dims)
        and (len(dims) == 2 or int(dims[0]) == 1)
    )
    if not ok:
        raise ValueError(
            "input_shape must be a network input shape (n_channels, n_bands) or "
            f"(1, F, T) with positive integers; got {input_shape!r}"
        )
    return tuple(int(d) for d in dims)


def _check_target_stats(
    target_mean: ArrayLike, target_scale: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``fit_stream``'s target standardisation as float64 (k,) arrays.

    Raises:
        ValueError: If they are not 1-D, differ in length, are not finite or a scale is <= 0.
    """
    mean = np.array(target_mean, dtype=np.float64, ndmin=1)
    scale = np.array(target_scale, dtype=np.float64, ndmin=1)
    if mean.ndim != 1 or mean.size == 0 or scale.shape != mean.shape:
        raise ValueError(
            "target_mean and target_scale must be 1-D arrays of the same length "
            f"(one value per target); got shapes {mean.shape} and {scale.shape}"
        )
    if not np.isfinite(mean).all() or not (np.isfinite(scale) & (scale > 0)).all():
        raise ValueError(
            f"target_mean must be finite and target_scale finite and > 0; got {mean} and {scale}"
        )
    return mean, scale
