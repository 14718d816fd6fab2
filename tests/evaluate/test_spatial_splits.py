"""Spatial block K-fold and leave-location-out split plans."""

from __future__ import annotations

import numpy as np
import pytest

from specsoil._errors import SpecsoilError
from specsoil.evaluate import (
    location_groups,
    location_splits,
    spatial_block_splits,
    spatial_blocks,
)


def _scatter(n: int = 300, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Points over a 10 km square of UTM zone 55S."""
    rng = np.random.default_rng(seed)
    return rng.uniform(500_000, 510_000, n), rng.uniform(5_900_000, 5_910_000, n)


def _check_partition(folds: list, n: int) -> None:
    tested = np.concatenate([fold.test for fold in folds])
    assert np.array_equal(np.sort(tested), np.arange(n))  # every row tested exactly once
    for fold in folds:
        assert np.array_equal(np.sort(np.concatenate([fold.train, fold.test])), np.arange(n))


def test_blocks_are_square_cells_of_the_given_size() -> None:
    x = np.array([0.0, 999.0, 1000.0, 1500.0, -1.0, 0.0])
    y = np.array([0.0, 999.0, 0.0, 999.0, 0.0, 1000.0])
    blocks = spatial_blocks(x, y, block_size=1000.0)
    assert blocks[0] == blocks[1]  # same 1 km cell
    assert blocks[2] == blocks[3]
    assert len({blocks[0], blocks[2], blocks[4], blocks[5]}) == 4  # edges at multiples of 1 km


def test_no_block_is_split_across_folds_and_folds_are_balanced() -> None:
    x, y = _scatter()
    size = 2_000.0
    folds = spatial_block_splits(x, y, block_size=size, n_splits=5, random_state=3)
    assert [fold.name for fold in folds] == ["block1", "block2", "block3", "block4", "block5"]
    _check_partition(folds, x.size)
    cells = {(int(a // size), int(b // size)) for a, b in zip(x, y, strict=True)}
    fold_of_cell: dict[tuple[int, int], str] = {}
    for fold in folds:
        for row in fold.test:
            cell = (int(x[row] // size), int(y[row] // size))
            assert fold_of_cell.setdefault(cell, fold.name) == fold.name
    assert set(fold_of_cell) == cells
    sizes = np.array([fold.test.size for fold in folds])
    largest_block = np.bincount(spatial_blocks(x, y, block_size=size)).max()
    assert sizes.max() - sizes.min() <= largest_block


def test_test_points_of_a_fold_share_no_block_with_its_training_points() -> None:
    x, y = _scatter(seed=7)
    blocks = spatial_blocks(x, y, block_size=2_500.0)
    for fold in spatial_block_splits(x, y, block_size=2_500.0, n_splits=4):
        assert not set(blocks[fold.train]) & set(blocks[fold.test])


def test_block_folds_are_seeded() -> None:
    x, y = _scatter()
    first = spatial_block_splits(x, y, block_size=2_000.0, n_splits=4, random_state=0)
    again = spatial_block_splits(x, y, block_size=2_000.0, n_splits=4, random_state=0)
    other = spatial_block_splits(x, y, block_size=2_000.0, n_splits=4, random_state=1)
    assert all(np.array_equal(a.test, b.test) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a.test, b.test) for a, b in zip(first, other, strict=True))


def test_too_few_blocks_for_the_folds_is_a_clear_error() -> None:
    x, y = _scatter()
    with pytest.raises(SpecsoilError, match=r"in 1 block\(s\), fewer than the 5 folds"):
        spatial_block_splits(x, y, block_size=50_000.0, n_splits=5)


@pytest.mark.parametrize("size", [0.0, -5.0, float("nan"), "1km"])
def test_block_size_must_be_positive(size: object) -> None:
    x, y = _scatter(10)
    with pytest.raises(SpecsoilError, match="block size"):
        spatial_block_splits(x, y, block_size=size, n_splits=2)  # type: ignore[arg-type]


def test_identical_coordinates_form_one_location() -> None:
    x = np.array([1.0, 1.0, 2.0, 3.0, 2.0])
    y = np.array([5.0, 5.0, 5.0, 5.0, 5.0])
    groups = location_groups(x, y)
    assert groups[0] == groups[1]
    assert groups[2] == groups[4]
    assert len(set(groups)) == 3


def test_tolerance_links_nearby_samples_in_chains() -> None:
    x = np.array([0.0, 0.8, 1.6, 10.0, 10.5])
    y = np.zeros(5)
    groups = location_groups(x, y, tolerance=1.0)
    assert groups[0] == groups[1] == groups[2]  # 0-1 and 1-2 are within 1: one location
    assert groups[3] == groups[4]
    assert groups[3] != groups[0]
    assert len(set(location_groups(x, y, tolerance=0.1))) == 5


def test_leave_one_location_out() -> None:
    x = np.array([1.0, 1.0, 2.0, 3.0, 2.0, 4.0])
    y = np.zeros(6)
    folds = location_splits(x, y)
    assert len(folds) == 4
    _check_partition(folds, 6)
    tests = sorted(tuple(fold.test.tolist()) for fold in folds)
    assert tests == [(0, 1), (2, 4), (3,), (5,)]


def test_kfold_over_locations_keeps_replicates_together() -> None:
    rng = np.random.default_rng(0)
    sites_x, sites_y = rng.uniform(0, 1e4, 40), rng.uniform(0, 1e4, 40)
    site = rng.integers(0, 40, 200)  # 200 spectra from 40 sites, replicates share coordinates
    x, y = sites_x[site], sites_y[site]
    folds = location_splits(x, y, n_splits=5, random_state=2)
    assert len(folds) == 5
    _check_partition(folds, 200)
    for fold in folds:
        assert not set(site[fold.train]) & set(site[fold.test])


def test_fewer_locations_than_folds_gives_one_fold_per_location() -> None:
    x = np.array([0.0, 0.0, 5.0, 5.0])
    assert len(location_splits(x, np.zeros(4), n_splits=10)) == 2


def test_a_single_location_cannot_be_left_out() -> None:
    with pytest.raises(SpecsoilError, match="at least 2 locations"):
        location_splits(np.zeros(4), np.zeros(4), n_splits=3)
    with pytest.raises(SpecsoilError, match="tolerance must be >= 0"):
        location_groups(np.zeros(4), np.zeros(4), tolerance=-1.0)
