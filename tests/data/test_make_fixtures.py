"""The committed fixtures are what make_fixtures.py generates today."""

from __future__ import annotations

import csv

from make_fixtures import FIXTURES, geeves_small_rows


def test_geeves_small_is_up_to_date():
    with (FIXTURES / "geeves_small.csv").open(encoding="utf-8", newline="") as handle:
        committed = list(csv.reader(handle))
    assert committed == geeves_small_rows()
    assert len(committed) == 61
    assert (FIXTURES / "geeves_small.csv").stat().st_size <= 200_000
