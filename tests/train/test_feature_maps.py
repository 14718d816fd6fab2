"""Feature-map pictures: positions mapped back to wavelength, PNGs for 1D and 2D nets."""

from __future__ import annotations

import numpy as np
import pytest

from specsoil._errors import SpecsoilError
from specsoil.train import LayerGeometry, layer_wavelengths

torch = pytest.importorskip("torch")

from specsoil.nets import create_model  # noqa: E402
from specsoil.train import CNNRegressor, plot_feature_maps  # noqa: E402
from specsoil.train._feature_maps import conv_feature_maps  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class TestLayerWavelengths:
    def test_strided_layer_maps_position_i_to_band_i_times_stride(self):
        wl = 400.0 + 10.0 * np.arange(20)
        # seed_cnn's third conv: k=3, s=2, p=1 three times.
        got = layer_wavelengths(wl, 3, LayerGeometry(start=-7, jump=8, size=15))
        np.testing.assert_allclose(got, wl[[0, 8, 16]])

    def test_even_field_lands_between_bands(self):
        wl = np.array([1000.0, 1002.0, 1004.0, 1006.0])
        # 2x pooling of single bands: position i covers bands 2i and 2i+1.
        got = layer_wavelengths(wl, 2, LayerGeometry(start=0, jump=2, size=2))
        np.testing.assert_allclose(got, [1001.0, 1005.0])

    def test_irregular_grid_and_extrapolation_into_padding(self):
        wl = np.array([350.0, 351.0, 353.0, 360.0])
        got = layer_wavelengths(wl, 5, LayerGeometry(start=-2, jump=1, size=1))
        np.testing.assert_allclose(got, [348.0, 349.0, 350.0, 351.0, 353.0])
        above = layer_wavelengths(wl, 2, LayerGeometry(start=3, jump=1, size=1))
        np.testing.assert_allclose(above, [360.0, 367.0])

    def test_rejects_a_bad_grid(self):
        with pytest.raises(SpecsoilError, match="ascending"):
            layer_wavelengths([3.0, 2.0, 1.0], 2, LayerGeometry(0, 1, 1))


class TestGeometry:
    def test_seed_cnn_follows_the_textbook_recurrence(self):
        model = create_model("seed_cnn", n_outputs=1, input_shape=(1, 20))
        maps = conv_feature_maps(model, torch.zeros(1, 1, 20))
        # start_out = start - p*jump, size_out = size + (k-1)*jump, jump_out = 2*jump
        assert [m.geometry for m in maps] == [
            LayerGeometry(-1, 2, 3),
            LayerGeometry(-3, 4, 7),
            LayerGeometry(-7, 8, 15),
        ]
        assert [m.activation.shape for m in maps] == [(32, 10), (64, 5), (128, 3)]

    @pytest.mark.parametrize("name", ["seed_cnn", "cnn1d", "resnet1d"])
    def test_gradients_stay_inside_the_mapped_field(self, name):
        length = 40
        model = create_model(name, n_outputs=1, input_shape=(1, length)).double().eval()
        x = torch.randn(1, 1, length, dtype=torch.float64)
        maps = conv_feature_maps(model, x)
        captured = {}
        conv = [m for m in model.modules() if isinstance(m, torch.nn.Conv1d)][-1]
        handle = conv.register_forward_hook(lambda mod, a, out: captured.setdefault("out", out))
        x.requires_grad_(True)
        model(x)
        handle.remove()
        out = captured["out"]
        geometry = maps[-1].geometry
        for position in range(out.shape[-1]):
            (grad,) = torch.autograd.grad(out[0, :, position].sum(), x, retain_graph=True)
            support = np.flatnonzero(grad[0, 0].numpy())
            first = geometry.start + position * geometry.jump
            assert support.min() >= max(first, 0)
            assert support.max() <= min(first + geometry.size - 1, length - 1)

    def test_first_convolution_field_is_exact(self):
        model = create_model("seed_cnn", n_outputs=1, input_shape=(1, 20)).double()
        x = torch.randn(1, 1, 20, dtype=torch.float64, requires_grad=True)
        out = model.blocks[0].conv(x)
        (grad,) = torch.autograd.grad(out[0, :, 4].sum(), x)
        geometry = conv_feature_maps(model, x.detach())[0].geometry
        first = geometry.start + 4 * geometry.jump
        assert list(np.flatnonzero(grad[0, 0].numpy())) == list(range(first, first + 3))


class TestPlotFeatureMaps:
    def test_seed_cnn_estimator_png(self, tmp_path, band_task):
        X, y = band_task
        estimator = CNNRegressor(
            "seed_cnn", max_epochs=1, val_fraction=0.0, num_threads=1, random_state=0
        ).fit(X, y)
        path = plot_feature_maps(
            estimator, X[0], 1000.0 + 2.0 * np.arange(X.shape[1]), tmp_path / "fm" / "maps.png"
        )
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC)
        assert len(data) > 10_000

    def test_cnn2d_png_on_a_spectrogram(self, tmp_path):
        model = create_model("cnn2d", n_outputs=2, input_shape=(1, 17, 9))
        spectrogram = np.random.default_rng(0).normal(size=(1, 17, 9))
        frames = 500.0 + 160.0 * np.arange(9)
        path = plot_feature_maps(model, spectrogram, frames, tmp_path / "cnn2d.png")
        assert path.read_bytes().startswith(PNG_MAGIC)
        assert path.stat().st_size > 10_000

    def test_more_layers_make_a_taller_picture(self, tmp_path):
        import matplotlib.image

        small = create_model("seed_cnn", n_outputs=1, input_shape=(1, 32))
        deep = create_model("vgg1d", n_outputs=1, input_shape=(1, 32))
        x = np.linspace(0, 1, 32)
        a = matplotlib.image.imread(plot_feature_maps(small, x, None, tmp_path / "a.png"))
        b = matplotlib.image.imread(plot_feature_maps(deep, x, None, tmp_path / "b.png"))
        assert b.shape[0] > a.shape[0]

    @pytest.mark.parametrize(
        ("spectrum", "wavelengths", "kwargs", "match"),
        [
            (np.zeros(19), None, {}, r"network takes \(1, 20\)"),
            (np.zeros(20), np.arange(19.0), {}, r"expected \(20,\)"),
            (np.zeros(20), None, {"max_channels": 0}, "max_channels"),
        ],
    )
    def test_bad_inputs(self, tmp_path, spectrum, wavelengths, kwargs, match):
        model = create_model("seed_cnn", n_outputs=1, input_shape=(1, 20))
        with pytest.raises(SpecsoilError, match=match):
            plot_feature_maps(model, spectrum, wavelengths, tmp_path / "x.png", **kwargs)
        assert not (tmp_path / "x.png").exists()

    def test_unfitted_estimator(self, tmp_path):
        with pytest.raises(SpecsoilError, match="fitted CNNRegressor"):
            plot_feature_maps(CNNRegressor(), np.zeros(20), None, tmp_path / "x.png")
