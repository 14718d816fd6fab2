"""The 2D path on a real image task: LeNet-5 on scikit-learn's 8 x 8 handwritten digits."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from specsoil.train import CNNClassifier


def test_lenet5_2d_reaches_97_percent_on_digits():
    digits = load_digits()
    X = (digits.images / 16.0).reshape(-1, 1, 8, 8)  # (N, 1, 8, 8), pixels scaled to 0..1
    X_train, X_test, y_train, y_test = train_test_split(
        X, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    model = CNNClassifier(
        "lenet5_2d",
        max_epochs=30,
        lr=3e-3,
        batch_size=32,
        val_fraction=0.0,
        device="cpu",
        num_threads=1,
        random_state=0,
    ).fit(X_train, y_train)
    assert model.input_shape_ == (1, 8, 8)
    assert model.score(X_test, y_test) >= 0.97
