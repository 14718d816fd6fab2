"""Every registered architecture: builds, runs forward and backward, reloads, swaps heads."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from specsoil._errors import SpecsoilError
from specsoil.nets import create_model, describe_model, input_shape_for, list_models
from specsoil.preprocess import Spectrogram

BAND_COUNTS = (64, 217, 700)
EXPECTED_MODELS = {
    "alexnet1d",
    "cnn1d",
    "cnn1d2d",
    "cnn2d",
    "convnet",
    "gru1d",
    "inception1d",
    "lenet5",
    "lenet5_2d",
    "lstm1d",
    "resnet1d",
    "seed_cnn",
    "transformer1d",
    "vgg1d",
}


def _first_conv(model):
    return next(m for m in model.modules() if isinstance(m, nn.Conv1d | nn.Conv2d))


def test_all_issue_architectures_are_registered():
    assert EXPECTED_MODELS <= set(list_models())


@pytest.mark.parametrize("n_bands", BAND_COUNTS)
@pytest.mark.parametrize("name", list_models())
def test_forward_backward(name, n_bands):
    shape = input_shape_for(name, n_bands)
    model = create_model(name, n_outputs=3, input_shape=shape)
    x = torch.randn(3, *shape)
    out = model(x)
    assert out.shape == (3, 3)
    assert torch.isfinite(out).all()
    out.pow(2).mean().backward()
    grad = _first_conv(model).weight.grad
    assert grad is not None
    assert torch.isfinite(grad).all()
    assert grad.abs().sum() > 0
    features = model.forward_features(x)
    assert features.shape == (3, model.num_features)


@pytest.mark.parametrize("name", list_models())
def test_spectrogram_nets_take_the_transformer_output(name):
    """input_shape_for agrees with what the Spectrogram transformer really produces."""
    spectra = np.random.default_rng(0).normal(size=(2, 217))
    if describe_model(name).input_kind == "spectrogram":
        x = Spectrogram().fit_transform(spectra)
    else:
        x = spectra[:, None, :]
    model = create_model(name, n_outputs=1, input_shape=input_shape_for(name, 217))
    assert tuple(x.shape[1:]) == model.input_shape
    assert model(torch.tensor(x, dtype=torch.float32)).shape == (2, 1)


@pytest.mark.parametrize("name", list_models())
def test_multichannel_input(name):
    """Absorbance and a derivative stacked as channels: (N, 2, L) or (N, 2, F, T)."""
    shape = input_shape_for(name, 100, in_channels=2, nperseg=16)
    model = create_model(name, n_outputs=2, input_shape=shape)
    assert _first_conv(model).in_channels == 2
    assert model(torch.randn(2, *shape)).shape == (2, 2)


@pytest.mark.parametrize("name", list_models())
def test_config_round_trip_gives_identical_outputs(name):
    shape = input_shape_for(name, 96)
    model = create_model(name, n_outputs=2, input_shape=shape)
    model.train()
    model(torch.randn(8, *shape))  # move BatchNorm running statistics off their defaults
    model.eval()
    config = json.loads(json.dumps(model.config()))
    assert config["name"] == name
    assert config["input_shape"] == list(shape)
    rebuilt = create_model(**config)
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    x = torch.randn(4, *shape)
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt(x))
    assert rebuilt.config() == config


@pytest.mark.parametrize("name", list_models())
def test_reset_head_keeps_features(name):
    shape = input_shape_for(name, 80)
    model = create_model(name, n_outputs=2, input_shape=shape).eval()
    x = torch.randn(3, *shape)
    with torch.no_grad():
        before = model.forward_features(x)
        model.reset_head(5)
        after = model.forward_features(x)
        out = model(x)
    assert torch.equal(before, after)
    assert out.shape == (3, 5)
    assert model.n_outputs == 5
    assert model.config()["n_outputs"] == 5
    assert model.head.in_features == model.num_features


@pytest.mark.parametrize("name", list_models())
def test_freeze_backbone(name):
    shape = input_shape_for(name, 80)
    model = create_model(name, n_outputs=1, input_shape=shape)
    model.freeze_backbone()
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in model.head_parameters()}
    model.freeze_backbone(trainable_blocks=1)
    last = [b for b in model.blocks if any(True for _ in b.parameters())][-1]
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in model.head_parameters()} | {
        id(p) for p in last.parameters()
    }
    n_backbone = sum(p.numel() for p in model.backbone_parameters())
    n_head = sum(p.numel() for p in model.head_parameters())
    assert n_backbone + n_head == sum(p.numel() for p in model.parameters())


class TestSeedCNN:
    def test_exact_layers(self):
        model = create_model("seed_cnn", n_outputs=2, input_shape=(1, 20))
        convs = [m for m in model.modules() if isinstance(m, nn.Conv1d)]
        assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 32), (32, 64), (64, 128)]
        for conv in convs:
            assert (conv.kernel_size, conv.stride, conv.padding) == ((3,), (2,), (1,))
            assert conv.bias is not None
            assert conv.padding_mode == "zeros"
        assert not any(isinstance(m, nn.BatchNorm1d | nn.Dropout) for m in model.modules())
        assert model.num_features == 384
        assert (model.head.in_features, model.head.out_features) == (384, 2)

    def test_same_function_as_the_textbook_sequential(self):
        """Weights copied into the textbook nn.Sequential give the same outputs."""
        model = create_model("seed_cnn", n_outputs=3, input_shape=(1, 20))
        reference = nn.Sequential(
            nn.Conv1d(1, 32, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(32, 64, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(64, 128, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(128 * 3, 3),
        )
        ours = [m for m in model.modules() if isinstance(m, nn.Conv1d | nn.Linear)]
        theirs = [m for m in reference if isinstance(m, nn.Conv1d | nn.Linear)]
        with torch.no_grad():
            for mine, textbook in zip(ours, theirs, strict=True):
                textbook.weight.copy_(mine.weight)
                textbook.bias.copy_(mine.bias)
            x = torch.randn(5, 1, 20)
            torch.testing.assert_close(model(x), reference(x))

    def test_takes_no_options(self):
        with pytest.raises(
            SpecsoilError, match=r"model 'seed_cnn' has no option\(s\) \['dropout'\]"
        ):
            create_model("seed_cnn", n_outputs=1, input_shape=(1, 20), dropout=0.1)


class TestLeNet:
    def test_2d_fits_8x8_digits(self):
        model = create_model("lenet5_2d", n_outputs=10, input_shape=(1, 8, 8))
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        assert [(c.out_channels, c.kernel_size) for c in convs] == [(6, (5, 5)), (16, (5, 5))]
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        # 8x8 → pool → 4x4 → pool → 2x2, with 16 maps: 64 features into fc120.
        assert [(m.in_features, m.out_features) for m in linears] == [
            (64, 120),
            (120, 84),
            (84, 10),
        ]
        assert model(torch.randn(4, 1, 8, 8)).shape == (4, 10)

    def test_classic_options(self):
        model = create_model(
            "lenet5",
            n_outputs=1,
            input_shape=(1, 64),
            activation="tanh",
            pool="avg",
            batchnorm="none",
        )
        kinds = {type(m) for m in model.modules()}
        assert nn.Tanh in kinds
        assert nn.AvgPool1d in kinds
        assert nn.BatchNorm1d not in kinds


class TestDeepFamilies:
    def test_resnet_projection_shortcuts(self):
        model = create_model("resnet1d", n_outputs=1, input_shape=(1, 128))
        projections = [
            name
            for name, m in model.named_modules()
            if name.endswith("shortcut") and isinstance(m, nn.Sequential)
        ]
        # Stages 2-4 start with a stride-2 block: a 1x1 projection; stage 1 keeps 32 channels.
        assert len(projections) == 3
        for name in projections:
            conv = dict(model.named_modules())[name].conv
            assert conv.kernel_size == (1,)
            assert conv.stride == (2,)

    def test_inception_branches(self):
        model = create_model("inception1d", n_outputs=1, input_shape=(1, 128), channels=(40,))
        module = model.blocks[1]
        kernels = sorted(
            m.kernel_size[0]
            for m in module.modules()
            if isinstance(m, nn.Conv1d) and m.kernel_size[0] > 1
        )
        assert kernels == [3, 5]
        assert any(isinstance(m, nn.MaxPool1d) for m in module.modules())
        x = model.blocks[0](torch.randn(2, 1, 128))
        assert module(x).shape[1] == 40  # branches concatenated

    @pytest.mark.parametrize(
        "name", ["alexnet1d", "vgg1d", "resnet1d", "inception1d", "cnn1d", "cnn2d"]
    )
    def test_global_pooling_keeps_parameters_flat_in_bands(self, name):
        counts = [
            sum(
                p.numel()
                for p in create_model(
                    name, n_outputs=1, input_shape=input_shape_for(name, n)
                ).parameters()
            )
            for n in (400, 4200)
        ]
        assert counts[0] == counts[1]

    def test_cnn1d2d_spectrogram_inside(self):
        model = create_model("cnn1d2d", n_outputs=3, input_shape=(1, 200), nperseg=16, noverlap=12)
        stft = model.blocks[1][0]
        assert (stft.n_frequencies, stft.n_frames) == input_shape_for(
            "cnn2d", 200, nperseg=16, noverlap=12
        )[1:]
        assert model.num_features == 128 + 64

    def test_too_few_bands_is_a_clear_error(self):
        with pytest.raises(
            SpecsoilError,
            match=r"model 'alexnet1d': block 2 .*the convolution leaves 2 but the pooling window",
        ):
            create_model("alexnet1d", n_outputs=1, input_shape=(1, 20))
        with pytest.raises(
            SpecsoilError, match=r"nperseg=32 must be <= the number of bands \(20\)"
        ):
            create_model("cnn1d2d", n_outputs=1, input_shape=(1, 20))


class TestSequenceNetworks:
    @pytest.mark.parametrize("name", ["lstm1d", "gru1d"])
    def test_recurrence_runs_on_a_quarter_of_the_bands(self, name):
        model = create_model(name, n_outputs=1, input_shape=(3, 2000), hidden=8)
        rnn = next(m for m in model.modules() if isinstance(m, nn.LSTM | nn.GRU))
        assert rnn.bidirectional
        steps = {}
        rnn.register_forward_hook(lambda m, args, out: steps.update(n=args[0].shape[1]))
        model.eval()(torch.randn(2, 3, 2000))
        assert steps["n"] == 500  # the stride-4 stem: 2,000 bands -> 500 steps
        assert model.num_features == 16  # both directions

    def test_transformer_tokens_are_patches(self):
        model = create_model("transformer1d", n_outputs=2, input_shape=(1, 210), patch_size=8)
        assert model.blocks[0].n_patches == 27  # ceil(210 / 8), the end padded
        encoder_layers = [m for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
        assert len(encoder_layers) == 3

    def test_heads_must_divide_width(self):
        with pytest.raises(SpecsoilError, match=r"heads \(3\) must divide width \(64\)"):
            create_model("transformer1d", n_outputs=1, input_shape=(1, 64), heads=3)

    @pytest.mark.parametrize("name", ["lstm1d", "gru1d", "transformer1d"])
    def test_field_covers_the_whole_spectrum(self, name):
        from specsoil.nets import shape_report

        rows = shape_report(create_model(name, n_outputs=1, input_shape=(1, 300)))
        assert rows[-1].receptive_field is None  # "all": the features see every band
