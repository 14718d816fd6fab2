"""Composite layers: the in-network STFT agrees with the Spectrogram transformer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from specsoil.nets import STFT
from specsoil.preprocess import Spectrogram


@pytest.mark.parametrize(
    ("n_bands", "nperseg", "noverlap", "window", "log"),
    [
        (64, 32, None, "hann", True),
        (217, 16, 12, "hamming", True),
        (100, 15, 5, ("tukey", 0.3), False),
        (33, 33, 0, "boxcar", True),
    ],
)
def test_stft_layer_equals_spectrogram_transformer(n_bands, nperseg, noverlap, window, log):
    spectra = np.random.default_rng(1).normal(1.0, 0.3, size=(3, n_bands))
    expected = Spectrogram(
        window=window, nperseg=nperseg, noverlap=noverlap, log=log
    ).fit_transform(spectra)
    layer = STFT(n_bands, nperseg=nperseg, noverlap=noverlap, window=window, log=log, eps=1e-6)
    out = layer(torch.tensor(spectra, dtype=torch.float64).unsqueeze(1))  # (3, 1, L)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6, atol=1e-6)


def test_stft_layer_keeps_channels_apart():
    layer = STFT(80, nperseg=16, noverlap=None, window="hann", log=True, eps=1e-6)
    x = torch.randn(2, 3, 80)
    out = layer(x)
    assert out.shape == (2, 3, 9, 11)
    torch.testing.assert_close(out[:, 1], layer(x[:, 1:2])[:, 0])
    assert not list(layer.parameters())
    assert "window" not in layer.state_dict()
