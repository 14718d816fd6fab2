"""Fine-tune a saved CNN model on local spectra, keeping its grid and fitted preprocessing.

A model trained on a large (global) library learns features of soil spectra in general; a few
local samples can then adapt it to a new site, instrument or region. The base model's
wavelength grid and its *fitted* preprocessing carry over unchanged, so the local spectra enter
the network exactly as the base's training spectra did; only the network's weights move.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from sklearn.pipeline import Pipeline

from specsoil._errors import SpecsoilError
from specsoil.data import SpectraTable
from specsoil.models._mbl import MemoryBasedLearning
from specsoil.models._spectral_model import SpectralModel, _training_summary
from specsoil.train import CNNRegressor, require_torch

logger = logging.getLogger(__name__)

FinetuneStrategy = Literal["head", "partial", "full"]
FINETUNE_STRATEGIES: tuple[FinetuneStrategy, ...] = ("head", "partial", "full")
"""``head``: only the output layer trains; ``partial``: also the last block, at a lower
learning rate; ``full``: every weight."""

# finetune_model's defaults (partial, the base's epochs, BatchNorm statistics frozen, no
# replay) come from bench_transfer (docs/benchmarks.md): without replay, partial had the
# lowest mean RMSE ratio to spiking (1.21; head 1.23, full for 40 epochs 1.23), and freezing
# the BatchNorm statistics never hurt and helped a lot at low learning rates (partial, 60
# epochs at 3e-4: 1.34 against 1.58). Replay did better still (full, 40 epochs: 1.17) but
# needs the base's data, which a saved model does not carry, so it is opt-in here.
FinetuneBatchNorm = Literal["frozen", "adapt"]
FINETUNE_BATCHNORM: tuple[FinetuneBatchNorm, ...] = ("frozen", "adapt")
"""``frozen``: BatchNorm layers keep the base's running statistics (their scale and shift
still train where unfrozen); ``adapt``: unfrozen ones re-estimate them from the local data."""


# Similarity-weighted replay keeps each local sample's 10 nearest library rows: K = 20 local
# samples then rehearse on at most 200 library rows, the neighbourhood size of MBL's default
# search (50-200). Fixed from that analogy, before any benchmark ran.
REPLAY_NEIGHBOURS = 10


def _locate_network(pipeline: Pipeline) -> tuple[list[Any], Any, list[str]]:
    """The transforms in front of a recipe's estimator, the estimator, and the path to it.

    Recipes put the network last, either directly (``seed_cnn``) or at the end of a nested
    pipeline of network-specific transforms (``cnn1d``: channels; ``cnn2d``: spectrogram).
    """
    outer_name, final = pipeline.steps[-1]
    transforms = [step for _, step in pipeline.steps[:-1] if step not in (None, "passthrough")]
    path = [outer_name]
    if isinstance(final, Pipeline):
        inner_name, estimator = final.steps[-1]
        transforms += [step for _, step in final.steps[:-1] if step not in (None, "passthrough")]
        path.append(inner_name)
    else:
        estimator = final
    return transforms, estimator, path


def is_finetunable(pipeline: Pipeline) -> bool:
    """Whether a recipe pipeline (fitted or not) ends in a CNN that can be fine-tuned."""
    return isinstance(_locate_network(pipeline)[1], CNNRegressor)


def _split_pipeline(model: SpectralModel) -> tuple[list[Any], CNNRegressor, list[str]]:
    """The fitted transforms in front of the network, the network, and the path to it.

    Raises:
        SpecsoilError: If the model's estimator is not a CNN.
    """
    transforms, network, path = _locate_network(model.pipeline)
    if not isinstance(network, CNNRegressor):
        raise SpecsoilError(
            f"model {model.name!r} ({model.recipe}) is not a CNN: fine-tuning needs a CNN "
            "model (e.g. one trained with --model cnn1d); for classic models retrain them on "
            "the base data plus the local samples instead (spiking, see specsoil transfer-cv)"
        )
    return transforms, network, path


def _replace_network(pipeline: Pipeline, path: list[str], network: CNNRegressor) -> Pipeline:
    """A deep copy of the fitted ``pipeline`` with the network at ``path`` swapped for ``network``.

    Only the transforms are copied: the old network is replaced anyway, so its weights are
    not duplicated in memory.
    """
    if len(path) == 2:
        inner = pipeline.steps[-1][1]
        final: Any = Pipeline([*copy.deepcopy(inner.steps[:-1]), (path[1], network)])
    else:
        final = network
    return Pipeline([*copy.deepcopy(pipeline.steps[:-1]), (path[0], final)])


def _check_targets(
    table: SpectraTable, targets: Sequence[str], *, new_head: bool
) -> NDArray[np.float64]:
    """Lab values of ``targets``; enough of them to fine-tune on, or a SpecsoilError."""
    if isinstance(targets, str) or not targets:
        raise SpecsoilError(
            f"{table.source}: name the properties to fine-tune on; got {targets!r}; "
            f"numeric columns: {table.numeric_columns()}"
        )
    Y = table.targets(targets)
    # A new head standardises each target with its local mean and spread, so needs two
    # values; the kept head has the base's scaling and masks missing values in the loss.
    needed = 2 if new_head else 1
    counts = np.isfinite(Y).sum(axis=0)
    for name, count in zip(targets, counts, strict=True):
        if count < needed:
            raise SpecsoilError(
                f"{table.source}: target {name!r} has {int(count)} lab values among "
                f"{table.n_samples} samples; fine-tuning "
                f"{'with a new output layer ' if new_head else ''}needs at least {needed}"
            )
    return Y


def _network_input(
    base: SpectralModel, transforms: list[Any], table: SpectraTable
) -> NDArray[np.floating]:
    """Spectra on the base's grid through its fitted transforms (never refitted)."""
    X_net: Any = base.align(table)
    for step in transforms:
        X_net = step.transform(X_net)
    return np.asarray(X_net)


def _preprocessed(base: SpectralModel, table: SpectraTable) -> NDArray[np.float64]:
    """Spectra on the base's grid through its fitted preprocessing, before any network step."""
    preprocessing = [s for _, s in base.pipeline.steps[:-1] if s not in (None, "passthrough")]
    X = _network_input(base, preprocessing, table)
    return np.asarray(X, dtype=np.float64).reshape(table.n_samples, -1)


def _check_neighbours(n_neighbours: object) -> None:
    if (
        isinstance(n_neighbours, bool)
        or not isinstance(n_neighbours, int | np.integer)
        or n_neighbours < 1
    ):
        raise SpecsoilError(f"replay neighbours must be an integer >= 1; got {n_neighbours!r}")


def similar_rows(
    base: SpectralModel,
    local: SpectraTable,
    library: SpectraTable,
    targets: Sequence[str],
    n_neighbours: int = REPLAY_NEIGHBOURS,
) -> NDArray[np.intp]:
    """Rows of ``library`` nearest to the local spectra: each local sample's ``n_neighbours``.

    The distance is memory-based learning's (:meth:`MemoryBasedLearning.kneighbours`):
    Mahalanobis in the library's principal components, their number chosen by the "opc"
    rule on the library's lab values of ``targets``, computed on the spectra after the base
    model's fitted preprocessing. As in RS-LOCAL (Lobsey et al., 2017) only the library
    samples like the local ones are kept to learn from.

    Args:
        base: The fitted model whose grid and preprocessing define the spectra compared.
        local: The local spectra.
        library: The candidate rows; every one needs a lab value of some target.
        targets: Lab values steering the number of principal components.
        n_neighbours: Library rows kept per local sample (fewer if the library is smaller).

    Returns:
        Sorted, distinct row indices into ``library``.

    Raises:
        SpecsoilError: If ``n_neighbours`` is not an integer >= 1.
    """
    _check_neighbours(n_neighbours)
    search = MemoryBasedLearning(k=int(n_neighbours), random_state=0)
    search.fit(_preprocessed(base, library), library.targets(list(targets)))
    nearest = search.kneighbours(_preprocessed(base, local), int(n_neighbours))
    return np.unique(nearest).astype(np.intp)


def _replay_rows(
    base: SpectralModel,
    transforms: list[Any],
    replay: SpectraTable,
    targets: list[str],
    similar_to: SpectraTable | None,
    n_neighbours: int,
) -> tuple[NDArray[np.floating], NDArray[np.float64]]:
    """Network inputs and lab values of the replay rows that hold any value of ``targets``.

    With ``similar_to``, only those rows nearest to its spectra (:func:`similar_rows`).
    """
    missing = [t for t in targets if t not in replay.numeric_columns()]
    if missing:
        raise SpecsoilError(
            f"{replay.source}: replay data lack target column(s) {missing}; "
            f"numeric columns: {replay.numeric_columns()}"
        )
    Y = replay.targets(targets)
    rows = np.flatnonzero(np.isfinite(Y).any(axis=1))
    if rows.size == 0:
        raise SpecsoilError(f"{replay.source}: replay data hold no lab value of {targets}")
    if rows.size < replay.n_samples:
        replay, Y = replay.subset(rows), Y[rows]
    if similar_to is not None:
        rows = similar_rows(base, similar_to, replay, targets, n_neighbours)
        replay, Y = replay.subset(rows), Y[rows]
    return _network_input(base, transforms, replay), Y


def finetune_model(
    base: SpectralModel,
    table: SpectraTable,
    targets: Sequence[str],
    *,
    strategy: FinetuneStrategy = "partial",
    max_epochs: int | None = None,
    lr: float | None = None,
    random_state: int = 0,
    name: str | None = None,
    batchnorm: FinetuneBatchNorm = "frozen",
    replay: SpectraTable | None = None,
    local_share: float = 0.5,
    replay_neighbours: int | None = None,
) -> SpectralModel:
    """Adapt a fitted CNN model to local spectra.

    The local spectra are resampled onto the base model's grid (``base.align``), passed
    through the base's fitted preprocessing unchanged (never refitted on the few local
    samples), and the network is fine-tuned on them. When ``targets`` differ from the base
    model's, the network gets a new output layer, fitted with target scaling from the local
    data.

    With ``replay`` (fine-tuning with rehearsal, the network's analogue of spiking), the
    network trains on the local samples together with the replay samples, typically the
    base's own training data, the local ones repeated to make ``local_share`` of each epoch.
    With ``replay_neighbours`` as well (similarity-weighted replay, as RS-LOCAL), only the
    replay rows nearest to the local spectra are kept (:func:`similar_rows`).

    Args:
        base: A fitted model whose estimator is a CNN (``cnn1d``, ``seed_cnn``, ...).
        table: The local spectra with their lab values (NaN where missing).
        targets: Properties to predict; the base's targets keep its head and target scaling.
        strategy: ``"head"`` (output layer only), ``"partial"`` (the last block too, at a
            tenth of the learning rate) or ``"full"`` (every weight).
        max_epochs: Fine-tuning epochs; None: the base network's ``max_epochs``.
        lr: Learning rate of the head; None: the base network's ``lr``.
        random_state: Seed of the validation split, shuffling and any new head.
        name: Name of the new model; default ``"<base name>-finetuned"``.
        batchnorm: ``"frozen"`` (BatchNorm layers keep the base's running statistics) or
            ``"adapt"`` (unfrozen ones re-estimate them from the local data).
        replay: Spectra with lab values of ``targets`` to rehearse on (rows without any
            are dropped); None: the local samples only.
        local_share: With ``replay``, the share of each epoch made of local samples.
        replay_neighbours: With ``replay``, keep only the ``replay_neighbours`` replay rows
            nearest to each local sample (PCA-Mahalanobis, :func:`similar_rows`; e.g.
            :data:`REPLAY_NEIGHBOURS`); None: every replay row.

    Returns:
        A new model with the base's grid and preprocessing and the fine-tuned network; its
        ``training`` summary records where it came from (``finetuned_from``).

    Raises:
        SpecsoilError: If the base is not a CNN, the strategy, BatchNorm mode or local
            share is invalid, the local or replay spectra do not cover the base's range, a
            target has fewer than 2 lab values, the replay data lack a target, or
            ``replay_neighbours`` is given without ``replay`` or is not an integer >= 1.
    """
    if strategy not in FINETUNE_STRATEGIES:
        raise SpecsoilError(
            f"unknown fine-tuning strategy {strategy!r}; expected one of {FINETUNE_STRATEGIES}"
        )
    if batchnorm not in FINETUNE_BATCHNORM:
        raise SpecsoilError(
            f"unknown BatchNorm mode {batchnorm!r}; expected one of {FINETUNE_BATCHNORM}"
        )
    if replay is not None and not 0.0 < local_share < 1.0:
        raise SpecsoilError(f"local_share must be between 0 and 1 (exclusive); got {local_share}")
    if replay_neighbours is not None and replay is None:
        raise SpecsoilError("replay_neighbours selects replay rows, so it needs replay data")
    if replay_neighbours is not None:
        _check_neighbours(replay_neighbours)
    require_torch("fine-tuning")
    transforms, network, path = _split_pipeline(base)
    targets = list(targets)
    new_head = targets != list(base.targets)
    Y = _check_targets(table, targets, new_head=new_head)
    # The transforms were fitted on the base's data; never refitted on the local samples.
    X_net = _network_input(base, transforms, table)
    replay_X, replay_Y = (
        _replay_rows(
            base,
            transforms,
            replay,
            targets,
            table if replay_neighbours is not None else None,
            REPLAY_NEIGHBOURS if replay_neighbours is None else replay_neighbours,
        )
        if replay is not None
        else (None, None)
    )
    logger.info(
        "fine-tuning %r (%s, trained on %s samples) on %d local samples: strategy %s, %s "
        "head, BatchNorm %s, %s",
        base.name,
        base.recipe,
        base.training.get("n_samples", "?"),
        table.n_samples,
        strategy,
        "new" if new_head else "kept",
        batchnorm,
        "no replay" if replay_Y is None else f"replay of {len(replay_Y)} samples",
    )
    # One target goes in 1-D, like every fit in specsoil, so predict returns the same shape.
    y = Y[:, 0] if Y.shape[1] == 1 else Y
    tuned = network.finetune(
        X_net,
        y,
        strategy=strategy,
        new_head=new_head,
        max_epochs=max_epochs,
        lr=lr,
        random_state=random_state,
        batchnorm=batchnorm,
        replay_X=replay_X,
        replay_y=replay_Y,
        local_share=local_share,
    )
    summary = _training_summary(table, targets, Y)
    summary["finetuned_from"] = {
        "name": base.name,
        "recipe": base.recipe,
        "targets": list(base.targets),
        "source": base.training.get("source"),
        "n_samples": base.training.get("n_samples"),
    }
    summary["finetune"] = {
        "strategy": strategy,
        "new_head": new_head,
        "local_n": table.n_samples,
        "max_epochs": max_epochs,
        "lr": lr,
        "random_state": random_state,
        "batchnorm": batchnorm,
        "replay": None,
    }
    if replay is not None and replay_Y is not None:
        summary["finetune"]["replay"] = {
            "source": replay.source,
            "n_samples": len(replay_Y),
            "local_share": local_share,
            "neighbours_per_local_sample": replay_neighbours,
        }
    return SpectralModel(
        name=name or f"{base.name}-finetuned",
        recipe=base.recipe,
        preprocessing=copy.deepcopy(base.preprocessing),
        params=copy.deepcopy(base.params),
        targets=targets,
        wavelengths=np.array(base.wavelengths, dtype=np.float64),
        pipeline=_replace_network(base.pipeline, path, tuned),
        training=summary,
        # The base's bounds still hold for the targets it shares with the local data.
        clip={t: bounds for t, bounds in base.clip.items() if t in targets},
    )
