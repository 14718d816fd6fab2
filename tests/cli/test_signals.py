"""SIGTERM and SIGINT during ``specsoil cv --jobs 2`` stop the joblib workers too.

Runs the real command in a subprocess on the bundled geeves data, waits until its loky
workers are computing, sends the signal, and checks that the command exits and that none
of the processes it started is alive a few seconds later. Process trees are read from
/proc (Linux), so the test is skipped elsewhere. The waits are bounds, not timings.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

SRC = Path(__file__).resolve().parents[2] / "src"


def _stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, state, start time) of a process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may hold spaces; the fields follow it.
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], fields[19]


def _descendants(root: int) -> dict[int, str]:
    """Every live descendant of ``root``: pid -> start time (tells a reused pid apart)."""
    parents: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = (stat[0], stat[2])
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, started) in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = started
                frontier.append(pid)
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int, started: str) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[2] == started and stat[1] not in ("Z", "X")


def _wait_until(condition, bound_s: float) -> bool:
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.mark.parametrize(
    ("signum", "status", "word"),
    [
        pytest.param(signal.SIGTERM, 128 + signal.SIGTERM, "terminated", id="SIGTERM"),
        # The same cleanup path (Terminated is a KeyboardInterrupt): opt-in, to save ~8 s.
        pytest.param(signal.SIGINT, 130, "interrupted", id="SIGINT", marks=pytest.mark.slow),
    ],
)
def test_signal_during_parallel_cv_stops_the_workers(tmp_path, signum, status, word):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    # SVR's inner grid search over 10 folds of 391 full-resolution spectra runs for minutes.
    argv = ["cv", "--data", "geeves", "--jobs", "2", "--model", "svr", "--out", "cv"]
    stderr_path = tmp_path / "stderr.txt"
    started: dict[int, str] = {}
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "specsoil", *argv],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            workers: dict[int, str] = {}

            def computing() -> bool:
                nonlocal workers
                workers = {
                    pid: started
                    for pid, started in _descendants(process.pid).items()
                    if "loky" in _cmdline(pid) and "resource_tracker" not in _cmdline(pid)
                }
                return len(workers) >= 2 or process.poll() is not None

            assert _wait_until(computing, 240), "no loky workers started"
            assert process.poll() is None, stderr_path.read_text()
            started = _descendants(process.pid)  # the workers and joblib's helper processes
            assert set(workers) <= set(started)
            process.send_signal(signum)
            returncode = process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    # Killed workers need a moment to be reaped; a worker still computing would stay alive.
    _wait_until(lambda: not any(_alive(p, s) for p, s in started.items()), 15)
    survivors = {p: _cmdline(p) for p, s in started.items() if _alive(p, s)}
    for pid in survivors:  # leave no stray process behind when this fails
        os.kill(pid, signal.SIGKILL)
    assert survivors == {}
    assert returncode == status
    assert word in stderr_path.read_text()
    # Nothing half-written is left behind: no report folder, no temporary file.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["stderr.txt"]
