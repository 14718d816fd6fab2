"""Shape report: real tensor shapes, parameter counts, receptive fields checked by gradients."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from specsoil._errors import SpecsoilError
from specsoil.nets import (
    ConvBlock,
    ConvNet,
    Head,
    conv_block_output_shape,
    create_model,
    format_shape_report,
    input_shape_for,
    list_models,
    shape_report,
    trace_fields,
)


def _first(output):
    """A layer's output tensor; recurrent and attention layers return a tuple."""
    return output[0] if isinstance(output, tuple) else output


def _leaf_outputs(model, shape):
    """Output shapes of every leaf module call, collected here with separate hooks."""
    seen = []
    names = {id(m): n for n, m in model.named_modules()}
    handles = [
        m.register_forward_hook(
            lambda mod, args, out: seen.append((names[id(mod)], tuple(_first(out).shape[1:])))
        )
        for m in model.modules()
        if next(m.children(), None) is None or isinstance(m, nn.MultiheadAttention)
    ]
    model.eval()
    with torch.no_grad():
        model(torch.randn(2, *shape))
    for handle in handles:
        handle.remove()
    return seen


def _measured_field(model, layer, shape):
    """Receptive field along the last axis measured by back-propagation.

    All conv weights are made positive and max pools become average pools (same window),
    so the gradient of the middle output of ``layer`` is non-zero exactly on the input
    positions that output depends on (activations must be "none" for this).
    """
    model = copy.deepcopy(model).eval()
    for parent in list(model.modules()):
        for child_name, child in parent.named_children():
            if isinstance(child, nn.MaxPool1d):
                setattr(
                    parent, child_name, nn.AvgPool1d(child.kernel_size, child.stride, child.padding)
                )
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv1d):
                module.weight.fill_(1.0 / module.weight[0].numel())
                if module.bias is not None:
                    module.bias.zero_()
            if isinstance(module, nn.BatchNorm1d):
                module.reset_parameters()
    captured = {}
    dict(model.named_modules())[layer].register_forward_hook(
        lambda m, a, out: captured.update(out=out)
    )
    x = torch.ones(1, *shape, requires_grad=True)
    model(x)
    out = captured["out"]
    out[0, :, out.shape[-1] // 2].sum().backward()
    support = torch.nonzero(x.grad[0].abs().sum(0) > 0).flatten()
    return int(support.max() - support.min() + 1)


class TestSeedCNNGolden:
    def test_shapes_linear_and_field(self):
        model = create_model("seed_cnn", n_outputs=2, input_shape=(1, 20))
        rows = shape_report(model, band_step=2.0)
        convs = [r for r in rows if r.kind == "Conv1d"]
        assert [r.output_shape for r in convs] == [(32, 10), (64, 5), (128, 3)]
        # Three k3 s2 convs: r = 1 + 2·1 = 3, 3 + 2·2 = 7, 7 + 2·4 = 15 bands.
        assert [r.receptive_field for r in convs] == [3, 7, 15]
        assert [r.receptive_field_nm for r in convs] == [6.0, 14.0, 30.0]
        flatten = next(r for r in rows if r.kind == "Flatten")
        assert flatten.output_shape == (384,)
        assert flatten.receptive_field is None
        linear = rows[-1]
        assert linear.kind == "Linear"
        assert linear.output_shape == (2,)
        assert linear.n_params == 384 * 2 + 2  # a Linear with 384 inputs
        assert [r.n_params for r in convs] == [
            1 * 32 * 3 + 32,
            32 * 64 * 3 + 64,
            64 * 128 * 3 + 128,
        ]

    def test_formatted_table(self):
        model = create_model("seed_cnn", n_outputs=1, input_shape=(1, 20))
        text = format_shape_report(shape_report(model, wavelengths=np.arange(400.0, 600.0, 10.0)))
        lines = text.splitlines()
        assert lines[0].split() == [
            "layer",
            "type",
            "output",
            "shape",
            "params",
            "RF",
            "(bands)",
            "RF",
            "(nm)",
        ]
        conv3 = next(line for line in lines if line.startswith("blocks.2.conv"))
        assert conv3.split() == ["blocks.2.conv", "Conv1d", "(128,", "3)", "24,704", "15", "150"]
        assert lines[-2].split()[-2:] == ["all", "all"]
        assert lines[-1] == f"total parameters: {sum(p.numel() for p in model.parameters()):,}"


@pytest.mark.parametrize("name", list_models())
def test_report_matches_real_tensors(name):
    shape = input_shape_for(name, 150)
    model = create_model(name, n_outputs=3, input_shape=shape)
    rows = shape_report(model)
    assert model.training  # the report restores the mode
    assert rows[0].name == "input"
    assert rows[0].output_shape == shape
    assert [(r.name, r.output_shape) for r in rows[1:]] == _leaf_outputs(model, shape)
    assert sum(r.n_params for r in rows) == sum(p.numel() for p in model.parameters())
    assert rows[-1].output_shape == (3,)


def test_report_shapes_equal_shape_inference():
    """Shapes inferred from the block specs alone equal the shapes of the real forward."""
    blocks = [
        ConvBlock(8, kernel_size=5, stride=3, padding_mode="replicate"),
        ConvBlock(8, kernel_size=4, dilation=3, padding=1, pool="avg", pool_size=3, pool_stride=2),
        ConvBlock(16, kernel_size=2, stride=2, padding="same", padding_mode="circular", pool="max"),
    ]
    model = ConvNet(blocks, Head(pooling="flatten"), (2, 301), 1)
    rows = shape_report(model)
    inferred, shape = [], (2, 301)
    for block in blocks:
        shape = conv_block_output_shape(block, shape, where="block")
        inferred.append(shape)
    last_per_block = [
        [r for r in rows if r.name.startswith(f"blocks.{i}.")][-1].output_shape for i in range(3)
    ]
    assert last_per_block == inferred


@pytest.mark.parametrize(
    ("name", "options", "layer"),
    [
        (
            "convnet",
            {
                "blocks": [
                    {"out_channels": 4, "kernel_size": 5, "stride": 2, "activation": "none"},
                    {
                        "out_channels": 4,
                        "kernel_size": 3,
                        "dilation": 3,
                        "pool": "avg",
                        "pool_size": 3,
                        "activation": "none",
                    },
                    {
                        "out_channels": 4,
                        "kernel_size": 4,
                        "stride": 2,
                        "pool": "max",
                        "activation": "none",
                    },
                ]
            },
            "blocks.2.pool",
        ),
        (
            "resnet1d",
            {"activation": "none", "blocks_per_stage": (1, 1, 1, 1)},
            "blocks.4.main.1.bn",
        ),
        (
            "inception1d",
            {"activation": "none", "channels": (16, 16, 16)},
            "blocks.4.branches.2.1.conv",
        ),
    ],
)
def test_receptive_field_matches_gradient_support(name, options, layer):
    shape = (1, 600)
    model = create_model(name, n_outputs=1, input_shape=shape, **options)
    rows = {r.name: r for r in shape_report(model)}
    assert rows[layer].receptive_field == _measured_field(model, layer, shape)


def test_residual_sum_takes_the_wider_branch():
    model = create_model(
        "resnet1d", n_outputs=1, input_shape=(1, 600), blocks_per_stage=(1, 1, 1, 1)
    )
    rows = {r.name: r for r in shape_report(model)}
    # Stage 2 block: main path 2 k3 convs on top of the stage 1 output; shortcut 1x1.
    assert rows["blocks.2.act"].receptive_field == rows["blocks.2.main.1.conv"].receptive_field
    assert rows["blocks.2.shortcut.conv"].receptive_field < rows["blocks.2.act"].receptive_field


def test_spectrogram_nets_count_frames():
    model = create_model("cnn2d", n_outputs=1, input_shape=(1, 17, 20))
    rows = shape_report(model, band_step=2.0)
    assert {r.unit for r in rows} == {"frames"}
    assert all(r.receptive_field_nm is None for r in rows)
    first = next(r for r in rows if r.kind == "Conv2d")
    assert first.receptive_field == 3


def test_cnn1d2d_field_counts_the_stft_window_in_bands():
    model = create_model("cnn1d2d", n_outputs=1, input_shape=(1, 128), nperseg=16, noverlap=8)
    rows = {r.name: r for r in shape_report(model)}
    stft = rows["blocks.1.0"]
    assert stft.kind == "STFT"
    assert stft.output_shape == (1, 9, 17)
    assert stft.receptive_field == 16
    # A 3-wide conv over frames 8 bands apart: 16 + 2·8 = 32 bands.
    assert rows["blocks.1.1.conv"].receptive_field == 32


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"wavelengths": np.arange(10.0)}, r"wavelengths has shape \(10,\) but the model takes 20"),
        ({"band_step": -1.0}, "band_step must be a number > 0"),
        ({"band_step": 1.0, "wavelengths": np.arange(20.0)}, "not both"),
    ],
)
def test_bad_band_axis(kwargs, match):
    model = create_model("seed_cnn", n_outputs=1, input_shape=(1, 20))
    with pytest.raises(SpecsoilError, match=match):
        shape_report(model, **kwargs)


def test_irregular_grid_uses_the_median_step():
    model = create_model("seed_cnn", n_outputs=1, input_shape=(1, 20))
    grid = np.cumsum(np.r_[350.0, np.full(12, 1.0), np.full(7, 5.0)])  # 1 nm then 5 nm steps
    rows = shape_report(model, wavelengths=grid)
    assert rows[1].receptive_field_nm == 3 * 1.0


def test_trace_fields_start_offset_matches_gradients():
    """Padding moves the field start; hand-computed fields, then checked against gradients."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv1d(1, 3, 5, padding=2),
        nn.Tanh(),
        nn.AvgPool1d(2),
        nn.Conv1d(3, 2, 3, padding=2, dilation=2),
    ).double()
    x = torch.randn(1, 1, 40, dtype=torch.float64)
    traced = trace_fields(model, x)
    # (start, jump, size): conv k5 p2 -> (-2, 1, 5); pool 2 -> (-2, 2, 6); conv k3 d2 p2 ->
    # (-2 - 2*2, 2, 6 + 2*2*2)
    expected = [(-2, 1, 5), (-2, 1, 5), (-2, 2, 6), (-6, 2, 14)]
    assert [(t.field.start, t.field.jump, t.field.size) for t in traced] == expected
    assert [t.name for t in traced] == ["0", "1", "2", "3"]
    assert not any(t.field.whole for t in traced)
    x.requires_grad_(True)
    out = model(x)
    (grad,) = torch.autograd.grad(out[0, :, 6].sum(), x)
    first = -6 + 6 * 2
    assert list(np.flatnonzero(grad[0, 0].numpy())) == list(range(first, first + 14))
