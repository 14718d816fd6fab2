import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.cross_decomposition import PLSRegression
from sklearn.model_selection import KFold, ShuffleSplit

from specsoil.models import PLSRegressionCV
from specsoil.models._pls import pls_cv_curve, select_n_components, truncated_pls_coefficients


def _low_rank_problem(rank, n=120, p=60, noise=0.05, seed=0):
    """Spectra-like X of a known rank (smooth bands) plus noise; y linear in the latents."""
    rng = np.random.default_rng(seed)
    axis = np.linspace(0, 1, p)
    centres = np.linspace(0.1, 0.9, rank)
    bands = np.exp(-(((axis[None, :] - centres[:, None]) / 0.06) ** 2))  # (rank, p)
    # Distinct latent variances: with equal ones PLS needs fewer components than the rank
    # (its Krylov space only counts distinct eigenvalues of X'X).
    latent = rng.normal(size=(n, rank)) * np.geomspace(2.0, 0.5, rank)
    X = latent @ bands + noise * rng.normal(size=(n, p))
    y = latent @ rng.uniform(0.5, 1.5, size=rank) + noise * rng.normal(size=n)
    return X, y


class TestTruncation:
    @pytest.mark.parametrize("scale", [False, True])
    def test_truncated_models_equal_direct_fits(self, pls_reference, scale):
        X, y = pls_reference["X"], pls_reference["y"]
        big = PLSRegression(n_components=12, scale=scale).fit(X, y)
        coefs, intercepts = truncated_pls_coefficients(big, X, y)
        assert coefs.shape == (12, X.shape[1])
        for a in range(1, 13):
            direct = PLSRegression(n_components=a, scale=scale).fit(X, y)
            # Relative to the coefficient size, which grows fast with a on collinear spectra.
            size = np.abs(direct.coef_).max()
            assert_allclose(coefs[a - 1], direct.coef_[0], rtol=0, atol=1e-8 * size)
            assert_allclose(
                X @ coefs[a - 1] + intercepts[a - 1], direct.predict(X), rtol=1e-8, atol=1e-8
            )

    def test_cv_curve_equals_refitting_every_size(self, pls_reference):
        X, y = pls_reference["X"], pls_reference["y"]
        splits = list(KFold(4, shuffle=True, random_state=1).split(X))
        residuals = pls_cv_curve(X, y, 8, splits, scale=False)
        naive = np.empty_like(residuals)
        for train, test in splits:
            for a in range(1, 9):
                model = PLSRegression(n_components=a, scale=False).fit(X[train], y[train])
                naive[test, a - 1] = model.predict(X[test]) - y[test]
        assert_allclose(residuals, naive, rtol=1e-7, atol=1e-7)


class TestSelection:
    def test_min_takes_lowest_rmse(self):
        residuals = np.column_stack([np.full(10, 3.0), np.full(10, 1.0), np.full(10, 2.0)])
        assert select_n_components(residuals, "min") == 2

    def test_one_se_prefers_fewer_components_within_noise(self):
        rng = np.random.default_rng(0)
        base = rng.normal(size=50)
        # Component counts 2 and 3 are practically equal; 3 is a hair better.
        residuals = np.column_stack([3 * base, 1.01 * base, 1.0 * base])
        assert select_n_components(residuals, "min") == 3
        assert select_n_components(residuals, "1se") == 2

    def test_one_se_matches_independent_rule(self):
        rng = np.random.default_rng(3)
        residuals = rng.normal(size=(40, 6)) * np.array([3.0, 2.0, 1.5, 1.45, 1.4, 1.6])
        rmse = np.sqrt((residuals**2).mean(axis=0))
        se = np.array([np.std(residuals[:, a], ddof=1) for a in range(6)]) / np.sqrt(40)
        # pls::selectNcomp(method = "onesigma"): first count whose rmse - se < min rmse
        expected = next(a for a in range(6) if rmse[a] - se[a] < rmse.min()) + 1
        assert select_n_components(residuals, "1se") == expected

    def test_randomization_keeps_the_best_when_smaller_models_are_clearly_worse(self):
        rng = np.random.default_rng(1)
        base = rng.normal(size=80)
        residuals = np.column_stack([2.0 * base, 1.3 * base, base])
        assert select_n_components(residuals, "randomization") == 3

    def test_randomization_prefers_fewer_components_when_not_significant(self):
        rng = np.random.default_rng(2)
        base = rng.normal(size=80)
        # The 2-component residuals differ from the best only by noise of either sign.
        noisy = base + 0.05 * rng.normal(size=80)
        residuals = np.column_stack([3.0 * base, noisy, base])
        assert np.sqrt(np.mean(noisy**2)) > np.sqrt(np.mean(base**2))
        assert select_n_components(residuals, "randomization") == 2

    def test_randomization_is_seeded(self):
        rng = np.random.default_rng(4)
        residuals = rng.normal(size=(30, 5)) * np.array([2.0, 1.2, 1.1, 1.05, 1.0])
        picks = {select_n_components(residuals, "randomization", random_state=7) for _ in range(3)}
        assert len(picks) == 1


class TestPLSRegressionCV:
    def test_matches_simpls_reference(self, pls_reference):
        X, y = pls_reference["X"], pls_reference["y"]
        model = PLSRegressionCV(max_components=10, cv=KFold(5), selection="min").fit(X, y)
        assert_allclose(model.cv_rmse_, pls_reference["cv_rmse"], rtol=1e-7)
        a = model.n_components_
        assert a == int(np.argmin(pls_reference["cv_rmse"])) + 1
        size = np.abs(pls_reference["coefs"][a - 1]).max()
        assert_allclose(model.coef_[0], pls_reference["coefs"][a - 1], rtol=0, atol=1e-7 * size)
        assert_allclose(model.intercept_[0], pls_reference["intercepts"][a - 1], rtol=1e-7)
        assert_allclose(
            model.predict(X),
            X @ pls_reference["coefs"][a - 1] + pls_reference["intercepts"][a - 1],
            rtol=1e-7,
        )

    @pytest.mark.parametrize("rank", [2, 4, 6])
    @pytest.mark.parametrize("selection", ["1se", "randomization", "min"])
    def test_chooses_the_true_rank(self, rank, selection):
        X, y = _low_rank_problem(rank)
        model = PLSRegressionCV(max_components=15, selection=selection).fit(X, y)
        assert model.n_components_ == rank
        assert model.cv_rmse_.shape == (15,)

    def test_beats_the_mean_on_real_spectra(self, pls_reference):
        X, y = pls_reference["X"], pls_reference["y"]
        train, test = np.arange(0, 60) % 3 != 0, np.arange(0, 60) % 3 == 0
        model = PLSRegressionCV(max_components=15).fit(X[train], y[train])
        rmse = np.sqrt(np.mean((model.predict(X[test]) - y[test]) ** 2))
        rmse_mean = np.sqrt(np.mean((y[train].mean() - y[test]) ** 2))
        assert rmse < 0.8 * rmse_mean

    def test_caps_components_by_fold_size_and_features(self):
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(12, 30)), rng.normal(size=12)
        model = PLSRegressionCV(max_components=30, cv=3).fit(X, y)
        # 3 folds of 12 leave 8 training samples: at most 7 components are tried.
        assert np.isfinite(model.cv_rmse_[:7]).all()
        assert np.isnan(model.cv_rmse_[7:]).all()
        narrow = PLSRegressionCV(max_components=30).fit(X[:, :4], y)
        assert np.isfinite(narrow.cv_rmse_).sum() == 4

    def test_multi_target_with_missing_values(self):
        X, y = _low_rank_problem(3, seed=1)
        Y = np.column_stack([y, 2 * y + 1])
        Y[::4, 1] = np.nan
        model = PLSRegressionCV(max_components=10).fit(X, Y)
        assert model.coef_.shape == (2, X.shape[1])
        assert model.n_components_.shape == (2,)
        assert model.cv_rmse_.shape == (2, 10)
        assert len(model.estimators_) == 2
        pred = model.predict(X)
        assert pred.shape == (120, 2)
        # Each target's model is the one fitted on that target's observed rows alone.
        observed = ~np.isnan(Y[:, 1])
        alone = PLSRegressionCV(max_components=10).fit(X[observed], Y[observed, 1])
        assert_allclose(pred[:, 1], alone.predict(X), rtol=1e-10, atol=1e-10)
        first = PLSRegressionCV(max_components=10).fit(X, y)
        assert_allclose(pred[:, 0], first.predict(X), rtol=1e-10, atol=1e-10)

    def test_accepts_a_splitter_that_leaves_samples_out(self):
        X, y = _low_rank_problem(3)
        model = PLSRegressionCV(max_components=8, cv=ShuffleSplit(3, random_state=0)).fit(X, y)
        assert np.isfinite(model.cv_rmse_).all()
        assert model.n_components_ == 3

    def test_column_y_gives_column_predictions(self):
        X, y = _low_rank_problem(2)
        assert PLSRegressionCV(max_components=5).fit(X, y).predict(X).shape == (120,)
        assert PLSRegressionCV(max_components=5).fit(X, y[:, None]).predict(X).shape == (120, 1)

    def test_seeded_inner_folds_are_reproducible(self):
        X, y = _low_rank_problem(4, noise=0.5)
        a = PLSRegressionCV(random_state=3).fit(X, y)
        b = PLSRegressionCV(random_state=3).fit(X, y)
        assert_allclose(a.cv_rmse_, b.cv_rmse_)

    @pytest.mark.parametrize(
        ("params", "match"),
        [
            ({"max_components": 0}, "max_components"),
            ({"max_components": 2.5}, "max_components"),
            ({"cv": 1}, "cv"),
            ({"cv": "five"}, "cv"),
            ({"selection": "best"}, "selection"),
            ({"selection": "1SE"}, "selection"),
        ],
    )
    def test_rejects_bad_parameters(self, params, match):
        X, y = _low_rank_problem(2)
        with pytest.raises(ValueError, match=match):
            PLSRegressionCV(**params).fit(X, y)

    def test_rejects_a_target_without_values(self):
        X, y = _low_rank_problem(2)
        Y = np.column_stack([y, np.full_like(y, np.nan)])
        Y[0, 1] = 1.0
        with pytest.raises(ValueError, match="target column 1 has 1 finite value"):
            PLSRegressionCV().fit(X, Y)
