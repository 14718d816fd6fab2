"""Write each output to a temporary file or folder renamed into place, never half written.

Output folders carry a small marker file (:data:`MARKER`) naming their kind and the files
specsoil wrote there. A folder is replaced only when it is empty or is a marked output of
the same kind holding nothing but those files: specsoil never deletes a file it did not write.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from specsoil._errors import SpecsoilError

# What an output folder holds; a folder is only ever replaced by an output of its own kind.
OutputKind = Literal[
    "model", "cv-report", "transfer-cv-report", "map", "explain", "tune", "parquet-parts"
]
MARKER = ".specsoil-output.json"


def _umask() -> int:
    """The process umask (reading it requires setting it, so set it straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created, deepest first."""
    missing = []
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_if_empty(folders: list[Path]) -> None:
    """Remove the parents :func:`_make_parents` created, when nothing else was put there."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return  # not empty (or gone): keep it and every folder above


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The temporary file lives in the same directory so the final ``os.replace`` is atomic.
    On any exception (KeyboardInterrupt included) the temporary file and any parent folder
    created for it are removed, and ``path`` is left untouched.

    Args:
        path: Final destination file.

    Yields:
        The temporary path to write to.
    """
    final = Path(path)
    created = _make_parents(final.parent)
    committed = False
    tmp: Path | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        yield tmp
        # mkstemp creates 0600; give the result the permissions an ordinary open() would.
        tmp.chmod(0o666 & ~_umask())
        os.replace(tmp, final)
        committed = True
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if not committed:
            _remove_if_empty(created)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@dataclass(frozen=True)
class FolderState:
    """What an existing output folder holds, as far as replacing it is concerned.

    Attributes:
        kind: The kind its marker names, or None without a (readable) marker.
        entries: Every file and folder inside, relative, marker excluded.
        unknown: The entries the marker does not list: files specsoil did not write.
    """

    kind: str | None
    entries: tuple[str, ...]
    unknown: tuple[str, ...]

    @property
    def empty(self) -> bool:
        """True when the folder holds nothing (not even a marker)."""
        return not self.entries and self.kind is None


def inspect_folder(folder: Path) -> FolderState:
    """Read the marker of an existing folder and list what else it holds.

    Only a marked folder is walked in depth; of any other folder (which may be a home
    folder) the top-level entries are enough to refuse it.
    """
    kind: str | None = None
    written: set[str] = set()
    marker = folder / MARKER
    if marker.is_file():
        try:
            document = json.loads(marker.read_text(encoding="utf-8"))
            kind = str(document["kind"])
            written = {str(name) for name in document["files"]}
        except (OSError, ValueError, KeyError, TypeError):
            kind, written = None, set()
    if kind is None:
        entries = tuple(sorted(p.name for p in folder.iterdir()))
        return FolderState(kind=None, entries=entries, unknown=entries)
    found = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))
    entries = tuple(name for name in found if name != MARKER)
    known = set(written)
    for name in written:  # and the folders the written files sit in
        known.update(parent.as_posix() for parent in Path(name).parents)
    return FolderState(
        kind=kind, entries=entries, unknown=tuple(e for e in entries if e not in known)
    )


def replace_problem(final: Path, kind: OutputKind) -> str | None:
    """Why ``final`` cannot be replaced by a ``kind`` output folder; None when it can.

    A missing path or an empty folder can always be written. An existing folder can be
    replaced only when its marker names the same kind and it holds only files specsoil wrote.
    """
    if not final.exists() and not final.is_symlink():
        return None
    if not final.is_dir():
        return f"{final} is a file, not a folder"
    try:
        state = inspect_folder(final)
    except OSError as exc:
        return f"{final} cannot be read ({exc.strerror or exc})"
    if state.empty:
        return None
    if state.kind is None:
        shown = ", ".join(state.entries[:5]) + (", ..." if len(state.entries) > 5 else "")
        count = len(state.entries)
        return (
            f"{final} is a folder specsoil did not write ({count} "
            f"{'entry' if count == 1 else 'entries'}: {shown}); specsoil never replaces or "
            "adds to such a folder"
        )
    if state.kind != kind:
        return f"{final} holds a specsoil {state.kind} output, not a {kind}"
    if state.unknown:
        shown = ", ".join(state.unknown[:5]) + (", ..." if len(state.unknown) > 5 else "")
        return (
            f"{final} holds files specsoil did not write ({shown}); move them out first, "
            "specsoil never deletes them"
        )
    return None


def _write_marker(folder: Path, kind: OutputKind) -> None:
    from specsoil import __version__

    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    document = {"kind": kind, "specsoil_version": __version__, "files": files}
    (folder / MARKER).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str], *, kind: OutputKind) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` only when the block succeeds.

    Used for saved models and report folders: readers never see a partial directory. The
    folder gets a marker naming ``kind`` and the files written. An existing ``path`` is
    replaced only when it is an empty folder or a marked ``kind`` output holding nothing but
    the files specsoil wrote; anything else raises :class:`SpecsoilError` and is left as it
    was. On success, error or KeyboardInterrupt no temporary or backup folder is left behind.

    Args:
        path: Final destination directory.
        kind: What the folder holds (its marker says so).

    Yields:
        The temporary directory to fill.

    Raises:
        SpecsoilError: If ``path`` exists and may not be replaced (see above).
    """
    final = Path(path)
    created = _make_parents(final.parent)
    committed = False
    tmp: Path | None = None
    backup: Path | None = None
    try:
        problem = replace_problem(final, kind)  # fail before the work when we can
        if problem is not None:
            raise SpecsoilError(f"{problem}; choose another output folder")
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
        yield tmp
        _write_marker(tmp, kind)
        tmp.chmod(0o777 & ~_umask())  # mkdtemp creates 0700
        problem = replace_problem(final, kind)  # the folder may have changed meanwhile
        if problem is not None:
            raise SpecsoilError(f"{problem}; choose another output folder")
        if final.is_dir() and any(final.iterdir()):
            # Swap through a backup, restored if the second rename fails or is interrupted.
            backup = Path(
                tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent)
            )
            os.replace(final, backup)  # a directory may be renamed onto an empty one
            try:
                os.replace(tmp, final)
            except BaseException:
                # Put the previous folder back; should that fail too, it stays in the backup.
                previous, backup = backup, None
                os.replace(previous, final)
                raise
        else:
            os.replace(tmp, final)  # onto nothing, or onto an empty folder
        committed = True
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
        if not committed:
            _remove_if_empty(created)
