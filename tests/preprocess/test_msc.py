import numpy as np
import pytest
from numpy.testing import assert_allclose

from specsoil.preprocess import MultiplicativeScatterCorrection


@pytest.fixture
def scattered(geeves_absorbance):
    """One real spectrum under known additive and multiplicative scatter, a + b * s."""
    spectrum = geeves_absorbance[0][7]
    rng = np.random.default_rng(3)
    offsets = rng.uniform(-0.2, 0.2, size=12)
    scales = rng.uniform(0.6, 1.6, size=12)
    return spectrum, offsets[:, None] + scales[:, None] * spectrum[None, :]


class TestMultiplicativeScatterCorrection:
    def test_matches_golden_values(self, reference_input, read_reference):
        X, _ = reference_input
        expected, _ = read_reference("preprocess_msc.csv")
        out = MultiplicativeScatterCorrection().fit_transform(X)
        assert_allclose(out, expected, rtol=1e-9, atol=1e-12)

    def test_removes_synthetic_scatter(self, scattered):
        _, X = scattered
        out = MultiplicativeScatterCorrection().fit_transform(X)
        # Every corrected copy collapses onto the same spectrum (the reference), up to round-off.
        assert_allclose(out, np.broadcast_to(out[0], out.shape), atol=1e-10)
        assert np.ptp(X, axis=0).max() > 0.1  # the scatter was substantial before

    def test_fixed_reference_recovers_the_clean_spectrum(self, scattered):
        spectrum, X = scattered
        out = MultiplicativeScatterCorrection(reference=spectrum).fit_transform(X)
        assert_allclose(out, np.broadcast_to(spectrum, out.shape), atol=1e-10)

    @pytest.mark.parametrize(("reference", "reduce"), [("mean", np.mean), ("median", np.median)])
    def test_reference_is_learnt_from_training_data_only(
        self, geeves_absorbance, reference, reduce
    ):
        X, _ = geeves_absorbance
        train, test = X[:20], X[20:]
        msc = MultiplicativeScatterCorrection(reference=reference).fit(train)
        assert_allclose(msc.reference_, reduce(train, axis=0))
        b, a = np.polyfit(msc.reference_, test[0], 1)
        assert_allclose(msc.transform(test)[0], (test[0] - a) / b, rtol=1e-9)

    def test_constant_spectrum_warns_and_stays_finite(self, geeves_absorbance):
        X = geeves_absorbance[0][:5].copy()
        msc = MultiplicativeScatterCorrection().fit(X)
        X[1] = 0.4
        with pytest.warns(UserWarning, match="row 1"):
            out = msc.transform(X)
        assert np.isfinite(out).all()
        assert_allclose(out[1], 0.0, atol=1e-12)

    @pytest.mark.parametrize(
        ("reference", "match"),
        [
            ("average", r"reference must be one of \['mean', 'median'\]"),
            (np.ones((2, 3)), r"finite 1-D spectrum"),
            (np.linspace(0, 1, 7), r"reference has 7 values but X has 10 columns"),
        ],
    )
    def test_invalid_reference_is_rejected(self, reference, match):
        with pytest.raises(ValueError, match=match):
            MultiplicativeScatterCorrection(reference=reference).fit(
                np.random.default_rng(0).random((3, 10))
            )

    def test_constant_reference_is_rejected(self):
        with pytest.raises(ValueError, match="reference spectrum is constant"):
            MultiplicativeScatterCorrection().fit(np.ones((4, 10)))
