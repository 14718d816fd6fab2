"""A fitted model bundled with what it needs to predict from raw spectra, saved without pickle."""

from __future__ import annotations

import datetime as _dt
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.pipeline import Pipeline

from specsoil._atomic import atomic_directory
from specsoil._errors import SpecsoilError
from specsoil.data import SpectraTable
from specsoil.models._recipes import make_recipe, recipe_preprocessing
from specsoil.preprocess import Resample

logger = logging.getLogger(__name__)

# Bump when the directory layout or manifest keys change incompatibly; load() reads every
# version from MIN_FORMAT_VERSION up to this one.
FORMAT_VERSION = 1
MIN_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PIPELINE_FILE = "pipeline.skops"
# skops builds only types on this allow-list, so loading a model never runs foreign code.
_TRUSTED_PREFIXES = ("specsoil.", "sklearn.", "numpy.", "scipy.", "cubist.", "builtins.")


@dataclass
class SpectralModel:
    """A recipe fitted on absorbance spectra, with its wavelength grid and targets.

    Attributes:
        name: Model name as the user chose it (a recipe or a config variant).
        recipe: The recipe the estimator comes from (``plsr``, ``mbl``, ...).
        preprocessing: The preprocessing steps, as data (see ``make_preprocessing``).
        params: Estimator parameter overrides.
        targets: Names of the predicted properties, in output column order.
        wavelengths: The training grid in nm; new spectra are resampled onto it.
        pipeline: The fitted scikit-learn pipeline (preprocessing + estimator).
        training: A summary of the training data (source, counts, target statistics).
    """

    name: str
    recipe: str
    preprocessing: list[dict[str, Any]]
    params: dict[str, Any]
    targets: list[str]
    wavelengths: NDArray[np.float64]
    pipeline: Pipeline
    training: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        table: SpectraTable,
        targets: Sequence[str],
        *,
        recipe: str,
        name: str | None = None,
        preprocessing: Sequence[Mapping[str, Any]] | None = None,
        params: Mapping[str, Any] | None = None,
        random_state: int = 0,
    ) -> SpectralModel:
        """Fit ``recipe`` on every spectrum of ``table`` and return the bundled model."""
        steps = [dict(s) for s in (preprocessing or recipe_preprocessing(recipe))]
        overrides = dict(params or {})
        Y = table.targets(targets)
        pipeline = make_recipe(
            recipe,
            table.wavelengths,
            preprocessing=steps,
            params=overrides,
            random_state=random_state,
        )
        pipeline.fit(table.X, Y)
        return cls(
            name=name or recipe,
            recipe=recipe,
            preprocessing=steps,
            params=overrides,
            targets=list(targets),
            wavelengths=np.asarray(table.wavelengths, dtype=np.float64),
            pipeline=pipeline,
            training=_training_summary(table, targets, Y),
        )

    def align(self, table: SpectraTable) -> NDArray[np.float32]:
        """Return ``table``'s spectra on the model's grid, resampling when the grids differ.

        Raises:
            SpecsoilError: If the table's range does not cover the model's range.
        """
        return align_spectra(table, self.wavelengths, model_name=self.name)

    def predict(self, table: SpectraTable) -> NDArray[np.float64]:
        """Predict every target for every spectrum; shape (n_samples, n_targets)."""
        pred = np.asarray(self.pipeline.predict(self.align(table)), dtype=np.float64)
        return pred.reshape(table.n_samples, len(self.targets))

    def manifest(self) -> dict[str, Any]:
        """Everything about the model except the fitted parts, as JSON-ready data."""
        from specsoil import __version__

        return {
            "format_version": FORMAT_VERSION,
            "specsoil_version": __version__,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "name": self.name,
            "recipe": self.recipe,
            "targets": self.targets,
            "spectra_kind": "absorbance",
            "wavelengths": [float(w) for w in self.wavelengths],
            "preprocessing": self.preprocessing,
            "params": self.params,
            "training": self.training,
            "files": {"pipeline": PIPELINE_FILE},
        }

    def save(self, directory: str | Path) -> Path:
        """Write the model directory atomically: ``manifest.json`` plus ``pipeline.skops``."""
        import skops.io as sio  # imported here: it scans all of sklearn, ~2 s of start-up

        final = Path(directory)
        with atomic_directory(final) as tmp:
            sio.dump(self.pipeline, tmp / PIPELINE_FILE)
            text = json.dumps(self.manifest(), indent=2, allow_nan=False)
            (tmp / MANIFEST).write_text(text + "\n", encoding="utf-8")
        return final

    @classmethod
    def load(cls, directory: str | Path) -> SpectralModel:
        """Read a model directory written by :meth:`save`.

        Raises:
            SpecsoilError: If the directory is not a specsoil model, was written by a newer
                format, or holds object types outside the trusted allow-list.
        """
        import skops.io as sio

        root = Path(directory)
        manifest_path = root / MANIFEST
        if not manifest_path.is_file():
            raise SpecsoilError(f"{root}: not a specsoil model directory (no {MANIFEST})")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise SpecsoilError(f"{manifest_path}: not valid JSON ({exc})") from None
        check_format_version(
            manifest.get("format_version"),
            written_by=manifest.get("specsoil_version"),
            source=str(root),
        )
        pipeline_path = root / manifest.get("files", {}).get("pipeline", PIPELINE_FILE)
        if not pipeline_path.is_file():
            raise SpecsoilError(f"{root}: the fitted pipeline {pipeline_path.name} is missing")
        try:
            untrusted = sio.get_untrusted_types(file=pipeline_path)
        except Exception as exc:  # a truncated or foreign file: skops raises zipfile errors
            raise _unreadable_pipeline(pipeline_path, manifest, exc) from exc
        foreign = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
        if foreign:
            raise SpecsoilError(
                f"{pipeline_path}: refusing to load untrusted object types {foreign}"
            )
        try:
            pipeline = sio.load(pipeline_path, trusted=untrusted)
        except SpecsoilError:
            raise  # e.g. a CNN pipeline without the torch extra: already says what to do
        except Exception as exc:  # e.g. a pipeline class changed between specsoil releases
            raise _unreadable_pipeline(pipeline_path, manifest, exc) from exc
        return cls(
            name=manifest["name"],
            recipe=manifest["recipe"],
            preprocessing=manifest["preprocessing"],
            params=manifest["params"],
            targets=list(manifest["targets"]),
            wavelengths=np.asarray(manifest["wavelengths"], dtype=np.float64),
            pipeline=pipeline,
            training=manifest.get("training", {}),
        )


def align_spectra(
    table: SpectraTable, wavelengths: NDArray[np.float64], *, model_name: str
) -> NDArray[np.float32]:
    """Return ``table``'s spectra on the grid ``wavelengths``, resampling when the grids differ.

    The rule every specsoil predictor applies to new spectra (saved model directories and
    exported ONNX models alike): the table's own spectra when its grid is the model's,
    otherwise linear interpolation onto the model's grid, allowing half a source band of
    slack at either end of the range.

    Args:
        table: The spectra to predict from (absorbance).
        wavelengths: The model's grid in nm, ascending.
        model_name: The model's name, for the error message.

    Returns:
        Spectra of shape (table.n_samples, len(wavelengths)), float32.

    Raises:
        SpecsoilError: If the table's range does not cover the model's range.
    """
    grid = np.asarray(wavelengths, dtype=np.float64)
    if table.wavelengths.shape == grid.shape and np.allclose(table.wavelengths, grid):
        return table.X
    have_lo, have_hi = float(table.wavelengths[0]), float(table.wavelengths[-1])
    # Half a source step of slack: band centres of two instruments rarely line up exactly.
    slack = 0.5 * float(np.median(np.diff(table.wavelengths))) if table.X.shape[1] > 1 else 0.0
    if have_lo > grid[0] + slack or have_hi < grid[-1] - slack:
        raise SpecsoilError(
            f"{table.source}: spectra cover {have_lo:g}-{have_hi:g} nm but model "
            f"{model_name!r} needs {grid[0]:g}-{grid[-1]:g} nm; it cannot extrapolate"
        )
    # Model bands within the slack beyond the table's range take the edge value. Several may
    # clip to the same wavelength (a coarse table ending just short of a fine model grid), so
    # resample onto the distinct ones and repeat columns.
    target, columns = np.unique(np.clip(grid, have_lo, have_hi), return_inverse=True)
    resampler = Resample(table.wavelengths, target_wavelengths=target)
    logger.info(
        "resampling %d bands (%g-%g nm) onto the model's %d bands",
        table.X.shape[1],
        have_lo,
        have_hi,
        grid.size,
    )
    resampled = np.asarray(resampler.fit_transform(table.X), dtype=np.float32)
    return np.ascontiguousarray(resampled[:, columns])


def check_format_version(
    version: object,
    *,
    written_by: object,
    source: str,
    current: int = FORMAT_VERSION,
    oldest: int = MIN_FORMAT_VERSION,
    what: str = "model",
) -> int:
    """Check a saved format version against what this specsoil reads; return it.

    Args:
        version: The ``format_version`` read from the file.
        written_by: The ``specsoil_version`` recorded beside it (for the message).
        source: The file or directory, for the message.
        current: The newest version this specsoil reads (and writes).
        oldest: The oldest version it still reads.
        what: What was saved (``model``, ``ONNX export``), for the message.

    Returns:
        The version, as an int.

    Raises:
        SpecsoilError: If the version is missing, not an integer, newer than ``current``
            or older than ``oldest``; the message says which specsoil to use.
    """
    writer = written_by if isinstance(written_by, str) else "an unknown version"
    if isinstance(version, bool) or not isinstance(version, int):
        raise SpecsoilError(
            f"{source}: {what} format_version must be an integer; got {version!r} "
            f"(written by specsoil {writer}); was this saved by specsoil?"
        )
    if version > current:
        raise SpecsoilError(
            f"{source}: {what} format version {version} was written by specsoil {writer}; "
            f"this specsoil reads versions {oldest} to {current}, so upgrade specsoil "
            "to load it"
        )
    if version < oldest:
        raise SpecsoilError(
            f"{source}: {what} format version {version} (written by specsoil {writer}) is "
            f"no longer read; this specsoil reads versions {oldest} to {current}: load it "
            "with an older specsoil and retrain, or retrain from the training data"
        )
    return version


def _unreadable_pipeline(path: Path, manifest: Mapping[str, Any], exc: Exception) -> SpecsoilError:
    """The error for a pipeline file this specsoil cannot rebuild, naming both versions."""
    from specsoil import __version__

    return SpecsoilError(
        f"{path}: cannot rebuild the fitted pipeline written by specsoil "
        f"{manifest.get('specsoil_version', '?')} with specsoil {__version__} "
        f"({type(exc).__name__}: {exc}); load it with the specsoil version that wrote it, "
        "or retrain the model"
    )


def target_statistics(targets: Sequence[str], Y: NDArray[np.float64]) -> dict[str, dict[str, Any]]:
    """Per-target counts, mean, sd and range of the training values (NaN = missing)."""
    per_target = {}
    for j, name in enumerate(targets):
        column = Y[:, j][np.isfinite(Y[:, j])]
        per_target[name] = {
            "n": int(column.size),
            "n_missing": int(Y.shape[0] - column.size),
            "mean": float(column.mean()) if column.size else None,
            "sd": float(column.std(ddof=1)) if column.size > 1 else None,
            "min": float(column.min()) if column.size else None,
            "max": float(column.max()) if column.size else None,
        }
    return per_target


def _training_summary(
    table: SpectraTable, targets: Sequence[str], Y: NDArray[np.float64]
) -> dict[str, Any]:
    """Counts and ranges of the training data, kept in the manifest for users and checks."""
    per_target = target_statistics(targets, Y)
    return {
        "source": table.source,
        "source_spectra_kind": table.spectra_kind,
        "n_samples": table.n_samples,
        "n_wavelengths": int(table.wavelengths.size),
        "wavelength_range_nm": [float(table.wavelengths[0]), float(table.wavelengths[-1])],
        "targets": per_target,
    }
