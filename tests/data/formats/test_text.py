"""The shared pieces of the text readers: line reading and detector-overlap cutting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from specsoil._errors import SpecsoilError
from specsoil.data.formats._text import read_lines, resolve_overlaps

PATH = Path("scan.txt")


def test_overlap_cut_at_crossover_or_midpoint():
    axis = np.array([1.0, 2.0, 3.0, 4.0, 2.5, 3.5, 4.5, 5.5, 5.0, 6.0])
    values = np.arange(axis.size, dtype=float)[None, :]
    kept_axis, kept, notes = resolve_overlaps(
        axis, values, path=PATH, crossovers=(3.0,), crossover_source="test"
    )
    # Join 1 at the crossover 3: detector 1 keeps 1, 2; detector 2 keeps 3.5, 4.5, 5.5.
    # Join 2 (5.0-5.5, no crossover) at the midpoint 5.25: 5.5 and 5.0 dropped, 6.0 kept.
    np.testing.assert_array_equal(kept_axis, [1.0, 2.0, 3.5, 4.5, 6.0])
    np.testing.assert_array_equal(kept[0], [0, 1, 5, 6, 9])
    assert "cut at 3 (the crossover 3 test)" in notes[0]
    assert "cut at 5.25 (the midpoint of the overlap)" in notes[1]


def test_monotonic_axis_is_untouched():
    axis = np.array([1.0, 2.0, 3.0])
    same_axis, _same, notes = resolve_overlaps(axis, axis[None, :], path=PATH)
    assert notes == []
    assert same_axis is axis


def test_detector_starting_before_the_previous_one_is_an_error():
    axis = np.array([5.0, 6.0, 7.0, 1.0, 2.0])
    with pytest.raises(SpecsoilError, match="data point 4 goes back to 1"):
        resolve_overlaps(axis, axis[None, :], path=PATH)


def test_read_lines_handles_endings_eof_and_binary(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"a\r\nb\rc\nd\n\x1agarbage")
    assert read_lines(path) == ["a", "b", "c", "d"]
    path.write_bytes(b"abc\x00def")
    with pytest.raises(SpecsoilError, match="byte offset 3 is a NUL byte"):
        read_lines(path)
