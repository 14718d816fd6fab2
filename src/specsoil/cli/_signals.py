"""SIGTERM and Ctrl-C stop the whole command, worker processes included.

Python's default SIGTERM ends the main process at once: no ``finally`` runs, and joblib's
loky workers, which are separate processes, keep computing their (model, fold) fits for
minutes. Raising an exception instead lets the usual cleanup run (temporary files, joblib's
own abort), and the worker pool is then killed explicitly, since a worker busy in a fit
does not notice that its parent has gone.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

logger = logging.getLogger(__name__)


class Terminated(KeyboardInterrupt):
    """A termination signal, raised in the main thread and handled like Ctrl-C.

    A ``KeyboardInterrupt`` subclass, so that code which cleans up after Ctrl-C (joblib's
    abort of its workers, atomic writes removing their temporary files) does the same here.

    Attributes:
        signum: The signal received.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + self.signum


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    # A second signal while cleaning up ends the process the default way.
    signal.signal(signum, signal.SIG_DFL)
    raise Terminated(signum)


@contextmanager
def stop_workers_on_signals() -> Iterator[None]:
    """Turn SIGTERM (and SIGHUP) into ``Terminated``; on any interrupt, kill worker pools.

    SIGINT already raises ``KeyboardInterrupt`` (unless the shell started the command with
    it ignored, which is kept). Outside the main thread signals cannot be handled, so the
    block runs unchanged there.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handled = [signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])]
    previous = {signum: signal.signal(signum, _raise_terminated) for signum in handled}
    try:
        yield
    except KeyboardInterrupt:
        kill_worker_pools()
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def kill_worker_pools() -> None:
    """Kill the processes of joblib's reusable loky executor, if one was started.

    joblib aborts its pool itself when the exception reaches it, but not when the signal
    arrives elsewhere (e.g. while results are being collected or written), and it leaves
    the executor to shut down asynchronously; this waits until the workers are gone.
    """
    reusable_executor = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(reusable_executor, "_executor", None)  # None: no pool was started
    if executor is None:
        return
    logger.debug("killing the joblib worker pool")
    try:
        executor.shutdown(wait=True, kill_workers=True)
    except Exception as exc:  # already broken or shut down: nothing left to stop
        logger.debug("joblib worker pool shutdown: %s", exc)
