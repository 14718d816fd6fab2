"""Split plans: which rows train and which rows test, for each fold of an evaluation.

A split plan is a list of :class:`Fold`. The helpers here build plans from a seeded K-fold, a
user fold column, a group column (leave one group out), a calibration/validation column, or the
Kennard-Stone selection of a calibration set.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sklearn.decomposition import PCA
from sklearn.model_selection import BaseCrossValidator, KFold

from specsoil._errors import SpecsoilError

logger = logging.getLogger(__name__)

# Keep each block of the pairwise-distance search to about 8 M float64 values (64 MB).
_DISTANCE_BLOCK_VALUES = 8_000_000

_CALIBRATION_WORDS = frozenset({"1", "true", "yes", "y", "train", "training", "cal", "calibration"})
_TEST_WORDS = frozenset({"0", "false", "no", "n", "test", "val", "valid", "validation"})


@dataclass(frozen=True, slots=True, eq=False)
class Fold:
    """One train/test split of the rows of a table.

    Attributes:
        name: Fold label written in the outputs (``"fold1"``, a group value, ``"test"``).
        train: 0-based row positions used for fitting, shape (n_train,).
        test: 0-based row positions predicted, shape (n_test,), disjoint from ``train``.
    """

    name: str
    train: NDArray[np.intp]
    test: NDArray[np.intp]

    def __post_init__(self) -> None:
        for side in ("train", "test"):
            rows = np.asarray(getattr(self, side))
            if rows.ndim != 1 or rows.size == 0 or not np.issubdtype(rows.dtype, np.integer):
                raise ValueError(
                    f"fold {self.name!r}: {side} must be a non-empty 1-D array of row positions; "
                    f"got dtype {rows.dtype} and shape {rows.shape}"
                )
            # Frozen dataclass: object.__setattr__ is the documented way to normalise a field.
            object.__setattr__(self, side, rows.astype(np.intp, copy=False))
        overlap = np.intersect1d(self.train, self.test)
        if overlap.size:
            raise ValueError(
                f"fold {self.name!r}: {overlap.size} rows are in both train and test "
                f"(first: row {int(overlap[0])})"
            )


def kfold_splits(n: int, *, n_splits: int = 10, random_state: int = 0) -> list[Fold]:
    """Shuffled K-fold: every row is tested exactly once.

    Args:
        n: Number of rows.
        n_splits: Number of folds, between 2 and ``n``.
        random_state: Seed of the shuffle; the same seed gives the same folds.

    Returns:
        ``n_splits`` folds named ``fold1``, ``fold2``, ...

    Raises:
        SpecsoilError: If ``n_splits`` is below 2 or above ``n``.
    """
    if isinstance(n_splits, bool) or not isinstance(n_splits, int | np.integer):
        raise SpecsoilError(f"folds must be an integer; got {n_splits!r}")
    if n_splits < 2 or n_splits > n:
        raise SpecsoilError(
            f"folds must be between 2 and the number of samples ({n}); got {n_splits}"
        )
    width = len(str(n_splits))
    splitter = KFold(n_splits=int(n_splits), shuffle=True, random_state=random_state)
    return [
        Fold(f"fold{i + 1:0{width}d}", train, test)
        for i, (train, test) in enumerate(splitter.split(np.empty((n, 0))))
    ]


def _as_series(values: ArrayLike | pd.Series) -> pd.Series:
    if isinstance(values, pd.Series):
        return values.reset_index(drop=True)
    return pd.Series(list(np.asarray(values, dtype=object).ravel())).infer_objects()


def _label(value: Any) -> str:
    """Fold name for a column value: ``3.0`` reads as ``"3"``, strings stay as they are."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _one_fold_per_value(
    values: ArrayLike | pd.Series, column: str, what: str, min_values: int
) -> list[Fold]:
    series = _as_series(values)
    missing = series.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise SpecsoilError(
            f"{what} column {column!r}, data row {row + 1}: missing value; every row needs one"
        )
    if pd.api.types.is_numeric_dtype(series):
        # Numeric codes sort as numbers (2 before 10), then read as labels ("3", not "3.0").
        codes, numeric_uniques = pd.factorize(series.to_numpy(), sort=True)
        uniques = [_label(value) for value in numeric_uniques]
    else:
        codes, label_uniques = pd.factorize(series.map(_label).to_numpy(dtype=object), sort=True)
        uniques = [str(value) for value in label_uniques]
    if len(uniques) < min_values:
        raise SpecsoilError(
            f"{what} column {column!r} needs at least {min_values} distinct values; "
            f"got {len(uniques)} ({list(uniques)})"
        )
    rows = np.arange(len(series), dtype=np.intp)
    return [Fold(name, rows[codes != k], rows[codes == k]) for k, name in enumerate(uniques)]


def column_folds(values: ArrayLike | pd.Series, *, column: str) -> list[Fold]:
    """Folds given by the user: each distinct value of a fold column is one test fold.

    Args:
        values: The fold column, one value per row (integers or labels).
        column: The column's name, used in error messages.

    Returns:
        One fold per distinct value, sorted by value, named after it.

    Raises:
        SpecsoilError: If a value is missing or there are fewer than 2 distinct values.
    """
    return _one_fold_per_value(values, column, "fold", 2)


def group_splits(groups: ArrayLike | pd.Series, *, column: str) -> list[Fold]:
    """Leave one group out: samples of the same group (site, profile, field) never straddle.

    Args:
        groups: The group column, one value per row.
        column: The column's name, used in error messages.

    Returns:
        One fold per group, sorted by group value, named after it.

    Raises:
        SpecsoilError: If a value is missing or there are fewer than 2 groups.
    """
    return _one_fold_per_value(groups, column, "group", 2)


def _is_calibration(value: Any) -> bool | None:
    """True for a calibration flag, False for a test flag, None for anything else."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating):
        if value == 1:
            return True
        if value == 0:
            return False
        return None
    word = str(value).strip().lower()
    if word in _CALIBRATION_WORDS:
        return True
    if word in _TEST_WORDS:
        return False
    try:
        number = float(word)
    except ValueError:
        return None
    return True if number == 1.0 else False if number == 0.0 else None


def train_test_column(values: ArrayLike | pd.Series, *, column: str) -> Fold:
    """A single calibration/validation split read from a column.

    Calibration rows hold 1, true, yes, train or cal; test rows hold 0, false, no, test or val
    (case-insensitive; 1.0 and 0.0 count as 1 and 0).

    Args:
        values: The split column, one value per row.
        column: The column's name, used in error messages.

    Returns:
        One fold named ``"test"`` (wrap it in a list to use it as a split plan).

    Raises:
        SpecsoilError: If a value is none of the above, or either side is empty.
    """
    series = _as_series(values)
    flags = np.empty(len(series), dtype=bool)
    for row, value in enumerate(series.tolist()):
        flag = None if pd.isna(value) else _is_calibration(value)
        if flag is None:
            raise SpecsoilError(
                f"train column {column!r}, data row {row + 1}: {value!r} is neither a calibration "
                "flag (1/true/yes/train/cal) nor a test flag (0/false/no/test/val)"
            )
        flags[row] = flag
    for side, mask in (("calibration", flags), ("test", ~flags)):
        if not mask.any():
            raise SpecsoilError(f"train column {column!r} marks no row as {side}")
    return Fold("test", np.flatnonzero(flags), np.flatnonzero(~flags))


def _check_test_size(test_size: float, n: int) -> int:
    """Number of test rows for ``test_size`` (a fraction, or a count when an integer)."""
    if isinstance(test_size, bool) or not isinstance(test_size, int | float | np.number):
        raise ValueError(f"test_size must be a fraction in (0, 1) or a count; got {test_size!r}")
    if isinstance(test_size, int | np.integer):
        n_test = int(test_size)
    elif 0.0 < float(test_size) < 1.0:
        n_test = math.ceil(float(test_size) * n)
    else:
        raise ValueError(f"test_size must be a fraction in (0, 1) or a count; got {test_size!r}")
    # Kennard-Stone starts from a pair, so calibration needs at least two rows.
    if not 1 <= n_test <= n - 2:
        raise ValueError(
            f"test_size={test_size!r} leaves {n_test} of {n} rows for testing; "
            f"expected between 1 and {n - 2} (the calibration set needs at least 2 rows)"
        )
    return n_test


def _farthest_pair(Z: NDArray[np.float64], sq_norms: NDArray[np.float64]) -> tuple[int, int]:
    """The two rows farthest apart, searched block by block so memory stays O(n)."""
    n = Z.shape[0]
    block = max(1, _DISTANCE_BLOCK_VALUES // n)
    best, best_pair = -1.0, (0, 1)
    for start in range(0, n, block):
        stop = min(start + block, n)
        # |a - b|² = |a|² + |b|² - 2 a·b, built in place so one block is the peak memory;
        # Z is centred, which keeps the cancellation small.
        d2 = Z[start:stop] @ Z.T
        d2 *= -2.0
        d2 += sq_norms[start:stop, None]
        d2 += sq_norms[None, :]
        flat = int(np.argmax(d2))
        i, j = divmod(flat, n)
        if d2[i, j] > best:
            best, best_pair = float(d2[i, j]), (start + i, j)
    first, second = best_pair
    return (first, second) if first < second else (second, first)


def _kennard_stone_order(Z: NDArray[np.float64], n_select: int) -> NDArray[np.intp]:
    """Rows picked by Kennard & Stone (1969), in the order they are picked.

    Start with the two rows farthest apart; then repeatedly add the row whose distance to its
    nearest already-picked row is largest. Only the n-vector of nearest distances is kept and
    updated after each pick, never the n-by-n distance matrix.

    Args:
        Z: Coordinates, shape (n_samples, n_features).
        n_select: Number of rows to pick, between 2 and n_samples.

    Returns:
        Row positions, shape (n_select,).
    """
    Z = Z - Z.mean(axis=0)  # distances are shift-invariant; centring limits round-off
    sq_norms = np.einsum("ij,ij->i", Z, Z)
    first, second = _farthest_pair(Z, sq_norms)
    order = np.empty(n_select, dtype=np.intp)
    order[:2] = (first, second)

    # The working pool holds the rows not yet picked. Picked rows are only flagged dead, and the
    # pool is compacted when half of it is dead: this halves the matrix-vector work without
    # copying rows at every step.
    pool = np.arange(Z.shape[0], dtype=np.intp)
    pool_Z, pool_sq = Z, sq_norms
    nearest = np.full(Z.shape[0], np.inf)
    alive = np.ones(Z.shape[0], dtype=bool)
    alive[[first, second]] = False
    n_alive = Z.shape[0] - 2
    for picked in (first, second):
        d2 = pool_sq + sq_norms[picked] - 2.0 * (pool_Z @ Z[picked])
        np.minimum(nearest, d2, out=nearest)

    for k in range(2, n_select):
        if n_alive < alive.size // 2:
            pool, pool_Z, pool_sq = pool[alive], pool_Z[alive], pool_sq[alive]
            nearest, alive = nearest[alive], np.ones(n_alive, dtype=bool)
        # Ties go to the lowest row position: np.argmax returns the first maximum.
        candidate = int(np.argmax(np.where(alive, nearest, -np.inf)))
        picked = int(pool[candidate])
        order[k] = picked
        alive[candidate] = False
        n_alive -= 1
        d2 = pool_sq + sq_norms[picked] - 2.0 * (pool_Z @ Z[picked])
        np.minimum(nearest, d2, out=nearest)
    return order


def _validate_matrix(X: ArrayLike) -> NDArray[np.float64]:
    matrix = np.asarray(X, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        row = int(np.flatnonzero(~np.isfinite(matrix).all(axis=1))[0])
        raise ValueError(f"X row {row} holds NaN or infinite values; Kennard-Stone needs finite X")
    return matrix


def kennard_stone(
    X: ArrayLike, *, test_size: float = 0.25, n_components: int | None = None
) -> Fold:
    """Pick a calibration set that spans X by the Kennard-Stone algorithm (Kennard & Stone, 1969).

    Calibration rows are chosen one at a time, each the farthest (Euclidean) from those already
    chosen; the remaining rows, which lie inside the calibration set's span, are the test set.
    Memory stays O(n · n_features): nearest distances are updated incrementally. Time is
    O(n · n_calibration · n_features), so for many thousands of spectra pass ``n_components``.

    Args:
        X: Spectra, shape (n_samples, n_wavelengths).
        test_size: Fraction of rows (in (0, 1), rounded up) or number of rows left for testing.
        n_components: If given, select on this many principal-component scores of X instead of
            on X itself.

    Returns:
        One fold named ``"kennard_stone"`` (train = calibration rows, both sorted).

    Raises:
        ValueError: If ``test_size`` or ``n_components`` is out of range or X is not finite.
    """
    matrix = _validate_matrix(X)
    n = matrix.shape[0]
    n_test = _check_test_size(test_size, n)
    if n_components is not None:
        limit = min(matrix.shape)
        if isinstance(n_components, bool) or not 1 <= n_components <= limit:
            raise ValueError(
                f"n_components must be an integer between 1 and {limit}; got {n_components!r}"
            )
        matrix = PCA(n_components=int(n_components), random_state=0).fit_transform(matrix)
    calibration = _kennard_stone_order(matrix, n - n_test)
    logger.debug("Kennard-Stone: %d calibration rows, %d test rows", n - n_test, n_test)
    test = np.setdiff1d(np.arange(n, dtype=np.intp), calibration)
    return Fold("kennard_stone", np.sort(calibration), test)


class KennardStoneSplit(BaseCrossValidator):  # type: ignore[misc]
    """A one-split scikit-learn splitter whose training set is picked by Kennard & Stone (1969).

    Args:
        test_size: Fraction of rows (in (0, 1), rounded up) or number of rows left for testing.
        n_components: If given, select on this many principal-component scores of X.
    """

    def __init__(self, test_size: float = 0.25, *, n_components: int | None = None) -> None:
        self.test_size = test_size
        self.n_components = n_components

    def split(
        self, X: ArrayLike, y: ArrayLike | None = None, groups: ArrayLike | None = None
    ) -> Iterator[tuple[NDArray[np.intp], NDArray[np.intp]]]:
        """Yield the single (train, test) pair of row positions.

        Args:
            X: Spectra, shape (n_samples, n_wavelengths).
            y: Ignored; present for API compatibility.
            groups: Ignored; present for API compatibility.

        Yields:
            Calibration rows and test rows, both sorted.
        """
        fold = kennard_stone(X, test_size=self.test_size, n_components=self.n_components)
        yield fold.train, fold.test

    def get_n_splits(
        self, X: ArrayLike | None = None, y: ArrayLike | None = None, groups: Any = None
    ) -> int:
        """Return 1: Kennard-Stone gives one calibration/test split.

        Args:
            X: Ignored.
            y: Ignored.
            groups: Ignored.

        Returns:
            The number of splits, 1.
        """
        return 1


def _balanced_group_folds(
    groups: NDArray[np.intp], n_splits: int, random_state: int, prefix: str
) -> list[Fold]:
    """Deal whole groups to ``n_splits`` folds so each fold tests about the same number of rows.

    Groups are shuffled (seeded), then taken largest first and each given to the fold with
    the fewest rows so far (ties to the lowest fold number): the greedy "longest processing
    time" rule, which keeps every fold within one group's size of the mean.
    """
    uniques, codes, counts = np.unique(groups, return_inverse=True, return_counts=True)
    order = np.random.default_rng(random_state).permutation(uniques.size)
    order = order[np.argsort(-counts[order], kind="stable")]  # largest first, ties shuffled
    fold_of_group = np.empty(uniques.size, dtype=np.intp)
    rows_per_fold = np.zeros(n_splits, dtype=np.int64)
    for group in order:
        fold = int(np.argmin(rows_per_fold))
        fold_of_group[group] = fold
        rows_per_fold[fold] += counts[group]
    fold_of_row = fold_of_group[codes]
    rows = np.arange(groups.size, dtype=np.intp)
    width = len(str(n_splits))
    return [
        Fold(f"{prefix}{k + 1:0{width}d}", rows[fold_of_row != k], rows[fold_of_row == k])
        for k in range(n_splits)
    ]


def _check_xy(x: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    east = np.asarray(x, dtype=np.float64)
    north = np.asarray(y, dtype=np.float64)
    if east.ndim != 1 or east.shape != north.shape:
        raise ValueError(
            f"x and y must be 1-D and the same length; got shapes {east.shape} and {north.shape}"
        )
    if not (np.isfinite(east).all() and np.isfinite(north).all()):
        raise ValueError("x and y must be finite; read them with specsoil.data.read_coordinates")
    return east, north


def _check_n_splits(n_splits: int, what: str) -> int:
    if isinstance(n_splits, bool) or not isinstance(n_splits, int | np.integer):
        raise SpecsoilError(f"folds must be an integer; got {n_splits!r}")
    if n_splits < 2:
        raise SpecsoilError(f"{what} needs at least 2 folds; got {n_splits}")
    return int(n_splits)


def spatial_blocks(x: ArrayLike, y: ArrayLike, *, block_size: float) -> NDArray[np.intp]:
    """The square block of side ``block_size`` that holds each point, as a block number.

    Blocks are the cells of a grid anchored at the CRS origin (cell edges at multiples of
    ``block_size``), so the same point always falls in the same block, whatever the data.

    Args:
        x: Eastings in map units (projected coordinates), shape (n,).
        y: Northings in the same units, shape (n,).
        block_size: Side of a block, in map units (metres for UTM).

    Returns:
        Block numbers 0..n_blocks-1, shape (n,), numbered by (column, row) of the grid.

    Raises:
        SpecsoilError: If ``block_size`` is not a positive number.
    """
    if isinstance(block_size, bool) or not (
        isinstance(block_size, int | float | np.number) and math.isfinite(block_size)
    ):
        raise SpecsoilError(f"spatial block size must be a positive number; got {block_size!r}")
    if block_size <= 0:
        raise SpecsoilError(f"spatial block size must be positive; got {block_size!r}")
    east, north = _check_xy(x, y)
    cells = np.column_stack([np.floor(east / block_size), np.floor(north / block_size)]).astype(
        np.int64
    )
    _, blocks = np.unique(cells, axis=0, return_inverse=True)
    return np.asarray(blocks, dtype=np.intp).ravel()


def spatial_block_splits(
    x: ArrayLike,
    y: ArrayLike,
    *,
    block_size: float,
    n_splits: int = 5,
    random_state: int = 0,
) -> list[Fold]:
    """K-fold over square spatial blocks: a block's samples are always tested together.

    Points are binned into square blocks of side ``block_size`` (see :func:`spatial_blocks`)
    and whole blocks are dealt to ``n_splits`` folds, seeded and balanced by sample count.
    Testing on blocks the model never saw estimates the error of mapping new areas, which
    random K-fold overstates when nearby samples are alike (spatial autocorrelation).

    Args:
        x: Eastings in map units; project geographic coordinates first
            (``Coordinates.projected()``), since blocks in degrees are not square.
        y: Northings in the same units.
        block_size: Side of a block, in map units.
        n_splits: Number of folds (K).
        random_state: Seed of the block shuffle; the same seed gives the same folds.

    Returns:
        ``n_splits`` folds named ``block1``, ``block2``, ... (``block01`` from 10 folds on)

    Raises:
        SpecsoilError: If ``block_size`` is not positive, or fewer than ``n_splits`` blocks
            hold samples.
    """
    k = _check_n_splits(n_splits, "spatial block CV")
    blocks = spatial_blocks(x, y, block_size=block_size)
    n_blocks = int(blocks.max()) + 1 if blocks.size else 0
    if n_blocks < k:
        raise SpecsoilError(
            f"spatial blocks of {block_size:g} map units put the {blocks.size} samples in "
            f"{n_blocks} block(s), fewer than the {k} folds; use smaller --spatial-blocks or "
            "fewer --folds"
        )
    logger.debug("spatial blocks: %d non-empty blocks of %g units", n_blocks, block_size)
    return _balanced_group_folds(blocks, k, random_state, "block")


def location_groups(x: ArrayLike, y: ArrayLike, *, tolerance: float = 0.0) -> NDArray[np.intp]:
    """Group samples taken at the same place: one group number per location.

    With ``tolerance`` 0 only identical coordinates share a location. With a positive
    tolerance, points at most that far apart (Euclidean, map units) are linked, and chains
    of such links form one location (single linkage), so a location is never split by the
    tolerance; two samples of one location may then lie further apart than the tolerance.

    Args:
        x: Eastings (or any x), shape (n,).
        y: Northings in the same units, shape (n,).
        tolerance: Largest distance, in map units, between a sample and its nearest
            neighbour in the same location.

    Returns:
        Location numbers 0..n_locations-1, shape (n,).

    Raises:
        SpecsoilError: If ``tolerance`` is negative or not a number.
    """
    if isinstance(tolerance, bool) or not (
        isinstance(tolerance, int | float | np.number) and math.isfinite(tolerance)
    ):
        raise SpecsoilError(f"location tolerance must be a number >= 0; got {tolerance!r}")
    if tolerance < 0:
        raise SpecsoilError(f"location tolerance must be >= 0; got {tolerance!r}")
    east, north = _check_xy(x, y)
    points = np.column_stack([east, north])
    if tolerance == 0:
        _, groups = np.unique(points, axis=0, return_inverse=True)
        return np.asarray(groups, dtype=np.intp).ravel()
    # Imported here: scipy's spatial and graph modules are only needed for this case.
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    pairs = cKDTree(points).query_pairs(r=float(tolerance), output_type="ndarray")
    n = points.shape[0]
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels, dtype=np.intp)


def location_splits(
    x: ArrayLike,
    y: ArrayLike,
    *,
    tolerance: float = 0.0,
    n_splits: int | None = None,
    random_state: int = 0,
) -> list[Fold]:
    """Leave-location-out: samples from one location (see :func:`location_groups`) never straddle.

    With ``n_splits`` None every location is one test fold (leave one location out). With
    ``n_splits`` K and more than K locations, whole locations are dealt to K folds, seeded and
    balanced by sample count (K-fold over locations), which costs K fits instead of one per
    location and keeps replicate spectra, depths of one profile or repeat visits together.
    With at most K locations, each location is its own fold.

    Args:
        x: Eastings (or any x), shape (n,).
        y: Northings in the same units, shape (n,).
        tolerance: Linking distance of :func:`location_groups`, in map units.
        n_splits: Number of folds; None for one fold per location.
        random_state: Seed of the location shuffle.

    Returns:
        Folds named ``loc1``, ``loc2``, ... (zero-padded to the width of the fold count)

    Raises:
        SpecsoilError: If every sample is at one location, or ``tolerance``/``n_splits``
            is invalid.
    """
    groups = location_groups(x, y, tolerance=tolerance)
    n_locations = int(groups.max()) + 1 if groups.size else 0
    if n_locations < 2:
        raise SpecsoilError(
            f"leave-location-out needs samples from at least 2 locations; all {groups.size} "
            f"samples are within {tolerance:g} map units of each other"
        )
    if n_splits is None:
        k = n_locations
    else:
        k = min(_check_n_splits(n_splits, "leave-location-out"), n_locations)
    return _balanced_group_folds(groups, k, random_state, "loc")
