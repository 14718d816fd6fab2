"""scikit-learn estimators that train spectral CNNs with PyTorch Lightning.

torch, pytorch_lightning and ``specsoil.nets`` are imported inside the methods that need
them, so importing this module (and building a recipe table that names a CNN) works
without the ``cnn`` extra.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import numbers
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import assert_all_finite, check_array, check_random_state, column_or_1d
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from specsoil._atomic import atomic_write_text
from specsoil._errors import SpecsoilError
from specsoil.train._augment import check_augment
from specsoil.train._data import inner_split, make_loader, network_input
from specsoil.train._quiet import quiet_lightning
from specsoil.train._registry import available_modules, create_net, rebuild_net, require_torch

if TYPE_CHECKING:
    import pytorch_lightning as pl
    from torch import nn

    from specsoil.nets import SpectralCNN

logger = logging.getLogger(__name__)

LR_SCHEDULES: tuple[str, ...] = ("onecycle", "cosine", "plateau", "none")
DEVICES: tuple[str, ...] = ("auto", "cpu", "gpu", "cuda", "mps")
PRECISIONS: tuple[str, ...] = (
    "auto",
    "32-true",
    "32",
    "64-true",
    "64",
    "16-mixed",
    "bf16-mixed",
    "16-true",
    "bf16-true",
)
# Arguments of a network factory that the estimator sets from the data.
_RESERVED_MODULE_PARAMS = ("name", "n_outputs", "input_shape")
# Inference batches can be larger than training ones: no gradients or optimiser state.
_MIN_PREDICT_BATCH = 256
_RUN_FILE = "run.json"
_HISTORY_FILE = "history.json"
_LAST_CHECKPOINT = "last.ckpt"


@dataclass(frozen=True, slots=True)
class _Settings:
    """The estimator's parameters, validated and resolved for one ``fit``."""

    module: str
    module_params: dict[str, Any]
    lr: float
    weight_decay: float
    max_epochs: int
    batch_size: int
    patience: int | None
    val_fraction: float
    lr_schedule: str
    augment: dict[str, float]
    n_ensemble: int
    accelerator: str
    precision: str
    deterministic: bool
    checkpoint_dir: Path | None
    resume: bool
    strategy: str
    devices: int | str | list[int]
    num_nodes: int
    num_threads: int | None
    verbose: bool


def _int_param(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def _optional_int_param(value: object, name: str, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum} or None; got {value!r}")
    return int(value)


def _float_param(value: object, name: str, *, low: float, low_inclusive: bool) -> float:
    ok = (
        not isinstance(value, bool)
        and isinstance(value, numbers.Real)
        and math.isfinite(float(value))
        and (float(value) >= low if low_inclusive else float(value) > low)
    )
    if not ok:
        bound = ">=" if low_inclusive else ">"
        raise ValueError(f"{name} must be a finite number {bound} {low}; got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _bool_param(value: object, name: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _accelerator(device: str) -> str:
    """Lightning's accelerator name for the ``device`` parameter."""
    return {"cuda": "gpu"}.get(device, device)


def _auto_precision(accelerator: str) -> str:
    """Mixed precision on a CUDA GPU (bf16 where supported: no loss scaling), else float32."""
    if accelerator in ("auto", "gpu") and _cuda_available():
        import torch

        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def _inference_device(device: str) -> str:
    """The torch device predictions run on."""
    if device in ("auto", "gpu", "cuda") and _cuda_available():
        return "cuda"
    return "mps" if device == "mps" else "cpu"


@contextlib.contextmanager
def _torch_threads(num_threads: int | None) -> Iterator[None]:
    """Run with ``num_threads`` intra-op threads, then restore the previous count."""
    if num_threads is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def _restore_determinism() -> Iterator[None]:
    """Undo the process-wide ``use_deterministic_algorithms`` switch Lightning flips."""
    import torch

    previous = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=warn_only)


@contextlib.contextmanager
def _file_system_sharing() -> Iterator[None]:
    """Share tensors with spawned DDP workers through named files, then switch back.

    torch's default on Linux passes file descriptors of unlinked shared memory, which fails
    in some containers and VMs ("unable to resize file <filename not specified>", seen in a
    Firecracker VM); the file-system strategy works there too, and only the model and data
    of this fit go through it.
    """
    import torch.multiprocessing as mp

    previous = mp.get_sharing_strategy()  # type: ignore[no-untyped-call]
    mp.set_sharing_strategy("file_system")  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        mp.set_sharing_strategy(previous)  # type: ignore[no-untyped-call]


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
    def _check_params(self) -> _Settings:
        if not isinstance(self.module, str) or not self.module:
            raise ValueError(f"module must be a registered network name; got {self.module!r}")
        modules = available_modules()
        if self.module not in modules:
            raise ValueError(f"unknown module {self.module!r}; available: {sorted(modules)}")
        module_params = self._check_module_params()
        lr = _float_param(self.lr, "lr", low=0.0, low_inclusive=False)
        weight_decay = _float_param(self.weight_decay, "weight_decay", low=0.0, low_inclusive=True)
        max_epochs = _int_param(self.max_epochs, "max_epochs", 1)
        batch_size = _int_param(self.batch_size, "batch_size", 1)
        patience = _optional_int_param(self.patience, "patience", 1)
        val_fraction = self.val_fraction
        if (
            isinstance(val_fraction, bool)
            or not isinstance(val_fraction, numbers.Real)
            or not 0.0 <= float(val_fraction) < 1.0
        ):
            raise ValueError(
                f"val_fraction must be a number in [0, 1) (0: no early stopping); "
                f"got {val_fraction!r}"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"lr_schedule must be one of {list(LR_SCHEDULES)}; got {self.lr_schedule!r}"
            )
        augment = check_augment(self.augment)
        n_ensemble = _int_param(self.n_ensemble, "n_ensemble", 1)
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {list(DEVICES)}; got {self.device!r}")
        accelerator = _accelerator(self.device)
        precision = self._check_precision(accelerator)
        checkpoint_dir = None if self.checkpoint_dir is None else Path(self.checkpoint_dir)
        resume = _bool_param(self.resume, "resume")
        if resume and checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir: the folder of the run to resume")
        from pytorch_lightning.strategies import StrategyRegistry

        strategies = ["auto", *StrategyRegistry.available_strategies()]
        if self.strategy not in strategies:
            raise ValueError(f"strategy must be one of {strategies}; got {self.strategy!r}")
        devices = self._check_devices()
        num_nodes = _int_param(self.num_nodes, "num_nodes", 1)
        return _Settings(
            module=self.module,
            module_params=module_params,
            lr=lr,
            weight_decay=weight_decay,
            max_epochs=max_epochs,
            batch_size=batch_size,
            patience=patience,
            val_fraction=float(val_fraction),
            lr_schedule=self.lr_schedule,
            augment=augment,
            n_ensemble=n_ensemble,
            accelerator=accelerator,
            precision=precision,
            deterministic=_bool_param(self.deterministic, "deterministic"),
            checkpoint_dir=checkpoint_dir,
            resume=resume,
            strategy=self.strategy,
            devices=devices,
            num_nodes=num_nodes,
            num_threads=_optional_int_param(self.num_threads, "num_threads", 1),
            verbose=_bool_param(self.verbose, "verbose"),
        )

    def _check_module_params(self) -> dict[str, Any]:
        if self.module_params is None:
            return {}
        if not isinstance(self.module_params, Mapping) or not all(
            isinstance(key, str) for key in self.module_params
        ):
            raise ValueError(
                "module_params must be None or a dict of network arguments such as "
                f"{{'dropout': 0.2}}; got {self.module_params!r}"
            )
        reserved = sorted(set(self.module_params) & set(_RESERVED_MODULE_PARAMS))
        if reserved:
            raise ValueError(
                f"module_params must not set {reserved}: the estimator sets them from the data"
            )
        return dict(self.module_params)

    def _check_precision(self, accelerator: str) -> str:
        precision = self.precision
        if isinstance(precision, numbers.Integral) and not isinstance(precision, bool):
            precision = {16: "16-mixed", 32: "32-true", 64: "64-true"}.get(int(precision), "")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}; got {self.precision!r}")
        return _auto_precision(accelerator) if precision == "auto" else str(precision)

    def _check_devices(self) -> int | str | list[int]:
        devices = self.devices
        if devices == "auto":
            # Lightning's "auto" takes every GPU and then launches DDP, which re-runs the
            # calling script: never what a fit inside a cross-validation loop wants. DDP is
            # opt-in, by setting strategy and devices.
            return "auto" if self.strategy != "auto" else 1
        if isinstance(devices, numbers.Integral) and not isinstance(devices, bool):
            if int(devices) >= 1:
                return int(devices)
        elif (
            isinstance(devices, Sequence)
            and not isinstance(devices, str)
            and len(devices) > 0
            and all(isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in devices)
        ):
            return [int(d) for d in devices]
        raise ValueError(
            f"devices must be 'auto', an int >= 1 or a list of device indices; got {devices!r}"
        )

    def _base_seed(self, settings: _Settings) -> int:
        """The seed of member 0; member i uses seed + i."""
        if settings.resume and settings.checkpoint_dir is not None and self.random_state is None:
            run_file = settings.checkpoint_dir / _RUN_FILE
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
        self, X_net: NDArray[np.float32], Y: NDArray[Any], *, n_outputs: int, settings: _Settings
    ) -> None:
        seed = self._base_seed(settings)
        if settings.checkpoint_dir is not None:
            self._check_run_file(settings, seed, X_net, n_outputs)
        members: list[SpectralCNN] = []
        histories: list[dict[str, Any]] = []
        validation: list[NDArray[np.intp]] = []
        for i in range(settings.n_ensemble):
            net, history, val_rows = self._fit_member(
                X_net, Y, n_outputs=n_outputs, settings=settings, member=i, seed=seed + i
            )
            members.append(net)
            histories.append(history)
            validation.append(val_rows)
        single = settings.n_ensemble == 1
        self.module_ = members[0] if single else members
        self.history_: dict[str, list[float]] | list[dict[str, list[float]]] = (
            histories[0] if single else histories
        )
        best = [int(h.pop("best_epoch") or len(h["train_loss"])) for h in histories]
        self.best_epoch_: int | list[int] = best[0] if single else best
        self.validation_indices_: NDArray[np.intp] | list[NDArray[np.intp]] = (
            validation[0] if single else validation
        )

    def _check_run_file(
        self, settings: _Settings, seed: int, X_net: NDArray[np.float32], n_outputs: int
    ) -> None:
        """Write the run's identity next to its checkpoints; on resume, check it matches."""
        if settings.checkpoint_dir is None:
            return
        run = {
            "seed": seed,
            "n_samples": int(X_net.shape[0]),
            "input_shape": list(X_net.shape[1:]),
            "n_outputs": n_outputs,
            "module": settings.module,
            "n_ensemble": settings.n_ensemble,
        }
        run_file = settings.checkpoint_dir / _RUN_FILE
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

    def _fit_member(
        self,
        X_net: NDArray[np.float32],
        Y: NDArray[Any],
        *,
        n_outputs: int,
        settings: _Settings,
        member: int,
        seed: int,
    ) -> tuple[SpectralCNN, dict[str, Any], NDArray[np.intp]]:
        import pytorch_lightning as pl
        from pytorch_lightning.utilities.seed import isolate_rng

        from specsoil.train._module import EpochRecorder, SpectralLightningModule, WorkerSetup

        train_rows, val_rows = inner_split(X_net.shape[0], settings.val_fraction, seed)
        validate = val_rows.size > 0
        with contextlib.ExitStack() as stack:
            if settings.checkpoint_dir is None:
                run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="specsoil-")))
            elif settings.n_ensemble > 1:
                run_dir = settings.checkpoint_dir / f"member_{member}"
            else:
                run_dir = settings.checkpoint_dir
            run_dir.mkdir(parents=True, exist_ok=True)
            stack.enter_context(quiet_lightning(settings.verbose))
            stack.enter_context(_torch_threads(settings.num_threads))
            stack.enter_context(_restore_determinism())
            if "spawn" in settings.strategy:
                stack.enter_context(_file_system_sharing())
            stack.enter_context(isolate_rng())
            pl.seed_everything(seed, verbose=False)
            # Built after seeding, so the initial weights follow the seed.
            net = create_net(
                settings.module,
                n_outputs=n_outputs,
                input_shape=X_net.shape[1:],
                params=settings.module_params,
            )
            monitor = "val_loss" if validate else "train_loss"
            lit = SpectralLightningModule(
                net,
                task=self._task,
                lr=settings.lr,
                weight_decay=settings.weight_decay,
                lr_schedule=settings.lr_schedule,  # type: ignore[arg-type]
                plateau_patience=max(1, (settings.patience or 10) // 2),
                augment=settings.augment,
                seed=seed,
                monitor=monitor,
            )
            pin = settings.accelerator in ("auto", "gpu") and _cuda_available()
            train_loader = make_loader(
                X_net[train_rows],
                Y[train_rows],
                batch_size=settings.batch_size,
                shuffle=True,
                seed=seed,
                pin_memory=pin,
            )
            val_loader = (
                make_loader(
                    X_net[val_rows],
                    Y[val_rows],
                    batch_size=max(settings.batch_size, _MIN_PREDICT_BATCH),
                    shuffle=False,
                    seed=seed,
                    pin_memory=pin,
                )
                if validate
                else None
            )
            callbacks = [
                EpochRecorder(run_dir / _HISTORY_FILE, validate=validate),
                WorkerSetup(verbose=settings.verbose),
            ]
            trainer = pl.Trainer(**self._trainer_kwargs(settings, run_dir, callbacks, validate))
            ckpt_path = run_dir / _LAST_CHECKPOINT
            resume_from = str(ckpt_path) if settings.resume and ckpt_path.is_file() else None
            if settings.resume and resume_from is None:
                logger.info("no checkpoint at %s; training from scratch", ckpt_path)
            trainer.fit(lit, train_loader, val_loader, ckpt_path=resume_from)
            history: dict[str, Any] = json.loads(
                (run_dir / _HISTORY_FILE).read_text(encoding="utf-8")
            )
        net = net.cpu().eval()  # the same object as lit.net, best weights loaded
        if not any(math.isfinite(v) for v in history["val_loss"] or history["train_loss"]):
            warnings.warn(
                f"{type(self).__name__}: the loss was never finite; training diverged "
                f"(try a smaller lr than {settings.lr})",
                UserWarning,
                stacklevel=3,
            )
        return net, history, val_rows

    @staticmethod
    def _trainer_kwargs(
        settings: _Settings, run_dir: Path, own_callbacks: list[pl.Callback], validate: bool
    ) -> dict[str, Any]:
        from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
        from pytorch_lightning.loggers import CSVLogger

        callbacks = list(own_callbacks)
        if validate and settings.patience is not None:
            callbacks.append(
                EarlyStopping(monitor="val_loss", mode="min", patience=settings.patience)
            )
        checkpointing = settings.checkpoint_dir is not None
        if checkpointing:
            callbacks.append(
                ModelCheckpoint(
                    dirpath=run_dir,
                    filename="best",
                    monitor="val_loss" if validate else None,
                    mode="min",
                    save_top_k=1 if validate else 0,
                    save_last=True,
                    # After EpochRecorder has seen the epoch, so a resumed history is whole.
                    save_on_train_epoch_end=True,
                    enable_version_counter=False,
                )
            )
        return {
            "accelerator": settings.accelerator,
            "devices": settings.devices,
            "strategy": settings.strategy,
            "num_nodes": settings.num_nodes,
            "precision": settings.precision,
            "max_epochs": settings.max_epochs,
            # None leaves torch's global switch alone; False would switch it off for everyone.
            "deterministic": True if settings.deterministic else None,
            "callbacks": callbacks,
            "logger": CSVLogger(run_dir, name="logs", version="") if checkpointing else False,
            "enable_checkpointing": checkpointing,
            "enable_progress_bar": settings.verbose,
            "enable_model_summary": settings.verbose,
            "default_root_dir": run_dir,
            "num_sanity_val_steps": 0,
            "log_every_n_steps": 1,
        }

    # ------------------------------------------------------------------ inference
    def _members(self) -> list[SpectralCNN]:
        module = self.module_
        return list(module) if isinstance(module, list) else [module]

    def _forward(self, X_net: NDArray[np.float32]) -> NDArray[np.float64]:
        """Mean network output over the ensemble (class probabilities for classifiers)."""
        import torch

        device = torch.device(_inference_device(self.device))
        batch = max(int(self.batch_size), _MIN_PREDICT_BATCH)
        outputs: list[NDArray[np.float64]] = []
        with _torch_threads(self.num_threads), torch.inference_mode():
            for net in self._members():
                net.to(device).eval()
                chunks = []
                for start in range(0, X_net.shape[0], batch):
                    x = torch.from_numpy(X_net[start : start + batch]).to(device)
                    out = net(x).float()
                    if self._task == "classification":
                        out = torch.softmax(out, dim=1)
                    chunks.append(out.cpu())
                outputs.append(torch.cat(chunks).numpy().astype(np.float64))
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
    and averages their predictions.

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
        augment: Training-time augmentation, e.g. ``{"offset": 0.01, "slope": 0.01,
            "multiplicative": 0.02, "noise": 0.002, "shift": 1.0}``: standard deviations in
            the units of X (shift in bands). Needs 2-D or 3-D X.
        n_ensemble: Number of networks trained with different seeds and averaged.
        standardize_targets: Standardise each target before training (recommended: it
            balances targets in different units and keeps the learning rate meaningful).
        device: ``"auto"`` (a CUDA GPU when there is one, else CPU), ``"cpu"``, ``"gpu"``,
            ``"cuda"`` or ``"mps"``.
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
        best_epoch_: The 1-based epoch whose weights were kept (or a list, per member).
        validation_indices_: Rows of the ``fit`` data used for early stopping (or a list).
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
        standardize = _bool_param(self.standardize_targets, "standardize_targets")
        X_net = self._validate_X(X, reset=True)
        _check_augment_input(settings, X_net)
        Y, y_ndim = _check_regression_targets(y, X_net.shape[0])
        if standardize:
            mean = np.nanmean(Y, axis=0)
            scale = np.nanstd(Y, axis=0)
            # A constant (or single-valued) target has no spread to divide by.
            scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        else:
            mean, scale = np.zeros(Y.shape[1]), np.ones(Y.shape[1])
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


def _check_augment_input(settings: _Settings, X_net: NDArray[np.float32]) -> None:
    if settings.augment and X_net.ndim == 4:
        raise ValueError(
            "augment perturbs spectra, so X must be (n_samples, n_bands) or "
            f"(n_samples, n_channels, n_bands); got 4-D X of shape {X_net.shape}"
        )


def _check_regression_targets(
    y: ArrayLike | None, n_samples: int
) -> tuple[NDArray[np.float64], int]:
    """Targets as float64 (n, k) with NaN for missing, and the number of dimensions of y.

    Raises:
        ValueError: If y is missing, infinite, mis-shaped, or a target has no finite value.
    """
    if y is None:
        raise ValueError("CNNRegressor requires y to be passed, but the target y is None")
    Y = check_array(
        y,
        ensure_2d=False,
        allow_nd=True,
        dtype=np.float64,
        ensure_all_finite="allow-nan",
        input_name="y",
    )
    y_ndim = int(Y.ndim)
    if Y.ndim == 1:
        Y = Y.reshape(-1, 1)
    if Y.ndim != 2 or Y.shape[1] == 0:
        raise ValueError(f"y must be (n_samples,) or (n_samples, n_targets); got shape {Y.shape}")
    if Y.shape[0] != n_samples:
        raise ValueError(f"y has {Y.shape[0]} rows but X has {n_samples} samples")
    empty = np.flatnonzero(~np.isfinite(Y).any(axis=0))
    if empty.size:
        raise ValueError(f"target column {int(empty[0])} of y has no finite value to learn from")
    return np.asarray(Y, dtype=np.float64), y_ndim
