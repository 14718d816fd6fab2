"""The Lightning side of the engine: the training module and its bookkeeping callback.

Imported lazily by the estimators, because it imports torch and pytorch_lightning.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, cast

import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.types import _PATH
from pytorch_lightning.plugins.io import TorchCheckpointIO
from torch import nn
from torch.nn import functional as F

from specsoil._atomic import atomic_path, atomic_write_text
from specsoil.train._augment import SpectralAugmenter
from specsoil.train._loss import masked_mse_loss
from specsoil.train._quiet import quiet_lightning_process

Task = Literal["regression", "classification"]
LRSchedule = Literal["onecycle", "cosine", "plateau", "none"]

# Spread the augmentation seeds of DDP ranks apart, so that ranks draw different noise.
_RANK_SEED_STRIDE = 7919


class SpectralLightningModule(pl.LightningModule):
    """Train a spectral network: loss, augmentation, optimiser and learning-rate schedule.

    Regression uses ``masked_mse_loss`` on standardised targets (missing values skipped);
    classification uses cross-entropy on class indices. The optimiser is AdamW (Loshchilov
    & Hutter, 2019) with weight decay on weight matrices and kernels only: decaying biases
    and normalisation scales only shrinks them towards a meaningless 0.

    Args:
        net: The network, mapping (N, ...) inputs to (N, n_outputs).
        task: ``"regression"`` or ``"classification"``.
        lr: Peak learning rate.
        weight_decay: AdamW decoupled weight decay.
        lr_schedule: ``"onecycle"`` (Smith & Topin, 2019: warm-up then cosine annealing,
            stepped per batch), ``"cosine"`` (annealing to 0 over all steps),
            ``"plateau"`` (halve the rate when the monitored loss stalls) or ``"none"``.
        plateau_patience: Epochs without improvement before ``"plateau"`` halves the rate.
        augment: Augmentation name to standard deviation (see ``SpectralAugmenter``).
        seed: Seed of the augmentation generator (offset per DDP rank).
        monitor: The epoch metric the plateau schedule watches.
        frozen: Dotted names of sub-modules of ``net`` held in eval mode during training
            (frozen stages of a fine-tuned network, so their BatchNorm statistics and
            dropout stay as they were, and BatchNorm layers whose statistics are held while
            their scale and shift train).
        backbone_lr_factor: Learning rate of the parameters outside ``net.head``, as a
            fraction of ``lr`` (fine-tuning: the head learns faster than the features).
        schedule_per_epoch: Step ``"onecycle"`` and ``"cosine"`` once per epoch over
            ``max_epochs`` steps instead of once per batch: for a stream of batches, whose
            number per epoch is unknown in advance.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        task: Task = "regression",
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        lr_schedule: LRSchedule = "onecycle",
        plateau_patience: int = 5,
        augment: dict[str, float] | None = None,
        seed: int = 0,
        monitor: str = "val_loss",
        frozen: Sequence[str] = (),
        backbone_lr_factor: float = 1.0,
        schedule_per_epoch: bool = False,
    ) -> None:
        super().__init__()
        self.net = net
        self.task = task
        self.lr = lr
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.plateau_patience = plateau_patience
        self.augment = dict(augment or {})
        self.seed = seed
        self.monitor = monitor
        self.frozen = tuple(frozen)
        self.backbone_lr_factor = backbone_lr_factor
        self.schedule_per_epoch = schedule_per_epoch
        self.augmenter = SpectralAugmenter(self.augment, seed=seed)

    def setup(self, stage: str) -> None:
        """Give every DDP rank its own augmentation stream (runs in each process)."""
        self.augmenter = SpectralAugmenter(
            self.augment, seed=self.seed + _RANK_SEED_STRIDE * self.global_rank
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Network outputs, shape (N, n_outputs)."""
        out: torch.Tensor = self.net(x)
        return out

    def _loss(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, int]:
        """The loss and the number of entries it averages over (its weight in the epoch)."""
        if self.task == "classification":
            return F.cross_entropy(pred.float(), target), int(target.shape[0])
        # Losses in float32 even under mixed precision: squared errors overflow float16.
        loss = masked_mse_loss(pred.float(), target.float())
        return loss, int(torch.isfinite(target).sum())

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """Hold frozen stages in eval mode (Lightning switches the whole model to train)."""
        for name in self.frozen:
            self.net.get_submodule(name).eval()

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> Any:
        """One optimisation step on an augmented batch."""
        x, target = batch
        if self.augmenter:
            x = self.augmenter(x)
        loss, weight = self._loss(self(x), target)
        self._log_epoch("train_loss", loss, weight)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> Any:
        """Loss on an early-stopping batch (no augmentation; eval mode is Lightning's)."""
        x, target = batch
        loss, weight = self._loss(self(x), target)
        self._log_epoch("val_loss", loss, weight)
        return loss

    def _log_epoch(self, name: str, loss: torch.Tensor, weight: int) -> None:
        # Weighted by the entries averaged, the epoch value is the mean over all present
        # entries (a batch with none present adds 0 to both sums, so it dilutes nothing);
        # sync_dist averages across DDP ranks, so all ranks stop at the same epoch.
        self.log(
            name, loss.detach(), on_step=False, on_epoch=True, sync_dist=True, batch_size=weight
        )

    def _param_groups(self) -> list[dict[str, Any]]:
        """AdamW groups: weight decay on kernels only; the backbone at its own rate."""
        trainable = [p for p in self.net.parameters() if p.requires_grad]
        if self.backbone_lr_factor == 1.0:
            parts = [(trainable, self.lr)]
        else:
            head = {id(p) for p in cast(nn.Module, self.net.head).parameters()}
            parts = [
                ([p for p in trainable if id(p) in head], self.lr),
                ([p for p in trainable if id(p) not in head], self.lr * self.backbone_lr_factor),
            ]
        groups = []
        for params, lr in parts:
            decay = [p for p in params if p.ndim > 1]
            no_decay = [p for p in params if p.ndim <= 1]
            groups.append({"params": decay, "weight_decay": self.weight_decay, "lr": lr})
            groups.append({"params": no_decay, "weight_decay": 0.0, "lr": lr})
        if self.backbone_lr_factor == 1.0:
            return groups  # both groups even if one is empty, as before fine-tuning existed
        return [group for group in groups if group["params"]]

    def configure_optimizers(self) -> Any:
        """AdamW with the configured learning-rate schedule."""
        groups = self._param_groups()
        optimizer = torch.optim.AdamW(groups, lr=self.lr)
        if self.lr_schedule == "none":
            return optimizer
        if self.lr_schedule == "plateau":
            plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="min", factor=0.5, patience=self.plateau_patience
            )
            return {
                "optimizer": optimizer,
                "lr_scheduler": {
                    "scheduler": plateau,
                    "monitor": self.monitor,
                    "interval": "epoch",
                },
            }
        if self.schedule_per_epoch:
            total_steps, interval = max(int(self.trainer.max_epochs or 1), 1), "epoch"
        else:
            total_steps, interval = max(int(self.trainer.estimated_stepping_batches), 1), "step"
        scheduler: torch.optim.lr_scheduler.LRScheduler
        if self.lr_schedule == "onecycle":
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=[group["lr"] for group in groups], total_steps=total_steps
            )
        else:
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": interval},
        }


class EpochRecorder(pl.Callback):
    """Record per-epoch losses, keep the best weights, and restore them at the end.

    The best epoch is the one with the lowest validation loss (the last epoch when there is
    no validation split). Its weights are copied in memory and loaded back into the network
    when training ends, on every DDP rank, so the weights Lightning returns from a spawned
    run are the best ones too. The history is written by rank 0 to ``history_path`` as JSON,
    which is how it reaches the main process under DDP spawn. The state goes into Lightning
    checkpoints, so a resumed run continues the same history.

    Args:
        history_path: Where rank 0 writes ``{"epoch", "train_loss", "val_loss",
            "best_epoch"}`` at the end of training.
        validate: Whether a validation split is monitored.
    """

    def __init__(self, history_path: Path, *, validate: bool) -> None:
        self.history_path = Path(history_path)
        self.validate = validate
        self.train_loss: list[float] = []
        self.val_loss: list[float] = []
        self.best_epoch: int | None = None
        self.best_score = math.inf
        self.best_state: dict[str, torch.Tensor] | None = None

    @staticmethod
    def _metric(trainer: pl.Trainer, name: str) -> float:
        value = trainer.callback_metrics.get(name)
        return float(value) if value is not None else math.nan

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Append this epoch's losses; copy the weights if they are the best so far."""
        self.train_loss.append(self._metric(trainer, "train_loss"))
        self.val_loss.append(self._metric(trainer, "val_loss") if self.validate else math.nan)
        epoch = len(self.train_loss)  # 1-based epoch number
        if not self.validate:
            self.best_epoch = epoch
            return
        score = self.val_loss[-1]
        if score < self.best_score:  # False for NaN: a diverged epoch is never the best
            self.best_score = score
            self.best_epoch = epoch
            net = cast(nn.Module, pl_module.net)
            self.best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Load the best weights and write the history."""
        if self.best_state is not None:
            net = cast(nn.Module, pl_module.net)
            net.load_state_dict(self.best_state)
        if trainer.is_global_zero:
            atomic_write_text(self.history_path, json.dumps(self.history()))

    def history(self) -> dict[str, Any]:
        """The losses so far, as plain lists (NaN where there is no validation)."""
        return {
            "epoch": list(range(1, len(self.train_loss) + 1)),
            "train_loss": list(self.train_loss),
            "val_loss": list(self.val_loss) if self.validate else [],
            "best_epoch": self.best_epoch,
        }

    def state_dict(self) -> dict[str, Any]:
        """Callback state saved in Lightning checkpoints (for resuming)."""
        return {
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "best_epoch": self.best_epoch,
            "best_score": self.best_score,
            "best_state": self.best_state,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the state of a checkpointed run."""
        self.train_loss = list(state_dict["train_loss"])
        self.val_loss = list(state_dict["val_loss"])
        self.best_epoch = state_dict["best_epoch"]
        self.best_score = float(state_dict["best_score"])
        self.best_state = state_dict["best_state"]


class WorkerSetup(pl.Callback):
    """Configure DDP worker processes as they start; does nothing during training.

    A spawned worker receives the trainer, and this callback with it, by unpickling, before
    Lightning logs anything there. Unpickling is therefore where a worker of a quiet fit is
    silenced: the parent's logger levels and warning filters do not reach a new process.

    Args:
        verbose: Leave the worker's logging as it is.
    """

    def __init__(self, *, verbose: bool) -> None:
        self.verbose = verbose

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if not self.verbose:
            quiet_lightning_process()


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, but the complete file is renamed into place.

    A run killed while writing keeps its previous checkpoint, never a truncated one.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        """Write ``checkpoint`` to a temporary file beside ``path``, then rename it."""
        with atomic_path(Path(path)) as tmp:
            torch.save(checkpoint, tmp)
