"""A fitted model bundled with what it needs to predict from raw spectra, saved without pickle."""

from __future__ import annotations

import datetime as _dt
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from specsoil._atomic import atomic_directory
from specsoil._errors import SpecsoilError
from specsoil.data import SpectraTable
from specsoil.models._chains import fit_details
from specsoil.models._clip import ClipBounds, apply_clip, check_clip, clip_to_json
from specsoil.models._model_files import (
    check_manifest_fields,
    load_pipeline,
    read_manifest,
    read_npz,
)
from specsoil.models._recipes import make_recipe, recipe_preprocessing
from specsoil.models._uncertainty import (
    DEFAULT_CALIBRATION_FRACTION,
    DEFAULT_CONFORMAL_FOLDS,
    DEFAULT_DOMAIN_CONFIDENCE,
    MIN_DOMAIN_SAMPLES,
    ApplicabilityDomain,
    ConformalCalibration,
    DomainAssessment,
)
from specsoil.preprocess import Resample

logger = logging.getLogger(__name__)

# Bump when the directory layout or manifest keys change incompatibly; load() reads every
# version from MIN_FORMAT_VERSION up to this one. The conformal and domain files are optional
# additions (a directory without them loads and predicts), so they did not need a bump.
FORMAT_VERSION = 1
MIN_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PIPELINE_FILE = "pipeline.skops"
CONFORMAL_FILE = "conformal.npz"
DOMAIN_FILE = "domain.npz"
# CV+ keeps the fold models beside the full one: conformal_fold_0.skops, ...
FOLD_PIPELINE_FILE = "conformal_fold_{fold}.skops"
# "auto": CV+ for the classic recipes; none for CNNs, where CV+ would cost K more network
# trainings and split conformal would withhold data from the saved model, so users choose.
# None: no intervals.
ConformalOption = Literal["auto", "cv+", "split"]


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
        conformal: Held-out residuals for prediction intervals (None: trained without).
        fold_pipelines: For CV+ calibration, the K fitted fold pipelines.
        domain: The applicability domain of the training spectra (None: not available,
            e.g. streamed, fine-tuned or older models).
        clip: Bounds per target, ``{target: (low, high)}`` (None: open side), applied to
            predictions and interval ends; see :func:`specsoil.models.check_clip`.
    """

    name: str
    recipe: str
    preprocessing: list[dict[str, Any]]
    params: dict[str, Any]
    targets: list[str]
    wavelengths: NDArray[np.float64]
    pipeline: Pipeline
    training: dict[str, Any] = field(default_factory=dict)
    conformal: ConformalCalibration | None = None
    fold_pipelines: list[Pipeline] = field(default_factory=list)
    domain: ApplicabilityDomain | None = None
    clip: ClipBounds = field(default_factory=dict)

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
        conformal: ConformalOption | None = None,
        conformal_folds: int = DEFAULT_CONFORMAL_FOLDS,
        calibration_fraction: float = DEFAULT_CALIBRATION_FRACTION,
        clip: Mapping[str, tuple[float | None, float | None]] | None = None,
    ) -> SpectralModel:
        """Fit ``recipe`` on the spectra of ``table`` and return the bundled model.

        The applicability domain (see :mod:`specsoil.models._uncertainty`) is always fitted
        on every training spectrum, when there are at least 10.

        Args:
            table: Training spectra (absorbance) with the target columns.
            targets: Target columns; missing lab values (NaN) are skipped per target.
            recipe: A recipe from :func:`specsoil.models.list_recipes`.
            name: The model's name (default: the recipe).
            preprocessing: Steps replacing the recipe's default preprocessing.
            params: Estimator parameter overrides.
            random_state: Seed of the estimator and of the calibration split or folds.
            conformal: Calibrate prediction intervals: ``"cv+"`` (the model is fitted on
                every row, plus ``conformal_folds`` fold models whose held-out residuals
                calibrate; K extra fits), ``"split"`` (the model is fitted on all but
                ``calibration_fraction`` of the rows, which calibrate), ``"auto"`` (CV+
                for the classic recipes; none for CNN recipes, where CV+ means K extra
                network trainings and split withholds rows from the model, so ask for one
                explicitly) or None (no intervals).
            conformal_folds: K for CV+.
            calibration_fraction: Share of rows held out for split conformal.
            clip: Bounds ``{target: (low, high)}`` (None: open side) for targets that
                cannot leave a range; they bound predictions and interval ends, not the fit.

        Raises:
            SpecsoilError: For bad recipe parameters, an unknown conformal method, too
                few rows for the calibration asked for, or bad clip bounds.
        """
        bounds = check_clip(clip, list(targets))
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
        method = _resolve_conformal(conformal, pipeline)
        calibration: ConformalCalibration | None = None
        fold_pipelines: list[Pipeline] = []
        X = table.X
        if method == "split":
            fit_rows, calibration_rows = _split_rows(
                table.n_samples, calibration_fraction, random_state
            )
            pipeline.fit(X[fit_rows], Y[fit_rows])
            held_out = _predict_matrix(pipeline, X[calibration_rows], len(targets))
            calibration = ConformalCalibration.from_predictions(
                "split", list(targets), Y[calibration_rows], held_out
            )
        else:
            if method == "cv+":
                calibration, fold_pipelines = _cv_plus(
                    pipeline, X, Y, list(targets), conformal_folds, random_state
                )
            pipeline.fit(X, Y)
        summary = _training_summary(table, targets, Y)
        summary.update(_network_training(pipeline))
        if details := fit_details(pipeline):
            # What the training rows chose (chains per target, stack weights), lists in
            # target order, so the manifest says which preprocessing or member was used.
            summary["fit_details"] = details
        if calibration is not None:
            summary["conformal"] = {
                "method": calibration.method,
                "n_folds": calibration.n_folds,
                "n_calibration": calibration.n_calibration(),
            }
            if method == "split":
                summary["conformal"]["n_fit_rows"] = int(table.n_samples - len(calibration.folds))
        model = cls(
            name=name or recipe,
            recipe=recipe,
            preprocessing=steps,
            params=overrides,
            targets=list(targets),
            wavelengths=np.asarray(table.wavelengths, dtype=np.float64),
            pipeline=pipeline,
            training=summary,
            conformal=calibration,
            fold_pipelines=fold_pipelines,
            clip=bounds,
        )
        if table.n_samples >= MIN_DOMAIN_SAMPLES:
            model.domain = ApplicabilityDomain.fit(
                model.domain_features(X), random_state=random_state
            )
        else:
            logger.warning(
                "%d training spectra: too few for an applicability domain (needs %d)",
                table.n_samples,
                MIN_DOMAIN_SAMPLES,
            )
        return model

    def align(self, table: SpectraTable) -> NDArray[np.float32]:
        """Return ``table``'s spectra on the model's grid, resampling when the grids differ.

        Raises:
            SpecsoilError: If the table's range does not cover the model's range.
        """
        return align_spectra(table, self.wavelengths, model_name=self.name)

    def predict(self, table: SpectraTable) -> NDArray[np.float64]:
        """Predict every target for every spectrum; shape (n_samples, n_targets).

        Targets with :attr:`clip` bounds are clipped to them.
        """
        pred = _predict_matrix(self.pipeline, self.align(table), len(self.targets))
        return apply_clip(pred, self.clip, self.targets)

    def domain_features(self, aligned: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
        """Spectra on the model grid as the estimator sees them: the applicability-domain space.

        The pipeline's preprocessing steps in front of the final estimator (for the classic
        recipes the band averaging, derivative, SNV...); the aligned absorbance itself when
        the pipeline has none. Steps nested inside the final estimator (a CNN's spectrogram
        or channel stack) are left out: they add no information about the spectrum.
        """
        transforms = self.pipeline[:-1]
        raw = transforms.transform(aligned) if len(transforms) else aligned
        features: NDArray[np.float64] = np.asarray(raw, dtype=np.float64)
        return features.reshape(features.shape[0], -1)  # (n, n_features)

    def assess_domain(
        self, table: SpectraTable, *, confidence: float = DEFAULT_DOMAIN_CONFIDENCE
    ) -> DomainAssessment:
        """Hotelling's T², Q residual and the in-domain flag of every spectrum.

        Raises:
            SpecsoilError: If the model has no applicability domain (trained by an older
                specsoil, streamed or fine-tuned), or the spectra do not cover its grid.
        """
        if self.domain is None:
            raise SpecsoilError(
                f"model {self.name!r} has no applicability domain (streamed, fine-tuned or "
                "trained by an older specsoil); retrain it with specsoil train"
            )
        return self.domain.assess(self.domain_features(self.align(table)), confidence)

    def predict_interval(
        self, table: SpectraTable, confidence: float
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Point predictions and conformal bounds at ``confidence`` (e.g. 0.9).

        Returns:
            ``(prediction, lower, upper)``, each of shape (n_samples, n_targets).

        Raises:
            SpecsoilError: If the model was trained without conformal calibration.
        """
        if self.conformal is None:
            raise SpecsoilError(
                f"model {self.name!r} has no conformal calibration, so it cannot give "
                "prediction intervals; retrain it with specsoil train --conformal cv (or "
                "split)"
            )
        aligned = self.align(table)
        point = _predict_matrix(self.pipeline, aligned, len(self.targets))
        folds = None
        if self.conformal.method == "cv+":
            folds = np.stack(
                [_predict_matrix(p, aligned, len(self.targets)) for p in self.fold_pipelines]
            )  # (K, n, n_targets)
        lower, upper = self.conformal.interval(point, confidence, folds)
        # Clipped after the interval is formed, so a bound narrows it but never shifts it.
        return (
            apply_clip(point, self.clip, self.targets),
            apply_clip(lower, self.clip, self.targets),
            apply_clip(upper, self.clip, self.targets),
        )

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
            "files": self._files(),
            "applicability_domain": None if self.domain is None else self.domain.summary(),
            "clip": clip_to_json(self.clip),
        }

    def _files(self) -> dict[str, Any]:
        files: dict[str, Any] = {"pipeline": PIPELINE_FILE}
        if self.conformal is not None:
            files["conformal"] = CONFORMAL_FILE
            files["conformal_folds"] = [
                FOLD_PIPELINE_FILE.format(fold=k) for k in range(len(self.fold_pipelines))
            ]
        if self.domain is not None:
            files["domain"] = DOMAIN_FILE
        return files

    def save(self, directory: str | Path, *, extras: Callable[[Path], None] | None = None) -> Path:
        """Write the model directory atomically: ``manifest.json`` plus ``pipeline.skops``.

        Args:
            directory: The folder to write. An existing one is replaced only when it is
                empty or a specsoil model folder holding nothing but what specsoil wrote.
            extras: Called with the temporary folder before it is renamed into place, to
                add files (pictures, the run's settings) that must appear with the model.

        Returns:
            The folder written.

        Raises:
            SpecsoilError: If ``directory`` exists and may not be replaced.
        """
        import skops.io as sio  # imported here: it scans all of sklearn, ~2 s of start-up

        final = Path(directory)
        with atomic_directory(final, kind="model") as tmp:
            sio.dump(self.pipeline, tmp / PIPELINE_FILE)
            for k, fold_pipeline in enumerate(self.fold_pipelines):
                sio.dump(fold_pipeline, tmp / FOLD_PIPELINE_FILE.format(fold=k))
            if self.conformal is not None:
                _save_conformal(self.conformal, tmp / CONFORMAL_FILE)
            if self.domain is not None:
                _save_domain(self.domain, tmp / DOMAIN_FILE)
            text = json.dumps(self.manifest(), indent=2, allow_nan=False)
            (tmp / MANIFEST).write_text(text + "\n", encoding="utf-8")
            if extras is not None:
                extras(tmp)
        return final

    @classmethod
    def load(cls, directory: str | Path) -> SpectralModel:
        """Read a model directory written by :meth:`save`, running none of its content.

        Every file is read as data: the manifest's fields are checked, pipelines are built
        only from the types specsoil saves (``specsoil.models._trusted_types``) and arrays
        are read with pickling off.

        Raises:
            SpecsoilError: If the directory is not a specsoil model, was written by a newer
                format, has a damaged or edited manifest or file (named with the field at
                fault), or holds object types outside the allow-list (named).
        """
        root = Path(directory)
        manifest_path = root / MANIFEST
        if not manifest_path.is_file():
            raise SpecsoilError(f"{root}: not a specsoil model directory (no {MANIFEST})")
        manifest = read_manifest(manifest_path)
        check_format_version(
            manifest.get("format_version"),
            written_by=manifest.get("specsoil_version"),
            source=str(root),
        )
        check_manifest_fields(manifest, manifest_path)
        targets = list(manifest["targets"])
        wavelengths = np.asarray(manifest["wavelengths"], dtype=np.float64)
        clip = check_clip(manifest.get("clip"), targets, source=f"{manifest_path}: field 'clip'")
        files = manifest.get("files", {})
        pipeline = load_pipeline(root / files.get("pipeline", PIPELINE_FILE), manifest)
        _check_band_count(pipeline, wavelengths.size, manifest_path)
        conformal = None
        fold_pipelines: list[Pipeline] = []
        if "conformal" in files:
            conformal = _load_conformal(root / files["conformal"], targets)
            for fold_file in files.get("conformal_folds", []):
                fold_pipelines.append(load_pipeline(root / fold_file, manifest))
            if conformal.method == "cv+" and len(fold_pipelines) != conformal.n_folds:
                raise SpecsoilError(
                    f"{root}: CV+ calibration with {conformal.n_folds} folds but "
                    f"{len(fold_pipelines)} fold models are listed"
                )
        domain = _load_domain(root / files["domain"]) if "domain" in files else None
        return cls(
            name=manifest["name"],
            recipe=manifest["recipe"],
            preprocessing=manifest["preprocessing"],
            params=manifest["params"],
            targets=targets,
            wavelengths=wavelengths,
            pipeline=pipeline,
            training=manifest.get("training", {}),
            conformal=conformal,
            fold_pipelines=fold_pipelines,
            domain=domain,
            clip=clip,
        )


def _check_band_count(pipeline: Pipeline, n_bands: int, manifest_path: Path) -> None:
    """The manifest's grid must have as many bands as the pipeline was fitted on."""
    try:
        fitted = getattr(pipeline, "n_features_in_", None)
    except Exception:  # a first step without the attribute raises from the property
        fitted = None
    if isinstance(fitted, int) and fitted != n_bands:
        raise SpecsoilError(
            f"{manifest_path}: field 'wavelengths' lists {n_bands} bands but the fitted "
            f"pipeline takes {fitted}; the manifest was truncated or edited"
        )


def _resolve_conformal(option: ConformalOption | None, pipeline: Pipeline) -> str | None:
    """The calibration ``SpectralModel.fit`` runs: ``"cv+"``, ``"split"`` or None."""
    if option is None:
        return None
    if option == "auto":
        from specsoil.models._transfer import is_finetunable  # imports this module

        if is_finetunable(pipeline):
            logger.info(
                "no prediction intervals calibrated for this CNN: train with --conformal "
                "split or cv to get them (K extra trainings, or fewer training rows)"
            )
            return None
        return "cv+"
    if option not in ("cv+", "split"):
        raise SpecsoilError(f"conformal must be 'auto', 'cv+', 'split' or None; got {option!r}")
    return option


def _split_rows(
    n: int, fraction: float, random_state: int
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Shuffled (fit rows, calibration rows) for split conformal."""
    if not 0.0 < fraction < 1.0:
        raise SpecsoilError(f"calibration_fraction must be between 0 and 1; got {fraction}")
    n_calibration = round(n * fraction)
    if n_calibration < 1 or n - n_calibration < 2:
        raise SpecsoilError(
            f"split conformal with calibration_fraction={fraction} leaves {n_calibration} "
            f"calibration and {n - n_calibration} training rows of {n}; use more samples "
            "or --conformal cv"
        )
    order = np.random.default_rng(random_state).permutation(n)
    return np.sort(order[n_calibration:]), np.sort(order[:n_calibration])


def _cv_plus(
    pipeline: Pipeline,
    X: NDArray[np.float32],
    Y: NDArray[np.float64],
    targets: list[str],
    n_folds: int,
    random_state: int,
) -> tuple[ConformalCalibration, list[Pipeline]]:
    """Fit the K fold pipelines and calibrate CV+ on their held-out residuals."""
    from sklearn.model_selection import KFold

    n = X.shape[0]
    if n_folds < 2 or n_folds > n:
        raise SpecsoilError(
            f"CV+ needs between 2 and {n} folds (one per sample at most); got {n_folds}"
        )
    fold_of = np.empty(n, dtype=np.int64)
    held_out = np.empty((n, len(targets)))
    fold_pipelines: list[Pipeline] = []
    splitter = KFold(n_splits=n_folds, shuffle=True, random_state=random_state)
    for k, (fit_rows, test_rows) in enumerate(splitter.split(X)):
        logger.info("CV+ calibration: fitting fold model %d of %d", k + 1, n_folds)
        fold_pipeline = clone(pipeline)
        fold_pipeline.fit(X[fit_rows], Y[fit_rows])
        held_out[test_rows] = _predict_matrix(fold_pipeline, X[test_rows], len(targets))
        fold_of[test_rows] = k
        fold_pipelines.append(fold_pipeline)
    calibration = ConformalCalibration.from_predictions("cv+", targets, Y, held_out, fold_of)
    return calibration, fold_pipelines


def _predict_matrix(pipeline: Pipeline, X: NDArray[Any], n_targets: int) -> NDArray[np.float64]:
    """``pipeline.predict`` as a (n_samples, n_targets) float64 array.

    Raises:
        SpecsoilError: If the pipeline predicts another number of targets (an edited
            manifest's ``targets``).
    """
    pred = np.asarray(pipeline.predict(X), dtype=np.float64)
    if pred.size != X.shape[0] * n_targets:
        raise SpecsoilError(
            f"the fitted pipeline predicts {pred.size // max(X.shape[0], 1)} values per "
            f"spectrum but the manifest lists {n_targets} targets; was it edited?"
        )
    return pred.reshape(X.shape[0], n_targets)


# The calibration and domain arrays are stored as .npz, read with allow_pickle=False, so
# loading them never builds Python objects.
def _save_conformal(calibration: ConformalCalibration, path: Path) -> None:
    np.savez(
        path,
        method=np.array(calibration.method),
        residuals=calibration.residuals,
        folds=calibration.folds,
        n_folds=np.array(calibration.n_folds),
    )


def _load_conformal(path: Path, targets: Sequence[str]) -> ConformalCalibration:
    arrays = read_npz(path, ("method", "residuals", "folds", "n_folds"))
    method = str(arrays["method"])
    residuals = np.asarray(arrays["residuals"], dtype=np.float64)
    if method not in ("split", "cv+") or residuals.ndim != 2 or residuals.shape[1] != len(targets):
        raise SpecsoilError(
            f"{path}: not a conformal calibration for targets {list(targets)} (method "
            f"{method!r}, residuals of shape {residuals.shape})"
        )
    folds = np.asarray(arrays["folds"], dtype=np.int64)
    n_folds = int(arrays["n_folds"])
    # interval() indexes the fold models by these ids: a mismatch would fail there, unexplained.
    if folds.shape != (residuals.shape[0],) or (
        folds.size and (folds.min() < 0 or folds.max() >= n_folds)
    ):
        raise SpecsoilError(
            f"{path}: fold ids of shape {folds.shape} (range {folds.min(initial=0)}.."
            f"{folds.max(initial=0)}) do not match {residuals.shape[0]} residual rows and "
            f"{n_folds} folds"
        )
    return ConformalCalibration(
        method="split" if method == "split" else "cv+",
        targets=tuple(targets),
        residuals=residuals,
        folds=folds,
        n_folds=n_folds,
    )


def _save_domain(domain: ApplicabilityDomain, path: Path) -> None:
    np.savez(
        path,
        mean=domain.mean,
        components=domain.components,
        score_variances=domain.score_variances,
        explained_variance=np.array(domain.explained_variance),
        reference_t2=domain.reference_t2,
        reference_q=domain.reference_q,
    )


def _load_domain(path: Path) -> ApplicabilityDomain:
    keys = (
        "mean",
        "components",
        "score_variances",
        "explained_variance",
        "reference_t2",
        "reference_q",
    )
    arrays = read_npz(path, keys)
    mean = np.asarray(arrays["mean"], dtype=np.float64)
    components = np.asarray(arrays["components"], dtype=np.float64)
    score_variances = np.asarray(arrays["score_variances"], dtype=np.float64)
    if (
        mean.ndim != 1
        or components.ndim != 2
        or components.shape[1] != mean.size
        or score_variances.shape != (components.shape[0],)
    ):
        raise SpecsoilError(
            f"{path}: inconsistent PCA arrays (mean {mean.shape}, components "
            f"{components.shape}, score variances {score_variances.shape})"
        )
    return ApplicabilityDomain(
        mean=mean,
        components=components,
        score_variances=score_variances,
        explained_variance=float(arrays["explained_variance"]),
        reference_t2=np.asarray(arrays["reference_t2"], dtype=np.float64),
        reference_q=np.asarray(arrays["reference_q"], dtype=np.float64),
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


def _network_training(pipeline: Any) -> dict[str, Any]:
    """For a network recipe, the epochs kept and the schedule trained with (CNNRegressor)."""
    final = pipeline
    while isinstance(final, Pipeline):
        final = final[-1]
    if not hasattr(final, "schedule_"):
        return {}
    return {"network": {"best_epoch": final.best_epoch_, "schedule": final.schedule_}}


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
