"""Which columns hold spectra: naming schemes, metadata look-alikes, duplicates."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

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


GEEVES_GRID = [float(w) for w in range(350, 2501, 10)]


class TestBlocks:
    def test_counter_columns_do_not_beat_the_spectra(self):
        # The issue: 10,000 metadata columns c0 ... c9999 were taken as 9,900 bands.
        spectral = [f"{w:g}" for w in GEEVES_GRID]
        counter = [f"c{i}" for i in range(10000)]
        names, wavelengths = find_spectral_columns(["sample_id", *spectral, *counter])
        assert names == spectral
        assert_array_equal(wavelengths, GEEVES_GRID)

    def test_counter_alone_is_explained(self):
        with pytest.raises(SpecsoilError, match=r"'c0' … 'c999'.*numbered like a counter"):
            find_spectral_columns(["id", *[f"c{i}" for i in range(1000)]])

    def test_stray_small_numbers_stay_metadata(self):
        spectral = [f"{w:g}" for w in GEEVES_GRID]
        names, _ = find_spectral_columns(["1", "2", *spectral])
        assert names == spectral

    @pytest.mark.parametrize("template", ["{w}", "X{w}", "spc.{w}", "{w}um"])
    def test_micrometres_are_converted(self, template, caplog):
        micrometres = [round(0.35 + 0.01 * i, 2) for i in range(216)]  # 0.35 ... 2.5
        columns = ["id", *[template.format(w=f"{w:g}") for w in micrometres], "clay"]
        with caplog.at_level("INFO", logger="specsoil"):
            names, wavelengths = find_spectral_columns(columns)
        assert names == columns[1:-1]
        assert_allclose(wavelengths, GEEVES_GRID)
        assert "µm; converted to nm" in caplog.text

    def test_integer_metadata_is_not_micrometres(self):
        with pytest.raises(SpecsoilError, match="no spectral columns"):
            find_spectral_columns(["id", "X1", "X2", "X3", "X4"])

    def test_ambiguity_lists_the_candidates(self):
        vnir = [f"vnir_{w:g}" for w in GEEVES_GRID]
        other = [f"refl_{w:g}" for w in GEEVES_GRID[:150]]
        with pytest.raises(SpecsoilError) as info:
            find_spectral_columns(["id", *vnir, *other])
        message = str(info.value)
        assert "ambiguous spectral columns: 2 candidate blocks" in message
        assert "'vnir_350' … 'vnir_2500' (216 columns, 350-2500 nm" in message
        assert "'refl_350' … 'refl_1840' (150 columns" in message
        assert "--spectral-columns" in message

    def test_a_much_smaller_block_is_not_ambiguous(self):
        vnir = [f"vnir_{w:g}" for w in GEEVES_GRID]
        names, _ = find_spectral_columns(["wl_500", "wl_600", "wl_700", *vnir])
        assert names == vnir


class TestPattern:
    def test_regex_settles_ambiguity(self):
        vnir = [f"vnir_{w:g}" for w in GEEVES_GRID]
        other = [f"refl_{w:g}" for w in GEEVES_GRID[:150]]
        names, wavelengths = find_spectral_columns(["id", *vnir, *other], pattern="^refl_")
        assert names == other
        assert_array_equal(wavelengths, GEEVES_GRID[:150])

    def test_regex_group_holds_the_wavelength(self):
        columns = ["id", "band3_at_400", "band4_at_500", "band5_at_600"]
        names, wavelengths = find_spectral_columns(columns, pattern=r"_at_(\d+)$")
        assert names == columns[1:]
        assert_array_equal(wavelengths, [400, 500, 600])

    def test_regex_in_micrometres(self):
        _, wavelengths = find_spectral_columns(["a", "0.4", "0.5"], pattern=r"^\d\.")
        assert_array_equal(wavelengths, [400, 500])

    @pytest.mark.parametrize(
        ("pattern", "message"),
        [
            ("^nope", r"no column matches spectral_columns '\^nope'"),
            ("[", "is not a valid regular expression"),
            ("^(id|spc)", "column 'id' matches spectral_columns .* holds no wavelength"),
            ("^c", "column 'c5' matches .* 5 is not a wavelength"),
        ],
    )
    def test_regex_errors(self, pattern, message):
        with pytest.raises(SpecsoilError, match=message):
            find_spectral_columns(["id", "c5", "spc.400", "spc.500"], pattern=pattern)


def test_uv_start_below_200_nm_is_not_a_counter():
    # UV-vis-NIR spectrophotometers start near 190 nm.
    spectral = [f"{w}" for w in range(190, 1101)]
    names, wavelengths = find_spectral_columns(["id", *spectral])
    assert names == spectral
    assert wavelengths[0] == 190
