"""Training and validation loss curves as a PNG file."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from specsoil._atomic import atomic_path
from specsoil._errors import SpecsoilError


def _losses(history: Mapping[str, Any], key: str, where: str) -> list[float]:
    values = history.get(key, [])
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise SpecsoilError(f"{where}[{key!r}] must be a list of per-epoch losses; got {values!r}")
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise SpecsoilError(f"{where}[{key!r}] must hold numbers; got {values!r}") from exc


def _best_epoch(val_loss: list[float]) -> int | None:
    finite = [(v, i + 1) for i, v in enumerate(val_loss) if math.isfinite(v)]
    return min(finite)[1] if finite else None


def plot_training_curves(
    history: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    *,
    best_epoch: int | Sequence[int] | None = None,
    title: str | None = None,
) -> Path:
    """Draw the training and validation loss per epoch, with the kept epoch marked.

    Args:
        history: A fitted estimator's ``history_``: a dict with ``"train_loss"`` and
            ``"val_loss"`` lists (one value per epoch; ``val_loss`` may be empty), or a list
            of such dicts for an ensemble (one pair of curves per member).
        path: The PNG file to write (its folder is created; the file is replaced
            atomically).
        best_epoch: The 1-based epoch to mark (``best_epoch_``; one per member for an
            ensemble). By default, the epoch with the lowest validation loss.
        title: Figure title.

    Returns:
        The path written.

    Raises:
        SpecsoilError: If ``history`` holds no losses or is malformed.
    """
    histories = [history] if isinstance(history, Mapping) else list(history)
    if not histories or not all(isinstance(h, Mapping) for h in histories):
        raise SpecsoilError(
            "history must be a dict with 'train_loss' and 'val_loss' lists, or a list of them"
        )
    if best_epoch is None or isinstance(best_epoch, int):
        bests: list[int | None] = [best_epoch] * len(histories)
    else:
        bests = list(best_epoch)
        if len(bests) != len(histories):
            raise SpecsoilError(
                f"best_epoch has {len(bests)} entries for {len(histories)} histories"
            )
    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    all_losses: list[float] = []
    member = len(histories) > 1
    for i, (hist, best) in enumerate(zip(histories, bests, strict=True)):
        where = f"history[{i}]" if member else "history"
        train = _losses(hist, "train_loss", where)
        val = _losses(hist, "val_loss", where)
        if not train and not val:
            raise SpecsoilError(f"{where} holds no losses to plot")
        suffix = f" (member {i})" if member else ""
        alpha = 0.6 if member else 1.0
        ax.plot(
            range(1, len(train) + 1),
            train,
            "-",
            color="C0",
            alpha=alpha,
            label="training" if i == 0 else None,
        )
        if val:
            ax.plot(
                range(1, len(val) + 1),
                val,
                "-",
                color="C1",
                alpha=alpha,
                label="validation" if i == 0 else None,
            )
        kept = best if best is not None else _best_epoch(val)
        curve = val if val else train
        if kept is not None and 1 <= kept <= len(curve):
            ax.axvline(kept, color="0.5", linestyle=":", linewidth=1)
            ax.plot(
                [kept],
                [curve[kept - 1]],
                "o",
                color="C3",
                label=f"kept epoch {kept}{suffix}" if not member or i == 0 else None,
            )
        all_losses.extend(v for v in (*train, *val) if math.isfinite(v))
    # Losses fall over orders of magnitude early on; a log axis keeps the tail readable.
    if all_losses and min(all_losses) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title)
    ax.legend()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    return Path(path)
