"""Neural networks for spectra and spectrograms (needs torch: ``specsoil[cnn]``).

Convolutional families, plus recurrent (``lstm1d``, ``gru1d``) and attention
(``transformer1d``) networks over the band sequence.

Networks are built from :class:`ConvBlock` and :class:`Head` specs, checked by shape
inference before any layer exists, and registered by name::

    from specsoil.nets import create_model, format_shape_report, list_models, shape_report

    model = create_model("seed_cnn", n_outputs=2, input_shape=(1, 20))
    print(format_shape_report(shape_report(model, band_step=10.0)))

Every model is a :class:`SpectralCNN`: ``forward(x) -> (N, n_outputs)``,
``forward_features``/``forward_head``, ``reset_head`` and ``config()``, with
``create_model(**model.config())`` rebuilding the same architecture. This is the only
layer that imports torch at import time; the training engine (``specsoil.train``) builds
on it.
"""

from specsoil.nets import _families, _sequence
from specsoil.nets._base import ConvNet, SpectralCNN
from specsoil.nets._blocks import (
    ACTIVATIONS,
    BATCHNORM_PLACEMENTS,
    HEAD_POOLINGS,
    PADDING_MODES,
    POOLS,
    ConvBlock,
    Head,
    conv_block_output_shape,
)
from specsoil.nets._families import TwoBranchCNN
from specsoil.nets._layers import STFT, InceptionModule, ResidualBlock
from specsoil.nets._registry import (
    ModelInfo,
    create_model,
    describe_model,
    input_shape_for,
    list_models,
    register_model,
)
from specsoil.nets._report import (
    LayerRow,
    ReceptiveField,
    TracedLayer,
    format_shape_report,
    shape_report,
    trace_fields,
)
from specsoil.nets._sequence import RecurrentNet, TransformerNet

del _families, _sequence  # imported for their registrations

__all__ = [
    "ACTIVATIONS",
    "BATCHNORM_PLACEMENTS",
    "HEAD_POOLINGS",
    "PADDING_MODES",
    "POOLS",
    "STFT",
    "ConvBlock",
    "ConvNet",
    "Head",
    "InceptionModule",
    "LayerRow",
    "ModelInfo",
    "ReceptiveField",
    "RecurrentNet",
    "ResidualBlock",
    "SpectralCNN",
    "TracedLayer",
    "TransformerNet",
    "TwoBranchCNN",
    "conv_block_output_shape",
    "create_model",
    "describe_model",
    "format_shape_report",
    "input_shape_for",
    "list_models",
    "register_model",
    "shape_report",
    "trace_fields",
]
