"""specsoil: soil spectra to soil properties and soil maps.

Classic chemometric models and CNNs under one leak-free evaluation protocol.
"""

from specsoil._errors import SpecsoilError
from specsoil.data import SpectraTable, list_datasets, load_dataset, read_spectra

__version__ = "0.1.0"

__all__ = [
    "SpecsoilError",
    "SpectraTable",
    "__version__",
    "list_datasets",
    "load_dataset",
    "read_spectra",
]
