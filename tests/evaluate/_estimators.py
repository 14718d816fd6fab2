"""Tiny regressors for the evaluation tests: they mask NaN targets as the real models must."""

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin


class MaskedLinearRegression(RegressorMixin, BaseEstimator):
    """Least squares per target on the rows where that target is observed."""

    def fit(self, X, y):
        Y = np.asarray(y, dtype=float)
        self.ndim_ = Y.ndim
        Y = Y.reshape(len(X), -1)
        design = np.column_stack([np.ones(len(X)), X])
        self.coef_ = np.empty((design.shape[1], Y.shape[1]))
        for j in range(Y.shape[1]):
            keep = ~np.isnan(Y[:, j])
            self.coef_[:, j] = np.linalg.lstsq(design[keep], Y[keep, j], rcond=None)[0]
        return self

    def predict(self, X):
        out = np.column_stack([np.ones(len(X)), X]) @ self.coef_
        return out[:, 0] if self.ndim_ == 1 else out


class MaskedMean(RegressorMixin, BaseEstimator):
    """Predicts each target's mean over its observed training values (0 if none)."""

    def fit(self, X, y):
        Y = np.asarray(y, dtype=float)
        self.ndim_ = Y.ndim
        Y = Y.reshape(len(X), -1)
        observed = ~np.isnan(Y)
        totals = np.where(observed, Y, 0.0).sum(axis=0)
        self.mean_ = np.divide(totals, np.maximum(observed.sum(axis=0), 1))
        return self

    def predict(self, X):
        out = np.tile(self.mean_, (len(X), 1))
        return out[:, 0] if self.ndim_ == 1 else out
