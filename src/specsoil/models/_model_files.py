"""Reading a model folder without running its code: checked manifest, allow-listed pipelines.

A model folder may come from anyone (a colleague, a download, an upload to a service), so
every file is read as data: ``manifest.json`` is parsed and each field checked before use,
``.skops`` pipelines are built only from the exact types in ``TRUSTED_TYPES``, and ``.npz``
arrays are read with pickling off. Anything else is a ``SpecsoilError`` naming the file and
what is wrong with it, on one line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.pipeline import Pipeline

from specsoil._errors import SpecsoilError
from specsoil.models._trusted_types import TRUSTED_TYPES

# The manifest fields load() reads, with the JSON type each must have.
_FIELD_TYPES: dict[str, type] = {
    "name": str,
    "recipe": str,
    "targets": list,
    "wavelengths": list,
    "preprocessing": list,
    "params": dict,
    "training": dict,
    "files": dict,
    "clip": dict,
}
MODEL_REQUIRED_FIELDS = ("name", "recipe", "targets", "wavelengths", "preprocessing", "params")
_JSON_NAMES: dict[type, str] = {str: "a string", list: "a list", dict: "an object"}


def read_manifest(path: Path) -> dict[str, Any]:
    """Parse a model's ``manifest.json`` and check the fields ``load`` uses.

    Only the shape is checked here (types, non-empty targets, ascending finite
    wavelengths, file names inside the folder); the format version is checked by the
    caller, and the pipeline's band count once it is loaded.

    Raises:
        SpecsoilError: Naming the file and the field at fault.
    """
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SpecsoilError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise SpecsoilError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise SpecsoilError(
            f"{path}: expected a JSON object with the model's fields; got "
            f"{type(manifest).__name__} at the top level"
        )
    return manifest


def check_manifest_fields(
    manifest: Mapping[str, Any],
    path: Path | str,
    *,
    required: Sequence[str] = MODEL_REQUIRED_FIELDS,
) -> None:
    """Check the type and content of every field ``SpectralModel.load`` reads.

    Exported ONNX models carry the same fields in their metadata and are checked alike.

    Args:
        manifest: The parsed manifest.
        path: Where it was read from, for messages.
        required: The fields that must be present (``targets`` and ``wavelengths`` always
            are); the others are checked when present.

    Raises:
        SpecsoilError: Naming ``path`` and the field at fault.
    """
    for key, kind in _FIELD_TYPES.items():
        if key not in manifest:
            if key in required or key in ("targets", "wavelengths"):
                raise SpecsoilError(f"{path}: field {key!r} is missing")
            continue
        if not isinstance(manifest[key], kind):
            raise SpecsoilError(
                f"{path}: field {key!r} must be {_JSON_NAMES[kind]}; got {_describe(manifest[key])}"
            )
    targets = manifest["targets"]
    if not targets or not all(isinstance(t, str) and t for t in targets):
        raise SpecsoilError(
            f"{path}: field 'targets' must be a non-empty list of names; got {_describe(targets)}"
        )
    if len(set(targets)) != len(targets):
        raise SpecsoilError(f"{path}: field 'targets' repeats a name: {targets}")
    _check_wavelengths(manifest["wavelengths"], path)
    if not all(isinstance(step, dict) for step in manifest.get("preprocessing", [])):
        raise SpecsoilError(f"{path}: field 'preprocessing' must be a list of objects")
    for key, name in manifest.get("files", {}).items():
        if key == "conformal_folds" and not isinstance(name, list):
            raise SpecsoilError(f"{path}: field 'files.conformal_folds' must be a list of names")
        for file_name in name if key == "conformal_folds" else [name]:
            _check_file_name(file_name, f"files.{key}", path)


def _check_wavelengths(wavelengths: list[Any], path: Path | str) -> None:
    if not wavelengths:
        raise SpecsoilError(f"{path}: field 'wavelengths' is empty")
    for i, value in enumerate(wavelengths):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            raise SpecsoilError(
                f"{path}: field 'wavelengths' must hold numbers in nm; item {i} is {value!r}"
            )
    steps = np.diff(np.asarray(wavelengths, dtype=np.float64))
    if steps.size and not (steps > 0).all():
        i = int(np.argmax(steps <= 0))
        raise SpecsoilError(
            f"{path}: field 'wavelengths' must be strictly ascending; item {i + 1} "
            f"({wavelengths[i + 1]!r}) follows {wavelengths[i]!r}"
        )


def _check_file_name(name: object, field: str, path: Path | str) -> None:
    """A file the manifest lists must be a plain name inside the model folder."""
    if not isinstance(name, str) or not name or Path(name).name != name or name in {".", ".."}:
        raise SpecsoilError(
            f"{path}: field {field!r} must name a file inside the model folder; got {name!r}"
        )


def _describe(value: object) -> str:
    """A short description of a JSON value for messages (never the whole value)."""
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if isinstance(value, dict):
        return f"an object with {len(value)} fields"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def load_pipeline(path: Path, manifest: Mapping[str, Any]) -> Pipeline:
    """Load one ``.skops`` pipeline, building only the types in ``TRUSTED_TYPES``.

    Raises:
        SpecsoilError: If the file is missing, truncated or corrupt, holds any other type
            (named in the message), is not a fitted pipeline, or cannot be rebuilt by this
            specsoil.
    """
    import skops.io as sio  # imported here: it scans all of sklearn, ~2 s of start-up

    _check_listed_file(path)
    try:
        # Reads the schema only: nothing is built, so a hostile file runs nothing here.
        found = set(sio.get_untrusted_types(file=path))
    except Exception as exc:  # a truncated or foreign file: zip, zlib or JSON errors
        raise SpecsoilError(
            f"{path}: truncated or corrupt, not a readable skops archive "
            f"({type(exc).__name__}: {exc}); copy the model folder again or retrain"
        ) from None
    refused = sorted(found - TRUSTED_TYPES)
    if refused:
        raise SpecsoilError(
            f"{path}: refused to load: it would build types that specsoil never saves "
            f"({', '.join(refused)}); a model file from an unknown source can run code this "
            f"way{_other_version_note(manifest)}"
        )
    try:
        pipeline = sio.load(path, trusted=sorted(found))
    except SpecsoilError:
        raise  # e.g. a CNN pipeline without the torch extra: already says what to do
    except Exception as exc:  # e.g. a pipeline class changed between specsoil releases
        raise _unbuildable(path, manifest, exc) from exc
    if not isinstance(pipeline, Pipeline) or not hasattr(pipeline, "predict"):
        raise SpecsoilError(
            f"{path}: holds a {type(pipeline).__name__}, not a fitted specsoil pipeline"
        )
    _check_trees(pipeline, path)
    return pipeline


def _check_listed_file(path: Path) -> None:
    """The file exists and is not a pickle (refused by its header, before any parser)."""
    if not path.is_file():
        raise SpecsoilError(f"{path.parent}: {path.name}, listed in the manifest, is missing")
    with path.open("rb") as file:
        head = file.read(2)
    # Pickle protocols 2-5 start with the PROTO opcode 0x80 and the protocol number.
    if len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        raise SpecsoilError(
            f"{path}: refused to load: a Python pickle, which specsoil never saves and which "
            "runs code when loaded"
        )


def _other_version_note(manifest: Mapping[str, Any]) -> str:
    """For a file another specsoil wrote: its classes may have moved since."""
    from specsoil import __version__

    writer = manifest.get("specsoil_version")
    if not isinstance(writer, str) or writer == __version__:
        return ""
    return (
        f" (written by specsoil {writer}, this is {__version__}: if you trust the file, load "
        "it with the version that wrote it)"
    )


def _unbuildable(path: Path, manifest: Mapping[str, Any], exc: Exception) -> SpecsoilError:
    """The error for an archive that reads but does not rebuild.

    Written by another specsoil, its classes may have changed; written by this one, the
    file itself is damaged, and advice about versions would mislead.
    """
    from specsoil import __version__

    reason = f"{type(exc).__name__}: {exc}"
    writer = manifest.get("specsoil_version")
    if isinstance(writer, str) and writer != __version__:
        return SpecsoilError(
            f"{path}: cannot rebuild the fitted pipeline written by specsoil {writer} with "
            f"specsoil {__version__} ({reason}); load it with the specsoil version that wrote "
            "it, or retrain the model"
        )
    return SpecsoilError(
        f"{path}: corrupt: the fitted pipeline does not rebuild ({reason}); copy the model "
        "folder again or retrain"
    )


def _check_trees(pipeline: Pipeline, path: Path) -> None:
    """Refuse decision trees whose node arrays point outside themselves.

    scikit-learn follows a tree's child and feature indices without bounds checks, and
    skops cannot check them (its note on ``sklearn.tree._tree.Tree``): a crafted random
    forest would crash the process or read stray memory at its first prediction. specsoil's
    own trees always pass: children come after their parent (no cycles) and inside the
    tree, features inside the estimator's input.
    """
    for estimator in _fitted_trees(pipeline):
        tree = estimator.tree_
        n_nodes = int(tree.node_count)
        left, right = np.asarray(tree.children_left), np.asarray(tree.children_right)
        feature = np.asarray(tree.feature)
        n_features = int(getattr(estimator, "n_features_in_", tree.n_features))
        nodes = np.arange(n_nodes)
        leaf = (left == -1) & (right == -1)
        inner_ok = (
            ((left > nodes) & (left < n_nodes) & (right > nodes) & (right < n_nodes))
            & (feature >= 0)
            & (feature < n_features)
        )
        shapes_ok = left.shape == right.shape == feature.shape == (n_nodes,)
        if not shapes_ok or not (leaf | inner_ok).all() or tree.value.shape[0] != n_nodes:
            raise SpecsoilError(
                f"{path}: refused to load: a decision tree's node arrays point outside the "
                "tree or the input bands, which no fitted tree does (a crafted file)"
            )


def _fitted_trees(root: object) -> Iterator[Any]:
    """Every object with a fitted ``tree_`` reachable from ``root`` through attributes."""
    from sklearn.tree._tree import Tree

    seen: set[int] = set()
    stack: list[object] = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, str | bytes | int | float | np.ndarray):
            continue
        seen.add(id(obj))
        if isinstance(getattr(obj, "tree_", None), Tree):
            yield obj
        if isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple):
            stack.extend(obj)
        elif hasattr(obj, "__dict__"):
            stack.extend(vars(obj).values())


def read_npz(path: Path, keys: Sequence[str]) -> dict[str, NDArray[Any]]:
    """The arrays ``keys`` of an ``.npz`` file, read with pickling off.

    Raises:
        SpecsoilError: If the file is missing or unreadable, lacks a key, or holds pickled
            objects (refused, never unpickled).
    """
    _check_listed_file(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            # Every array, listed or not, so a pickled one is reported as such.
            arrays = {k: np.asarray(data[k]) for k in data.files}
    except ValueError as exc:
        if "allow_pickle" not in str(exc):
            raise SpecsoilError(f"{path}: cannot be read (ValueError: {exc})") from None
        raise SpecsoilError(
            f"{path}: refused to load: it holds pickled Python objects, which specsoil never "
            "saves and which could run code"
        ) from None
    except Exception as exc:  # truncated zip, bad headers, ...
        raise SpecsoilError(f"{path}: truncated or corrupt ({type(exc).__name__}: {exc})") from None
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise SpecsoilError(f"{path}: arrays {missing} are missing")
    return {k: arrays[k] for k in keys}
