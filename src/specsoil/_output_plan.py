"""Check output paths before any work starts: a run neither fails at its end nor destroys files.

A command plans each output first: the path must be writable, must not be one of the
command's inputs (nor a folder holding one, nor a path inside an input folder), and an
existing file or folder is replaced only with ``overwrite`` and, for a folder, only when
it is a specsoil output of the same kind holding nothing but what specsoil wrote (see
:func:`specsoil._atomic.atomic_directory`, which checks the same again when it writes).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from specsoil._atomic import OutputKind, inspect_folder, replace_problem
from specsoil._errors import SpecsoilError

PathLike = str | os.PathLike[str]


def plan_output_file(
    out: PathLike,
    *,
    inputs: Iterable[PathLike | None] = (),
    overwrite: bool = False,
    flag: str = "--out",
) -> Path:
    """Check that the file ``out`` can be written, before the work that produces it.

    Args:
        out: The file to write, as the user gave it.
        inputs: Files and folders the command reads (None and names that are not paths,
            such as bundled dataset names, are skipped).
        overwrite: Whether an existing file may be replaced.
        flag: The option that named ``out``, for messages.

    Returns:
        The absolute path to write.

    Raises:
        SpecsoilError: If the file cannot or may not be written.
    """
    final = _resolve(out, flag)
    where = f"{flag} {out}"
    if final.is_dir():
        raise SpecsoilError(f"{where}: is a folder; name a file to write")
    _check_inputs(final, out, inputs, flag)
    if (final.exists() or final.is_symlink()) and not overwrite:
        raise SpecsoilError(
            f"{where}: the file already exists; pass --overwrite to replace it, or choose "
            f"another {flag}"
        )
    return final


def plan_output_folder(
    out: PathLike,
    *,
    kind: OutputKind,
    inputs: Iterable[PathLike | None] = (),
    overwrite: bool = False,
    flag: str = "--out",
) -> Path:
    """Check that the output folder ``out`` can be written, before the work that fills it.

    Args:
        out: The folder to write, as the user gave it.
        kind: What the folder will hold; only a specsoil output of this kind is replaced.
        inputs: Files and folders the command reads (None and names that are not paths
            are skipped).
        overwrite: Whether a previous specsoil output of the same kind may be replaced.
        flag: The option that named ``out``, for messages.

    Returns:
        The absolute path to write.

    Raises:
        SpecsoilError: If the folder cannot or may not be written.
    """
    final = _resolve(out, flag)
    where = f"{flag} {out}"
    cwd = Path.cwd().resolve()
    if final == cwd or final in cwd.parents:
        raise SpecsoilError(
            f"{where}: is the current folder or holds it; name a new folder, e.g. "
            f"{flag} {Path(out) / 'results'}"
        )
    _check_inputs(final, out, inputs, flag)
    problem = replace_problem(final, kind)
    if problem is not None:
        raise SpecsoilError(f"{where}: {problem}; choose another {flag}")
    if final.is_dir() and not inspect_folder(final).empty and not overwrite:
        raise SpecsoilError(
            f"{where}: holds a previous specsoil {kind} output; pass --overwrite to replace "
            f"it, or choose another {flag}"
        )
    return final


def _resolve(out: PathLike, flag: str) -> Path:
    """The absolute path of ``out``, once it is known that it can be created."""
    if not str(out).strip():
        raise SpecsoilError(f"{flag}: the path is empty; name the output to write")
    final = Path(out).resolve()
    if not final.name:
        raise SpecsoilError(f"{flag} {out}: cannot write to the root folder; name an output")
    existing = next(p for p in final.parents if p.exists())  # the root always exists
    if not existing.is_dir():
        raise SpecsoilError(
            f"{flag} {out}: {existing} is a file, so nothing can be written under it; "
            "choose a path in a folder"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SpecsoilError(
            f"{flag} {out}: cannot write in {existing} (permission denied); choose a "
            "writable folder"
        )
    return final


def _check_inputs(final: Path, out: PathLike, inputs: Iterable[PathLike | None], flag: str) -> None:
    """Refuse an output that is an input, holds one, or lies inside an input folder."""
    for given in inputs:
        if given is None or not os.path.lexists(given):
            continue
        source = Path(given).resolve()
        same = source == final or (final.exists() and os.path.samefile(source, final))
        if same:
            raise SpecsoilError(
                f"{flag} {out}: is also an input ({given}); write the output elsewhere"
            )
        if source.is_relative_to(final):
            raise SpecsoilError(
                f"{flag} {out}: holds the input {given}, which writing there could delete; "
                "write the output elsewhere"
            )
        if source.is_dir() and final.is_relative_to(source):
            raise SpecsoilError(
                f"{flag} {out}: lies inside the input folder {given}; write the output elsewhere"
            )
