"""Export a fitted CNN (or linear) model, preprocessing included, to one ONNX file."""

from __future__ import annotations

import contextlib
import datetime as _dt
import io
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from specsoil._atomic import atomic_path
from specsoil._errors import SpecsoilError
from specsoil.export._metadata import INPUT_NAME, METADATA_KEY, ONNX_FORMAT_VERSION, OUTPUT_NAME
from specsoil.models import FORMAT_VERSION, SpectralModel, clip_to_json
from specsoil.train import require_torch

logger = logging.getLogger(__name__)

# Rows of the example input the graph is traced with; the batch axis stays dynamic.
_EXAMPLE_ROWS = 4


def _require_exporter() -> None:
    """Raise a clear error when torch or the ONNX writer packages are missing."""
    require_torch("exporting a model to ONNX")
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise SpecsoilError(
            f"exporting a model to ONNX needs onnx and onnxscript ({exc.name} is missing); "
            "install them with: pip install 'specsoil[export]'"
        ) from exc


def onnx_manifest(model: SpectralModel) -> dict[str, Any]:
    """The JSON manifest stored in an exported file's metadata (``metadata_props``).

    Args:
        model: The exported model.

    Returns:
        JSON-ready data: the export format version, specsoil version, name, recipe, targets,
        input grid, spectra kind, the graph's input and output names, the model
        directory's preprocessing, parameters and training summary, and its clip bounds
        (applied by :class:`specsoil.export.OnnxModel`, not by the graph).
    """
    from specsoil import __version__

    return {
        "format_version": ONNX_FORMAT_VERSION,
        "specsoil_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "name": model.name,
        "recipe": model.recipe,
        "targets": list(model.targets),
        "wavelengths": [float(w) for w in model.wavelengths],
        "spectra_kind": "absorbance",
        "input": INPUT_NAME,
        "output": OUTPUT_NAME,
        "model_format_version": FORMAT_VERSION,
        "preprocessing": model.preprocessing,
        "params": model.params,
        "training": model.training,
        "clip": clip_to_json(model.clip),
    }


def export_onnx(model: SpectralModel, path: str | Path, *, opset: int | None = None) -> Path:
    """Write ``model`` as an ONNX graph from raw spectra on its grid to its properties.

    The graph takes ``spectra``, float32 absorbance of shape (N, len(model.wavelengths)),
    any N, and returns ``properties``, float32 of shape (N, len(model.targets)) in the
    targets' units: the fitted preprocessing (as fixed float64 operations), the network(s)
    (ensembles averaged) and the target de-standardisation. Spectra on another grid must
    be resampled onto ``model.wavelengths`` first, as :class:`specsoil.export.OnnxModel`
    does. The metadata holds :func:`onnx_manifest` as JSON under the key ``specsoil``.

    Args:
        model: A fitted CNN model (recipes ``cnn1d``, ``seed_cnn``, ``cnn2d``, ``cnn1d2d`` or
            variants of them), or a model that is linear as a whole (``plsr``), which is
            written as one matrix.
        path: The ``.onnx`` file to write (atomically).
        opset: ONNX opset version; None for the exporter's default.

    Returns:
        The path written.

    Raises:
        SpecsoilError: If torch or the ONNX packages are missing, the model is neither a
            CNN nor linear, or a preprocessing step has no exportable equivalent.
    """
    _require_exporter()
    import onnx
    import torch

    from specsoil.export._graph import build_module

    n_bands = int(model.wavelengths.size)
    module = build_module(model.pipeline, n_bands, model_name=model.name)
    example = torch.from_numpy(_example_spectra(model))
    batch = torch.export.Dim("batch", min=1)
    kwargs: dict[str, Any] = {} if opset is None else {"opset_version": int(opset)}
    # The exporter reports progress on stdout and warns about optional torchvision ops.
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        _quiet_loggers("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "onnx_ir"),
        torch.inference_mode(False),
        torch.no_grad(),
    ):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module,
            (example,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes={"spectra": {0: batch}},
            verbose=False,
            **kwargs,
        )
    if program is None:  # only the legacy exporter returns None
        raise RuntimeError("torch.onnx.export(dynamo=True) returned no program")
    proto = program.model_proto
    text = json.dumps(onnx_manifest(model), allow_nan=False)
    onnx.helper.set_model_props(proto, {METADATA_KEY: text})
    proto.doc_string = f"specsoil model {model.name!r} ({model.recipe}): spectra to properties"
    final = Path(path)
    with atomic_path(final) as tmp:
        onnx.save_model(proto, str(tmp))
    logger.debug("exported %r (%d bands -> %s) to %s", model.name, n_bands, model.targets, final)
    return final


def _example_spectra(model: SpectralModel) -> Any:
    """Absorbance-like float32 rows to trace the graph with (values do not matter)."""
    rng = np.random.default_rng(0)
    grid = np.linspace(0.0, 1.0, model.wavelengths.size)
    rows = 0.5 + 0.2 * np.sin(6 * grid) + rng.normal(0, 0.01, (_EXAMPLE_ROWS, grid.size))
    return np.ascontiguousarray(rows, dtype=np.float32)


@contextlib.contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    """Raise the given loggers to ERROR for the duration of the block."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.setLevel(level)
