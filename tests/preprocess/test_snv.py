import numpy as np
import pytest
from numpy.testing import assert_allclose

from specsoil.preprocess import StandardNormalVariate


class TestStandardNormalVariate:
    def test_matches_golden_values(self, reference_input, read_reference):
        X, _ = reference_input
        expected, _ = read_reference("preprocess_snv.csv")
        assert_allclose(StandardNormalVariate().fit_transform(X), expected, rtol=1e-12, atol=1e-12)

    def test_rows_have_zero_mean_and_unit_sample_std(self, geeves_absorbance):
        X, _ = geeves_absorbance
        out = StandardNormalVariate().fit_transform(X)
        assert_allclose(out.mean(axis=1), 0.0, atol=1e-12)
        assert_allclose(out.std(axis=1, ddof=1), 1.0, rtol=1e-12)

    @pytest.mark.parametrize(("offset", "scale"), [(0.0, 2.0), (-0.3, 0.5), (5.0, 17.0)])
    def test_removes_additive_and_multiplicative_effects(self, geeves_absorbance, offset, scale):
        X, _ = geeves_absorbance
        snv = StandardNormalVariate().fit(X)
        assert_allclose(snv.transform(offset + scale * X), snv.transform(X), atol=1e-10)

    def test_is_row_wise_and_ignores_training_data(self, geeves_absorbance):
        X, _ = geeves_absorbance
        out_all = StandardNormalVariate().fit(X[:5]).transform(X)
        out_one = StandardNormalVariate().fit(X[20:]).transform(X[3:4])
        assert_allclose(out_all[3:4], out_one)

    def test_returns_float64_and_keeps_input(self, geeves_absorbance):
        X = geeves_absorbance[0].astype(np.float32)
        before = X.copy()
        out = StandardNormalVariate().fit_transform(X)
        assert out.dtype == np.float64
        np.testing.assert_array_equal(X, before)

    def test_constant_spectrum_becomes_zeros_with_warning(self, geeves_absorbance):
        X = geeves_absorbance[0][:4].copy()
        X[2] = 0.7
        with pytest.warns(UserWarning, match="row 2"):
            out = StandardNormalVariate().fit_transform(X)
        np.testing.assert_array_equal(out[2], 0.0)
        assert np.isfinite(out).all()

    def test_single_wavelength_is_rejected(self):
        with pytest.raises(ValueError, match=r"1 feature\(s\)"):
            StandardNormalVariate().fit(np.ones((3, 1)))
