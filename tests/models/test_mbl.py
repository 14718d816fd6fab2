import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.cross_decomposition import PLSRegression

from specsoil.models import MemoryBasedLearning, PLSRegressionCV
from specsoil.models._mbl import wapls_predict


def _neighbourhoods(batch=4, k=30, p=25, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(batch, k, p)).cumsum(axis=2)
    y = X[:, :, 3] - 0.5 * X[:, :, 17] + rng.normal(size=(batch, k))
    query = rng.normal(size=(batch, p)).cumsum(axis=1)
    return X, y, query


def _curved_problem(n=300, p=50, seed=0):
    """Spectra linear in a latent u, property quadratic in u: locally linear, globally not."""
    rng = np.random.default_rng(seed)
    axis = np.linspace(0, 1, p)
    band_a = np.exp(-(((axis - 0.3) / 0.08) ** 2))
    band_b = np.exp(-(((axis - 0.7) / 0.08) ** 2))
    u = rng.uniform(-1, 1, size=n)
    v = rng.uniform(-1, 1, size=n)  # a nuisance constituent
    X = np.outer(u, band_a) + np.outer(v, band_b) + 0.01 * rng.normal(size=(n, p))
    y = u**2 + 0.02 * rng.normal(size=n)
    return X, y


class TestWeightedAveragePLS:
    @pytest.mark.parametrize("components", [1, 3, 8])
    def test_single_count_is_plain_pls(self, components):
        X, y, query = _neighbourhoods()
        got = wapls_predict(X, y, query, components, components)
        expected = [
            PLSRegression(n_components=components, scale=False)
            .fit(X[b], y[b])
            .predict(query[b : b + 1])[0]
            for b in range(X.shape[0])
        ]
        assert_allclose(got, expected, rtol=1e-10, atol=1e-10)

    def test_weights_follow_shenk(self):
        X, y, query = _neighbourhoods(seed=1)
        got = wapls_predict(X, y, query, 2, 7)
        expected = []
        for b in range(X.shape[0]):
            predictions, weights = [], []
            for a in range(2, 8):
                pls = PLSRegression(n_components=a, scale=False).fit(X[b], y[b])
                rebuilt = pls.inverse_transform(pls.transform(query[b : b + 1]))[0]
                spectral_rms = np.sqrt(np.mean((query[b] - rebuilt) ** 2))
                coef_rms = np.sqrt(np.mean(pls.coef_**2))
                predictions.append(pls.predict(query[b : b + 1])[0])
                weights.append(1.0 / (spectral_rms * coef_rms))
            expected.append(np.average(predictions, weights=weights))
        assert_allclose(got, expected, rtol=1e-9)

    def test_components_capped_by_neighbourhood_size(self):
        X, y, query = _neighbourhoods(k=5)
        # 5 centred neighbours support at most 4 components.
        assert_allclose(
            wapls_predict(X, y, query, 3, 15), wapls_predict(X, y, query, 3, 4), rtol=1e-12
        )

    def test_constant_neighbourhood_predicts_its_value(self):
        X, _, query = _neighbourhoods()
        y = np.full(X.shape[:2], 2.5)
        assert_allclose(wapls_predict(X, y, query, 3, 10), 2.5)


class TestMemoryBasedLearning:
    def test_beats_a_global_linear_model_on_a_curved_problem(self):
        X, y = _curved_problem()
        train, test = slice(0, 240), slice(240, None)
        mbl = MemoryBasedLearning(k=(20, 40, 80), n_pcs=5).fit(X[train], y[train])
        pls = PLSRegressionCV(max_components=15).fit(X[train], y[train])
        rmse_mbl = np.sqrt(np.mean((mbl.predict(X[test]) - y[test]) ** 2))
        rmse_pls = np.sqrt(np.mean((pls.predict(X[test]) - y[test]) ** 2))
        assert rmse_mbl < 0.5 * rmse_pls

    def test_nnv_picks_the_k_with_lowest_rmse(self):
        X, y = _curved_problem(n=200)
        model = MemoryBasedLearning(k=(10, 30, 90), n_pcs=3, n_validation=60).fit(X, y)
        assert model.nnv_rmse_.shape == (3,)
        assert np.isfinite(model.nnv_rmse_).all()
        assert model.k_ == (10, 30, 90)[int(np.argmin(model.nnv_rmse_))]

    def test_k_is_clipped_to_the_training_size(self):
        X, y = _curved_problem(n=40)
        model = MemoryBasedLearning(k=(20, 500)).fit(X, y)
        assert model.k_ in (20, 39)  # NNv leaves the sample itself out
        fixed = MemoryBasedLearning(k=500).fit(X, y)
        assert fixed.k_ == 40
        assert np.isnan(fixed.nnv_rmse_).all()
        assert np.isfinite(fixed.predict(X)).all()

    def test_missing_targets_are_masked_per_target(self):
        X, y = _curved_problem(n=200)
        rng = np.random.default_rng(5)
        second = X[:, 10] + rng.normal(scale=0.1, size=200)
        second[rng.choice(200, size=70, replace=False)] = np.nan
        Y = np.column_stack([y, second])
        params = {"k": 30, "n_pcs": 4}
        both = MemoryBasedLearning(**params).fit(X, Y)
        pred = both.predict(X[:50])
        assert pred.shape == (50, 2)
        assert np.isfinite(pred).all()
        # The first target's predictions ignore the second target's missing values.
        alone = MemoryBasedLearning(**params).fit(X, y)
        assert_allclose(pred[:, 0], alone.predict(X[:50]), rtol=1e-12)

    def test_samples_missing_a_target_are_never_its_neighbours(self):
        X, y = _curved_problem(n=100)
        Y = np.column_stack([y, y.copy()])
        Y[7, 1] = np.nan
        model = MemoryBasedLearning(k=1, n_pcs=3).fit(X, Y)
        pred = model.predict(X[7:8])[0]
        # With one neighbour the local model predicts that neighbour's value: sample 7
        # itself for the first target, its nearest sample with a value for the second.
        assert pred[0] == pytest.approx(y[7])
        scores = (X - X.mean(axis=0)) @ model.pca_components_
        distance = np.sum((scores - scores[7]) ** 2, axis=1)
        distance[7] = np.inf
        assert pred[1] == pytest.approx(y[int(np.argmin(distance))])

    def test_pca_distance_is_mahalanobis_in_score_space(self):
        X, y = _curved_problem(n=80)
        model = MemoryBasedLearning(k=10, n_pcs=4).fit(X, y)
        centred = X - X.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        scores = centred @ vt[:4].T
        unit = scores / scores.std(axis=0, ddof=1)
        # Same distances up to the sign of each axis.
        got = (X - model.pca_mean_) @ model.pca_components_
        assert_allclose(np.abs(got), np.abs(unit), rtol=1e-8, atol=1e-10)

    def test_n_pcs_by_cumulative_variance(self):
        X, y = _curved_problem(n=80)
        _, s, _ = np.linalg.svd(X - X.mean(axis=0), full_matrices=False)
        share = np.cumsum(s**2) / np.sum(s**2)
        for level in (0.5, 0.9, 0.999):
            expected = int(np.searchsorted(share, level)) + 1
            assert MemoryBasedLearning(k=10, n_pcs=level).fit(X, y).n_pcs_ == expected

    def test_opc_finds_the_informative_components(self):
        X, y = _curved_problem(n=200)
        model = MemoryBasedLearning(k=20, n_pcs="opc", max_pcs=20).fit(X, y)
        # u and the nuisance v span two PCs; the rest is noise that only blurs neighbours.
        assert 1 <= model.n_pcs_ <= 3

    def test_column_y_gives_column_predictions(self):
        X, y = _curved_problem(n=60)
        assert MemoryBasedLearning(k=10).fit(X, y[:, None]).predict(X[:5]).shape == (5, 1)
        assert MemoryBasedLearning(k=10).fit(X, y).predict(X[:5]).shape == (5,)

    def test_real_spectra_speed_and_sanity(self, nirsoil_subset):
        X, Y, _ = nirsoil_subset
        model = MemoryBasedLearning(k=(20, 40)).fit(X[:60], Y[:60])
        pred = model.predict(X[60:])
        assert pred.shape == (X.shape[0] - 60, 2)
        assert np.isfinite(pred).all()

    @pytest.mark.parametrize(
        ("params", "match"),
        [
            ({"k": 0}, "k must be"),
            ({"k": ()}, "k must be"),
            ({"k": "ten"}, "k must be"),
            ({"n_pcs": 0}, "n_pcs"),
            ({"n_pcs": 1.5}, "n_pcs"),
            ({"n_pcs": "auto"}, "n_pcs"),
            ({"max_pcs": 0}, "max_pcs"),
            ({"pls_components": (5, 3)}, "pls_components"),
            ({"pls_components": (0, 3)}, "pls_components"),
            ({"n_validation": 0}, "n_validation"),
        ],
    )
    def test_rejects_bad_parameters(self, params, match):
        X, y = _curved_problem(n=30)
        with pytest.raises(ValueError, match=match):
            MemoryBasedLearning(**params).fit(X, y)


class TestKNeighbours:
    def test_nearest_training_rows_by_the_pca_mahalanobis_distance(self):
        X, y = _curved_problem(n=80, p=20)
        model = MemoryBasedLearning(k=5, n_pcs=3).fit(X, y)
        queries = X[:4] + 0.01
        found = model.kneighbours(queries, 6)
        assert found.shape == (4, 6)
        # Brute force: Euclidean distance between PC scores scaled to unit variance.
        centred = X - X.mean(axis=0)
        _, singular, vt = np.linalg.svd(centred, full_matrices=False)
        axes = vt[:3].T / (singular[:3] / np.sqrt(X.shape[0] - 1))
        train, query = centred @ axes, (queries - X.mean(axis=0)) @ axes
        distance = ((query[:, None, :] - train[None, :, :]) ** 2).sum(axis=2)
        np.testing.assert_array_equal(found, np.argsort(distance, axis=1)[:, :6])

    def test_k_is_clipped_and_checked(self):
        X, y = _curved_problem(n=30, p=10)
        model = MemoryBasedLearning(k=5).fit(X, y)
        assert model.kneighbours(X[:2], 100).shape == (2, 30)
        with pytest.raises(ValueError, match="k must be an int >= 1"):
            model.kneighbours(X[:2], 0)
