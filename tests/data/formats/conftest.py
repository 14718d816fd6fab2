"""Fixtures for the vendor-format tests: the real instrument files and corrupted copies.

The instrument files live in ``<repo>/../shared/data/instruments`` (CI lays ``shared/``
beside the clone). They are never copied into the repository: some are GPL-labelled and
must stay out of the wheel and the sdist.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from specsoil._errors import SpecsoilError

ROOT = Path(__file__).resolve().parents[3]
INSTRUMENTS = ROOT.parent / "shared" / "data" / "instruments"


@pytest.fixture(scope="session")
def instruments() -> Path:
    """The folder of real instrument files; skips when it is absent."""
    if not INSTRUMENTS.is_dir():
        pytest.skip(f"real instrument files not found at {INSTRUMENTS} (shared/ beside the repo)")
    return INSTRUMENTS


@pytest.fixture
def variant(tmp_path: Path) -> Callable[..., Path]:
    """``variant(source, data, name=None)``: write ``data`` to tmp_path, named like the source."""

    def write(source: Path, data: bytes, name: str | None = None) -> Path:
        target = tmp_path / (name or source.name)
        target.write_bytes(bytes(data))
        return target

    return write


@pytest.fixture
def patched(variant: Callable[..., Path]) -> Callable[..., Path]:
    """``patched(source, offset, fmt, *values)``: a copy with ``struct.pack("<" + fmt)`` there."""

    def write(source: Path, offset: int, fmt: str, *values: Any) -> Path:
        data = bytearray(source.read_bytes())
        struct.pack_into("<" + fmt, data, offset, *values)
        return variant(source, bytes(data))

    return write


@pytest.fixture
def truncated(variant: Callable[..., Path]) -> Callable[[Path, int], Path]:
    """``truncated(source, length)``: a copy holding only the first ``length`` bytes."""
    return lambda source, length: variant(source, source.read_bytes()[:length])


def assert_refused(read: Callable[[Path], object], path: Path, pattern: str = "") -> str:
    """Assert ``read(path)`` raises SpecsoilError naming the file, a byte and ``pattern``."""
    with pytest.raises(SpecsoilError) as error:
        read(path)
    message = str(error.value)
    assert message.startswith(f"{path}: byte "), message
    assert re.search(pattern, message), message
    return message


@pytest.fixture(scope="session")
def refused() -> Callable[..., str]:
    """:func:`assert_refused`, as a fixture (test modules here are not a package)."""
    return assert_refused
