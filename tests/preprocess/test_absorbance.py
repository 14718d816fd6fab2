import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from specsoil._errors import SpecsoilError
from specsoil.preprocess import AbsorbanceTransform


class TestAbsorbanceTransform:
    def test_reflectance_becomes_log10_of_inverse(self, geeves_reflectance):
        R, _ = geeves_reflectance
        out = AbsorbanceTransform().fit_transform(R)
        assert out.dtype == np.float64
        # float32 maths in the data layer: agree to float32 precision.
        assert_allclose(out, np.log10(1.0 / R), rtol=2e-6, atol=1e-7)

    def test_percent_reflectance_is_divided_by_100_first(self, geeves_reflectance):
        R, _ = geeves_reflectance
        from_percent = AbsorbanceTransform(kind="reflectance-percent").fit_transform(100 * R)
        assert_allclose(from_percent, np.log10(1.0 / R), rtol=2e-6, atol=1e-6)

    def test_absorbance_passes_through(self, geeves_absorbance):
        A, _ = geeves_absorbance
        A32 = A.astype(np.float32)  # the value set the data layer keeps, so the copy is exact
        out = AbsorbanceTransform(kind="absorbance").fit_transform(A32)
        np.testing.assert_array_equal(out, A32.astype(np.float64))

    @pytest.mark.parametrize("kind", ["reflectance", "reflectance-percent"])
    @pytest.mark.parametrize("bad", [0.0, -0.01])
    def test_non_positive_reflectance_names_the_column(self, kind, bad):
        R = np.full((4, 6), 0.5)
        transformer = AbsorbanceTransform(kind=kind).fit(R)
        R[2, 3] = bad
        with pytest.raises(
            SpecsoilError, match=rf"column 3, row 2 holds {bad:g}; {kind} values must be > 0"
        ):
            transformer.transform(R)
        with pytest.raises(ValueError, match="column 3"):
            AbsorbanceTransform(kind=kind).fit(R)

    def test_column_name_is_given_for_dataframes(self):
        frame = pd.DataFrame(np.full((2, 3), 0.4), columns=["400", "410", "420"])
        frame.iloc[1, 2] = 0.0
        with pytest.raises(SpecsoilError, match=r"column 2 \(420\)"):
            AbsorbanceTransform().fit(frame)

    def test_negative_absorbance_is_fine(self):
        A = np.array([[-0.02, 0.5, 1.2]])
        assert_allclose(AbsorbanceTransform(kind="absorbance").fit_transform(A), A, rtol=1e-7)

    def test_unknown_kind_is_rejected(self):
        with pytest.raises(ValueError, match=r"kind must be one of \['reflectance'"):
            AbsorbanceTransform(kind="transmittance").fit(np.ones((2, 3)))

    @pytest.mark.parametrize(
        ("kind", "positive_only"), [("reflectance", True), ("absorbance", False)]
    )
    def test_declares_positive_input(self, kind, positive_only):
        assert (
            AbsorbanceTransform(kind=kind).__sklearn_tags__().input_tags.positive_only
            is positive_only
        )
