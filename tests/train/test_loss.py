"""Tests of the masked multi-task loss."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from specsoil.train import masked_mse_loss  # noqa: E402


class TestMaskedMSELoss:
    def test_mean_over_present_entries(self):
        pred = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.0]])
        target = np.array([[1.5, np.nan], [2.0, 1.0], [np.nan, np.nan]])
        # By hand: present errors are -0.5, 1.0 and -2.0 -> (0.25 + 1 + 4) / 3.
        loss = masked_mse_loss(torch.tensor(pred), torch.tensor(target))
        assert loss.item() == pytest.approx(5.25 / 3)

    def test_gradient_ignores_missing_entries(self):
        pred = torch.tensor([[1.0, 2.0], [3.0, -1.0]], requires_grad=True)
        target = torch.tensor([[0.0, float("nan")], [2.0, 1.0]])
        masked_mse_loss(pred, target).backward()
        # d/dp (sum (p - t)^2 / 3) = 2 (p - t) / 3 on present entries, 0 where missing.
        expected = np.array([[2 * 1.0 / 3, 0.0], [2 * 1.0 / 3, 2 * -2.0 / 3]])
        np.testing.assert_allclose(pred.grad.numpy(), expected, rtol=1e-6)
        assert np.isfinite(pred.grad.numpy()).all()

    def test_missing_value_does_not_change_loss(self):
        pred = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
        with_nan = torch.tensor([[0.0, float("nan")], [2.0, 1.0]])
        # The same batch without the row-0 entry of target 1: the single-target part of
        # row 0 plus the full row 1, averaged over the same three entries.
        expected = ((1.0 - 0.0) ** 2 + (3.0 - 2.0) ** 2 + (-1.0 - 1.0) ** 2) / 3
        assert masked_mse_loss(pred, with_nan).item() == pytest.approx(expected)

    def test_all_missing_batch_contributes_nothing(self):
        pred = torch.tensor([[1.0], [2.0]], requires_grad=True)
        target = torch.full((2, 1), float("nan"))
        loss = masked_mse_loss(pred, target)
        loss.backward()
        assert loss.item() == 0.0
        assert torch.count_nonzero(pred.grad) == 0

    def test_column_missing_in_batch_only_affects_that_column(self):
        pred = torch.tensor([[1.0, 5.0], [2.0, 7.0]], requires_grad=True)
        target = torch.tensor([[0.0, float("nan")], [0.0, float("nan")]])
        masked_mse_loss(pred, target).backward()
        assert torch.count_nonzero(pred.grad[:, 1]) == 0
        np.testing.assert_allclose(pred.grad[:, 0].numpy(), [1.0, 2.0])  # 2 (p - 0) / 2

    def test_shape_mismatch(self):
        with pytest.raises(ValueError, match="same shape"):
            masked_mse_loss(torch.zeros(3, 2), torch.zeros(3, 1))
