"""Which columns hold spectra: naming schemes, metadata look-alikes, duplicates."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from specsoil import SpecsoilError
from specsoil.data import find_spectral_columns

WAVELENGTHS = [400.0, 400.5, 401.0, 1500.0, 2499.5]
METADATA = ["sample_id", "GPS_LAT", "GPS_LONG", "pH.in.CaCl2", "pH.in.H2O", "X", "Y"]
METADATA += ["Layer_2020", "CaCO3", "OC", "depth_10"]


def _name(template: str, wavelength: float) -> str:
    return template.format(w=f"{wavelength:g}")


class TestFindSpectralColumns:
    @pytest.mark.parametrize(
        "template",
        [
            *["{w}", "X{w}", "x{w}", "spc.{w}", "nm_{w}", "wl_{w}", "wl{w}", "{w}nm", "{w} nm"],
            *["refl-{w}", "spec_refl_{w}"],
        ],
    )
    def test_naming_schemes_among_metadata(self, template):
        spectral = [_name(template, w) for w in WAVELENGTHS]
        # Metadata before, between and after the spectra.
        columns = METADATA[:3] + spectral[:2] + METADATA[3:8] + spectral[2:] + METADATA[8:]
        names, wavelengths = find_spectral_columns(columns)
        assert names == spectral
        assert wavelengths.dtype == np.float64
        assert_array_equal(wavelengths, WAVELENGTHS)

    def test_lucas_layout(self):
        grid = 400 + 0.5 * np.arange(4200)
        spectral = [f"spc.{w:g}" for w in grid]
        lab = ["coarse", "clay", "silt", "sand", "pH.in.CaCl2", "pH.in.H2O", "OC", "CaCO3"]
        names, wavelengths = find_spectral_columns(
            ["POINT_ID", "GPS_LAT", "GPS_LONG", *lab, *spectral]
        )
        assert names == spectral
        assert wavelengths[0] == 400.0
        assert wavelengths[-1] == 2499.5
        assert_array_equal(wavelengths, grid)

    def test_r_make_names_mixes_with_bare_numbers(self):
        # R's make.names prefixes X to names starting with a digit: X400 is the band 400.
        names, wavelengths = find_spectral_columns(["id", "400", "X401", "402", "X403.5"])
        assert names == ["400", "X401", "402", "X403.5"]
        assert_array_equal(wavelengths, [400, 401, 402, 403.5])

    def test_file_order_is_kept(self):
        columns = ["id", "2500", "1200", "350", "800"]
        names, wavelengths = find_spectral_columns(columns)
        assert names == ["2500", "1200", "350", "800"]
        assert_array_equal(wavelengths, [2500, 1200, 350, 800])

    def test_largest_group_wins(self):
        spectra = [f"spc.{w}" for w in range(1000, 1010)]
        decoys = ["wl_500", "wl_600", "wl_700", "year_2019", "year_2020"]
        names, _ = find_spectral_columns(decoys[:2] + spectra + decoys[2:])
        assert names == spectra

    def test_two_numbered_columns_are_metadata(self):
        with pytest.raises(SpecsoilError, match="no spectral columns"):
            find_spectral_columns(["id", "year_2019", "year_2020", "sample_1"])

    def test_implausible_wavelengths_are_not_bands(self):
        with pytest.raises(SpecsoilError, match="no spectral columns"):
            find_spectral_columns(["B1", "B2", "B3", "B4", "50", "60", "70", "40000"])

    @pytest.mark.parametrize(
        ("columns", "first", "second"),
        [
            (["id", "400", "X400.0", "401", "402"], "'400'", "'X400.0'"),
            (["spc.400", "spc.401", "spc.400", "spc.402"], "'spc.400'", "'spc.400'"),
            (["nm_400", "nm_400.0", "nm_401"], "'nm_400'", "'nm_400.0'"),
        ],
    )
    def test_duplicate_wavelengths_name_both_columns(self, columns, first, second):
        with pytest.raises(SpecsoilError, match=f"{first} and {second} both hold 400 nm"):
            find_spectral_columns(columns)

    def test_no_spectral_columns_lists_columns_and_patterns(self):
        with pytest.raises(SpecsoilError) as info:
            find_spectral_columns(["sample_id", "clay", "sand", "OC", "pH.in.H2O"])
        message = str(info.value)
        assert "'sample_id'" in message
        assert "'pH.in.H2O'" in message
        assert "spc.400.5" in message
        assert "X400" in message

    def test_equal_groups_are_ambiguous(self):
        columns = ["vis_400", "vis_500", "vis_600", "nir_400", "nir_500", "nir_600"]
        with pytest.raises(SpecsoilError, match="ambiguous spectral columns: 2 candidate blocks"):
            find_spectral_columns(columns)
