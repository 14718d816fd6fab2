"""Predict with an exported ONNX model using onnxruntime and numpy only (no torch)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from specsoil._errors import SpecsoilError
from specsoil.data import SpectraTable
from specsoil.export._metadata import (
    INPUT_NAME,
    METADATA_KEY,
    ONNX_FORMAT_VERSION,
    ONNX_MIN_FORMAT_VERSION,
    OUTPUT_NAME,
)
from specsoil.models import (
    ClipBounds,
    align_spectra,
    apply_clip,
    check_clip,
    check_format_version,
    check_manifest_fields,
)

logger = logging.getLogger(__name__)

# Rows per onnxruntime call: large enough to amortise the call, small enough that a
# LUCAS-width batch (4,200 bands, float64 inside the graph) stays within ~100 MB.
DEFAULT_BATCH_SIZE = 2048


def require_onnxruntime(what: str) -> Any:
    """Import and return onnxruntime, or raise a clear error naming the extra to install.

    Args:
        what: The action that needs it, for the message.

    Raises:
        SpecsoilError: If onnxruntime is not installed.
    """
    try:
        import onnxruntime
    except ImportError as exc:
        raise SpecsoilError(
            f"{what} needs onnxruntime, which is not installed; install it with: "
            "pip install 'specsoil[onnx]'"
        ) from exc
    return onnxruntime


@dataclass(frozen=True, eq=False)
class OnnxModel:
    """An exported specsoil model (``specsoil export``), run with onnxruntime.

    Attributes:
        path: The ``.onnx`` file.
        name: Model name, as in the model directory it was exported from.
        recipe: The recipe the model comes from.
        targets: Names of the predicted properties, in output column order.
        wavelengths: The model's grid in nm; spectra are aligned onto it as
            :meth:`specsoil.models.SpectralModel.align` does.
        manifest: The whole JSON manifest stored in the file.
        clip: Bounds per target from the model directory (``--clip`` at train), applied
            to the graph's outputs; an empty dict when there are none.
    """

    path: Path
    name: str
    recipe: str
    targets: list[str]
    wavelengths: NDArray[np.float64]
    manifest: dict[str, Any]
    _session: Any = field(repr=False)
    clip: ClipBounds = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path, *, num_threads: int | None = None) -> OnnxModel:
        """Open an ONNX file written by :func:`specsoil.export.export_onnx`.

        Args:
            path: The ``.onnx`` file.
            num_threads: onnxruntime intra-op threads; None for its default (all cores).

        Returns:
            The model, ready to predict.

        Raises:
            SpecsoilError: If onnxruntime is missing, the file is missing or not an ONNX
                model, was not exported by specsoil, or has a newer export format.
        """
        ort = require_onnxruntime("running an exported ONNX model")
        source = Path(path)
        if not source.is_file():
            raise SpecsoilError(f"{source}: no such ONNX file")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: no graph-optimisation chatter
        if num_threads is not None:
            options.intra_op_num_threads = int(num_threads)
        try:
            session = ort.InferenceSession(
                str(source), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SpecsoilError(f"{source}: not a readable ONNX model ({message})") from None
        manifest = _read_manifest(session, source)
        targets = manifest["targets"]
        wavelengths = np.asarray(manifest["wavelengths"], dtype=np.float64)
        _check_signature(session, source, n_bands=wavelengths.size, n_targets=len(targets))
        # Older exports have no clip field: no bounds.
        clip = check_clip(manifest.get("clip"), targets, source=f"{source}: metadata 'clip'")
        return cls(
            path=source,
            name=str(manifest["name"]),
            recipe=str(manifest.get("recipe", "?")),
            targets=[str(t) for t in targets],
            wavelengths=wavelengths,
            manifest=manifest,
            _session=session,
            clip=clip,
        )

    def predict_array(
        self, X: ArrayLike, *, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> NDArray[np.float64]:
        """Predict from absorbance spectra already on :attr:`wavelengths`.

        Args:
            X: Spectra, shape (n_samples, len(wavelengths)).
            batch_size: Rows per onnxruntime call.

        Returns:
            Predictions, float64, shape (n_samples, n_targets), clipped to :attr:`clip`.

        Raises:
            SpecsoilError: If X does not have one column per model wavelength.
        """
        spectra = np.asarray(X, dtype=np.float32)
        if spectra.ndim != 2 or spectra.shape[1] != self.wavelengths.size:
            raise SpecsoilError(
                f"model {self.name!r} takes spectra of shape (n, {self.wavelengths.size}); "
                f"got {spectra.shape}"
            )
        if batch_size < 1:
            raise SpecsoilError(f"batch_size must be >= 1; got {batch_size}")
        out = np.empty((spectra.shape[0], len(self.targets)), dtype=np.float64)
        for start in range(0, spectra.shape[0], batch_size):
            chunk = np.ascontiguousarray(spectra[start : start + batch_size])
            (pred,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: chunk})
            out[start : start + chunk.shape[0]] = pred
        return apply_clip(out, self.clip, self.targets)

    def predict(
        self, table: SpectraTable, *, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> NDArray[np.float64]:
        """Predict every target for every spectrum of ``table``; shape (n_samples, n_targets).

        Raises:
            SpecsoilError: If the table's range does not cover the model's grid.
        """
        aligned = align_spectra(table, self.wavelengths, model_name=self.name)
        return self.predict_array(aligned, batch_size=batch_size)


def _read_manifest(session: Any, source: Path) -> dict[str, Any]:
    """The specsoil manifest in the model's metadata, checked."""
    custom = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in custom:
        raise SpecsoilError(
            f"{source}: an ONNX model, but not one exported by specsoil (no {METADATA_KEY!r} "
            "metadata); export models with: specsoil export --model MODEL_DIR --format onnx"
        )
    try:
        manifest = json.loads(custom[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise SpecsoilError(f"{source}: the specsoil metadata is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise SpecsoilError(f"{source}: the specsoil metadata is not a JSON object")
    check_format_version(
        manifest.get("format_version"),
        written_by=manifest.get("specsoil_version"),
        source=str(source),
        current=ONNX_FORMAT_VERSION,
        oldest=ONNX_MIN_FORMAT_VERSION,
        what="ONNX export",
    )
    check_manifest_fields(
        manifest, f"{source}: the specsoil metadata", required=("name", "targets", "wavelengths")
    )
    return manifest


def _check_signature(session: Any, source: Path, *, n_bands: int, n_targets: int) -> None:
    """The graph takes ``spectra`` (N, n_bands) and returns ``properties`` (N, n_targets)."""
    inputs = {node.name: node.shape for node in session.get_inputs()}
    outputs = {node.name: node.shape for node in session.get_outputs()}
    if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
        raise SpecsoilError(
            f"{source}: expected input {INPUT_NAME!r} and output {OUTPUT_NAME!r}; the graph "
            f"has inputs {sorted(inputs)} and outputs {sorted(outputs)}"
        )
    width = inputs[INPUT_NAME][-1]
    if isinstance(width, int) and width != n_bands:
        raise SpecsoilError(
            f"{source}: the graph takes {width} bands but its metadata lists {n_bands} wavelengths"
        )
    columns = outputs[OUTPUT_NAME][-1]
    if isinstance(columns, int) and columns != n_targets:
        raise SpecsoilError(
            f"{source}: the graph returns {columns} properties but its metadata lists "
            f"{n_targets} targets"
        )
