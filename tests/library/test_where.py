"""The --where filter language: parsed, never evaluated."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from specsoil._errors import SpecsoilError
from specsoil.library import import_table, parse_where, read_library, where_mask

FRAME = pd.DataFrame(
    {
        "site": pd.Series(["A", "B", "A", None], dtype="str"),
        "clay": [10.0, 25.0, np.nan, 40.0],
        "fold": [1, 2, 3, 1],
    }
)


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("site=A", [True, False, True, False]),
        ("site == A", [True, False, True, False]),
        ("site!=A", [False, True, False, True]),
        ("clay>10", [False, True, False, True]),
        ("clay >= 10", [True, True, False, True]),
        ("clay<25", [True, False, False, False]),
        ("clay<=25", [True, True, False, False]),
        ("fold in 1,3", [True, False, True, True]),
        ("fold not in 1,3", [False, True, False, False]),
        ("site in A,B and clay>20", [False, True, False, False]),
        (["fold=1", "clay>20"], [False, False, False, True]),
        ("site=A; DROP TABLE spectra", [False, False, False, False]),  # a value, nothing more
        ("site=__import__('os')", [False, False, False, False]),
    ],
)
def test_mask(where, expected):
    assert where_mask(FRAME, parse_where(where)).tolist() == expected


@pytest.mark.parametrize(
    ("where", "match"),
    [
        ("nope=1", r"no column 'nope'; columns: \['site', 'clay', 'fold'\]"),
        ("site>A", "> needs a numeric column"),
        ("clay=lots", "'lots' is not a number"),
        ("just words", "expected COLUMN=VALUE"),
    ],
)
def test_errors(where, match):
    with pytest.raises(SpecsoilError, match=match):
        where_mask(FRAME, parse_where(where))


def test_filters_on_the_library(library_url, rich_table):
    import_table(library_url, rich_table, instrument="asd")
    metadata = rich_table.metadata
    read = read_library(library_url, where=["site in site-1,site-2", "clay_pct>20"])
    expected = metadata["site"].isin(["site-1", "site-2"]) & (metadata["clay_pct"] > 20)
    assert read.metadata["sample_id"].tolist() == metadata.loc[expected, "sample_id"].tolist()
    np.testing.assert_array_equal(read.X, rich_table.X[expected.to_numpy()])
    read = read_library(library_url, properties=["total_carbon_pct"], where="fold=2")
    assert "clay_pct" not in read.metadata.columns
    assert read.metadata["total_carbon_pct"].notna().all()
    assert (read.metadata["fold"] == 2).all()
    with pytest.raises(SpecsoilError, match=r"no property 'ph'; properties: \["):
        read_library(library_url, properties="ph")
    with pytest.raises(SpecsoilError, match=r"no instrument 'foss'; instruments: \['asd'\]"):
        read_library(library_url, instrument="foss")
    with pytest.raises(SpecsoilError, match="no spectra meet the filters"):
        read_library(library_url, where="clay_pct>1000")
