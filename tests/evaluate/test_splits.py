import tracemalloc

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import cross_val_predict, cross_val_score

from specsoil import SpecsoilError
from specsoil.evaluate import (
    Fold,
    KennardStoneSplit,
    _splits,
    column_folds,
    group_splits,
    kennard_stone,
    kfold_splits,
    train_test_column,
)
from specsoil.evaluate._splits import _kennard_stone_order


def _brute_force_kennard_stone(Z, n_select):
    """Textbook Kennard & Stone (1969) on the full distance matrix."""
    distances = cdist(Z, Z)
    i, j = np.unravel_index(np.argmax(distances), distances.shape)
    chosen = [min(i, j), max(i, j)]
    while len(chosen) < n_select:
        nearest = distances[:, chosen].min(axis=1)
        nearest[chosen] = -1.0
        chosen.append(int(np.argmax(nearest)))
    return chosen


def _assert_partition(folds, n):
    tested = np.concatenate([f.test for f in folds])
    assert np.array_equal(np.sort(tested), np.arange(n))  # every row tested exactly once
    for fold in folds:
        assert np.intersect1d(fold.train, fold.test).size == 0
        assert np.array_equal(np.union1d(fold.train, fold.test), np.arange(n))


class TestFold:
    def test_overlap_is_rejected(self):
        with pytest.raises(ValueError, match="both train and test"):
            Fold("f", np.array([0, 1, 2]), np.array([2, 3]))

    def test_empty_side_is_rejected(self):
        with pytest.raises(ValueError, match="test must be a non-empty"):
            Fold("f", np.array([0, 1]), np.array([], dtype=np.intp))

    def test_rows_become_intp(self):
        fold = Fold("f", np.array([0, 1], dtype=np.int32), np.array([2], dtype=np.int64))
        assert fold.train.dtype == np.intp
        assert fold.test.dtype == np.intp


class TestKFold:
    def test_partition_and_sizes(self):
        folds = kfold_splits(103, n_splits=10, random_state=3)
        assert [f.name for f in folds] == [f"fold{i:02d}" for i in range(1, 11)]
        _assert_partition(folds, 103)
        assert {f.test.size for f in folds} == {10, 11}

    def test_seed_reproducible(self):
        first = kfold_splits(50, n_splits=5, random_state=7)
        again = kfold_splits(50, n_splits=5, random_state=7)
        other = kfold_splits(50, n_splits=5, random_state=8)
        assert all(np.array_equal(a.test, b.test) for a, b in zip(first, again, strict=True))
        assert not all(np.array_equal(a.test, b.test) for a, b in zip(first, other, strict=True))

    def test_shuffled(self):
        folds = kfold_splits(50, n_splits=5)
        assert not np.array_equal(folds[0].test, np.arange(10))

    @pytest.mark.parametrize("n_splits", [0, 1, 11])
    def test_bad_n_splits(self, n_splits):
        with pytest.raises(
            SpecsoilError, match=rf"folds must be between 2 and .*\(10\); got {n_splits}"
        ):
            kfold_splits(10, n_splits=n_splits)


class TestColumnFolds:
    def test_one_fold_per_value(self):
        values = pd.Series([3, 1, 2, 3, 1, 10, 2])
        folds = column_folds(values, column="fold")
        assert [f.name for f in folds] == ["1", "2", "3", "10"]
        _assert_partition(folds, 7)
        assert folds[2].test.tolist() == [0, 3]

    def test_float_labels_read_as_integers(self):
        folds = column_folds(np.array([1.0, 2.0, 1.0]), column="fold")
        assert [f.name for f in folds] == ["1", "2"]

    def test_string_labels(self):
        folds = column_folds(["b", "a", "b"], column="fold")
        assert [f.name for f in folds] == ["a", "b"]
        assert folds[1].test.tolist() == [0, 2]

    def test_missing_value_names_column_and_row(self):
        with pytest.raises(SpecsoilError, match=r"'cv_fold', data row 3: missing"):
            column_folds(pd.Series([1.0, 2.0, np.nan, 1.0]), column="cv_fold")

    def test_needs_two_values(self):
        with pytest.raises(SpecsoilError, match="at least 2 distinct"):
            column_folds([4, 4, 4], column="cv_fold")


class TestGroupSplits:
    def test_groups_never_straddle(self):
        groups = pd.Series(["site_b", "site_a", "site_b", "site_c", "site_a", "site_c"])
        folds = group_splits(groups, column="site")
        assert [f.name for f in folds] == ["site_a", "site_b", "site_c"]
        _assert_partition(folds, 6)
        for fold in folds:
            assert set(groups[fold.test]) == {fold.name}
            assert fold.name not in set(groups[fold.train])

    def test_index_is_ignored(self):
        groups = pd.Series(["a", "b", "a"], index=[10, 20, 30])
        assert group_splits(groups, column="site")[0].test.tolist() == [0, 2]

    def test_needs_two_groups(self):
        with pytest.raises(SpecsoilError, match="'site' needs at least 2"):
            group_splits(["x", "x"], column="site")

    def test_missing_group(self):
        with pytest.raises(SpecsoilError, match=r"group column 'site', data row 2"):
            group_splits(pd.Series(["x", None, "y"]), column="site")


class TestTrainTestColumn:
    @pytest.mark.parametrize(
        "values",
        [
            [1, 0, 1, 0],
            [1.0, 0.0, 1.0, 0.0],
            [True, False, True, False],
            ["TRUE", "false", "Yes", "no"],
            ["train", "test", "Cal", "VAL"],
            ["1", "0", "1.0", "0.0"],
            ["calibration", "validation", "cal", "val"],
        ],
    )
    def test_accepted_spellings(self, values):
        fold = train_test_column(pd.Series(values), column="train")
        assert fold.name == "test"
        assert fold.train.tolist() == [0, 2]
        assert fold.test.tolist() == [1, 3]

    @pytest.mark.parametrize(("value", "shown"), [(2, "2"), ("maybe", "'maybe'"), (None, "None")])
    def test_unknown_value_names_row_and_value(self, value, shown):
        with pytest.raises(SpecsoilError, match=rf"'split', data row 3: {shown} is neither"):
            train_test_column(pd.Series([1, 0, value], dtype=object), column="split")

    @pytest.mark.parametrize(("values", "side"), [([1, 1], "test"), ([0, "val"], "calibration")])
    def test_empty_side(self, values, side):
        with pytest.raises(SpecsoilError, match=f"marks no row as {side}"):
            train_test_column(values, column="split")


class TestKennardStone:
    @pytest.mark.parametrize(("n", "n_features", "n_select"), [(12, 3, 6), (40, 5, 35), (9, 1, 2)])
    def test_matches_brute_force_order(self, n, n_features, n_select):
        Z = np.random.default_rng(n).normal(size=(n, n_features))
        got = _kennard_stone_order(Z, n_select)
        assert got.tolist() == _brute_force_kennard_stone(Z, n_select)

    def test_fold_matches_brute_force(self):
        X = np.random.default_rng(1).lognormal(size=(20, 50)) + 5.0  # spectra-like offset
        fold = kennard_stone(X, test_size=0.25)
        assert fold.name == "kennard_stone"
        assert fold.test.size == 5
        assert fold.train.tolist() == sorted(_brute_force_kennard_stone(X, 15))
        assert np.array_equal(np.union1d(fold.train, fold.test), np.arange(20))

    def test_picks_the_extremes_first(self):
        # Corners of a square plus interior points: the corners span the set, so they calibrate.
        corners = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
        inner = np.random.default_rng(0).uniform(0.3, 0.7, size=(6, 2))
        fold = kennard_stone(np.vstack([inner, corners]), test_size=6)
        assert fold.train.tolist() == [6, 7, 8, 9]

    def test_on_pca_scores(self):
        X = np.random.default_rng(2).normal(size=(30, 8))
        centred = X - X.mean(axis=0)
        u, s, _ = np.linalg.svd(centred, full_matrices=False)
        scores = u[:, :3] * s[:3]  # PCA by hand; signs do not change distances
        fold = kennard_stone(X, test_size=10, n_components=3)
        assert fold.train.tolist() == sorted(_brute_force_kennard_stone(scores, 20))

    @pytest.mark.parametrize(("test_size", "n_test"), [(0.25, 3), (0.5, 5), (4, 4), (1, 1)])
    def test_test_size(self, test_size, n_test):
        fold = kennard_stone(np.random.default_rng(0).normal(size=(10, 2)), test_size=test_size)
        assert fold.test.size == n_test
        assert fold.train.size == 10 - n_test

    @pytest.mark.parametrize("test_size", [0.0, 1.0, 1.5, 0, 9, -1, True, "0.2"])
    def test_bad_test_size(self, test_size):
        with pytest.raises(ValueError, match="test_size"):
            kennard_stone(np.zeros((10, 2)), test_size=test_size)

    def test_bad_n_components(self):
        with pytest.raises(ValueError, match="n_components must be an integer between 1 and 2"):
            kennard_stone(np.zeros((10, 2)), n_components=3)

    def test_non_finite_rejected(self):
        X = np.ones((5, 2))
        X[3, 1] = np.nan
        with pytest.raises(ValueError, match="row 3"):
            kennard_stone(X)

    def test_memory_stays_linear(self, monkeypatch):
        n, n_features = 3000, 4
        monkeypatch.setattr(_splits, "_DISTANCE_BLOCK_VALUES", 100_000)
        X = np.random.default_rng(0).normal(size=(n, n_features))
        tracemalloc.start()
        try:
            kennard_stone(X, test_size=0.95)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < (n * n * 8) // 10  # a full distance matrix would be 72 MB

    def test_twenty_thousand_samples(self):
        n = 20_000
        X = np.random.default_rng(0).normal(size=(n, 20)).astype(np.float32)
        tracemalloc.start()
        try:
            fold = kennard_stone(X, test_size=0.9)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert fold.train.size == 2000
        assert peak < 300 * 2**20  # the n-by-n matrix would be 3.2 GB


class TestKennardStoneSplit:
    def test_same_as_function(self):
        X = np.random.default_rng(4).normal(size=(25, 6))
        splits = list(KennardStoneSplit(test_size=5).split(X))
        fold = kennard_stone(X, test_size=5)
        assert len(splits) == 1
        assert np.array_equal(splits[0][0], fold.train)
        assert np.array_equal(splits[0][1], fold.test)

    def test_sklearn_compatible(self):
        rng = np.random.default_rng(5)
        X = rng.normal(size=(30, 3))
        y = X @ np.array([1.0, -2.0, 0.5]) + rng.normal(scale=0.1, size=30)
        splitter = KennardStoneSplit(0.2, n_components=2)
        assert splitter.get_n_splits() == 1
        assert repr(splitter) == "KennardStoneSplit(n_components=2, test_size=0.2)"
        scores = cross_val_score(LinearRegression(), X, y, cv=splitter, scoring="r2")
        assert scores.shape == (1,)
        assert scores[0] > 0.9
        with pytest.raises(ValueError, match="partition"):
            cross_val_predict(LinearRegression(), X, y, cv=splitter)  # not a partition: honest
