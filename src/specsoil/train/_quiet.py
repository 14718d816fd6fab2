"""Keeping Lightning quiet unless the user asked for its output (``verbose=True``).

Lightning logs a device summary at INFO and warns about things this engine does on purpose
(in-memory data with no loader workers, few batches per epoch). None of it helps a user who
asked for a quiet fit, e.g. one fit per cross-validation fold.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning")


def _ignore_lightning_warnings() -> None:
    warnings.filterwarnings("ignore", module=r"(pytorch_lightning|lightning_fabric)\.")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")


@contextlib.contextmanager
def quiet_lightning(verbose: bool) -> Iterator[None]:
    """Within the block, drop Lightning's INFO logs and warnings unless ``verbose``.

    Args:
        verbose: Leave everything as it is.

    Yields:
        Nothing; logger levels and warning filters are restored on exit.
    """
    if verbose:
        yield
        return
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    levels = [log.level for log in loggers]
    try:
        for log in loggers:
            log.setLevel(logging.WARNING)
        with warnings.catch_warnings():
            _ignore_lightning_warnings()
            yield
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.setLevel(level)


def quiet_lightning_process() -> None:
    """Silence Lightning for the rest of this process (a DDP worker that only trains)."""
    for name in LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    _ignore_lightning_warnings()
