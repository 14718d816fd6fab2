"""What an exported ONNX file carries besides its graph: names, grid and a format version.

Shared by the exporter (needs torch) and the runtime (needs only onnxruntime), so neither
imports the other.
"""

from __future__ import annotations

# Bump when the graph's inputs/outputs or the metadata keys change incompatibly; the runtime
# reads every version from ONNX_MIN_FORMAT_VERSION up to this one.
ONNX_FORMAT_VERSION = 1
ONNX_MIN_FORMAT_VERSION = 1
# The key of the JSON manifest in the ONNX model's metadata_props.
METADATA_KEY = "specsoil"
INPUT_NAME = "spectra"
OUTPUT_NAME = "properties"
