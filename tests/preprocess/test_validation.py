import numpy as np
import pytest
from numpy.testing import assert_array_equal

from specsoil.preprocess._validation import check_axis, check_choice, check_int, resolve_axis


class TestCheckInt:
    @pytest.mark.parametrize("value", [0, 3, np.int64(7)])
    def test_accepts_integers(self, value):
        assert check_int(value, "order", minimum=0) == int(value)

    @pytest.mark.parametrize("value", [-1, 2.0, True, "3", None])
    def test_rejects_others(self, value):
        with pytest.raises(ValueError, match=r"order must be an integer >= 0; got"):
            check_int(value, "order", minimum=0)


class TestCheckChoice:
    def test_lists_the_choices(self):
        assert check_choice("a", "kind", ("a", "b")) == "a"
        with pytest.raises(ValueError, match=r"kind must be one of \['a', 'b'\]; got 'c'"):
            check_choice("c", "kind", ("a", "b"))


class TestAxis:
    @pytest.mark.parametrize(
        ("values", "match"),
        [
            ([], "non-empty 1-D"),
            ([[1.0, 2.0]], "non-empty 1-D"),
            ([1.0, np.nan], "must be finite; value 1 is nan"),
            ([1.0, 2.0, 2.0], r"strictly ascending; value 2 \(2\) follows 2"),
            (["a", "b"], "1-D sequence of numbers"),
        ],
    )
    def test_rejects_bad_axes(self, values, match):
        with pytest.raises(ValueError, match=match):
            check_axis(values, "wavelengths")

    def test_none_means_band_positions(self):
        assert_array_equal(resolve_axis(None, 4, "X"), [0.0, 1.0, 2.0, 3.0])

    def test_length_must_match(self):
        with pytest.raises(
            ValueError, match="Detrend: wavelengths has 3 values but X has 4 columns"
        ):
            resolve_axis([1.0, 2.0, 3.0], 4, "Detrend")
