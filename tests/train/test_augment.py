"""Tests of the on-the-fly spectral augmentation."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from specsoil.train import AUGMENTATIONS, SpectralAugmenter, check_augment  # noqa: E402

N, L = 4000, 21


@pytest.fixture
def spectra():
    rng = np.random.default_rng(3)
    return torch.tensor(rng.uniform(0.2, 1.0, (N, 1, L)), dtype=torch.float64)


class TestCheckAugment:
    def test_none_and_zeros_mean_nothing(self):
        assert check_augment(None) == {}
        assert check_augment({"noise": 0, "offset": 0.0}) == {}

    def test_values_become_floats(self):
        assert check_augment({"shift": 1, "noise": 0.5}) == {"shift": 1.0, "noise": 0.5}

    @pytest.mark.parametrize(
        ("augment", "match"),
        [
            ({"scale": 0.1}, "unknown key 'scale'"),
            ({"noise": -0.1}, r"augment\['noise'\] must be a finite number >= 0"),
            ({"offset": float("nan")}, "finite number"),
            ({"slope": "big"}, "finite number"),
            ({"shift": True}, "finite number"),
            (["noise"], "must be None or a dict"),
        ],
    )
    def test_invalid(self, augment, match):
        with pytest.raises(ValueError, match=match):
            check_augment(augment)


class TestSpectralAugmenter:
    def test_nothing_configured_is_identity(self, spectra):
        augmenter = SpectralAugmenter(None)
        assert not augmenter
        assert augmenter(spectra) is spectra

    def test_offset_adds_one_constant_per_spectrum(self, spectra):
        diff = (SpectralAugmenter({"offset": 0.05}, seed=1)(spectra) - spectra).numpy()[:, 0]
        np.testing.assert_allclose(diff, diff[:, :1].repeat(L, axis=1), atol=1e-12)
        assert diff[:, 0].std() == pytest.approx(0.05, rel=0.05)
        assert abs(diff[:, 0].mean()) < 0.005

    def test_slope_is_a_centred_linear_tilt(self, spectra):
        diff = (SpectralAugmenter({"slope": 0.1}, seed=2)(spectra) - spectra).numpy()[:, 0]
        ends = diff[:, -1]
        # b * t with t from -1 to 1: antisymmetric ends, zero in the middle, linear between.
        np.testing.assert_allclose(diff[:, 0], -ends, atol=1e-12)
        np.testing.assert_allclose(diff[:, L // 2], 0.0, atol=1e-12)
        np.testing.assert_allclose(diff, np.outer(ends, np.linspace(-1, 1, L)), atol=1e-12)
        assert ends.std() == pytest.approx(0.1, rel=0.05)

    def test_multiplicative_scales_each_spectrum(self, spectra):
        ratio = (SpectralAugmenter({"multiplicative": 0.02}, seed=3)(spectra) / spectra).numpy()
        ratio = ratio[:, 0]
        np.testing.assert_allclose(ratio, ratio[:, :1].repeat(L, axis=1), rtol=1e-12)
        assert ratio[:, 0].mean() == pytest.approx(1.0, abs=0.002)
        assert ratio[:, 0].std() == pytest.approx(0.02, rel=0.05)

    def test_noise_is_independent_per_band(self, spectra):
        diff = (SpectralAugmenter({"noise": 0.01}, seed=4)(spectra) - spectra).numpy()[:, 0]
        assert diff.std() == pytest.approx(0.01, rel=0.03)
        # Independent draws per band: neighbouring bands are uncorrelated.
        assert abs(np.corrcoef(diff[:, 3], diff[:, 4])[0, 1]) < 0.05

    def test_shift_moves_a_ramp_by_a_fractional_band(self):
        ramp = torch.arange(L, dtype=torch.float64).repeat(N, 1, 1)  # (N, 1, L), x_i = i
        out = SpectralAugmenter({"shift": 0.5}, seed=5)(ramp).numpy()[:, 0]
        # Interpolating a ramp at i - s gives i - s inside; the ends are repeated (clamped).
        inner = out[:, 3:-3] - np.arange(L)[3:-3]
        shift = -inner[:, 0]
        np.testing.assert_allclose(inner, -shift[:, None].repeat(inner.shape[1], axis=1), atol=1e-9)
        assert shift.std() == pytest.approx(0.5, rel=0.05)
        assert np.abs(shift).max() < 3.0  # only 3 bands of margin kept above
        assert out.min() >= 0.0
        assert out.max() <= L - 1

    def test_shift_of_whole_band_moves_values(self):
        x = torch.tensor([[[0.0, 1.0, 4.0, 9.0, 16.0]]], dtype=torch.float64)
        augmenter = SpectralAugmenter({"shift": 1.0}, seed=0)
        out = augmenter(x).numpy()[0, 0]
        # Recompute the drawn shift from the interior and check against np.interp.
        gen = torch.Generator().manual_seed(0)
        s = float(torch.randn((1, 1, 1), generator=gen, dtype=torch.float64))
        expected = np.interp(np.clip(np.arange(5) - s, 0, 4), np.arange(5), x.numpy()[0, 0])
        np.testing.assert_allclose(out, expected, atol=1e-12)

    def test_channels_share_the_draw(self):
        x = torch.ones((50, 3, L), dtype=torch.float64)
        out = SpectralAugmenter({"offset": 0.1, "multiplicative": 0.1}, seed=6)(x).numpy()
        np.testing.assert_allclose(out[:, 0], out[:, 1])
        np.testing.assert_allclose(out[:, 0], out[:, 2])

    def test_seeded(self, spectra):
        config = {name: 0.01 for name in AUGMENTATIONS}
        a = SpectralAugmenter(config, seed=11)(spectra)
        b = SpectralAugmenter(config, seed=11)(spectra)
        c = SpectralAugmenter(config, seed=12)(spectra)
        torch.testing.assert_close(a, b)
        assert not torch.allclose(a, c)

    def test_successive_batches_differ(self, spectra):
        augmenter = SpectralAugmenter({"noise": 0.01}, seed=0)
        assert not torch.allclose(augmenter(spectra), augmenter(spectra))

    def test_pickles_without_generator_state(self, spectra):
        import pickle

        augmenter = SpectralAugmenter({"noise": 0.01}, seed=9)
        augmenter(spectra)
        clone = pickle.loads(pickle.dumps(augmenter))
        torch.testing.assert_close(
            clone(spectra), SpectralAugmenter({"noise": 0.01}, seed=9)(spectra)
        )

    def test_needs_3d_batches(self):
        with pytest.raises(ValueError, match=r"\(batch, channels, n_bands\)"):
            SpectralAugmenter({"noise": 0.1})(torch.zeros(2, 1, 4, 4))
