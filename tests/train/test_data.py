"""Tests of input shaping, the inner validation split and the loaders."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from specsoil.train._data import inner_split, make_loader, network_input


class TestNetworkInput:
    @pytest.mark.parametrize(
        ("shape", "expected"),
        [((5, 7), (5, 1, 7)), ((5, 3, 7), (5, 3, 7)), ((5, 1, 4, 6), (5, 1, 4, 6))],
    )
    def test_shapes(self, shape, expected):
        X = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
        out = network_input(X)
        assert out.shape == expected
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out.reshape(shape), X)

    @pytest.mark.parametrize("shape", [(5,), (5, 2, 4, 6), (2, 1, 1, 1, 1)])
    def test_rejects(self, shape):
        with pytest.raises(ValueError, match="got shape"):
            network_input(np.zeros(shape))


class TestInnerSplit:
    @pytest.mark.parametrize(
        ("n", "fraction", "n_val"), [(100, 0.15, 15), (7, 0.15, 1), (2, 0.9, 1)]
    )
    def test_partition(self, n, fraction, n_val):
        train, val = inner_split(n, fraction, seed=0)
        assert len(val) == n_val
        assert np.intersect1d(train, val).size == 0
        np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(n))

    def test_seeded(self):
        a = inner_split(50, 0.2, seed=1)[1]
        assert np.array_equal(a, inner_split(50, 0.2, seed=1)[1])
        assert not np.array_equal(a, inner_split(50, 0.2, seed=2)[1])

    def test_zero_fraction_keeps_everything(self):
        train, val = inner_split(9, 0.0, seed=0)
        np.testing.assert_array_equal(train, np.arange(9))
        assert val.size == 0

    def test_one_sample_cannot_be_split(self):
        with pytest.raises(ValueError, match="at least 2 samples"):
            inner_split(1, 0.2, seed=0)


class TestMakeLoader:
    def test_batches_cover_data_once(self):
        X = np.arange(20, dtype=np.float32).reshape(10, 1, 2)
        Y = np.arange(10, dtype=np.float32).reshape(10, 1)
        seen = np.concatenate(
            [y.numpy()[:, 0] for _, y in make_loader(X, Y, batch_size=4, shuffle=True, seed=0)]
        )
        np.testing.assert_array_equal(np.sort(seen), np.arange(10))

    def test_single_sample_last_batch_is_dropped_when_training(self):
        X = np.zeros((7, 1, 2), dtype=np.float32)
        Y = np.zeros((7, 1), dtype=np.float32)
        sizes = [len(y) for _, y in make_loader(X, Y, batch_size=3, shuffle=True, seed=0)]
        assert sizes == [3, 3]  # a batch of 1 would break BatchNorm
        sizes = [len(y) for _, y in make_loader(X, Y, batch_size=3, shuffle=False, seed=0)]
        assert sizes == [3, 3, 1]


class TestDeviceLoader:
    def test_batches_equal_the_host_loader(self):
        """Cutting whole batches from device tensors gives the same batches, same order."""
        X = np.arange(70 * 3, dtype=np.float32).reshape(70, 1, 3)
        Y = np.arange(70, dtype=np.float32).reshape(70, 1)
        for shuffle in (True, False):
            host = make_loader(X, Y, batch_size=16, shuffle=shuffle, seed=4)
            cut = make_loader(X, Y, batch_size=16, shuffle=shuffle, seed=4, device="cpu")
            for _ in range(2):  # two epochs: the shuffles follow the same generator
                for (xa, ya), (xb, yb) in zip(host, cut, strict=True):
                    np.testing.assert_array_equal(xa.numpy(), xb.numpy())
                    np.testing.assert_array_equal(ya.numpy(), yb.numpy())

    def test_drops_a_last_batch_of_one(self):
        X = np.zeros((33, 1, 4), dtype=np.float32)
        Y = np.zeros((33, 1), dtype=np.float32)
        loader = make_loader(X, Y, batch_size=16, shuffle=True, seed=0, device="cpu")
        assert [len(x) for x, _ in loader] == [16, 16]
