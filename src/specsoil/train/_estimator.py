"""scikit-learn estimators that train spectral CNNs with PyTorch Lightning.

The estimators validate data, build networks and loaders, and keep what was learned;
``_engine.train_network`` runs the training of each network. torch, pytorch_lightning and
``specsoil.nets`` are imported inside the methods that need them, so importing this module
(and building a recipe table that names a CNN) works without the ``cnn`` extra. The bodies
of ``CNNRegressor.finetune`` and ``CNNRegressor.fit_stream`` live in ``_finetune`` and
``_stream``, which import torch and are imported when those methods run.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import numbers
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import assert_all_finite, check_random_state, column_or_1d
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from specsoil._atomic import atomic_write_text
from specsoil._errors import SpecsoilError
from specsoil.train._data import inner_split, make_loader, network_input
from specsoil.train._engine import (
    RUN_FILE,
    SELECTION_FILE,
    Settings,
    bool_param,
    check_settings,
    data_device,
    full_float32,
    inference_device,
    pin_memory,
    run_schedule,
    scaled_for_device,
    seeded,
    torch_threads,
    train_network,
)
from specsoil.train._registry import create_net, rebuild_net, require_torch
from specsoil.train._targets import check_regression_targets, target_standardisation

if TYPE_CHECKING:
    from torch import nn

    from specsoil.nets import SpectralCNN

logger = logging.getLogger(__name__)

FINETUNE_STRATEGIES: tuple[str, ...] = ("head", "partial", "full")
FINETUNE_BATCHNORM: tuple[str, ...] = ("frozen", "adapt")
"""``frozen``: every BatchNorm layer keeps the base's running statistics; ``adapt``: those in
unfrozen stages re-estimate them from the fine-tuning batches."""


@dataclass(frozen=True, slots=True)
class _Tuning:
    """How ``finetune`` prepares each member: the base networks and what to train."""

    members: list[SpectralCNN]
    strategy: str
    new_head: bool
    trainable_blocks: int
    block_lr_factor: float
    batchnorm: str = "frozen"
    # Rehearsal data trained on with the local rows (network input, standardised targets).
    replay_X: NDArray[np.float32] | None = None
    replay_Y: NDArray[np.float32] | None = None
    local_share: float = 0.5


# Inference batches can be larger than training ones: no gradients or optimiser state.
_MIN_PREDICT_BATCH = 256


def _to_numpy_state(net: nn.Module) -> dict[str, NDArray[Any]]:
    """A network's weights as numpy arrays (half precision widened: numpy lacks bfloat16)."""
    import torch

    state: dict[str, NDArray[Any]] = {}
    for key, tensor in net.state_dict().items():
        value = tensor.detach().cpu()
        if value.is_floating_point() and value.dtype not in (torch.float32, torch.float64):
            value = value.float()
        state[key] = value.numpy().copy()
    return state


class _CNNBase(BaseEstimator):  # type: ignore[misc]
    """The training engine shared by ``CNNRegressor`` and ``CNNClassifier``."""

    _task: ClassVar[Literal["regression", "classification"]]

    module: str
    module_params: dict[str, Any] | None
    lr: float
    weight_decay: float
    max_epochs: int
    batch_size: int
    patience: int | None
    val_fraction: float
    lr_schedule: str
    # A class default, so models saved before the parameter existed still load and clone.
    refit: bool = False
    augment: dict[str, float] | None
    n_ensemble: int
    device: str
    precision: str | int
    deterministic: bool
    checkpoint_dir: str | os.PathLike[str] | None
    resume: bool
    strategy: str
    devices: int | str | Sequence[int]
    num_nodes: int
    num_threads: int | None
    verbose: bool
    random_state: int | np.random.RandomState | None

    input_shape_: tuple[int, ...]
    _x_ndim: int
    module_: SpectralCNN | list[SpectralCNN]

    # ------------------------------------------------------------------ parameters
    def _check_params(self) -> Settings:
        return check_settings(self.get_params(deep=False))

    def _base_seed(self, settings: Settings) -> int:
        """The seed of member 0; member i uses seed + i."""
        if settings.resume and settings.checkpoint_dir is not None and self.random_state is None:
            run_file = settings.checkpoint_dir / RUN_FILE
            if run_file.is_file():
                # Resuming must reuse the interrupted run's split and streams.
                return int(json.loads(run_file.read_text(encoding="utf-8"))["seed"])
        if isinstance(self.random_state, numbers.Integral) and not isinstance(
            self.random_state, bool
        ):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(0, 2**31 - 1 - 10_000))

    # ------------------------------------------------------------------ input
    def _validate_X(self, X: ArrayLike, *, reset: bool) -> NDArray[np.float32]:
        if not reset and self._x_ndim > 2:
            # Fitted on (N, C, L) or spectrograms: sklearn's check compares X.shape[1] only
            # (channels), so compare the whole sample shape first, with a clearer message.
            shape = tuple(np.asarray(X).shape)
            if len(shape) != self._x_ndim or shape[1:] != self.input_shape_:
                raise ValueError(
                    f"X has per-sample shape {shape[1:]}, but {type(self).__name__} was "
                    f"fitted on {self.input_shape_}"
                )
        X_checked = validate_data(
            self,
            X,
            dtype=np.float32,
            allow_nd=True,
            ensure_min_samples=2 if reset else 1,
            reset=reset,
        )
        if not X_checked.flags.writeable:  # torch.from_numpy warns on read-only memory
            X_checked = X_checked.copy()
        X_net = network_input(X_checked)
        if reset:
            self.input_shape_ = tuple(int(d) for d in X_net.shape[1:])
            self._x_ndim = int(X_checked.ndim)
        elif tuple(X_net.shape[1:]) != self.input_shape_:
            raise ValueError(
                f"X has per-sample shape {tuple(X_checked.shape[1:])}, but "
                f"{type(self).__name__} was fitted on {self.input_shape_} (as network input)"
            )
        return X_net

    # ------------------------------------------------------------------ training
    def _fit_engine(
        self,
        X_net: NDArray[np.float32],
        Y: NDArray[Any],
        *,
        n_outputs: int,
        settings: Settings,
        tuning: _Tuning | None = None,
    ) -> None:
        seed = self._base_seed(settings)
        if settings.checkpoint_dir is not None:
            self._check_run_file(settings, seed, int(X_net.shape[0]), X_net.shape[1:], n_outputs)
        members: list[SpectralCNN] = []
        histories: list[dict[str, Any]] = []
        validation: list[NDArray[np.intp]] = []
        for i in range(settings.n_ensemble):
            net, history, val_rows = self._fit_member(
                X_net,
                Y,
                n_outputs=n_outputs,
                settings=settings,
                member=i,
                seed=seed + i,
                tuning=tuning,
            )
            members.append(net)
            histories.append(history)
            validation.append(val_rows)
        self._set_members(members, histories, validation)

    def _set_members(
        self,
        members: list[SpectralCNN],
        histories: list[dict[str, Any]],
        validation: list[NDArray[np.intp]],
    ) -> None:
        """Store the trained networks and their bookkeeping (a list only for an ensemble)."""
        single = len(members) == 1
        self.module_ = members[0] if single else members
        self.history_: dict[str, list[float]] | list[dict[str, list[float]]] = (
            histories[0] if single else histories
        )
        best = [int(h.pop("best_epoch") or len(h["train_loss"])) for h in histories]
        self.best_epoch_: int | list[int] = best[0] if single else best
        schedules = [h.pop("schedule") for h in histories]
        self.schedule_: dict[str, Any] | list[dict[str, Any]] = (
            schedules[0] if single else schedules
        )
        self.validation_indices_: NDArray[np.intp] | list[NDArray[np.intp]] = (
            validation[0] if single else validation
        )

    def _check_run_file(
        self,
        settings: Settings,
        seed: int,
        n_samples: int | None,
        input_shape: tuple[int, ...],
        n_outputs: int,
    ) -> None:
        """Write the run's identity next to its checkpoints; on resume, check it matches.

        ``n_samples`` is None for a stream of batches, whose size is not known.
        """
        if settings.checkpoint_dir is None:
            return
        run = {
            "seed": seed,
            "n_samples": n_samples,
            "input_shape": [int(d) for d in input_shape],
            "n_outputs": n_outputs,
            "module": settings.module,
            "n_ensemble": settings.n_ensemble,
        }
        run_file = settings.checkpoint_dir / RUN_FILE
        if settings.resume and run_file.is_file():
            previous = json.loads(run_file.read_text(encoding="utf-8"))
            changed = sorted(k for k in run if k != "seed" and previous.get(k) != run[k])
            if changed:
                was = ", ".join(f"{k}={previous.get(k)!r}, now {run[k]!r}" for k in changed)
                raise SpecsoilError(
                    f"{run_file}: cannot resume, the run was started with different "
                    f"{', '.join(changed)} ({was})"
                )

        atomic_write_text(run_file, json.dumps(run))

    @staticmethod
    def _run_dir(settings: Settings, member: int) -> Path | None:
        """Where a member keeps its checkpoints and logs; None: a temporary folder."""
        if settings.checkpoint_dir is None:
            return None
        if settings.n_ensemble > 1:
            return settings.checkpoint_dir / f"member_{member}"
        return settings.checkpoint_dir

    def _fit_member(
        self,
        X_net: NDArray[np.float32],
        Y: NDArray[Any],
        *,
        n_outputs: int,
        settings: Settings,
        member: int,
        seed: int,
        tuning: _Tuning | None = None,
    ) -> tuple[SpectralCNN, dict[str, Any], NDArray[np.intp]]:
        train_rows, val_rows = inner_split(X_net.shape[0], settings.val_fraction, seed)
        if tuning is not None and train_rows.size < 2:
            raise ValueError(
                f"finetune needs at least 2 training rows after holding out "
                f"{val_rows.size} for early stopping; got {train_rows.size} "
                "(give more rows or val_fraction=0)"
            )
        run_dir = self._run_dir(settings, member)
        if settings.refit and tuning is None and val_rows.size > 0:
            train = functools.partial(self._train_rows, X_net, Y, n_outputs=n_outputs, seed=seed)
            net, history = _select_and_refit(train, train_rows, val_rows, settings, run_dir)
        else:
            net, history = self._train_rows(
                X_net,
                Y,
                train_rows,
                val_rows,
                n_outputs=n_outputs,
                settings=settings,
                seed=seed,
                run_dir=run_dir,
                tuning=tuning,
                member=member,
            )
        if tuning is not None:
            net.requires_grad_(True)  # a fine-tuned network looks like any fitted one
        schedule = {"module": settings.module, "n_rows": int(X_net.shape[0]), **history["schedule"]}
        # The record rides along for benchmarks (bench_cnn: the epochs each CV fit chose).
        logger.info("%s", _describe_schedule(schedule), extra={"schedule": schedule})
        # finetune's body runs one frame deeper (in _finetune.finetune); warn at the same place.
        self._warn_if_diverged(history, settings, stacklevel=4 if tuning is None else 5)
        return net, history, val_rows

    def _train_rows(
        self,
        X_net: NDArray[np.float32],
        Y: NDArray[Any],
        train_rows: NDArray[np.intp],
        val_rows: NDArray[np.intp],
        *,
        n_outputs: int,
        settings: Settings,
        seed: int,
        run_dir: Path | None,
        tuning: _Tuning | None = None,
        member: int = 0,
    ) -> tuple[SpectralCNN, dict[str, Any]]:
        """Build a network from ``seed`` and train it on ``train_rows`` (one Lightning run).

        Early stopping watches ``val_rows`` when there are any. The history gains a
        ``"schedule"`` entry: what the run trained with on its device.
        """
        validate = val_rows.size > 0
        frozen: tuple[str, ...] = ()
        backbone_lr_factor = 1.0
        with seeded(seed):
            # Built after seeding, so the initial weights (or a new head) follow the seed.
            if tuning is None:
                net = create_net(
                    settings.module,
                    n_outputs=n_outputs,
                    input_shape=X_net.shape[1:],
                    params=settings.module_params,
                )
            else:
                from specsoil.train._finetune import prepare_for_finetuning

                net, frozen = prepare_for_finetuning(
                    tuning.members[member % len(tuning.members)],
                    strategy=tuning.strategy,
                    n_outputs=n_outputs if tuning.new_head else None,
                    trainable_blocks=tuning.trainable_blocks,
                    batchnorm=tuning.batchnorm,
                )
                backbone_lr_factor = tuning.block_lr_factor
            pin = pin_memory(settings)
            on = data_device(settings)
            X_train, Y_train = X_net[train_rows], Y[train_rows]
            if tuning is not None and tuning.replay_X is not None:
                X_train, Y_train = _with_replay(X_train, Y_train, tuning)
            settings = scaled_for_device(settings, int(X_train.shape[0]))
            train_loader = make_loader(
                X_train,
                Y_train,
                batch_size=settings.batch_size,
                shuffle=True,
                seed=seed,
                pin_memory=pin,
                device=on,
            )
            val_loader = (
                make_loader(
                    X_net[val_rows],
                    Y[val_rows],
                    batch_size=max(settings.batch_size, _MIN_PREDICT_BATCH),
                    shuffle=False,
                    seed=seed,
                    pin_memory=pin,
                    device=on,
                )
                if validate
                else None
            )
            net, history = train_network(
                net,
                train_loader,
                val_loader,
                task=self._task,
                settings=settings,
                seed=seed,
                run_dir=run_dir,
                frozen=frozen,
                backbone_lr_factor=backbone_lr_factor,
            )
        history["schedule"] = run_schedule(settings, history)
        return net, history

    def _warn_if_diverged(
        self, history: Mapping[str, Any], settings: Settings, *, stacklevel: int = 4
    ) -> None:
        if not any(math.isfinite(v) for v in history["val_loss"] or history["train_loss"]):
            warnings.warn(
                f"{type(self).__name__}: the loss was never finite; training diverged "
                f"(try a smaller lr than {settings.lr})",
                UserWarning,
                stacklevel=stacklevel,
            )

    # ------------------------------------------------------------------ inference
    def _members(self) -> list[SpectralCNN]:
        module = self.module_
        return list(module) if isinstance(module, list) else [module]

    def _forward(self, X_net: NDArray[np.float32]) -> NDArray[np.float64]:
        """Mean network output over the ensemble (class probabilities for classifiers)."""
        import torch

        device = torch.device(inference_device(self.device))
        batch = max(int(self.batch_size), _MIN_PREDICT_BATCH)
        outputs: list[NDArray[np.float64]] = []
        # Plain float32 on the module itself (no trainer, no autocast, no TF32), so a model
        # trained in mixed precision on a GPU predicts what the CPU and the ONNX graph do.
        with torch_threads(self.num_threads), torch.inference_mode(), full_float32():
            for net in self._members():
                stored = next(net.parameters())
                home, weights = stored.device, stored.dtype
                dtype = torch.float64 if weights == torch.float64 else torch.float32
                net.to(device=device, dtype=dtype).eval()
                try:
                    chunks = []
                    for start in range(0, X_net.shape[0], batch):
                        x = torch.from_numpy(X_net[start : start + batch])
                        out = net(x.to(device=device, dtype=dtype))
                        if self._task == "classification":
                            out = torch.softmax(out, dim=1)
                        chunks.append(out.double().cpu())
                finally:
                    # The fitted network stays where (and as what) it was kept.
                    net.to(device=home, dtype=weights)
                outputs.append(torch.cat(chunks).numpy())
        return np.asarray(np.mean(outputs, axis=0), dtype=np.float64)

    # ------------------------------------------------------------------ persistence
    def __getstate__(self) -> dict[str, Any]:
        """State without torch objects: weights as numpy arrays plus each network's config.

        ``skops.io`` only loads types it is told to trust; numpy arrays, builtins and this
        class keep a saved pipeline loadable without trusting torch.
        """
        state: dict[str, Any] = dict(super().__getstate__())
        if "module_" in state:
            state["_serialized_members"] = [
                {"config": dict(net.config()), "state_dict": _to_numpy_state(net)}
                for net in self._members()
            ]
            state["_ensemble"] = isinstance(state["module_"], list)
            del state["module_"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild the trained networks from their configs and weights."""
        state = dict(state)
        serialized = state.pop("_serialized_members", None)
        ensemble = bool(state.pop("_ensemble", False))
        super().__setstate__(state)
        if serialized is None:
            return
        require_torch(f"loading a fitted {type(self).__name__}")
        import torch

        members = []
        for spec in serialized:
            net = rebuild_net(spec["config"])
            net.load_state_dict(
                {k: torch.from_numpy(np.array(v)) for k, v in spec["state_dict"].items()}
            )
            members.append(net.eval())
        self.module_ = members if ensemble else members[0]


class CNNRegressor(RegressorMixin, _CNNBase):  # type: ignore[misc]
    """A spectral CNN as a scikit-learn regressor, trained with PyTorch Lightning.

    Spectra X of shape (N, L) are fed to the network as (N, 1, L); multi-channel spectra
    (N, C, L) and spectrograms (N, 1, F, T) are fed as they are. Each target is standardised
    with the mean and standard deviation of its finite values in the data given to ``fit``,
    and the loss is the mean squared error over the target entries that are present, so a
    missing lab value (NaN) neither counts nor is imputed, and one network learns all
    targets at once (multi-task). ``fit`` holds out ``val_fraction`` of its own rows
    (seeded) for early stopping, so an outer test fold is never looked at, and restores the
    weights of the epoch with the lowest validation loss. Optimisation is AdamW with
    decoupled weight decay (Loshchilov & Hutter, 2019) and, by default, a one-cycle
    learning-rate schedule (Smith & Topin, 2019). Optional augmentation (see
    ``SpectralAugmenter``) perturbs each training batch on the fly; ``n_ensemble`` > 1
    trains members with seeds ``random_state + i`` (each with its own validation split)
    and averages their predictions. ``finetune`` adapts a fitted model to new data (a
    small local set) and ``fit_stream`` trains from batches streamed from storage.

    Args:
        module: Name of a registered network (``specsoil.nets.list_models()``).
        module_params: Further arguments of the network factory (e.g. ``{"dropout": 0.2}``);
            ``n_outputs`` and ``input_shape`` are set from the data.
        lr: Peak learning rate.
        weight_decay: AdamW weight decay (not applied to biases and normalisation scales).
        max_epochs: Maximum number of passes over the training rows.
        batch_size: Spectra per optimisation step.
        patience: Epochs without a lower validation loss before stopping; None trains
            ``max_epochs`` epochs (the best epoch's weights are still restored).
        val_fraction: Fraction of the rows given to ``fit`` held out for early stopping, in
            [0, 1); 0 trains on all rows for ``max_epochs`` and keeps the last weights.
        lr_schedule: ``"onecycle"``, ``"cosine"``, ``"plateau"`` or ``"none"``.
        refit: Use the validation rows only to choose the number of epochs (the best
            epoch of a run under the schedule and early stopping), then train a network
            from the same seed on every row for that many epochs, with the schedule laid
            over them (one-cycle compressed), and keep its last weights. Training then
            ends where the learning rate has annealed, on all the data; it costs about
            twice the training. No effect with ``val_fraction=0``.
        augment: Training-time augmentation, e.g. ``{"offset": 0.01, "slope": 0.01,
            "multiplicative": 0.02, "noise": 0.002, "shift": 1.0}``: standard deviations in
            the units of X (shift in bands). Needs 2-D or 3-D X.
        n_ensemble: Number of networks trained with different seeds and averaged.
        standardize_targets: Standardise each target before training (recommended: it
            balances targets in different units and keeps the learning rate meaningful).
        device: ``"auto"`` (a CUDA GPU when there is one, else CPU), ``"cpu"``, ``"gpu"``,
            ``"cuda"`` or ``"mps"``. Training on one CUDA GPU keeps the data on the GPU
            and multiplies the batch by the largest power of two up to 32 that leaves 16
            steps per epoch, and the learning rate by its square root (``schedule_``
            records both); CPU training uses ``batch_size`` and ``lr`` as given.
            Predictions run in full float32 without autocast (no TF32) on any device,
            whatever ``precision`` trained, so they do not depend on the device.
        precision: ``"auto"`` (``"bf16-mixed"``, or ``"16-mixed"`` where bf16 is not
            supported, on a GPU; ``"32-true"`` on CPU) or a Lightning precision string.
        deterministic: Ask torch for deterministic algorithms (slower on GPU). Seeds alone
            already make CPU runs repeatable.
        checkpoint_dir: Folder for ``last.ckpt``, ``best.ckpt``, ``history.json`` and a CSV
            log (one ``member_i`` subfolder per ensemble member); None keeps nothing.
        resume: Continue from ``checkpoint_dir``'s ``last.ckpt`` when there is one (same
            data and settings; with ``random_state=None`` the run's stored seed is reused).
        strategy: Lightning strategy: ``"auto"``, or ``"ddp"``/``"ddp_spawn"`` for
            data-parallel training over ``devices`` per node and ``num_nodes`` nodes.
        devices: Devices per node: ``"auto"`` (1 unless a strategy is set), a count or a
            list of GPU indices.
        num_nodes: Number of machines for DDP.
        num_threads: Torch intra-op CPU threads during fit and predict; None leaves torch's
            default (all cores, or ``OMP_NUM_THREADS``). More is not always faster: on a
            2-core machine, 2 threads trained a small CNN slower than 1 (issue 3), so
            measure before raising it.
        verbose: Show Lightning's progress bar, model summary and messages.
        random_state: Seed of the initial weights, shuffling, validation split and
            augmentation; None draws one.

    Attributes:
        module_: The trained network (``specsoil.nets.SpectralCNN``) on CPU, or a list of
            them when ``n_ensemble`` > 1.
        history_: ``{"epoch", "train_loss", "val_loss"}`` lists, one entry per epoch (losses
            on standardised targets; ``val_loss`` is empty without validation), or a list
            of such dicts for an ensemble.
        best_epoch_: The 1-based epoch whose weights were kept (or a list, per member);
            with ``refit``, the number of epochs chosen on the validation rows, which is
            also the length of the refit on all rows.
        schedule_: What training used, per member (a list for an ensemble):
            ``lr_schedule``, ``schedule_epochs`` (the length the schedule was laid over),
            ``epochs_run``, ``batch_size`` and peak ``lr`` (both as scaled on a GPU, see
            ``device``) and ``refit``; with ``refit`` also ``selected_epochs`` and
            ``selection_epochs_run`` (the length of the selection run).
        validation_indices_: Rows of the ``fit`` data used for early stopping (or a list);
            with ``refit`` they are used to choose the epochs and then trained on too.
        target_mean_: Per-target mean used for standardisation, shape (n_targets,).
        target_scale_: Per-target standard deviation used, shape (n_targets,).
        input_shape_: Shape of one network input, e.g. (1, L).
        n_features_in_: ``X.shape[1]`` seen in ``fit`` (bands for 2-D X).
    """

    _task = "regression"
    target_mean_: NDArray[np.float64]
    target_scale_: NDArray[np.float64]
    _y_ndim: int

    def __init__(
        self,
        module: str = "cnn1d",
        *,
        module_params: dict[str, Any] | None = None,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        max_epochs: int = 100,
        batch_size: int = 32,
        patience: int | None = 10,
        val_fraction: float = 0.15,
        lr_schedule: str = "onecycle",
        refit: bool = False,
        augment: dict[str, float] | None = None,
        n_ensemble: int = 1,
        standardize_targets: bool = True,
        device: str = "auto",
        precision: str | int = "auto",
        deterministic: bool = False,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        resume: bool = False,
        strategy: str = "auto",
        devices: int | str | Sequence[int] = "auto",
        num_nodes: int = 1,
        num_threads: int | None = None,
        verbose: bool = False,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.module = module
        self.module_params = module_params
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.val_fraction = val_fraction
        self.lr_schedule = lr_schedule
        self.refit = refit
        self.augment = augment
        self.n_ensemble = n_ensemble
        self.standardize_targets = standardize_targets
        self.device = device
        self.precision = precision
        self.deterministic = deterministic
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.strategy = strategy
        self.devices = devices
        self.num_nodes = num_nodes
        self.num_threads = num_threads
        self.verbose = verbose
        self.random_state = random_state

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Train the network(s).

        Args:
            X: Spectra (n_samples, n_bands), multi-channel spectra (n_samples, C, n_bands)
                or spectrograms (n_samples, 1, F, T).
            y: Targets, shape (n_samples,) or (n_samples, n_targets); NaN marks a missing
                value.

        Returns:
            The fitted estimator.

        Raises:
            ValueError: If a parameter, X or y is invalid.
            SpecsoilError: If PyTorch is not installed or a resumed run does not match.
        """
        require_torch(type(self).__name__)
        settings = self._check_params()
        standardize = bool_param(self.standardize_targets, "standardize_targets")
        X_net = self._validate_X(X, reset=True)
        _check_augment_input(settings, X_net)
        Y, y_ndim = check_regression_targets(y, X_net.shape[0])
        mean, scale = target_standardisation(Y, standardize)
        self.target_mean_ = mean
        self.target_scale_ = scale
        self._y_ndim = y_ndim
        Y_std = ((Y - mean) / scale).astype(np.float32)  # NaN stays NaN: masked in the loss
        self._fit_engine(X_net, Y_std, n_outputs=Y.shape[1], settings=settings)
        return self

    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        """Predict every target, in the units of ``y``.

        Args:
            X: Inputs shaped like those given to ``fit``.

        Returns:
            Predictions, shape (n_samples,) if fitted on 1-D y, else (n_samples, n_targets).
        """
        check_is_fitted(self)
        X_net = self._validate_X(X, reset=False)
        pred = self._forward(X_net) * self.target_scale_ + self.target_mean_
        return pred[:, 0] if self._y_ndim == 1 else pred

    def finetune(
        self,
        X: ArrayLike,
        y: ArrayLike,
        *,
        strategy: str = "partial",
        new_head: bool = False,
        max_epochs: int | None = None,
        lr: float | None = None,
        trainable_blocks: int = 1,
        block_lr_factor: float = 0.1,
        val_fraction: float | None = None,
        random_state: int | None = None,
        batchnorm: str = "frozen",
        replay_X: ArrayLike | None = None,
        replay_y: ArrayLike | None = None,
        local_share: float = 0.5,
    ) -> CNNRegressor:
        """Fine-tune a copy of this fitted model on new data (e.g. a small local set).

        The copy keeps this model's input shape (so the same preprocessing and wavelength
        grid must produce X) and, unless a new head is fitted, its target standardisation.
        Every ensemble member is fine-tuned from its own weights. ``self`` is not changed.

        Frozen stages really stay fixed: their parameters get no gradient and they run in
        eval mode, so BatchNorm running statistics do not drift and dropout is off there.
        With ``batchnorm="frozen"`` (the default) every BatchNorm layer keeps the base's
        running statistics, also in unfrozen stages, whose BatchNorm scale and shift still
        train: statistics re-estimated from a few local spectra drift to them and shift the
        features under the head (bench_transfer, geeves cluster 4, partial, 60 epochs at
        3e-4 on 20 samples: clay RMSE 20.6 with ``"adapt"``, 9.4 frozen, 9.6 before).

        Replay (fine-tuning with rehearsal, the network's analogue of spiking a spectral
        library): with ``replay_X``/``replay_y``, e.g. the base's own training data, the
        network trains on the local rows together with the replay rows, the local rows
        repeated so that they make about ``local_share`` of every epoch. The old data keep
        the features from forgetting what they learned; the repetition makes the few local
        samples count. Early stopping (if any) watches held-out local rows only.

        Small sets: with ``val_fraction=None`` the base's fraction is used only if it holds
        out at least 5 rows; otherwise every row trains for ``max_epochs`` epochs and the
        last weights are kept (early stopping on a handful of spectra is noise). A
        ``batch_size`` larger than the training rows gives one full batch per epoch. At
        least 2 training rows are needed.

        Args:
            X: Inputs with the per-sample shape the model was fitted on.
            y: Targets, shape (n,) or (n, k); NaN marks a missing value.
            strategy: ``"head"`` (train only the output layer), ``"partial"`` (also the
                last ``trainable_blocks`` stages, at ``lr * block_lr_factor``) or
                ``"full"`` (everything; the backbone at ``lr * block_lr_factor``).
            new_head: Put a freshly initialised output layer on the networks and
                standardise targets from ``y``; forced when ``y`` has a different number
                of targets than the base model.
            max_epochs: Epochs of fine-tuning; None: the base's ``max_epochs``.
            lr: Learning rate of the head; None: the base's ``lr``.
            trainable_blocks: ``"partial"``: how many of the last stages holding
                parameters are unfrozen (more than there are unfreezes all).
            block_lr_factor: Learning rate of unfrozen stages relative to ``lr``.
            val_fraction: Rows held out for early stopping; None: the base's (see above);
                0 trains ``max_epochs`` epochs without early stopping.
            random_state: Seed of the new head, shuffling and split; None: the base's.
            batchnorm: ``"frozen"`` (every BatchNorm layer keeps the base's running
                statistics) or ``"adapt"`` (those in unfrozen stages update from the
                fine-tuning batches).
            replay_X: Rehearsal inputs with the same per-sample shape as ``X``; None: no
                replay.
            replay_y: Their targets, with the same number of targets as ``y`` (NaN marks a
                missing value); given exactly when ``replay_X`` is.
            local_share: With replay, the share of each epoch's rows that are local, in
                (0, 1); reached by repeating every local training row the same whole
                number of times (at least once), so it is approximate.

        Returns:
            A new fitted ``CNNRegressor`` whose parameters record the fine-tuning run
            (``max_epochs``, ``lr``, ``val_fraction``, ``random_state``; no checkpoints).

        Raises:
            ValueError: If an argument, X or y is invalid.
            SpecsoilError: If PyTorch is not installed.
        """
        check_is_fitted(self)
        require_torch(f"{type(self).__name__}.finetune")
        from specsoil.train._finetune import finetune

        return finetune(
            self,
            X,
            y,
            strategy=strategy,
            new_head=new_head,
            max_epochs=max_epochs,
            lr=lr,
            trainable_blocks=trainable_blocks,
            block_lr_factor=block_lr_factor,
            val_fraction=val_fraction,
            random_state=random_state,
            batchnorm=batchnorm,
            replay_X=replay_X,
            replay_y=replay_y,
            local_share=local_share,
        )

    def fit_stream(
        self,
        train_batches: Callable[[int], Iterable[tuple[NDArray[np.float32], NDArray[np.floating]]]],
        *,
        input_shape: tuple[int, ...],
        target_mean: NDArray[np.float64],
        target_scale: NDArray[np.float64],
        val_batches: (
            Callable[[], Iterable[tuple[NDArray[np.float32], NDArray[np.floating]]]] | None
        ) = None,
    ) -> Self:
        """Train on batches streamed from storage, e.g. Parquet row groups larger than memory.

        ``train_batches(epoch)`` is called once per epoch (0-based, in order; a resumed run
        starts at the epoch it stopped at) and its batches are used as they arrive: only
        the batch in flight, the one prefetched and the model are held in memory. The
        caller shuffles. Early stopping, checkpoints, resuming, augmentation, ensembles
        and the history work as in ``fit``; ``val_batches()`` is called once per
        validation. Training batches of one sample are skipped (BatchNorm cannot normalise
        them). With ``"onecycle"`` or ``"cosine"`` the schedule steps once per epoch over
        ``max_epochs`` steps, because the number of batches per epoch is not known.

        The fitted model is like one fitted on 2-D y: for ``input_shape`` (1, L) it
        predicts spectra X (n, L), for (C, L) with C > 1 X (n, C, L), and for (1, F, T)
        spectrograms (n, 1, F, T). ``validation_indices_`` is empty (no rows are known).

        Args:
            train_batches: ``train_batches(epoch)`` yields ``(X_net, Y)``: float32 network
                input (B, *input_shape) and raw targets (B, k) with NaN for missing.
            input_shape: Per-sample network input shape, (C, L) or (1, F, T).
            target_mean: Per-target mean used to standardise Y, shape (k,).
            target_scale: Per-target scale (> 0) used to standardise Y, shape (k,).
            val_batches: ``val_batches()`` yields early-stopping batches like
                ``train_batches``; None trains ``max_epochs`` epochs and keeps the last.

        Returns:
            The fitted estimator.

        Raises:
            ValueError: If a parameter, a shape or a batch is invalid, or the parameters
                ask for DDP (several processes cannot share one stream).
            SpecsoilError: If PyTorch is not installed or a resumed run does not match.
        """
        require_torch(f"{type(self).__name__}.fit_stream")
        from specsoil.train._stream import fit_stream

        fit_stream(
            self,
            train_batches,
            input_shape=input_shape,
            target_mean=target_mean,
            target_scale=target_scale,
            val_batches=val_batches,
        )
        return self

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.input_tags.three_d_array = True
        return tags


class CNNClassifier(ClassifierMixin, _CNNBase):  # type: ignore[misc]
    """A spectral (or image) CNN as a scikit-learn classifier, on the same training engine.

    It shares everything with ``CNNRegressor`` (input shapes, early stopping, schedules,
    augmentation, ensembles, checkpoints, DDP, persistence) except the loss, which is
    cross-entropy over the classes, and the outputs, which are class probabilities averaged
    over the ensemble. Its main use is validating the 2-D path on an image task with a
    known answer (e.g. scikit-learn's 8 x 8 digits as (N, 1, 8, 8)).

    Args:
        module: Name of a registered network (``specsoil.nets.list_models()``).
        module_params: Further arguments of the network factory.
        lr: Peak learning rate.
        weight_decay: AdamW weight decay.
        max_epochs: Maximum number of epochs.
        batch_size: Samples per optimisation step.
        patience: Early-stopping patience in epochs, or None.
        val_fraction: Fraction of the ``fit`` rows held out for early stopping, in [0, 1).
        lr_schedule: ``"onecycle"``, ``"cosine"``, ``"plateau"`` or ``"none"``.
        refit: Choose the number of epochs on the validation rows, then retrain on all
            rows for that many epochs, as for ``CNNRegressor``.
        augment: Training-time augmentation (spectra only), as for ``CNNRegressor``.
        n_ensemble: Number of networks averaged.
        device: ``"auto"``, ``"cpu"``, ``"gpu"``, ``"cuda"`` or ``"mps"``.
        precision: ``"auto"`` or a Lightning precision string.
        deterministic: Ask torch for deterministic algorithms.
        checkpoint_dir: Folder for checkpoints and logs, or None.
        resume: Continue from ``checkpoint_dir``'s last checkpoint.
        strategy: Lightning strategy (``"ddp"``, ``"ddp_spawn"`` for data parallelism).
        devices: Devices per node.
        num_nodes: Number of machines for DDP.
        num_threads: Torch CPU threads; None leaves torch's default.
        verbose: Show Lightning's progress bar and messages.
        random_state: Seed of everything random in training; None draws one.

    Attributes:
        classes_: The class labels, sorted.
        module_: The trained network, or a list for an ensemble.
        history_: Per-epoch losses (cross-entropy), or a list per member.
        best_epoch_: The 1-based epoch whose weights were kept (or a list).
        schedule_: What training used (a list for an ensemble), as for ``CNNRegressor``.
        validation_indices_: Rows of the ``fit`` data used for early stopping (or a list).
        input_shape_: Shape of one network input.
        n_features_in_: ``X.shape[1]`` seen in ``fit``.
    """

    _task = "classification"

    def __init__(
        self,
        module: str = "cnn1d",
        *,
        module_params: dict[str, Any] | None = None,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        max_epochs: int = 100,
        batch_size: int = 32,
        patience: int | None = 10,
        val_fraction: float = 0.15,
        lr_schedule: str = "onecycle",
        refit: bool = False,
        augment: dict[str, float] | None = None,
        n_ensemble: int = 1,
        device: str = "auto",
        precision: str | int = "auto",
        deterministic: bool = False,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        resume: bool = False,
        strategy: str = "auto",
        devices: int | str | Sequence[int] = "auto",
        num_nodes: int = 1,
        num_threads: int | None = None,
        verbose: bool = False,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.module = module
        self.module_params = module_params
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.patience = patience
        self.val_fraction = val_fraction
        self.lr_schedule = lr_schedule
        self.refit = refit
        self.augment = augment
        self.n_ensemble = n_ensemble
        self.device = device
        self.precision = precision
        self.deterministic = deterministic
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.strategy = strategy
        self.devices = devices
        self.num_nodes = num_nodes
        self.num_threads = num_threads
        self.verbose = verbose
        self.random_state = random_state

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Train the network(s) on class labels.

        Args:
            X: Inputs (n_samples, n_bands), (n_samples, C, n_bands) or (n_samples, 1, F, T).
            y: Class labels, shape (n_samples,).

        Returns:
            The fitted estimator.

        Raises:
            ValueError: If a parameter, X or y is invalid.
            SpecsoilError: If PyTorch is not installed or a resumed run does not match.
        """
        require_torch(type(self).__name__)
        settings = self._check_params()
        X_net = self._validate_X(X, reset=True)
        _check_augment_input(settings, X_net)
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        labels = column_or_1d(y, warn=True)
        if labels.dtype.kind in "fc":  # reject NaN/inf before sklearn casts labels to int
            assert_all_finite(labels, input_name="y")
        check_classification_targets(labels)
        if labels.shape[0] != X_net.shape[0]:
            raise ValueError(f"y has {labels.shape[0]} rows but X has {X_net.shape[0]} samples")
        encoder = LabelEncoder().fit(labels)
        self.classes_ = encoder.classes_
        codes = encoder.transform(labels).astype(np.int64)
        self._fit_engine(X_net, codes, n_outputs=len(self.classes_), settings=settings)
        return self

    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """Class probabilities (softmax, averaged over the ensemble).

        Args:
            X: Inputs shaped like those given to ``fit``.

        Returns:
            Probabilities, shape (n_samples, n_classes), columns in ``classes_`` order.
        """
        check_is_fitted(self)
        return self._forward(self._validate_X(X, reset=False))

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """The most probable class of each sample.

        Args:
            X: Inputs shaped like those given to ``fit``.

        Returns:
            Labels, shape (n_samples,).
        """
        proba = self.predict_proba(X)
        labels: NDArray[Any] = self.classes_[np.argmax(proba, axis=1)]
        return labels

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags


def _select_and_refit(
    train: Callable[..., tuple[SpectralCNN, dict[str, Any]]],
    train_rows: NDArray[np.intp],
    val_rows: NDArray[np.intp],
    settings: Settings,
    run_dir: Path | None,
) -> tuple[SpectralCNN, dict[str, Any]]:
    """Choose the number of epochs on the validation rows, then train on every row.

    The selection run trains on ``train_rows`` under the full schedule and early
    stopping; its best epoch E becomes the length of the refit, which trains a network
    built from the same seed on all rows for E epochs with the schedule laid over those E
    epochs (one-cycle compressed), and keeps the last weights: the learning rate has
    annealed when training ends. With checkpoints, the runs keep theirs in ``select/``
    and ``refit/``; ``selection.json`` marks a finished selection, so a resumed fit goes
    straight on with the refit.

    Args:
        train: ``train(rows, val_rows, settings=..., run_dir=...)`` trains one network
            (``_CNNBase._train_rows`` with the data, outputs and seed bound).
        train_rows: Rows of the selection run.
        val_rows: Its validation rows.
        settings: The fit's settings.
        run_dir: The member's checkpoint folder, or None.
    """
    selection_file = None if run_dir is None else run_dir / SELECTION_FILE
    if settings.resume and selection_file is not None and selection_file.is_file():
        selection = json.loads(selection_file.read_text(encoding="utf-8"))
    else:
        select_dir = None if run_dir is None else run_dir / "select"
        _, selection = train(train_rows, val_rows, settings=settings, run_dir=select_dir)
        if selection_file is not None:
            atomic_write_text(selection_file, json.dumps(selection))
    epochs = int(selection["best_epoch"] or len(selection["train_loss"]))
    all_rows = np.sort(np.concatenate([train_rows, val_rows]))
    refit_settings = dataclasses.replace(settings, max_epochs=epochs, patience=None)
    refit_dir = None if run_dir is None else run_dir / "refit"
    net, refit = train(all_rows, all_rows[:0], settings=refit_settings, run_dir=refit_dir)
    schedule = {**selection["schedule"], **refit["schedule"], "refit": True}
    schedule["selected_epochs"] = epochs
    schedule["selection_epochs_run"] = len(selection["train_loss"])
    history = {**selection, "refit_train_loss": refit["train_loss"], "schedule": schedule}
    return net, history


def _with_replay(
    X_local: NDArray[np.float32], Y_local: NDArray[Any], tuning: _Tuning
) -> tuple[NDArray[np.float32], NDArray[Any]]:
    """Local training rows repeated to about ``local_share`` of an epoch, then replay rows.

    The loader shuffles them together.
    """
    replay_X, replay_Y = tuning.replay_X, tuning.replay_Y
    if replay_X is None or replay_Y is None:
        return X_local, Y_local
    wanted = tuning.local_share / (1.0 - tuning.local_share) * replay_X.shape[0]
    # Whole repeats keep every local row equally weighted.
    copies = max(1, round(wanted / max(X_local.shape[0], 1)))
    X = np.concatenate([*([X_local] * copies), replay_X])
    Y = np.concatenate([*([Y_local] * copies), replay_Y])
    return X, Y


def _describe_schedule(schedule: Mapping[str, Any]) -> str:
    """One line on how a network was trained, for the log."""
    run = (
        f"{schedule['module']}: {schedule['epochs_run']} epochs, {schedule['lr_schedule']} "
        f"schedule over {schedule['schedule_epochs']}, batch {schedule['batch_size']}, "
        f"peak lr {schedule['lr']:g}"
    )
    if not schedule["refit"]:
        return run
    return (
        f"{run}, on all {schedule['n_rows']} rows; the {schedule['selected_epochs']} epochs "
        f"were chosen on the validation rows (selection run: "
        f"{schedule['selection_epochs_run']} epochs)"
    )


def _check_augment_input(settings: Settings, X_net: NDArray[np.float32]) -> None:
    if settings.augment and X_net.ndim == 4:
        raise ValueError(
            "augment perturbs spectra, so X must be (n_samples, n_bands) or "
            f"(n_samples, n_channels, n_bands); got 4-D X of shape {X_net.shape}"
        )
