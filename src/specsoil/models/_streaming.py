"""Train a CNN recipe on a Parquet file larger than memory, streaming its row groups.

``SpectralModel.fit`` needs the whole table as one matrix. A CNN does not: it learns from
batches. ``fit_model_stream`` fits the recipe's preprocessing on a sample of whole row
groups, then lets ``CNNRegressor.fit_stream`` pull each epoch's batches from a generator
that reads row groups one at a time, preprocesses them and shuffles rows within a small
buffer of row groups. What is held is the model, the targets (a few numbers per row) and
the row groups in the buffer, so memory stays flat as the file grows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.pipeline import Pipeline

from specsoil._errors import SpecsoilError
from specsoil.data import ParquetSpectraSource
from specsoil.models._recipes import (
    STACK,
    available_recipes,
    make_recipe,
    recipe_estimator,
    recipe_preprocessing,
)
from specsoil.models._spectral_model import SpectralModel, target_statistics
from specsoil.train import CNNRegressor, require_torch

logger = logging.getLogger(__name__)

__all__ = ["fit_model_stream"]

# Rows are shuffled within this many row groups at a time. Row groups are themselves visited
# in a new order every epoch, so batches mix rows from across the file; a few groups (a few
# thousand rows) make each batch a mix of several parts of the file while keeping the
# buffer small (preprocessed spectra: 2.5 kB per row for cnn1d).
SHUFFLE_ROW_GROUPS = 4
# Rows transformed at a time when fitting the preprocessing on the sample.
_TRANSFORM_ROWS = 500
# Validation rows are predicted in batches of up to this many rows.
_VALIDATION_BATCH = 1024
# Distinct streams of the seed for the validation mask and the per-epoch shuffles.
_VALIDATION_STREAM = 1
_SHUFFLE_STREAM = 2

Batch = tuple[NDArray[np.float32], NDArray[np.float64]]


def _network_input(X: Any) -> NDArray[np.float32]:
    values = np.asarray(X, dtype=np.float32)
    if values.ndim == 2:
        values = values[:, None, :]  # (N, 1, L): one input channel
    return np.ascontiguousarray(values)


class _StreamPlan:
    """Which rows train and which validate, and the batches of each, row group by row group.

    Validation rows come from a per-row mask seeded by ``(seed, row group)``, so the same
    rows validate in every epoch and are never trained on. Rows without any target value
    are skipped: they carry no loss.

    Args:
        source: The Parquet file.
        transformers: Fitted transformers applied in order to each row group's spectra.
        Y: Every row's targets, (n_rows, n_targets), NaN where missing.
        val_fraction: Fraction of rows held out for validation, in [0, 1).
        seed: Seed of the mask and of the shuffles.
        batch_size: Rows per training batch.
    """

    def __init__(
        self,
        source: ParquetSpectraSource,
        transformers: Sequence[Any],
        Y: NDArray[np.float64],
        *,
        val_fraction: float,
        seed: int,
        batch_size: int,
    ) -> None:
        self.source = source
        self.transformers = list(transformers)
        self.Y = Y
        self.val_fraction = val_fraction
        self.seed = seed
        self.batch_size = batch_size
        # Rows without any target value carry no loss.
        self._labelled: NDArray[np.bool_] = np.asarray(np.isfinite(Y).any(axis=1))
        counts = [
            (self._rows(g, train=True).size, self._rows(g, train=False).size)
            for g in range(source.n_row_groups)
        ]
        self.n_train = int(sum(c[0] for c in counts))
        self.n_validation = int(sum(c[1] for c in counts))
        self.train_groups = np.array([g for g, c in enumerate(counts) if c[0]], dtype=np.intp)
        self.validation_groups = np.array([g for g, c in enumerate(counts) if c[1]], dtype=np.intp)

    def _validation_mask(self, group: int) -> NDArray[np.bool_]:
        size = int(self.source.row_group_sizes[group])
        rng = np.random.default_rng([self.seed, _VALIDATION_STREAM, group])
        mask: NDArray[np.bool_] = rng.random(size) < self.val_fraction
        return mask

    def _rows(self, group: int, *, train: bool) -> NDArray[np.intp]:
        """Positions within row group ``group`` of its training (or validation) rows."""
        offset = int(self.source.row_group_offsets[group])
        size = int(self.source.row_group_sizes[group])
        validation = self._validation_mask(group)
        wanted = ~validation if train else validation
        return np.flatnonzero(wanted & self._labelled[offset : offset + size])

    def transform(self, X: NDArray[np.float32]) -> NDArray[np.float32]:
        """Preprocess spectra into network input (N, C, L) or (N, 1, F, T)."""
        values: Any = X
        for step in self.transformers:
            values = step.transform(values)
        return _network_input(values)

    def _groups(self, groups: NDArray[np.intp], *, train: bool) -> Iterator[Batch]:
        """Each group's training (or validation) rows, preprocessed, with their targets."""
        for group, table in zip(groups, self.source.iter_tables(groups.tolist()), strict=True):
            rows = self._rows(int(group), train=train)
            offset = int(self.source.row_group_offsets[group])
            yield self.transform(table.X[rows]), self.Y[offset + rows]

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        """The training rows of every row group, in batches, shuffled anew each epoch."""
        rng = np.random.default_rng([self.seed, _SHUFFLE_STREAM, epoch])
        order = rng.permutation(self.train_groups)
        buffer: list[Batch] = []
        for part in self._groups(order, train=True):
            buffer.append(part)
            if len(buffer) > SHUFFLE_ROW_GROUPS:
                X = np.concatenate([b[0] for b in buffer])
                Y = np.concatenate([b[1] for b in buffer])
                shuffled = rng.permutation(X.shape[0])
                X, Y = X[shuffled], Y[shuffled]
                # Whole batches leave; the rest waits to be mixed with the next row groups.
                whole = X.shape[0] - X.shape[0] % self.batch_size
                for start in range(0, whole, self.batch_size):
                    stop = start + self.batch_size
                    yield X[start:stop], Y[start:stop]
                buffer = [(X[whole:], Y[whole:])] if whole < X.shape[0] else []
        if buffer:
            X = np.concatenate([b[0] for b in buffer])
            Y = np.concatenate([b[1] for b in buffer])
            shuffled = rng.permutation(X.shape[0])
            for start in range(0, X.shape[0], self.batch_size):
                rows = shuffled[start : start + self.batch_size]
                yield X[rows], Y[rows]

    def validation_batches(self) -> Iterator[Batch]:
        """The validation rows in file order, in batches of up to 1,024 rows."""
        for X, Y in self._groups(self.validation_groups, train=False):
            for start in range(0, X.shape[0], _VALIDATION_BATCH):
                stop = start + _VALIDATION_BATCH
                yield X[start:stop], Y[start:stop]


def _fit_transformers(transformers: Sequence[Any], X: NDArray[np.float32]) -> tuple[int, ...]:
    """Fit each transformer on the output of the previous ones; return the network input shape.

    Each step is fitted on the whole sample but its output is computed ``_TRANSFORM_ROWS``
    rows at a time: a step's float64 working copies of a 5,000-spectrum sample took 0.9 GB
    when transformed at once, more than the streamed training itself.
    """
    values: Any = X
    for step in transformers:
        step.fit(values)
        values = np.concatenate(
            [
                np.asarray(step.transform(values[start : start + _TRANSFORM_ROWS]))
                for start in range(0, len(values), _TRANSFORM_ROWS)
            ]
        )
    return tuple(int(d) for d in _network_input(values[:1]).shape[1:])


def _split_cnn(pipeline: Pipeline, recipe: str) -> tuple[list[Any], CNNRegressor]:
    """The transformers before the network (including a nested pipeline's) and the network."""
    steps = [step for _, step in pipeline.steps[:-1]]
    final = pipeline.steps[-1][1]
    if isinstance(final, Pipeline):  # e.g. cnn1d: (channels, cnn); cnn2d: (spectrogram, cnn)
        steps += [step for _, step in final.steps[:-1]]
        final = final.steps[-1][1]
    if not isinstance(final, CNNRegressor):
        cnn = [name for name in available_recipes() if _is_cnn(name)]
        raise SpecsoilError(
            f"recipe {recipe!r} cannot be trained by streaming: only CNN recipes ({cnn}) "
            f"learn from batches; {recipe!r} needs the whole table in memory, so train it "
            "without --stream (specsoil train) or pick a CNN recipe"
        )
    return [s for s in steps if s not in (None, "passthrough")], final


def _is_cnn(recipe: str) -> bool:
    if recipe == STACK:  # built from whole member recipes, never a single network
        return False
    estimator = recipe_estimator(recipe)
    if isinstance(estimator, Pipeline):
        estimator = estimator.steps[-1][1]
    return isinstance(estimator, CNNRegressor)


def fit_model_stream(
    source: ParquetSpectraSource,
    *,
    recipe: str,
    name: str | None = None,
    preprocessing: Sequence[Mapping[str, Any]] | None = None,
    params: Mapping[str, Any] | None = None,
    random_state: int = 0,
    val_fraction: float = 0.1,
    fit_sample_rows: int = 5000,
) -> SpectralModel:
    """Fit a CNN recipe on every row of a Parquet file, reading one row group at a time.

    The recipe's transformers (resampling, channels, autoscaling, ...) are fitted on about
    ``fit_sample_rows`` rows from randomly chosen row groups; the targets are standardised
    with the mean and standard deviation of all their values; then the network trains on
    batches streamed from the file, each epoch visiting the row groups in a new order and
    shuffling rows within a few row groups. A fixed, seeded ``val_fraction`` of the rows is
    held out for early stopping (the CNN's own ``val_fraction`` is not used).

    Args:
        source: The file, opened with the targets to model.
        recipe: A CNN recipe (``cnn1d``, ``seed_cnn``, ``cnn2d``, ``cnn1d2d``).
        name: Model name (default: the recipe).
        preprocessing: Steps replacing the recipe's default; ``None`` keeps the default.
        params: Overrides of the CNN's parameters (e.g. ``{"max_epochs": 20}``).
        random_state: Seed of the preprocessing sample, validation rows, shuffles and
            network.
        val_fraction: Fraction of rows held out for early stopping, in [0, 1).
        fit_sample_rows: Rows read (as whole row groups) to fit the preprocessing.

    Returns:
        The fitted model, saved and used for prediction like one from ``SpectralModel.fit``;
        its ``training`` summary records ``streamed: True``.

    Raises:
        SpecsoilError: For a recipe that is not a CNN, a missing torch extra, bad
            arguments, or unreadable values in the file.
    """
    if isinstance(val_fraction, bool) or not 0 <= val_fraction < 1:
        raise SpecsoilError(f"val_fraction must be in [0, 1); got {val_fraction!r}")
    if (
        isinstance(fit_sample_rows, bool)
        or not isinstance(fit_sample_rows, int)
        or (fit_sample_rows < 2)
    ):
        raise SpecsoilError(f"fit_sample_rows must be an integer >= 2; got {fit_sample_rows!r}")
    steps = [
        dict(s) for s in (recipe_preprocessing(recipe) if preprocessing is None else preprocessing)
    ]
    overrides = dict(params or {})
    pipeline = make_recipe(
        recipe, source.wavelengths, preprocessing=steps, params=overrides, random_state=random_state
    )
    transformers, network = _split_cnn(pipeline, recipe)
    require_torch("streamed training")

    targets = list(source.targets)
    Y = source.read_targets()
    counts = np.isfinite(Y).sum(axis=0)
    for target, count in zip(targets, counts, strict=True):
        if count < 2:
            raise SpecsoilError(
                f"{source.path}: target {target!r} has {count} lab values; at least 2 are "
                "needed to train"
            )
    if network.standardize_targets:
        mean = np.nanmean(Y, axis=0)
        scale = np.nanstd(Y, axis=0)
        # A constant target has no spread to divide by.
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    else:
        mean, scale = np.zeros(len(targets)), np.ones(len(targets))

    sample = source.sample(fit_sample_rows, seed=random_state)
    n_sample = sample.n_samples
    input_shape = _fit_transformers(transformers, sample.X)
    del sample  # only the fitted transformers are kept

    plan = _StreamPlan(
        source,
        transformers,
        Y,
        val_fraction=val_fraction,
        seed=random_state,
        batch_size=int(network.batch_size),
    )
    if plan.n_train < 2:
        raise SpecsoilError(
            f"{source.path}: only {plan.n_train} rows to train on after holding out "
            f"val_fraction={val_fraction}"
        )
    validate = plan.n_validation > 0
    if val_fraction > 0 and not validate:
        logger.warning("no row drawn for validation; training without early stopping")
    logger.info(
        "streaming %s: %d rows in %d row groups (%d train, %d validation); preprocessing "
        "fitted on %d rows",
        source.path,
        source.n_rows,
        source.n_row_groups,
        plan.n_train,
        plan.n_validation,
        n_sample,
    )
    network.fit_stream(
        plan.train_batches,
        input_shape=input_shape,
        target_mean=np.asarray(mean, dtype=np.float64),
        target_scale=np.asarray(scale, dtype=np.float64),
        val_batches=plan.validation_batches if validate else None,
    )
    training = {
        "source": str(source.path),
        "source_spectra_kind": source.spectra_kind,
        "n_samples": source.n_rows,
        "n_wavelengths": int(source.wavelengths.size),
        "wavelength_range_nm": [float(source.wavelengths[0]), float(source.wavelengths[-1])],
        "targets": target_statistics(targets, Y),
        "streamed": True,
        "synthetic": source.synthetic,
        "n_row_groups": source.n_row_groups,
        "n_train_rows": plan.n_train,
        "n_validation_rows": plan.n_validation,
        "preprocessing_fit_rows": n_sample,
    }
    return SpectralModel(
        name=name or recipe,
        recipe=recipe,
        preprocessing=steps,
        params=overrides,
        targets=targets,
        wavelengths=np.asarray(source.wavelengths, dtype=np.float64),
        pipeline=pipeline,
        training=training,
    )
