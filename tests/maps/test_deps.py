import sys

import pytest

from specsoil._errors import SpecsoilError
from specsoil.maps._deps import require_maps_module


def test_returns_the_module_when_installed():
    assert require_maps_module("json", "anything") is sys.modules["json"]


def test_missing_library_names_what_needs_it_and_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "rasterio", None)  # None in sys.modules: ImportError
    with pytest.raises(SpecsoilError, match=r"GeoTIFF output needs rasterio.*specsoil\[maps\]"):
        require_maps_module("rasterio", "GeoTIFF output")
