"""The model registry: names, options, errors, configs and input shapes."""

from __future__ import annotations

import json

import pytest
import torch

from specsoil._errors import SpecsoilError
from specsoil.nets import (
    ConvBlock,
    ConvNet,
    SpectralCNN,
    _registry,
    create_model,
    describe_model,
    input_shape_for,
    list_models,
    register_model,
)


def test_list_models_is_sorted():
    assert list_models() == sorted(list_models())


def test_unknown_model_lists_the_models():
    with pytest.raises(SpecsoilError, match=r"unknown model 'cnn3d'; available: \['alexnet1d'"):
        create_model("cnn3d", n_outputs=1, input_shape=(1, 64))


def test_unknown_option_lists_accepted_ones():
    with pytest.raises(
        SpecsoilError,
        match=r"model 'cnn1d' has no option\(s\) \['width'\]; it accepts \['activation', ",
    ):
        create_model("cnn1d", n_outputs=1, input_shape=(1, 64), width=3)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"activation": "swish"}, r"model 'cnn1d': activation must be one of"),
        ({"dropout": 2.0}, r"model 'cnn1d': dropout must be a number in \[0, 1\)"),
        (
            {"channels": (32, 0)},
            r"model 'cnn1d': channels must be a non-empty tuple of integers >= 1",
        ),
        ({"kernel_size": "7"}, r"model 'cnn1d': kernel_size must be an integer >= 1"),
    ],
)
def test_invalid_option_values(options, match):
    with pytest.raises(SpecsoilError, match=match):
        create_model("cnn1d", n_outputs=1, input_shape=(1, 64), **options)


@pytest.mark.parametrize(
    ("name", "shape", "match"),
    [
        ("cnn1d", (1, 17, 5), r"input_shape must be \(channels, bands\)"),
        ("cnn2d", (1, 64), r"input_shape must be \(channels, frequencies, frames\)"),
        ("cnn1d", (0, 64), "positive integers"),
    ],
)
def test_input_shape_checked(name, shape, match):
    with pytest.raises(SpecsoilError, match=match):
        create_model(name, n_outputs=1, input_shape=shape)


def test_n_outputs_checked():
    with pytest.raises(SpecsoilError, match="n_outputs must be an integer >= 1; got 0"):
        create_model("cnn1d", n_outputs=0, input_shape=(1, 64))


def test_lists_from_json_become_tuples():
    model = create_model("cnn1d", n_outputs=1, input_shape=[1, 64], channels=[8, 16])
    assert model.input_shape == (1, 64)
    assert [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv1d)] == [8, 16]
    assert model.config()["channels"] == [8, 16]


def test_config_holds_every_default():
    config = create_model("vgg1d", n_outputs=2, input_shape=(1, 64)).config()
    assert config == {
        "name": "vgg1d",
        "n_outputs": 2,
        "input_shape": [1, 64],
        "channels": [32, 64, 128, 256],
        "convs_per_stage": 2,
        "kernel_size": 3,
        "batchnorm": "before_activation",
        "activation": "relu",
        "dropout": 0.2,
    }


def test_convnet_from_data_round_trips():
    blocks = [
        {"out_channels": 8, "kernel_size": 5, "stride": 2, "padding_mode": "reflect"},
        {"out_channels": 16, "dilation": 2, "pool": "avg", "batchnorm": "after_activation"},
    ]
    model = create_model(
        "convnet", n_outputs=2, input_shape=(1, 50), blocks=blocks, head={"pooling": "flatten"}
    ).eval()
    config = json.loads(json.dumps(model.config()))
    assert config["blocks"][0]["padding_mode"] == "reflect"
    rebuilt = create_model(**config).eval()
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(2, 1, 50)
    assert torch.equal(model(x), rebuilt(x))


def test_convnet_2d_blocks_take_dims_from_the_input():
    model = create_model(
        "convnet", n_outputs=1, input_shape=(1, 9, 7), blocks=[{"out_channels": 4}]
    )
    assert isinstance(model.blocks[0].conv, torch.nn.Conv2d)


def test_direct_convnet_has_a_config():
    model = ConvNet([ConvBlock(4)], None, (1, 10), 1)
    config = model.config()
    assert config["name"] == "convnet"
    assert isinstance(create_model(**config), ConvNet)


def test_describe_model():
    info = describe_model("cnn2d")
    assert info.input_kind == "spectrogram"
    assert info.summary.startswith("A 2D CNN on spectrograms")
    assert info.options["channels"] == [16, 32, 64]
    assert describe_model("convnet").input_kind == "any"


def test_input_shape_for():
    assert input_shape_for("cnn1d", 420, in_channels=2) == (2, 420)
    # 420 bands zero-extended by 16 at each end: ceil((452 - 32) / 16) + 1 = 28 frames.
    assert input_shape_for("cnn2d", 420) == (1, 17, 28)
    with pytest.raises(SpecsoilError, match="nperseg=32 must be <= the number of bands"):
        input_shape_for("cnn2d", 20)


class TestRegisterModel:
    @pytest.fixture(autouse=True)
    def _restore_registry(self):
        saved = dict(_registry._MODELS)
        yield
        _registry._MODELS.clear()
        _registry._MODELS.update(saved)

    def test_register_and_build_directly(self):
        @register_model
        def tiny_test_net(
            *, n_outputs: int, input_shape: tuple[int, ...], width: int = 4
        ) -> SpectralCNN:
            """A one-block net for the registry test."""
            return ConvNet([ConvBlock(width)], None, input_shape, n_outputs)

        assert "tiny_test_net" in list_models()
        model = tiny_test_net(n_outputs=2, input_shape=(1, 10), width=3)
        assert model.config() == {
            "name": "tiny_test_net",
            "n_outputs": 2,
            "input_shape": [1, 10],
            "width": 3,
        }

    def test_duplicate_name_refused(self):
        with pytest.raises(ValueError, match="model 'cnn1d' is already registered"):

            @register_model
            def cnn1d(*, n_outputs: int, input_shape: tuple[int, ...]) -> SpectralCNN:
                raise AssertionError

    def test_option_without_default_refused(self):
        with pytest.raises(ValueError, match="option 'width' needs a default"):

            @register_model
            def needs_width(
                *, n_outputs: int, input_shape: tuple[int, ...], width: int
            ) -> SpectralCNN:
                raise AssertionError
