"""The optional mapping libraries, imported on first use with one clear error when missing."""

from __future__ import annotations

import importlib
from typing import Any

from specsoil._errors import SpecsoilError


def require_maps_module(module: str, what: str) -> Any:
    """Import ``module`` (a maps-extra library) or say which extra installs it.

    Args:
        module: Dotted module name, e.g. ``"rasterio"`` or ``"shapely.ops"``.
        what: What needs it, for the message (e.g. ``"GeoTIFF output"``).

    Returns:
        The imported module.

    Raises:
        SpecsoilError: If it is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise SpecsoilError(
            f"{what} needs {module.split('.')[0]}, which is not installed; install the maps "
            "extra: pip install 'specsoil[maps]'"
        ) from None
