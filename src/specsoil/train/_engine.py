"""The training loop behind the CNN estimators: settings, Lightning trainer and one network's fit.

``check_settings`` validates an estimator's parameters once per fit; ``train_network``
trains one built network on a training loader (and optionally an early-stopping loader)
and returns it with its per-epoch history. The estimators decide what the network and the
loaders are (a fresh fit, a fine-tuning run or a stream of batches); everything about how
Lightning runs is here.

torch and pytorch_lightning are imported inside the functions that need them, so importing
this module stays torch-free.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import numbers
import pickle
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from specsoil._errors import SpecsoilError
from specsoil.train._augment import check_augment
from specsoil.train._quiet import quiet_lightning
from specsoil.train._registry import available_modules

if TYPE_CHECKING:
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader

    from specsoil.nets import SpectralCNN

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
RESERVED_MODULE_PARAMS = ("name", "n_outputs", "input_shape")
RUN_FILE = "run.json"
HISTORY_FILE = "history.json"
# Written when the epoch-selection run of a ``refit`` fit has finished.
SELECTION_FILE = "selection.json"
LAST_CHECKPOINT = "last.ckpt"
BEST_CHECKPOINT = "best.ckpt"

Task = Literal["regression", "classification"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Settings:
    """An estimator's parameters, validated and resolved for one ``fit``."""

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
    refit: bool = False

    @property
    def single_process(self) -> bool:
        """Whether training runs in this process on one device (no DDP)."""
        one_device = self.devices == 1 or (
            isinstance(self.devices, list) and len(self.devices) == 1
        )
        return self.strategy == "auto" and one_device and self.num_nodes == 1


# ---------------------------------------------------------------------- parameters
def int_param(value: object, name: str, minimum: int) -> int:
    """``value`` as an int >= ``minimum`` (bools rejected).

    Raises:
        ValueError: If it is not.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def optional_int_param(value: object, name: str, minimum: int) -> int | None:
    """Like :func:`int_param`, with None allowed."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum} or None; got {value!r}")
    return int(value)


def float_param(value: object, name: str, *, low: float, low_inclusive: bool) -> float:
    """``value`` as a finite float above ``low`` (or at it when ``low_inclusive``).

    Raises:
        ValueError: If it is not.
    """
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


def bool_param(value: object, name: str) -> bool:
    """``value`` as a bool (numpy bools accepted).

    Raises:
        ValueError: If it is not a bool.
    """
    import numpy as np

    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def val_fraction_param(value: object) -> float:
    """``value`` as a validation fraction in [0, 1).

    Raises:
        ValueError: If it is not.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 <= float(value) < 1.0
    ):
        raise ValueError(
            f"val_fraction must be a number in [0, 1) (0: no early stopping); got {value!r}"
        )
    return float(value)


def check_settings(params: Mapping[str, Any]) -> Settings:
    """Validate an estimator's parameters (``get_params(deep=False)``) and resolve them.

    Args:
        params: The estimator's constructor arguments by name.

    Returns:
        The resolved settings of one fit.

    Raises:
        ValueError: If a parameter is invalid; the message names it and what was expected.
    """
    module = params["module"]
    if not isinstance(module, str) or not module:
        raise ValueError(f"module must be a registered network name; got {module!r}")
    modules = available_modules()
    if module not in modules:
        raise ValueError(f"unknown module {module!r}; available: {sorted(modules)}")
    module_params = _check_module_params(params["module_params"])
    lr = float_param(params["lr"], "lr", low=0.0, low_inclusive=False)
    weight_decay = float_param(params["weight_decay"], "weight_decay", low=0.0, low_inclusive=True)
    max_epochs = int_param(params["max_epochs"], "max_epochs", 1)
    batch_size = int_param(params["batch_size"], "batch_size", 1)
    patience = optional_int_param(params["patience"], "patience", 1)
    val_fraction = val_fraction_param(params["val_fraction"])
    lr_schedule = params["lr_schedule"]
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {list(LR_SCHEDULES)}; got {lr_schedule!r}")
    augment = check_augment(params["augment"])
    n_ensemble = int_param(params["n_ensemble"], "n_ensemble", 1)
    device = params["device"]
    if device not in DEVICES:
        raise ValueError(f"device must be one of {list(DEVICES)}; got {device!r}")
    accelerator = _accelerator(device)
    precision = _check_precision(params["precision"], accelerator)
    checkpoint_dir = None if params["checkpoint_dir"] is None else Path(params["checkpoint_dir"])
    resume = bool_param(params["resume"], "resume")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir: the folder of the run to resume")
    from pytorch_lightning.strategies import StrategyRegistry

    strategy = params["strategy"]
    strategies = ["auto", *StrategyRegistry.available_strategies()]
    if strategy not in strategies:
        raise ValueError(f"strategy must be one of {strategies}; got {strategy!r}")
    devices = _check_devices(params["devices"], strategy)
    num_nodes = int_param(params["num_nodes"], "num_nodes", 1)
    return Settings(
        module=module,
        module_params=module_params,
        lr=lr,
        weight_decay=weight_decay,
        max_epochs=max_epochs,
        batch_size=batch_size,
        patience=patience,
        val_fraction=val_fraction,
        lr_schedule=lr_schedule,
        augment=augment,
        n_ensemble=n_ensemble,
        accelerator=accelerator,
        precision=precision,
        deterministic=bool_param(params["deterministic"], "deterministic"),
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        strategy=strategy,
        devices=devices,
        num_nodes=num_nodes,
        num_threads=optional_int_param(params["num_threads"], "num_threads", 1),
        verbose=bool_param(params["verbose"], "verbose"),
        # Models saved before ``refit`` existed have no such parameter.
        refit=bool_param(params.get("refit", False), "refit"),
    )


def _check_module_params(module_params: object) -> dict[str, Any]:
    if module_params is None:
        return {}
    if not isinstance(module_params, Mapping) or not all(
        isinstance(key, str) for key in module_params
    ):
        raise ValueError(
            "module_params must be None or a dict of network arguments such as "
            f"{{'dropout': 0.2}}; got {module_params!r}"
        )
    reserved = sorted(set(module_params) & set(RESERVED_MODULE_PARAMS))
    if reserved:
        raise ValueError(
            f"module_params must not set {reserved}: the estimator sets them from the data"
        )
    return dict(module_params)


def _check_precision(value: object, accelerator: str) -> str:
    precision = value
    if isinstance(precision, numbers.Integral) and not isinstance(precision, bool):
        precision = {16: "16-mixed", 32: "32-true", 64: "64-true"}.get(int(precision), "")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}; got {value!r}")
    return _auto_precision(accelerator) if precision == "auto" else str(precision)


def _check_devices(devices: object, strategy: str) -> int | str | list[int]:
    if devices == "auto":
        # Lightning's "auto" takes every GPU and then launches DDP, which re-runs the
        # calling script: never what a fit inside a cross-validation loop wants. DDP is
        # opt-in, by setting strategy and devices.
        return "auto" if strategy != "auto" else 1
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


# ---------------------------------------------------------------------- devices
def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU."""
    import torch

    return bool(torch.cuda.is_available())


def _accelerator(device: str) -> str:
    """Lightning's accelerator name for the ``device`` parameter."""
    return {"cuda": "gpu"}.get(device, device)


def _auto_precision(accelerator: str) -> str:
    """Mixed precision on a CUDA GPU (bf16 where supported: no loss scaling), else float32."""
    if accelerator in ("auto", "gpu") and cuda_available():
        import torch

        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def inference_device(device: str) -> str:
    """The torch device predictions run on, for the estimator's ``device`` parameter."""
    if device in ("auto", "gpu", "cuda") and cuda_available():
        return "cuda"
    return "mps" if device == "mps" else "cpu"


def pin_memory(settings: Settings) -> bool:
    """Whether loaders should page-lock batches (training on a CUDA GPU)."""
    return settings.accelerator in ("auto", "gpu") and cuda_available()


def data_device(settings: Settings) -> str | None:
    """Where the training arrays live: ``"cuda"`` when one process trains on a CUDA GPU.

    Copying every batch from host memory costs more than a small network's step on a
    GPU; the arrays of a fit are copied once instead. None: they stay in host memory
    (CPU training, and DDP, whose workers get their own copies).
    """
    if not (pin_memory(settings) and settings.single_process):
        return None
    # devices=[i] trains on GPU i; devices=1 on Lightning's first GPU.
    return f"cuda:{settings.devices[0]}" if isinstance(settings.devices, list) else "cuda"


# Batch scaling on a GPU: a batch of 32 spectra leaves an H200 idle between kernel
# launches (issue 12: 1.56 s per epoch of 20,000 x 4,200 at batch 32, 0.05 s at 1,024).
GPU_MAX_BATCH_FACTOR = 32
# ... but never at the cost of the number of optimisation steps a small set gets.
GPU_MIN_STEPS_PER_EPOCH = 16


def scaled_for_device(settings: Settings, n_train: int) -> Settings:
    """The settings a fit on ``n_train`` rows trains with on its device.

    On a CUDA GPU (one process) the batch grows by the largest power of two up to
    ``GPU_MAX_BATCH_FACTOR`` that still leaves ``GPU_MIN_STEPS_PER_EPOCH`` steps per
    epoch, and the learning rate by the square root of that factor (the square-root rule
    for adaptive optimisers: Hoffer et al., 2017; Malladi et al., 2022). Everything else,
    and any CPU fit, is returned unchanged.
    """
    if data_device(settings) is None:
        return settings
    factor = 1
    while (
        factor * 2 <= GPU_MAX_BATCH_FACTOR
        and n_train >= GPU_MIN_STEPS_PER_EPOCH * settings.batch_size * factor * 2
    ):
        factor *= 2
    if factor == 1:
        return settings
    return dataclasses.replace(
        settings, batch_size=settings.batch_size * factor, lr=settings.lr * math.sqrt(factor)
    )


@contextlib.contextmanager
def full_float32() -> Iterator[None]:
    """Run float32 convolutions, recurrences and matrix products in full IEEE precision.

    cuDNN computes float32 convolutions in TF32 by default (10-bit mantissa), enough to
    move a GPU prediction about 1e-3 target SD away from the CPU's and the ONNX graph's;
    predictions must not depend on the device. The previous settings are restored.
    """
    import torch

    backends: Any = torch.backends  # the fp32_precision switches are not in torch's stubs
    if not hasattr(backends.cudnn, "conv"):  # torch before 2.9: the legacy switches
        legacy = (backends.cudnn.allow_tf32, backends.cuda.matmul.allow_tf32)
        backends.cudnn.allow_tf32 = backends.cuda.matmul.allow_tf32 = False
        try:
            yield
        finally:
            backends.cudnn.allow_tf32, backends.cuda.matmul.allow_tf32 = legacy
        return
    previous = (
        backends.cudnn.conv.fp32_precision,
        backends.cudnn.rnn.fp32_precision,
        backends.cuda.matmul.fp32_precision,
    )
    backends.cudnn.conv.fp32_precision = "ieee"
    backends.cudnn.rnn.fp32_precision = "ieee"
    backends.cuda.matmul.fp32_precision = "ieee"
    try:
        yield
    finally:
        (
            backends.cudnn.conv.fp32_precision,
            backends.cudnn.rnn.fp32_precision,
            backends.cuda.matmul.fp32_precision,
        ) = previous


# ---------------------------------------------------------------------- process state
@contextlib.contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
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
def restore_determinism() -> Iterator[None]:
    """Undo the process-wide ``use_deterministic_algorithms`` switch Lightning flips."""
    import torch

    previous = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=warn_only)


@contextlib.contextmanager
def file_system_sharing() -> Iterator[None]:
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


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch, numpy and ``random`` for one member's fit; restore the caller's streams.

    Build the network inside this block (before :func:`train_network`), so its initial
    weights follow the seed.
    """
    import pytorch_lightning as pl
    from pytorch_lightning.utilities.seed import isolate_rng

    with isolate_rng():
        pl.seed_everything(seed, verbose=False)
        yield


# ---------------------------------------------------------------------- training
def train_network(
    net: SpectralCNN,
    train_loader: DataLoader[Any],
    val_loader: DataLoader[Any] | None,
    *,
    task: Task,
    settings: Settings,
    seed: int,
    run_dir: Path | None,
    frozen: Sequence[str] = (),
    backbone_lr_factor: float = 1.0,
) -> tuple[SpectralCNN, dict[str, Any]]:
    """Train one built network with Lightning and return it with its per-epoch history.

    Call it inside :func:`seeded` (after building the network there), so that the run is
    repeatable. Early stopping runs when ``val_loader`` is given and ``settings.patience``
    is set; the weights of the epoch with the lowest validation loss (the last epoch
    without validation) are restored. A loader whose dataset has a ``bind_trainer`` method
    (a stream of batches) is given the trainer, so that it can read the current epoch.

    Args:
        net: The network, as built (or loaded and partly frozen for fine-tuning).
        train_loader: Training batches ``(x, target)``; sized or not (a stream).
        val_loader: Early-stopping batches, or None for no validation.
        task: ``"regression"`` or ``"classification"`` (the loss).
        settings: The fit's settings.
        seed: Seed of the augmentation stream.
        run_dir: Folder for checkpoints, ``history.json`` and logs; None uses a temporary
            folder that is removed afterwards.
        frozen: Dotted names of sub-modules of ``net`` kept in eval mode while training
            (frozen stages: their BatchNorm statistics must not drift).
        backbone_lr_factor: Learning rate of the parameters outside the head, as a
            fraction of ``settings.lr``.

    Returns:
        The network on CPU in eval mode (best weights loaded) and its history
        ``{"epoch", "train_loss", "val_loss", "best_epoch"}``.
    """
    import pytorch_lightning as pl

    from specsoil.train._module import EpochRecorder, SpectralLightningModule, WorkerSetup

    validate = val_loader is not None
    with contextlib.ExitStack() as stack:
        if run_dir is None:
            run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="specsoil-")))
        run_dir.mkdir(parents=True, exist_ok=True)
        stack.enter_context(quiet_lightning(settings.verbose))
        stack.enter_context(torch_threads(settings.num_threads))
        stack.enter_context(restore_determinism())
        if "spawn" in settings.strategy:
            stack.enter_context(file_system_sharing())
        lit = SpectralLightningModule(
            net,
            task=task,
            lr=settings.lr,
            weight_decay=settings.weight_decay,
            lr_schedule=settings.lr_schedule,  # type: ignore[arg-type]
            plateau_patience=max(1, (settings.patience or 10) // 2),
            augment=settings.augment,
            seed=seed,
            monitor="val_loss" if validate else "train_loss",
            frozen=frozen,
            backbone_lr_factor=backbone_lr_factor,
            schedule_per_epoch=not _sized(train_loader),
        )
        callbacks = [
            EpochRecorder(run_dir / HISTORY_FILE, validate=validate),
            WorkerSetup(verbose=settings.verbose),
        ]
        trainer = pl.Trainer(**trainer_kwargs(settings, run_dir, callbacks, validate))
        for loader in (train_loader, val_loader):
            bind = getattr(getattr(loader, "dataset", None), "bind_trainer", None)
            if callable(bind):
                bind(trainer)
        ckpt_path = run_dir / LAST_CHECKPOINT
        resume_from = str(ckpt_path) if settings.resume and ckpt_path.is_file() else None
        if settings.resume and resume_from is None:
            logger.info("no checkpoint at %s; training from scratch", ckpt_path)
        # Checkpoints hold tensors, numbers and strings only: load them without unpickling
        # arbitrary objects.
        try:
            trainer.fit(lit, train_loader, val_loader, ckpt_path=resume_from, weights_only=True)
        except pickle.UnpicklingError as exc:
            raise SpecsoilError(
                f"{ckpt_path}: refused to resume from this checkpoint: it holds objects other "
                "than tensors, numbers and strings, which could run code; delete it to train "
                "from scratch"
            ) from exc
        history: dict[str, Any] = json.loads((run_dir / HISTORY_FILE).read_text(encoding="utf-8"))
    return net.cpu().eval(), history  # the same object as lit.net, best weights loaded


def run_schedule(settings: Settings, history: Mapping[str, Any]) -> dict[str, Any]:
    """What one training run used: the schedule, its length, the batch and the peak rate.

    ``settings`` are those the run trained with (after :func:`scaled_for_device`).
    """
    return {
        "lr_schedule": settings.lr_schedule,
        "schedule_epochs": settings.max_epochs,
        "epochs_run": len(history["train_loss"]),
        "batch_size": settings.batch_size,
        "lr": settings.lr,
        "refit": False,
    }


def _sized(loader: DataLoader[Any]) -> bool:
    """Whether the loader knows its number of batches (a stream does not)."""
    try:
        len(loader)
    except TypeError:
        return False
    return True


def trainer_kwargs(
    settings: Settings, run_dir: Path, own_callbacks: list[pl.Callback], validate: bool
) -> dict[str, Any]:
    """Arguments of the ``pl.Trainer`` of one member's fit."""
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger

    callbacks = list(own_callbacks)
    if validate and settings.patience is not None:
        callbacks.append(EarlyStopping(monitor="val_loss", mode="min", patience=settings.patience))
    checkpointing = settings.checkpoint_dir is not None
    plugins: list[Any] = []
    if checkpointing:
        # last.ckpt every epoch, so a killed run resumes where it stopped (Lightning's
        # save_last writes it only in epochs that also save a best checkpoint); the best
        # epoch's weights separately in best.ckpt. Both after EpochRecorder has seen the
        # epoch (save_on_train_epoch_end), so a resumed history is whole.
        callbacks.append(
            ModelCheckpoint(
                dirpath=run_dir,
                filename=Path(LAST_CHECKPOINT).stem,
                monitor=None,
                save_top_k=1,
                every_n_epochs=1,
                save_on_train_epoch_end=True,
                enable_version_counter=False,
            )
        )
        if validate:
            callbacks.append(
                ModelCheckpoint(
                    dirpath=run_dir,
                    filename=Path(BEST_CHECKPOINT).stem,
                    monitor="val_loss",
                    mode="min",
                    save_top_k=1,
                    save_on_train_epoch_end=True,
                    enable_version_counter=False,
                )
            )
        from specsoil.train._module import AtomicCheckpointIO

        plugins.append(AtomicCheckpointIO())
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
        "plugins": plugins or None,
        "logger": CSVLogger(run_dir, name="logs", version="") if checkpointing else False,
        "enable_checkpointing": checkpointing,
        "enable_progress_bar": settings.verbose,
        "enable_model_summary": settings.verbose,
        "default_root_dir": run_dir,
        "num_sanity_val_steps": 0,
        "log_every_n_steps": 1,
    }
