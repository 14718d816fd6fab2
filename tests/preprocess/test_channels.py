import numpy as np
import pytest
from numpy.testing import assert_allclose

from specsoil.preprocess import SpectralChannels


def _local_quadratic_slope(X, half):
    """Per-band slope of a least-squares quadratic over 2*half+1 bands (interior bands)."""
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    slopes = np.full(X.shape, np.nan)
    for j in range(half, X.shape[1] - half):
        window = X[:, j - half : j + half + 1]
        # polyfit returns (a2, a1, a0); the derivative at the centre (offset 0) is a1.
        slopes[:, j] = np.polyfit(offsets, window.T, 2)[1]
    return slopes


class TestSpectralChannels:
    def test_stacks_standardised_absorbance_derivative_and_snv(self):
        rng = np.random.default_rng(0)
        X = np.cumsum(rng.normal(size=(30, 40)), axis=1) + rng.normal(size=(30, 1))
        step = SpectralChannels(window_length=7, polyorder=2).fit(X)
        out = step.transform(X)
        assert out.shape == (30, 3, 40)
        assert out.dtype == np.float32
        # Standardised band by band on the fitted data.
        assert_allclose(out.mean(axis=0), 0.0, atol=1e-5)
        assert_allclose(out.std(axis=0), 1.0, atol=1e-4)
        raw = out * step.scale_ + step.mean_
        assert_allclose(raw[:, 0], X, rtol=1e-5, atol=1e-5)
        # Barnes et al. (1989) SNV: the sample standard deviation (n - 1).
        snv = (X - X.mean(axis=1, keepdims=True)) / X.std(axis=1, ddof=1, keepdims=True)
        assert_allclose(raw[:, 2], snv, rtol=1e-4, atol=1e-4)
        slope = _local_quadratic_slope(X, 3)
        assert_allclose(raw[:, 1, 3:-3], slope[:, 3:-3], rtol=1e-4, atol=1e-4)

    def test_new_data_uses_the_training_statistics(self):
        rng = np.random.default_rng(1)
        X = rng.normal(size=(20, 15))
        step = SpectralChannels().fit(X)
        shifted = step.transform(X + 5.0)
        # An offset moves the absorbance channel only: derivative and SNV remove it.
        expected = np.broadcast_to(5.0 / step.scale_[0], (20, 15))
        assert_allclose(shifted[:, 0] - step.transform(X)[:, 0], expected, rtol=1e-4)
        assert_allclose(shifted[:, 1:], step.transform(X)[:, 1:], atol=1e-4)

    def test_wrong_width_is_rejected(self):
        step = SpectralChannels().fit(np.random.default_rng(2).normal(size=(10, 12)))
        with pytest.raises(ValueError, match="features"):
            step.transform(np.zeros((3, 13)))
