"""Spectrogram transformer: golden values from a direct STFT, shapes, validation, Pipeline use."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import get_window
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from specsoil.preprocess import SavitzkyGolay, Spectrogram, spectrogram_shape


def _direct_stft(spectrum, nperseg, noverlap, window, log, eps):
    """Textbook STFT: centre frames on the bands, window, real FFT, divide by the window sum."""
    hop = nperseg - noverlap
    taps = get_window(window, nperseg)
    padded = np.concatenate([np.zeros(nperseg // 2), spectrum, np.zeros(nperseg // 2)])
    frames = []
    start = 0
    while True:
        segment = padded[start : start + nperseg]
        segment = np.concatenate([segment, np.zeros(nperseg - segment.size)])
        frames.append(np.abs(np.fft.rfft(segment * taps)) / taps.sum())
        if start + nperseg >= padded.size:
            break
        start += hop
    magnitude = np.array(frames).T  # (F, T)
    return np.log(magnitude + eps) if log else magnitude


class TestSpectrogram:
    @pytest.mark.parametrize(
        ("n_bands", "nperseg", "noverlap", "window", "log"),
        [
            (64, 32, None, "hann", True),
            (65, 32, 16, "hann", True),
            (200, 21, 7, "hamming", False),
            (50, 8, 0, "boxcar", True),
        ],
    )
    def test_matches_direct_stft(self, n_bands, nperseg, noverlap, window, log):
        spectra = np.random.default_rng(0).normal(0.5, 0.2, size=(4, n_bands))
        out = Spectrogram(window=window, nperseg=nperseg, noverlap=noverlap, log=log).fit_transform(
            spectra
        )
        overlap = nperseg // 2 if noverlap is None else noverlap
        for row in range(4):
            expected = _direct_stft(spectra[row], nperseg, overlap, window, log, 1e-6)
            assert out[row, 0].shape == expected.shape
            np.testing.assert_allclose(out[row, 0], expected, rtol=1e-10, atol=1e-12)

    @pytest.mark.parametrize("n_bands", [32, 33, 47, 48, 420, 2151])
    @pytest.mark.parametrize(("nperseg", "noverlap"), [(32, None), (32, 24), (17, 3), (2, 1)])
    def test_shape_helper_matches_output(self, n_bands, nperseg, noverlap):
        spectra = np.zeros((1, n_bands))
        transformer = Spectrogram(nperseg=nperseg, noverlap=noverlap).fit(spectra)
        out = transformer.transform(spectra)
        assert out.shape == (1, 1, *spectrogram_shape(n_bands, nperseg, noverlap))
        hop = nperseg - (nperseg // 2 if noverlap is None else noverlap)
        np.testing.assert_array_equal(transformer.frame_positions_, np.arange(out.shape[3]) * hop)
        np.testing.assert_allclose(transformer.frequencies_, np.fft.rfftfreq(nperseg))

    def test_log_of_zero_spectrum_is_log_eps(self):
        out = Spectrogram(eps=1e-3).fit_transform(np.zeros((2, 40)))
        np.testing.assert_allclose(out, np.log(1e-3))

    def test_real_spectra_energy_at_low_frequencies(self, geeves_absorbance):
        """Smooth absorbance spectra: the DC row carries the most energy, values are finite."""
        spectra, _ = geeves_absorbance
        out = Spectrogram(nperseg=64).fit_transform(spectra)
        assert out.shape == (30, 1, 33, 2151 // 32 + 2)
        assert np.isfinite(out).all()
        mean_by_frequency = out[:, 0, :, 1:-1].mean(axis=(0, 2))
        assert mean_by_frequency.argmax() == 0
        assert mean_by_frequency[0] > mean_by_frequency[-1] + 5  # orders of magnitude apart

    @pytest.mark.parametrize(
        ("params", "match"),
        [
            ({"nperseg": 64}, r"nperseg=64 must be <= the number of bands; X has 40"),
            ({"nperseg": 16, "noverlap": 16}, "noverlap must be < nperseg=16; got 16"),
            ({"nperseg": 1}, "nperseg must be an integer >= 2"),
            ({"window": "nope"}, "window 'nope' is not usable"),
            ({"window": 3}, "window must be a window name"),
            ({"eps": 0.0}, "eps must be a finite number > 0"),
            ({"log": "yes"}, "log must be True or False"),
        ],
    )
    def test_invalid_parameters(self, params, match):
        with pytest.raises(ValueError, match=match):
            Spectrogram(**params).fit(np.ones((2, 40)))

    def test_width_checked_at_transform(self):
        transformer = Spectrogram(nperseg=8).fit(np.ones((2, 40)))
        with pytest.raises(ValueError, match="40 features"):
            transformer.transform(np.ones((2, 30)))

    def test_clone_and_pipeline(self):
        transformer = Spectrogram(window=("tukey", 0.25), nperseg=16, noverlap=8, log=False)
        copy = clone(transformer)
        assert copy.get_params() == transformer.get_params()
        assert copy.get_params()["window"] == ("tukey", 0.25)
        spectra = np.random.default_rng(0).normal(size=(5, 64))
        pipe = make_pipeline(SavitzkyGolay(window_length=5, polyorder=2), Spectrogram(nperseg=16))
        out = pipe.fit_transform(spectra)
        expected = Spectrogram(nperseg=16).fit_transform(
            SavitzkyGolay(window_length=5, polyorder=2).fit_transform(spectra)
        )
        np.testing.assert_array_equal(out, expected)
        pipe.set_params(spectrogram__nperseg=8)
        assert pipe.fit_transform(spectra).shape == (5, 1, 5, 17)
