"""How an operation reports progress, and how its caller stops it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


class OperationCancelled(Exception):
    """Raised from a progress callback to stop an operation; nothing is written then.

    Operations write their outputs atomically, so an operation stopped this way (or by
    any other exception) leaves no partial file or folder behind.
    """


@dataclass(frozen=True, slots=True)
class ProgressUpdate:
    """One step of an operation: ``done`` of ``total`` steps, and what is being done.

    Attributes:
        done: Steps finished so far.
        total: Steps in all (the same for every update of one run).
        description: What the step was, e.g. ``"plsr fold 3"`` or ``"writing"``.
    """

    done: int
    total: int
    description: str


ProgressCallback = Callable[[ProgressUpdate], None]
"""Called after each step; raise :class:`OperationCancelled` from it to stop the operation."""


class Stages:
    """Reports named stages (load, fit, write, ...) of an operation one after another."""

    def __init__(self, progress: ProgressCallback | None, names: tuple[str, ...]) -> None:
        """Report the ``names`` stages to ``progress`` (None: report nothing)."""
        self._progress = progress
        self._names = names
        self._done = 0

    def finished(self, name: str) -> None:
        """Report that the stage ``name`` is over (stages finish in the order given)."""
        self._done = self._names.index(name) + 1
        if self._progress is not None:
            self._progress(ProgressUpdate(self._done, len(self._names), name))
