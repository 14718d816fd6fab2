"""Portable models: export a fitted CNN with its preprocessing to ONNX, and run it anywhere.

:func:`export_onnx` (needs the ``export`` extra: torch, onnx, onnxscript) writes one
``.onnx`` file whose graph maps raw absorbance spectra on the model's grid to its
properties. :class:`OnnxModel` runs such a file with onnxruntime and numpy only (the
``onnx`` extra), so field laptops and servers can predict without torch::

    from specsoil.export import OnnxModel, export_onnx

    export_onnx(SpectralModel.load("models/cnn1d"), "cnn1d.onnx")
    predictions = OnnxModel.load("cnn1d.onnx").predict(table)

Importing this package does not import torch or onnxruntime.
"""

from specsoil.export._metadata import ONNX_FORMAT_VERSION
from specsoil.export._onnx import export_onnx, onnx_manifest
from specsoil.export._runtime import OnnxModel, require_onnxruntime

__all__ = [
    "ONNX_FORMAT_VERSION",
    "OnnxModel",
    "export_onnx",
    "onnx_manifest",
    "require_onnxruntime",
]
