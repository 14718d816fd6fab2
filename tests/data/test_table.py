"""SpectraTable: lab values written as text, candidate targets and data-row numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal

from specsoil import SpecsoilError
from specsoil.data import MISSING_LAB_VALUES, SpectraTable, parse_lab_values

LAB_CELLS = ["12.5", "n.d.", "NA", "-", "<LOD", "nd", None, "ND", "n/a", "<0.2", "> 60", " 7 "]


def table(metadata: pd.DataFrame, **kwargs) -> SpectraTable:
    n = len(metadata)
    return SpectraTable(
        X=np.zeros((n, 3), dtype=np.float32),
        wavelengths=np.array([400.0, 500.0, 600.0]),
        metadata=metadata,
        source="t.csv",
        **kwargs,
    )


class TestParseLabValues:
    @pytest.mark.parametrize(
        ("censored", "below", "above"),
        [("missing", np.nan, np.nan), ("half", 0.1, 60.0), ("limit", 0.2, 60.0)],
    )
    def test_missing_and_censored(self, censored, below, above):
        parsed = parse_lab_values(pd.Series(LAB_CELLS, dtype=object), censored)
        expected = [12.5, *[np.nan] * 8, below, above, 7.0]
        assert_array_equal(parsed.values, expected)
        assert (parsed.missing, parsed.below, parsed.above) == (8, 1, 1)
        assert parsed.first_other is None
        assert parsed.counts() == {"missing": 8, "below": 1, "above": 1}

    def test_other_text_is_found(self):
        parsed = parse_lab_values(pd.Series(["1", "n.d.", "12,5", "abc"], dtype=object))
        assert parsed.first_other == 2

    def test_numeric_columns_pass_through(self):
        parsed = parse_lab_values(pd.Series([1.0, np.nan, 3.0]))
        assert_array_equal(parsed.values, [1.0, np.nan, 3.0])
        assert parsed.counts() == {"missing": 1}

    def test_tokens_are_lower_case(self):
        assert all(token == token.lower().strip() for token in MISSING_LAB_VALUES)

    def test_unknown_policy(self):
        with pytest.raises(SpecsoilError, match="censored must be one of"):
            parse_lab_values(pd.Series(["1"]), "drop")  # type: ignore[arg-type]


class TestTargets:
    def test_identifiers_are_not_offered(self):
        metadata = pd.DataFrame(
            {
                "sample_id": [1, 2, 3],
                "lab_id": [7, 8, 9],
                "Sample ID": [4, 5, 6],
                "clay": [10.0, 20.0, 30.0],
                "site": ["a", "b", "c"],
                "acid": [1, 2, 3],
            }
        )
        assert table(metadata).numeric_columns() == ["clay", "acid"]

    def test_text_column_names_row_and_value_past_dropped_rows(self):
        metadata = pd.DataFrame({"clay": pd.Series(["1", "n.d.", "<2", "x7"], dtype=object)})
        spectra = table(metadata, dropped_rows=(1, 3))
        # Position 3 is data row 6 once rows 1 and 3 of the file were dropped.
        with pytest.raises(
            SpecsoilError, match=r"target column 'clay', data row 6: 'x7' is not a number"
        ):
            spectra.targets(["clay"])

    def test_text_column_with_only_lab_notes_is_read(self):
        metadata = pd.DataFrame({"clay": pd.Series(["1", "n.d.", "<2"], dtype=object)})
        assert_array_equal(table(metadata, censored="half").targets(["clay"])[:, 0], [1, np.nan, 1])

    def test_unknown_target_list_is_cut_short(self):
        metadata = pd.DataFrame({f"c{i}": [1.0] for i in range(100)})
        with pytest.raises(SpecsoilError, match=r"unknown target 'clay'.*and 70 more"):
            table(metadata).targets(["clay"])

    @pytest.mark.parametrize(
        ("dropped", "position", "row"), [((), 0, 1), ((1,), 0, 2), ((2, 3), 1, 4), ((5,), 3, 4)]
    )
    def test_data_row(self, dropped, position, row):
        metadata = pd.DataFrame(index=range(6))
        assert table(metadata, dropped_rows=dropped).data_row(position) == row

    def test_subset_keeps_the_notes(self):
        metadata = pd.DataFrame({"clay": [1.0, 2.0]})
        spectra = table(metadata, lab_value_counts={"clay": {"missing": 1}}, censored="limit")
        part = spectra.subset([1])
        assert (dict(part.lab_value_counts), part.censored) == ({"clay": {"missing": 1}}, "limit")
