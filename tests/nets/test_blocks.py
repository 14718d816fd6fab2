"""ConvBlock and Head specs: validation, shape inference against real tensors, padding."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from specsoil._errors import SpecsoilError
from specsoil.nets import ConvBlock, ConvNet, Head, conv_block_output_shape
from specsoil.nets._blocks import build_conv_block


def _conv_length(length, kernel, stride, padding, dilation):
    """Textbook output length of a convolution (Dumoulin & Visin 2016, relationship 15)."""
    return math.floor((length + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1


class TestConvBlockValidation:
    @pytest.mark.parametrize(
        ("settings", "match"),
        [
            ({"activation": "swish"}, r"activation must be one of \['relu', 'tanh'"),
            ({"padding_mode": "mirror"}, r"padding_mode must be one of \['zeros', 'reflect'"),
            ({"padding": "valid"}, "padding must be an integer >= 0, a tuple of 1, or 'same'"),
            ({"padding": -1}, "padding must be an integer >= 0"),
            ({"kernel_size": 0}, "kernel_size must be an integer >= 1"),
            ({"kernel_size": (3, 3)}, "kernel_size must be 1 integers"),
            ({"stride": 1.5}, "stride must be an integer >= 1"),
            ({"dilation": True}, "dilation must be an integer >= 1"),
            ({"pool": "min"}, r"pool must be one of \['max', 'avg'\]"),
            ({"pool": "max", "pool_size": 0}, "pool_size must be an integer >= 1"),
            ({"batchnorm": "after"}, "batchnorm must be one of"),
            ({"dropout": 1.0}, r"dropout must be a number in \[0, 1\)"),
            ({"dims": 3}, "dims must be 1 or 2"),
        ],
    )
    def test_bad_setting_names_it(self, settings, match):
        with pytest.raises(SpecsoilError, match=match):
            ConvBlock(8, **settings)

    def test_out_channels_required_positive(self):
        with pytest.raises(SpecsoilError, match="out_channels must be an integer >= 1; got 0"):
            ConvBlock(0)

    def test_lists_become_tuples_and_round_trip(self):
        block = ConvBlock(4, kernel_size=[3, 5], dims=2, stride=[1, 2], pool="avg")
        assert block.kernel_size == (3, 5)
        assert block.kernel() == (3, 5)
        assert block.pool_strides() == (2, 2)  # defaults to the window
        again = ConvBlock.from_value(block.to_dict(), dims=1)
        assert again == block

    def test_from_mapping_rejects_unknown_keys(self):
        with pytest.raises(SpecsoilError, match=r"unknown setting\(s\) \['kernel'\]"):
            ConvBlock.from_value({"out_channels": 4, "kernel": 3}, dims=1)
        with pytest.raises(SpecsoilError, match="'out_channels' is required"):
            ConvBlock.from_value({"kernel_size": 3}, dims=1)

    def test_describe_lists_non_defaults(self):
        text = ConvBlock(16, kernel_size=7, stride=2).describe()
        assert text == "ConvBlock(out_channels=16, kernel_size=7, stride=2)"


class TestHead:
    def test_bad_settings(self):
        with pytest.raises(SpecsoilError, match="Head pooling must be one of"):
            Head(pooling="gap")
        with pytest.raises(SpecsoilError, match="Head hidden must be"):
            Head(hidden=(0,))
        with pytest.raises(SpecsoilError, match=r"unknown setting\(s\) \['width'\]"):
            Head.from_value({"width": 3})

    @pytest.mark.parametrize(
        ("pooling", "expected"), [("flatten", 8 * 10), ("global_avg", 8), ("global_max", 8)]
    )
    def test_feature_width(self, pooling, expected):
        net = ConvNet([ConvBlock(8)], Head(pooling=pooling), (1, 10), 2)
        assert net.num_features == expected
        assert net(torch.randn(3, 1, 10)).shape == (3, 2)

    def test_hidden_layers_and_dropout(self):
        net = ConvNet([ConvBlock(4)], {"hidden": [16, 8], "dropout": 0.5}, (2, 12), 3)
        linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
        assert [(m.in_features, m.out_features) for m in linears] == [(4, 16), (16, 8), (8, 3)]
        assert net.num_features == 8
        dropouts = [m for m in net.modules() if isinstance(m, torch.nn.Dropout)]
        assert len(dropouts) == 3  # before each fully connected layer


class TestShapeInference:
    # A grid of settings; each inferred shape must equal the shape of a real forward pass.
    GRID_1D = tuple(
        itertools.product(
            (5, 16, 31),  # input length
            (1, 3, 4),  # kernel
            (1, 2, 3),  # stride
            ("same", 0, 2),  # padding
            (1, 2),  # dilation
            (None, "max"),  # pooling
        )
    )

    @pytest.mark.parametrize(("length", "kernel", "stride", "padding", "dilation", "pool"), GRID_1D)
    def test_1d_matches_real_tensor(self, length, kernel, stride, padding, dilation, pool):
        block = ConvBlock(
            3,
            kernel_size=kernel,
            stride=stride,
            padding=padding,
            dilation=dilation,
            pool=pool,
            batchnorm="none",
        )
        pad = 0 if padding == "same" else padding
        expected_conv = (
            math.ceil(length / stride)
            if padding == "same"
            else _conv_length(length, kernel, stride, pad, dilation)
        )
        if expected_conv < 1 or (pool and expected_conv < 2):
            with pytest.raises(SpecsoilError, match="does not fit"):
                conv_block_output_shape(block, (2, length), where="block 1")
            return
        expected = expected_conv if pool is None else (expected_conv - 2) // 2 + 1
        shape = conv_block_output_shape(block, (2, length), where="block 1")
        assert shape == (3, expected)
        module, built_shape = build_conv_block(block, (2, length), where="block 1")
        out = module(torch.randn(1, 2, length))
        assert tuple(out.shape[1:]) == shape == built_shape

    @pytest.mark.parametrize(
        ("size", "kernel", "stride", "pool_size"),
        [((17, 5), (3, 3), (1, 1), (2, 2)), ((8, 8), (5, 3), (2, 1), (2, 1)), ((9, 4), 3, 2, 1)],
    )
    def test_2d_matches_real_tensor(self, size, kernel, stride, pool_size):
        block = ConvBlock(
            4, kernel_size=kernel, stride=stride, dims=2, pool="avg", pool_size=pool_size
        )
        shape = conv_block_output_shape(block, (1, *size), where="block 1")
        module, _ = build_conv_block(block, (1, *size), where="block 1")
        assert tuple(module(torch.randn(2, 1, *size)).shape[1:]) == shape

    def test_shrink_to_zero_names_block_and_suggests_fix(self):
        blocks = [ConvBlock(8, kernel_size=3, padding=0, pool="max") for _ in range(3)]
        # 20 → conv 18 → pool 9 → conv 7 → pool 3 → conv 1 → pool needs 2: block 3 fails.
        with pytest.raises(SpecsoilError) as info:
            ConvNet(blocks, None, (1, 20), 1)
        message = str(info.value)
        assert message.startswith("block 3 ConvBlock(out_channels=8, padding=0, pool='max')")
        assert "the convolution leaves 1 but the pooling window is 2" in message
        assert "use padding='same', a smaller kernel or stride, fewer pooling blocks" in message
        assert "more input bands" in message

    def test_kernel_longer_than_input(self):
        with pytest.raises(
            SpecsoilError, match=r"block 2 .*kernel spans 9 \(kernel_size=5, dilation=2\)"
        ):
            ConvNet(
                [
                    ConvBlock(4, kernel_size=3, stride=2, padding=0),
                    ConvBlock(4, kernel_size=5, dilation=2, padding=0),
                ],
                None,
                (1, 12),
                1,
            )

    def test_reflect_padding_wider_than_input(self):
        block = ConvBlock(2, kernel_size=9, padding_mode="reflect")
        with pytest.raises(SpecsoilError, match="reflect padding of 4 needs more than 4 values"):
            conv_block_output_shape(block, (1, 4), where="block 1")

    def test_dims_mismatch(self):
        with pytest.raises(SpecsoilError, match="is a 2D block but its input has 1 spatial axis"):
            conv_block_output_shape(ConvBlock(2, dims=2), (1, 10), where="block 1")

    def test_no_blocks(self):
        with pytest.raises(SpecsoilError, match="at least one ConvBlock"):
            ConvNet([], None, (1, 10), 1)


class TestSamePadding:
    @pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
    @pytest.mark.parametrize(
        ("kernel", "stride", "dilation"), [(3, 1, 1), (4, 1, 1), (5, 2, 1), (3, 3, 2)]
    )
    def test_same_matches_numpy_padding(self, mode, kernel, stride, dilation):
        """'same' = pad (total // 2, rest) in the chosen mode, then a valid convolution."""
        length = 13
        block = ConvBlock(
            1,
            kernel_size=kernel,
            stride=stride,
            dilation=dilation,
            padding_mode=mode,
            batchnorm="none",
            activation="none",
        )
        module, shape = build_conv_block(block, (1, length), where="block 1")
        conv = module.conv
        x = np.random.default_rng(0).normal(size=length)
        span = (kernel - 1) * dilation + 1
        n_out = -(-length // stride)
        total = max((n_out - 1) * stride + span - length, 0)
        numpy_mode = {
            "zeros": "constant",
            "reflect": "reflect",
            "replicate": "edge",
            "circular": "wrap",
        }
        padded = np.pad(x, (total // 2, total - total // 2), mode=numpy_mode[mode])
        taps = conv.weight.detach().numpy()[0, 0]
        expected = (
            np.array(
                [
                    sum(taps[i] * padded[start + i * dilation] for i in range(kernel))
                    for start in range(0, n_out * stride, stride)
                ]
            )
            + conv.bias.item()
        )
        out = module(torch.tensor(x, dtype=torch.float32).view(1, 1, length))
        assert shape == (1, n_out)
        np.testing.assert_allclose(out.detach().numpy()[0, 0], expected, rtol=1e-5, atol=1e-6)


class TestLayerOrder:
    @pytest.mark.parametrize(
        ("batchnorm", "expected"),
        [
            ("before_activation", ["conv", "bn", "act", "pool", "drop"]),
            ("after_activation", ["conv", "act", "bn", "pool", "drop"]),
            ("none", ["conv", "act", "pool", "drop"]),
        ],
    )
    def test_batchnorm_placement(self, batchnorm, expected):
        block = ConvBlock(4, batchnorm=batchnorm, pool="avg", dropout=0.1, activation="gelu")
        module, _ = build_conv_block(block, (1, 16), where="block 1")
        assert [name for name, _ in module.named_children()] == expected
        # The BN shift makes a conv bias redundant only when BN comes straight after the conv.
        assert (module.conv.bias is None) == (batchnorm == "before_activation")
        assert isinstance(module.act, torch.nn.GELU)
        assert isinstance(module.pool, torch.nn.AvgPool1d)
